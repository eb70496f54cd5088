"""Turning rollouts into an offline preference dataset: stack episodes, cut segments, pair
them and let a teacher label the pairs (the env-free half of ``pbrl collect``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pbrl.datasets.offline import Episodes, OfflinePreferenceData
from pbrl.teachers.base import Teacher

_STEP_FIELDS = {
    "obs": np.float32, "actions": np.float32, "next_obs": np.float32, "rewards": np.float32,
    "successes": np.float32, "terminated": bool, "truncated": bool, "sim_states": np.float64,
}


def stack_episodes(episodes: Sequence[dict[str, np.ndarray]], policies: Sequence[int]) -> Episodes:
    """Episodes given as dicts of per-step arrays (keys of :class:`Episodes`' step fields;
    ``sim_states`` optional) and the behaviour-policy index of each, back to back."""
    if not episodes:
        raise ValueError("no episodes to stack")
    lengths = np.array([len(e["obs"]) for e in episodes], dtype=np.int64)
    if np.any(lengths == 0):
        raise ValueError("an episode has no steps")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    arrays: dict[str, Any] = {
        name: np.concatenate([np.asarray(e[name], dtype=dtype) for e in episodes])
        for name, dtype in _STEP_FIELDS.items()
        if name in episodes[0]
    }
    return Episodes(start=starts, length=lengths, policy=np.asarray(policies, dtype=np.int64), **arrays)


def cut_segments(episodes: Episodes, count: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` segments of ``length`` steps drawn uniformly among all whole-segment start
    positions of all episodes (so long episodes give more); returns ``(episode, start)``."""
    room = episodes.length - length + 1  # valid starts per episode
    if np.all(room <= 0):
        raise ValueError(f"no episode has {length} steps; lower the segment length (longest: {episodes.length.max()})")
    room = np.maximum(room, 0)
    flat = rng.integers(0, room.sum(), size=count)
    episode = np.searchsorted(np.cumsum(room), flat, side="right").astype(np.int64)
    start = (flat - (np.cumsum(room) - room)[episode]).astype(np.int64)
    return episode, start


def draw_pairs(segments: int, pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` pairs of two different segment ids, uniformly."""
    if segments < 2:
        raise ValueError("need at least two segments to make pairs")
    left = rng.integers(0, segments, size=pairs)
    right = (left + rng.integers(1, segments, size=pairs)) % segments  # never equal to left
    return left.astype(np.int64), right.astype(np.int64)


def label_dataset(
    data: OfflinePreferenceData, teacher: Teacher, rng: np.random.Generator, chunk: int = 4096
) -> OfflinePreferenceData:
    """The same dataset with every pair labeled by ``teacher``.

    The teacher is first calibrated (B-Pref's skip/equal thresholds) with the mean true
    return of the dataset's segments, the offline counterpart of the loop's recent episodes.
    """
    all_ids = np.arange(len(data.segment_episode))
    teacher.calibrate(float(data.segment_batch(all_ids, sim_states=False).truth.returns.mean()))
    labels = np.empty(len(data.left), dtype=np.float32)
    for i in range(0, len(labels), chunk):
        sl = slice(i, i + chunk)
        left, right = (data.segment_batch(ids[sl], sim_states=False) for ids in (data.left, data.right))
        labels[sl] = teacher.label(left, right, rng)
    return replace(data, labels=labels)
