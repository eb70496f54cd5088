"""A ring buffer of recent environment transitions, and segment sampling from it.

SB3's replay and rollout buffers keep what the *agent* needs; the preference loop needs
more: the true reward and success (for synthetic teachers and metrics), the simulator
state before every step (to re-render a segment for a person), episode boundaries (a
segment never straddles two episodes) and true terminations (value-based learners stop
bootstrapping where the MDP ended, not where a time limit cut the episode).
:class:`TransitionLog` keeps exactly that for the most recent ``capacity`` steps of every
parallel environment.

Candidate segments are drawn uniformly among valid start positions — positions whose
next ``T`` steps lie inside one episode and inside the recent ``window`` — which is what
B-Pref does over its FIFO of the last 100 episodes. With ``absorbing`` (Knox et al., AAAI
2024; ``feedback.absorbing``) a segment may also run past a true termination (never a
truncation): its steps after the terminal one are the absorbing state, where reward and
optimal advantage are 0 (see :meth:`TransitionLog.gather`).

Learners never get the log: their ``observe`` hook gets :meth:`TransitionLog.view`, a
:class:`TransitionView` that holds read-only views of the learner-visible arrays only
(observations, actions, next observations, terminals, episode ids, simulator states) and
samples :class:`~pbrl.segments.Segments` from them — no true reward or success is
reachable from it, so "learners never see the true reward" holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pbrl.segments import Provenance, SegmentBatch, Segments, SegmentTruth, absorbing_steps

_FIELDS = (
    "obs", "actions", "next_obs", "true_rewards", "successes", "terminals", "sim_states", "episode", "step", "env_step",
)


class NotEnoughDataError(RuntimeError):
    """Raised when the log holds too few whole segments to sample from."""


def _rows_oldest_first(pos: int, size: int, capacity: int) -> np.ndarray:
    start = (pos - size) % capacity
    return (start + np.arange(size)) % capacity


def _valid_starts(
    episode: np.ndarray, terminals: np.ndarray, rows: np.ndarray, length: int, window: int | None, absorbing: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Start rows and env indices of whole segments among ``rows`` (oldest first); see :meth:`TransitionLog.valid_starts`."""
    none = np.empty(0, np.int64), np.empty(0, np.int64)
    if window is not None:
        rows = rows[-min(window, len(rows)) :]
    n = len(rows)
    if n == 0 or (n < length and not absorbing):
        return none
    episode = episode[rows]  # [R, n_envs]
    last = np.ones(episode.shape, bool)  # the last logged step of its episode
    last[:-1] = episode[1:] != episode[:-1]
    index = np.arange(n)[:, None]
    run_end = np.minimum.accumulate(np.where(last, index, n)[::-1], axis=0)[::-1]  # each step's episode's last row
    whole = run_end >= index + length - 1
    if absorbing:
        whole |= np.take_along_axis(terminals[rows], run_end, axis=0)
    start_idx, env_idx = np.nonzero(whole)
    return rows[start_idx], env_idx


def _segments(
    arrays: dict[str, np.ndarray], capacity: int, start_rows: np.ndarray, env_index: np.ndarray, length: int
) -> tuple[Segments, np.ndarray, np.ndarray]:
    """The learner-visible part of segments from physical start rows, and each step's source row
    ``[B, T]`` and absorbing flag ``[B, T]`` (see :meth:`TransitionLog.gather`)."""
    n_envs = arrays["obs"].shape[1]
    steps = (start_rows[:, None] + np.arange(length)[None, :]) % capacity  # [B, T]
    envs = env_index[:, None]
    terminals = arrays["terminals"][steps, envs]
    absorbing = absorbing_steps(terminals)
    terminal_row = np.take_along_axis(steps, terminals.argmax(axis=1)[:, None], axis=1)
    rows = np.where(absorbing, terminal_row, steps)  # absorbing steps copy their terminal step, then are patched
    obs, actions, next_obs = (arrays[name][rows, envs] for name in ("obs", "actions", "next_obs"))  # fresh arrays
    obs[absorbing], actions[absorbing] = next_obs[absorbing], 0.0
    step_ids = rows * n_envs + envs  # unique among the transitions stored right now
    step_ids = np.where(absorbing, -1 - step_ids, step_ids)
    return Segments(obs, actions, next_obs, step_ids, terminals & ~absorbing), rows, absorbing


def _transitions(arrays: dict[str, np.ndarray], rows: np.ndarray) -> Segments:
    """The transitions at ``rows`` (all envs, flattened) as 1-step segments with their step ids."""
    n_envs = arrays["obs"].shape[1]
    flat = lambda name: arrays[name][rows].reshape(len(rows) * n_envs, 1, *arrays[name].shape[2:])  # noqa: E731
    step_ids = (rows[:, None] * n_envs + np.arange(n_envs)).reshape(-1, 1)
    return Segments(flat("obs"), flat("actions"), flat("next_obs"), step_ids, flat("terminals"))


class TransitionLog:
    """Per-environment ring buffers of transitions, shaped ``[capacity, n_envs, ...]``."""

    def __init__(self, capacity: int, n_envs: int = 1, env_id: str = "") -> None:
        if capacity <= 0:
            raise ValueError(f"TransitionLog capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.n_envs = int(n_envs)
        self.env_id = env_id
        self.arrays: dict[str, np.ndarray] = {}
        self.pos = 0  # next write row
        self.size = 0  # rows filled
        self._episode = np.arange(n_envs, dtype=np.int64)
        self._next_episode = n_envs
        self._step_in_episode = np.zeros(n_envs, dtype=np.int64)
        self.total_steps = 0

    # ------------------------------------------------------------------ writing
    def _allocate(self, **row: np.ndarray) -> None:
        for name, value in row.items():
            dtype = np.float64 if name == "sim_states" else value.dtype
            self.arrays[name] = np.zeros((self.capacity, self.n_envs, *value.shape[1:]), dtype=dtype)

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        next_obs: np.ndarray,
        true_rewards: np.ndarray,
        successes: np.ndarray,
        dones: np.ndarray,
        sim_states: np.ndarray | None = None,
        terminals: np.ndarray | None = None,
    ) -> None:
        """Append one step of every env (arrays shaped ``[n_envs, ...]``).

        ``next_obs`` must be the true next observation (the terminal observation at an
        episode end, not the reset one). ``dones`` marks the last step of an episode,
        whatever ended it; ``terminals`` (gymnasium's ``terminated``; ``None`` = all False)
        the subset that ended in a true termination rather than a time-limit truncation.
        """
        n = self.n_envs
        dones = np.asarray(dones, dtype=bool).reshape(n)
        terminals = np.zeros(n, bool) if terminals is None else np.asarray(terminals, dtype=bool).reshape(n)
        if np.any(terminals & ~dones):
            raise ValueError("TransitionLog.add: a step marked terminal must also be marked done")
        row = {
            "obs": np.asarray(obs, dtype=np.float32).reshape(n, -1),
            "actions": np.asarray(actions, dtype=np.float32).reshape(n, -1),
            "next_obs": np.asarray(next_obs, dtype=np.float32).reshape(n, -1),
            "true_rewards": np.asarray(true_rewards, dtype=np.float32).reshape(n),
            "successes": np.asarray(successes, dtype=np.float32).reshape(n),
            "terminals": terminals,
            "episode": self._episode.copy(),
            "step": self._step_in_episode.copy(),
            "env_step": np.full(n, self.total_steps, dtype=np.int64),
        }
        if sim_states is not None:
            row["sim_states"] = np.asarray(sim_states, dtype=np.float64).reshape(n, -1)
        if not self.arrays:
            self._allocate(**row)
        for name, value in row.items():
            self.arrays[name][self.pos] = value
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.total_steps += n
        self._step_in_episode += 1
        for e in np.flatnonzero(dones):
            self._episode[e] = self._next_episode
            self._next_episode += 1
            self._step_in_episode[e] = 0

    def mark_episode_boundary(self) -> None:
        """Start fresh episodes in every env (e.g. after a resume reset the envs)."""
        self._episode = np.arange(self._next_episode, self._next_episode + self.n_envs, dtype=np.int64)
        self._next_episode += self.n_envs
        self._step_in_episode[:] = 0

    # ------------------------------------------------------------------ reading
    def _rows_oldest_first(self) -> np.ndarray:
        return _rows_oldest_first(self.pos, self.size, self.capacity)

    def valid_starts(
        self, length: int, window: int | None = None, absorbing: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logical start rows and env indices of every whole segment of ``length`` steps.

        A segment is whole when its steps lie in one episode; with ``absorbing`` also when its
        episode truly terminates before the segment ends (:meth:`gather` pads the rest with the
        absorbing state). ``window`` restricts segments to the most recent ``window`` rows per env.
        """
        if not self.arrays:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        a = self.arrays
        return _valid_starts(a["episode"], a["terminals"], self._rows_oldest_first(), length, window, absorbing)

    def sample_segments(
        self, count: int, length: int, rng: np.random.Generator, window: int | None = None, absorbing: bool = False
    ) -> SegmentBatch:
        """Draw ``count`` segments uniformly (with replacement) among valid starts (see :meth:`valid_starts`)."""
        starts, envs = self.valid_starts(length, window, absorbing)
        if len(starts) == 0:
            raise NotEnoughDataError(
                f"no whole {length}-step segment in the last {window or self.size} steps "
                f"({self.size} steps logged per env). Collect more steps before the first query, "
                "or lower feedback.segment_length (episodes may end before it)."
            )
        pick = rng.integers(0, len(starts), size=count)
        return self.gather(starts[pick], envs[pick], length)

    def gather(self, start_rows: np.ndarray, env_index: np.ndarray, length: int) -> SegmentBatch:
        """Build segments from physical start rows (as returned by :meth:`valid_starts`).

        Steps after a true termination are the absorbing state, never the next episode:
        observation and next observation are the terminal step's next observation, the
        action and the true reward 0, success and simulator state the terminal step's (a
        person sees its frame held), step id ``−1 − (the terminal step's id)``.
        """
        segments, rows, absorbing = _segments(self.arrays, self.capacity, start_rows, env_index, length)
        a, envs = self.arrays, env_index[:, None]
        take = lambda name: a[name][rows, envs]  # noqa: E731 (fancy indexing: fresh arrays)
        rewards = take("true_rewards")
        rewards[absorbing] = 0.0
        truth = SegmentTruth(rewards, take("successes"))
        provenance = Provenance(
            env_id=self.env_id,
            episode=a["episode"][start_rows, env_index],
            start=a["step"][start_rows, env_index],
            sim_states=take("sim_states") if "sim_states" in a else None,
            env_step=a["env_step"][start_rows, env_index],
        )
        return SegmentBatch(segments, truth, provenance)

    def recent(self, count: int) -> tuple[Segments, np.ndarray]:
        """The last ``count`` transitions (all envs flattened) as 1-step segments and their true rewards."""
        rows = self._rows_oldest_first()[-max(1, count // self.n_envs) :]
        return _transitions(self.arrays, rows), self.arrays["true_rewards"][rows].reshape(-1)

    def view(self) -> "TransitionView":
        """What a learner may read of the log (its ``observe`` hook): :class:`TransitionView`."""
        if not self.arrays:
            empty = np.zeros((0, self.n_envs, 0), np.float32)
            arrays = {"obs": empty, "actions": empty, "next_obs": empty,
                      "terminals": np.zeros((0, self.n_envs), bool), "episode": np.zeros((0, self.n_envs), np.int64)}
        else:
            arrays = {name: self.arrays[name][: self.size] for name in TransitionView.ARRAYS if name in self.arrays}
        for array in arrays.values():
            array.flags.writeable = False  # this view of the buffer only; the log goes on writing its own
        return TransitionView(**arrays, pos=self.pos, capacity=self.capacity, env_id=self.env_id)

    def episodes(self) -> list[dict[str, np.ndarray]]:
        """Every whole episode in the log (begun and finished inside it), oldest first per env, each
        a dict of per-step arrays named as :func:`pbrl.datasets.stack_episodes` takes them: ``obs``,
        ``actions``, ``next_obs``, ``rewards`` (true), ``successes``, ``terminated``, ``truncated``
        (the last step when it was not a true termination) and ``sim_states`` when logged."""
        if not self.arrays:
            return []
        rows, a, out = self._rows_oldest_first(), self.arrays, []
        names = {"obs": "obs", "actions": "actions", "next_obs": "next_obs", "rewards": "true_rewards",
                 "successes": "successes", "sim_states": "sim_states"}
        for e in range(self.n_envs):
            episode = a["episode"][rows, e]
            for chunk in np.split(rows, np.flatnonzero(np.diff(episode)) + 1):
                begun, finished = a["step"][chunk[0], e] == 0, a["episode"][chunk[-1], e] != self._episode[e]
                if not (begun and finished):
                    continue
                steps = {key: a[name][chunk, e] for key, name in names.items() if name in a}
                steps["terminated"] = a["terminals"][chunk, e]
                steps["truncated"] = np.zeros(len(chunk), bool)
                steps["truncated"][-1] = not steps["terminated"][-1]
                out.append(steps)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        meta = np.array(
            [self.capacity, self.n_envs, self.pos, self.size, self._next_episode, self.total_steps], dtype=np.int64
        )
        np.savez(path, _meta=meta, _episode=self._episode, _step=self._step_in_episode, **self.arrays)

    @classmethod
    def load(cls, path: Path, env_id: str = "") -> "TransitionLog":
        """Read a log written by :meth:`save`; logs saved before terminals were recorded load with none."""
        with np.load(path) as data:
            capacity, n_envs, pos, size, next_episode, total = (int(x) for x in data["_meta"])
            log = cls(capacity, n_envs, env_id)
            log.pos, log.size, log._next_episode, log.total_steps = pos, size, next_episode, total
            log._episode, log._step_in_episode = data["_episode"], data["_step"]
            log.arrays = {name: data[name] for name in _FIELDS if name in data}
        if log.arrays and "terminals" not in log.arrays:
            log.arrays["terminals"] = np.zeros((capacity, n_envs), bool)
        return log


@dataclass(frozen=True, eq=False)
class TransitionView:
    """What a learner may read of a :class:`TransitionLog` — and nothing more.

    Read-only views (``writeable=False``, no copy) of the log's learner-visible arrays, shaped
    ``[size, n_envs, ...]`` in storage order (a ring: not chronological once it wrapped), plus
    segment sampling. It holds no reference to the log and no array of true rewards or
    successes, so a learner cannot reach them through it (``tests/test_transitions.py``).
    Later writes to the log show through these arrays; take a fresh view each round.
    """

    ARRAYS = ("obs", "actions", "next_obs", "terminals", "episode", "sim_states")

    obs: np.ndarray
    """Observations ``[size, n_envs, obs_dim]``."""
    actions: np.ndarray
    """Actions ``[size, n_envs, act_dim]`` (the unit box for pbrl's own agents)."""
    next_obs: np.ndarray
    """True next observations ``[size, n_envs, obs_dim]`` (the terminal one at an episode end)."""
    terminals: np.ndarray
    """``[size, n_envs]`` bool: the episode truly terminated after this step (not a time-limit truncation)."""
    episode: np.ndarray
    """``[size, n_envs]`` episode ids (segments never straddle two)."""
    pos: int
    """The ring's next write row (where the oldest row is once it wrapped)."""
    capacity: int
    """The ring's rows per env."""
    env_id: str = ""
    """The env the steps came from."""
    sim_states: np.ndarray | None = None
    """Simulator states before each step ``[size, n_envs, S]`` (None when the log kept none)."""

    @property
    def size(self) -> int:
        """Rows filled per env."""
        return len(self.obs)

    @property
    def n_envs(self) -> int:
        return self.obs.shape[1]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"obs": self.obs, "actions": self.actions, "next_obs": self.next_obs, "terminals": self.terminals}

    def _rows_oldest_first(self) -> np.ndarray:
        return _rows_oldest_first(self.pos, self.size, self.capacity)

    def valid_starts(self, length: int, window: int | None = None, absorbing: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Start rows and env indices of every whole segment (:meth:`TransitionLog.valid_starts`)."""
        return _valid_starts(self.episode, self.terminals, self._rows_oldest_first(), length, window, absorbing)

    def sample_segments(
        self, count: int, length: int, rng: np.random.Generator, window: int | None = None, absorbing: bool = False
    ) -> Segments:
        """``count`` segments drawn as :meth:`TransitionLog.sample_segments` draws them (same rng use), learner part only."""
        starts, envs = self.valid_starts(length, window, absorbing)
        if len(starts) == 0:
            raise NotEnoughDataError(f"no whole {length}-step segment in the last {window or self.size} logged steps per env")
        pick = rng.integers(0, len(starts), size=count)
        return _segments(self._arrays(), self.capacity, starts[pick], envs[pick], length)[0]

    def transitions(self) -> Segments:
        """Every logged transition (all envs flattened) as 1-step segments with step ids, oldest first."""
        return _transitions(self._arrays(), self._rows_oldest_first())
