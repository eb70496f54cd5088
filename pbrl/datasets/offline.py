"""Offline preference datasets: episodes, segments cut from them, labeled pairs of segments.

The on-disk format is HDF5 (the container D4RL, Minari and robomimic use), one file per
dataset, laid out as::

    /                     attrs: format = "pbrl.preferences", format_version = 1, env_id,
                                 segment_length, metadata (JSON: teacher, collection, policies, …)
    /episodes/obs         [N, obs_dim] float32   every step of every episode, episodes back to back
    /episodes/actions     [N, act_dim] float32   normalised to [−1, 1] (what pbrl logs)
    /episodes/next_obs    [N, obs_dim] float32   the true next observation (terminal one at an end)
    /episodes/rewards     [N] float32            true reward (learners never read it)
    /episodes/successes   [N] float32            the env's success flag (0 where there is none)
    /episodes/terminated  [N] bool               episode ended by the MDP (not by a time limit):
                                                 the segments' ``terminals``, IPL's ``d``
    /episodes/truncated   [N] bool               episode cut by the time limit (or the collector)
    /episodes/sim_states  [N, S] float64         simulator state before each step (optional)
    /episodes/start       [E] int64              first row of each episode
    /episodes/length      [E] int64              steps of each episode
    /episodes/policy      [E] int64              index into metadata["policies"] of the behaviour policy
    /segments/episode     [K] int64              segment k = steps start..start+T−1 of that episode
    /segments/start       [K] int64
    /pairs/left           [P] int64              segment ids compared
    /pairs/right          [P] int64
    /pairs/label          [P] float32            P[left ≻ right] ∈ {0, ½, 1}; NaN = the teacher skipped

Arrays are written with their exact dtypes and read back unchanged (bit for bit), and the
metadata is plain JSON, so the teacher's configuration travels with its labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pbrl.segments import PreferenceDataset, Provenance, SegmentBatch, Segments, SegmentTruth

FORMAT = "pbrl.preferences"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Episodes:
    """Steps of whole episodes, back to back (``start``/``length`` index them; see the module docstring)."""

    obs: np.ndarray
    actions: np.ndarray
    next_obs: np.ndarray
    rewards: np.ndarray
    successes: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    start: np.ndarray
    length: np.ndarray
    policy: np.ndarray
    sim_states: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of episodes."""
        return len(self.start)

    @property
    def steps(self) -> int:
        return len(self.obs)


@dataclass(frozen=True)
class OfflinePreferenceData:
    """A complete offline preference dataset (what ``pbrl collect`` writes)."""

    env_id: str
    episodes: Episodes
    segment_episode: np.ndarray
    segment_start: np.ndarray
    segment_length: int
    left: np.ndarray
    right: np.ndarray
    labels: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ends = self.segment_start + self.segment_length
        if len(self.segment_episode) and np.any(ends > self.episodes.length[self.segment_episode]):
            raise ValueError("a segment runs past the end of its episode")
        if len(self.left) and max(self.left.max(), self.right.max()) >= len(self.segment_episode):
            raise ValueError("a pair names a segment id that does not exist")

    def segment_rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows into the episode arrays of each step of segments ``ids``, ``[len(ids), T]``."""
        first = self.episodes.start[self.segment_episode[ids]] + self.segment_start[ids]
        return first[:, None] + np.arange(self.segment_length)[None, :]

    def segment_batch(self, ids: np.ndarray, sim_states: bool = True) -> SegmentBatch:
        """Segments with truth and provenance (for teachers, rendering and metrics); ``sim_states=False``
        leaves the simulator states out (teachers and learners never need them)."""
        ids = np.asarray(ids, dtype=np.int64)
        rows, ep = self.segment_rows(ids), self.episodes
        return SegmentBatch(
            Segments(ep.obs[rows], ep.actions[rows], ep.next_obs[rows], rows, ep.terminated[rows]),
            SegmentTruth(ep.rewards[rows], ep.successes[rows]),
            Provenance(
                self.env_id, self.segment_episode[ids], self.segment_start[ids],
                None if ep.sim_states is None or not sim_states else ep.sim_states[rows],
            ),
            ids,
        )

    def preferences(self) -> PreferenceDataset:
        """The labeled (non-skipped) pairs as a learner dataset; learners see no true reward."""
        keep = ~np.isnan(self.labels)
        left, right = self.left[keep], self.right[keep]
        segments = lambda ids: self.segment_batch(ids, sim_states=False).segments  # noqa: E731
        return PreferenceDataset(segments(left), segments(right), self.labels[keep].astype(np.float32))

    # ------------------------------------------------------------------ HDF5
    def save(self, path: str | Path) -> Path:
        """Write the dataset as HDF5 (layout in the module docstring)."""
        import h5py

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.attrs.update(
                format=FORMAT, format_version=FORMAT_VERSION, env_id=self.env_id,
                segment_length=self.segment_length, metadata=json.dumps(self.metadata, sort_keys=True),
            )
            for f_ in fields(Episodes):
                value = getattr(self.episodes, f_.name)
                if value is not None:
                    f.create_dataset(f"episodes/{f_.name}", data=value, compression="gzip", shuffle=True)
            f.create_dataset("segments/episode", data=self.segment_episode)
            f.create_dataset("segments/start", data=self.segment_start)
            f.create_dataset("pairs/left", data=self.left)
            f.create_dataset("pairs/right", data=self.right)
            f.create_dataset("pairs/label", data=self.labels)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "OfflinePreferenceData":
        """Read a dataset written by :meth:`save`."""
        import h5py

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no preference dataset at {path}; make one with `pbrl collect`")
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{path} is not a pbrl preference dataset (format attribute {f.attrs.get('format')!r})")
            if int(f.attrs["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"{path} has format version {f.attrs['format_version']}; this pbrl reads {FORMAT_VERSION}")
            group = f["episodes"]
            episodes = Episodes(**{name: group[name][()] for name in group})
            return cls(
                env_id=str(f.attrs["env_id"]), episodes=episodes,
                segment_episode=f["segments/episode"][()], segment_start=f["segments/start"][()],
                segment_length=int(f.attrs["segment_length"]),
                left=f["pairs/left"][()], right=f["pairs/right"][()], labels=f["pairs/label"][()],
                metadata=json.loads(f.attrs["metadata"]),
            )
