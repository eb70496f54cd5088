"""SAC's replay buffer, taught two PEBBLE tricks.

* **Relabeling** — after every reward update, every stored reward is recomputed with the
  new learned reward, in large chunks on the learner's device
  (``rewards[:size] = r̂(obs, act, next_obs)``), so SAC never mixes old and new rewards.
* **Intrinsic reward** — during unsupervised pre-training, sampled batches carry the
  state-entropy reward of their states ``s_t`` instead of the stored reward (B-Pref's
  ``agent/sac.py`` ``update_state_ent`` scores ``obs``; ``StateEntropyReward(on="next_obs")``
  scores ``s_{t+1}`` instead).

And QPA's **hybrid experience replay** (Hu et al., ICLR 2024): with ``recent_fraction = ω``
each batch of ``B`` takes ``round(ω·B)`` transitions uniformly from the ``recent_window``
most recent rows and the other ``B − round(ω·B)`` uniformly from the whole buffer (QPA:
ω = 0.5, the last N episodes of the query window, ``agent.recent_window = None``), so the
critic and actor concentrate on the policy's own recent distribution, where the reward
model was just queried. The recent part comes last in the batch. Sampling uses NumPy's
global generator, as SB3's own buffers do (seeded by ``set_random_seed``). As in QPA's
code, :class:`~pbrl.agents.sac.SACFeedbackHooks` switches back to uniform replay once the
feedback budget is spent (``configure_hybrid_replay(0, …)``).

And RUNE's **exploration bonus** (:mod:`pbrl.agents.rune`, ``agent.rune``): with
:meth:`~PreferenceReplayBuffer.attach_rune` a column ``bonus = std_e r̂_e(s, a)`` lives beside
``rewards``, written wherever rows are (re)labeled and for each new row, and sampled batches
carry ``rewards + β_t · bonus`` once the state-entropy reward is off (rll-research/rune
``replay_buffer_explore.py``, ``agent/sac_explore.py`` ``update_critic``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from pbrl.agents.rune import RUNEBonus
from pbrl.agents.state_entropy import StateEntropyReward
from pbrl.learners.base import RewardLearner


class PreferenceReplayBuffer(ReplayBuffer):
    """A :class:`ReplayBuffer` that can be relabeled and can serve intrinsic rewards."""

    intrinsic: StateEntropyReward | None = None
    recent_fraction: float = 0.0
    """Share ω of every sampled batch drawn from the most recent rows (0 = plain uniform replay)."""
    recent_window: int = 10_000
    """Rows (per env) that count as recent (set by :meth:`configure_hybrid_replay`)."""
    _rune: tuple[RUNEBonus, RewardLearner, Callable[[], int]] | None = None
    """RUNE's bonus, the learner whose ensemble std fills ``bonus`` and the clock of β_t (never pickled)."""

    def filled(self) -> int:
        return self.buffer_size if self.full else self.pos

    def configure_hybrid_replay(self, fraction: float | None, window: int) -> None:
        """Switch QPA's hybrid experience replay on (``fraction > 0``) or off (``0`` / ``None``)."""
        fraction = 0.0 if fraction is None else float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"hybrid replay fraction must be in [0, 1], got {fraction}")
        if window < 1:
            raise ValueError(f"hybrid replay window must be ≥ 1 transition, got {window}")
        if fraction > 0 and self.optimize_memory_usage:
            raise ValueError("hybrid experience replay does not support optimize_memory_usage=True")
        self.recent_fraction, self.recent_window = fraction, int(window)

    def sample(self, batch_size: int, env=None) -> ReplayBufferSamples:
        recent = int(round(batch_size * self.recent_fraction))
        if recent == 0:
            return super().sample(batch_size, env=env)
        rows = self.filled()
        uniform = np.random.randint(0, rows, size=batch_size - recent)
        age = np.random.randint(0, min(self.recent_window, rows), size=recent)  # 0 = the newest row
        latest = (self.pos - 1 - age) % self.buffer_size
        return self._get_samples(np.concatenate([uniform, latest]), env=env)

    def attach_rune(self, rune: RUNEBonus, learner: RewardLearner, clock: Callable[[], int]) -> None:
        """Keep RUNE's column ``bonus = std_e r̂_e(s, a)`` beside ``rewards`` — relabeled with them and
        written for each new row with ``learner`` — and serve ``rewards + rune.beta(clock()) · bonus`` once
        :attr:`intrinsic` is off; ``clock``: the model's ``num_timesteps``. The column is pickled with the
        buffer, the attachment is not (attach again after loading)."""
        if self.optimize_memory_usage or self.n_envs != 1:
            raise ValueError("RUNE's bonus column needs one env and optimize_memory_usage=False")
        if "bonus" not in vars(self):
            self.bonus = np.zeros_like(self.rewards, dtype=np.float32)
        self._rune = (rune, learner, clock)

    def add(self, *args: Any, **kwargs: Any) -> None:
        super().add(*args, **kwargs)
        self._bonus_of_new_row()

    def _bonus_of_new_row(self) -> None:
        """RUNE: the std of the row just stored (skipped in pre-training: the first round relabels every row)."""
        if self._rune is not None and self.intrinsic is None:
            row = (self.pos - 1) % self.buffer_size
            self._relabel_bonus(row, row + 1)

    def _relabel_bonus(self, start: int, stop: int) -> None:
        """``bonus[start:stop] = std_e r̂_e(s, a, s')`` with the attached learner."""
        rune, learner, _ = self._rune
        rows = lambda a: torch.as_tensor(a[start:stop]).reshape(stop - start, -1).cpu().numpy()  # noqa: E731
        std = rune.std(learner, rows(self.observations), rows(self.actions), rows(self.next_observations)).reshape(stop - start, 1)
        self.bonus[start:stop] = std if isinstance(self.bonus, np.ndarray) else torch.as_tensor(std, device=self.device)

    def relabel(self, learner: RewardLearner, chunk: int = 100_000) -> None:
        """Overwrite every stored reward with the learner's current reward, ``chunk`` rows at a time."""
        rows = self.filled()
        for start in range(0, rows, chunk):
            self.relabel_rows(learner, start, min(start + chunk, rows))

    def relabel_latest(self, learner: RewardLearner) -> None:
        """Relabel the most recently stored row (SB3 stores a step's transition after the callback ran)."""
        row = (self.pos - 1) % self.buffer_size
        self.relabel_rows(learner, row, row + 1)

    def relabel_rows(self, learner: RewardLearner, start: int, stop: int) -> None:
        """``rewards[start:stop] = r̂(s, a, s')``, computed on the learner's device."""
        as_t = lambda a: torch.as_tensor(a[start:stop], device=learner.device).reshape(-1, a.shape[-1])  # noqa: E731
        rewards = learner.reward_tensor(as_t(self.observations), as_t(self.actions), as_t(self.next_observations))
        self.rewards[start:stop] = rewards.reshape(stop - start, self.n_envs).cpu().numpy()
        if self._rune is not None:
            self._relabel_bonus(start, stop)

    def _get_samples(self, batch_inds: np.ndarray, env=None) -> ReplayBufferSamples:
        samples = self._with_intrinsic(super()._get_samples(batch_inds, env))
        return self._with_rune(samples, self.bonus[batch_inds, 0] if self._rune is not None else None)

    def _stored_states(self) -> torch.Tensor:
        """Every stored ``s_t``, ``[rows·n_envs, obs]`` on the buffer's device (the k-NN reference set)."""
        rows = self.filled()
        return torch.as_tensor(self.observations[:rows].reshape(rows * self.n_envs, -1), device=self.device)

    def _with_intrinsic(self, samples: ReplayBufferSamples) -> ReplayBufferSamples:
        """The batch with its stored rewards swapped for the state-entropy reward while :attr:`intrinsic` is set."""
        if self.intrinsic is None:
            return samples
        states = samples.observations if self.intrinsic.on == "obs" else samples.next_observations
        rewards = self.intrinsic(states.float(), self._stored_states().float()).reshape(-1, 1)
        return samples._replace(rewards=rewards.to(samples.rewards.dtype))

    def _with_rune(self, samples: ReplayBufferSamples, bonus: Any) -> ReplayBufferSamples:
        """RUNE: the batch's rewards plus ``β_t · bonus`` (``bonus``: the sampled rows' column) once :attr:`intrinsic` is off."""
        if self._rune is None or self.intrinsic is not None:
            return samples
        rune, _, clock = self._rune
        bonus = torch.as_tensor(bonus, dtype=samples.rewards.dtype, device=samples.rewards.device).reshape(-1, 1)
        return samples._replace(rewards=samples.rewards + rune.beta(clock()) * bonus)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_rune"}
