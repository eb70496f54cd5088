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
metadata is plain JSON, so the teacher's configuration travels with its labels. A dataset is
checked whole when it is made and when it is loaded — every array present with its shape
and kind of dtype, numbers finite, episodes back to back, segment and episode indices in
range, labels in {0, ½, 1} or NaN — and a file that fails is refused with a one-line
:class:`DatasetError` naming the file and the key.
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
_KIND = {"f": "floating-point", "i": "integer", "b": "boolean"}


class DatasetError(ValueError):
    """A file that is not a valid offline preference dataset; the message names the file and the key."""


def _check(key: str, value: object, kind: str, shape: tuple[int | None, ...], finite: bool = False) -> np.ndarray:
    """``value`` if it is an array of dtype ``kind`` (``"f"``, ``"i"``, ``"b"``) and this shape (``None``: any
    length), with only finite numbers if asked; else a one-line ``ValueError`` naming ``key``."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{key} must be an array, got {type(value).__name__}")
    dtype_kind = "i" if value.dtype.kind == "u" else value.dtype.kind
    if dtype_kind != kind:
        raise ValueError(f"{key} must be {_KIND[kind]}, got dtype {value.dtype}")
    if value.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, value.shape)):
        expected = "[" + ", ".join("·" if n is None else str(n) for n in shape) + "]"
        raise ValueError(f"{key} must have shape {expected}, got {list(value.shape)}")
    if finite and value.size and not np.isfinite(value).all():
        raise ValueError(f"{key} holds NaN or infinity (first at {np.argwhere(~np.isfinite(value))[0].tolist()})")
    return value


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
        """Check the whole dataset (see the module docstring); errors name the HDF5 key at fault."""
        ep = self.episodes
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"attribute env_id must be an env id such as 'gym:HalfCheetah-v5', got {self.env_id!r}")
        if isinstance(self.segment_length, bool) or not isinstance(self.segment_length, int) or self.segment_length < 1:
            raise ValueError(f"attribute segment_length must be a positive integer, got {self.segment_length!r}")
        if not isinstance(self.metadata, dict):
            raise ValueError(f"attribute metadata must be a JSON object, got {type(self.metadata).__name__}")
        steps = len(_check("/episodes/obs", ep.obs, "f", (None, None), finite=True))
        _check("/episodes/next_obs", ep.next_obs, "f", ep.obs.shape, finite=True)
        _check("/episodes/actions", ep.actions, "f", (steps, None), finite=True)
        for name in ("rewards", "successes"):
            _check(f"/episodes/{name}", getattr(ep, name), "f", (steps,), finite=True)
        for name in ("terminated", "truncated"):
            _check(f"/episodes/{name}", getattr(ep, name), "b", (steps,))
        if ep.sim_states is not None:
            _check("/episodes/sim_states", ep.sim_states, "f", (steps, None), finite=True)
        count = len(_check("/episodes/start", ep.start, "i", (None,)))
        for name in ("length", "policy"):
            _check(f"/episodes/{name}", getattr(ep, name), "i", (count,))
        if np.any(ep.length < 1) or ep.length.sum() != steps or np.any(ep.start != np.cumsum(ep.length) - ep.length):
            raise ValueError(f"/episodes/start and /episodes/length must lay {count} non-empty episodes back to back "
                             f"over the {steps} steps")
        policies = self.metadata.get("policies")
        if np.any(ep.policy < 0) or (isinstance(policies, list) and np.any(ep.policy >= len(policies))):
            raise ValueError(f"/episodes/policy must index metadata['policies'], got values {ep.policy.min()}.."
                             f"{ep.policy.max()}")
        segments = len(_check("/segments/episode", self.segment_episode, "i", (None,)))
        _check("/segments/start", self.segment_start, "i", (segments,))
        if np.any(self.segment_episode < 0) or np.any(self.segment_episode >= count):
            raise ValueError(f"/segments/episode must be episode indices in 0..{count - 1}")
        ends = self.segment_start + self.segment_length
        if np.any(self.segment_start < 0) or np.any(ends > ep.length[self.segment_episode]):
            raise ValueError("/segments/start: a segment runs past the end of its episode (or starts before it)")
        pairs = len(_check("/pairs/left", self.left, "i", (None,)))
        _check("/pairs/right", self.right, "i", (pairs,))
        for key, ids in (("/pairs/left", self.left), ("/pairs/right", self.right)):
            if np.any(ids < 0) or np.any(ids >= segments):
                raise ValueError(f"{key}: a pair names a segment id that does not exist (ids are 0..{segments - 1})")
        _check("/pairs/label", self.labels, "f", (pairs,))
        bad = ~(np.isnan(self.labels) | np.isin(self.labels, (0.0, 0.5, 1.0)))
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"/pairs/label holds {float(self.labels[row])} at row {row}; a label is 0, 0.5, 1 "
                             "or NaN (skipped)")

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
        """Read a dataset written by :meth:`save`, checked whole; :class:`DatasetError` names what is wrong."""
        import h5py

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no preference dataset at {path}; make one with `pbrl collect`")
        try:
            file = h5py.File(path, "r")
        except OSError as error:
            raise DatasetError(f"{path} is not a readable HDF5 file ({error}); make one with `pbrl collect`") from None
        with file as f:
            if f.attrs.get("format") != FORMAT:
                raise DatasetError(f"{path} is not a pbrl preference dataset (format attribute {f.attrs.get('format')!r})")
            if _attribute(f, "format_version", path) != FORMAT_VERSION:
                raise DatasetError(f"{path} has format version {f.attrs['format_version']}; this pbrl reads {FORMAT_VERSION}")
            names = {f_.name for f_ in fields(Episodes)}
            group = f.get("episodes")
            if not isinstance(group, h5py.Group):
                raise DatasetError(f"{path}: /episodes is missing or not a group; the file is not a complete dataset")
            unknown = sorted(set(group) - names)
            if unknown:
                raise DatasetError(f"{path}: /episodes/{unknown[0]} is not part of the format (keys: {sorted(names)})")
            read = lambda key: _dataset(f, key, path)  # noqa: E731
            episodes = {name: read(f"episodes/{name}") for name in names if name != "sim_states"}
            if "sim_states" in group:
                episodes["sim_states"] = read("episodes/sim_states")
            try:
                metadata = json.loads(f.attrs.get("metadata", ""))
            except (TypeError, ValueError):
                raise DatasetError(f"{path}: attribute metadata is not JSON ({f.attrs.get('metadata')!r:.60})") from None
            arrays = dict(
                env_id=f.attrs.get("env_id"), episodes=Episodes(**episodes),
                segment_episode=read("segments/episode"), segment_start=read("segments/start"),
                segment_length=_attribute(f, "segment_length", path),
                left=read("pairs/left"), right=read("pairs/right"), labels=read("pairs/label"), metadata=metadata,
            )
        try:
            return cls(**arrays)
        except ValueError as error:
            raise DatasetError(f"{path}: {error}") from None


def _attribute(f: Any, name: str, path: Path) -> int:
    """An integer attribute of the file, else a :class:`DatasetError` naming it."""
    value = f.attrs.get(name)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise DatasetError(f"{path}: attribute {name} must be an integer, got {value!r}")


def _dataset(f: Any, key: str, path: Path) -> np.ndarray:
    """The array at ``key``, else a :class:`DatasetError` naming it (missing, not an array, unreadable)."""
    import h5py

    try:
        node = f.get(key)
    except (KeyError, TypeError, ValueError):
        node = None
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{path}: /{key} is missing (or not an array); the file is not a complete dataset")
    try:
        return np.asarray(node[()])
    except (OSError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: /{key} cannot be read ({error})") from None
