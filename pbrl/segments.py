"""Segments: the unit people (and synthetic teachers) compare.

A segment is a contiguous slice of one episode, ``T`` steps long. pbrl splits what is
known about a batch of segments into three parts so that learners cannot read the true
reward *by construction*:

* :class:`Segments` — what a preference learner or a query strategy may see
  (observations, actions, next observations, and which steps ended the episode in a
  true termination);
* :class:`SegmentTruth` — true rewards and successes, for synthetic teachers and metrics;
* :class:`Provenance` — where each segment came from (episode, start step, simulator
  states), so it can be re-rendered for a human later.

:class:`SegmentBatch` bundles the three; only teachers and metrics receive it whole.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


def _take(array: np.ndarray | None, index) -> np.ndarray | None:
    return None if array is None else array[index]


def absorbing_steps(terminals: np.ndarray) -> np.ndarray:
    """``[B, T]`` bool from ``[B, T]`` terminal flags: True from the step after a segment's first terminal step on."""
    ended = np.logical_or.accumulate(terminals, axis=1)
    absorbing = np.zeros_like(ended)
    absorbing[:, 1:] = ended[:, :-1]
    return absorbing


@dataclass(frozen=True)
class Segments:
    """Learner-visible segment arrays, each shaped ``[B, T, ...]``.

    ``step_ids`` (optional, ``[B, T]`` ints) names each step's transition: equal ids mean
    the same transition, so a learner can score every distinct transition once and
    gather — candidate pools drawn from one log overlap heavily (10⁴ pairs of 50-step
    segments touch at most the log's size in distinct steps).

    ``terminals`` (optional, ``[B, T]`` bool) marks steps after which the episode truly
    terminated (the MDP reached an absorbing state: Hopper fell), never a time-limit
    truncation. Value-based learners bootstrap ``γ (1 − terminal) V(s')``; ``None`` means
    no step terminates (the data never recorded it, or the env only truncates).

    A segment may run past its termination into the absorbing state (``feedback.absorbing``,
    Knox et al. 2024): the steps after a terminal one (:attr:`absorbing`) hold the terminal
    next observation with action 0, reward 0 and optimal advantage 0. No field marks them;
    their ``step_ids`` are ``−1 − (the terminal step's id)``, so the identical absorbing
    transitions after one termination share an id that no logged transition has.
    """

    obs: np.ndarray
    actions: np.ndarray
    next_obs: np.ndarray
    step_ids: np.ndarray | None = None
    terminals: np.ndarray | None = None

    def __post_init__(self) -> None:
        b, t = self.obs.shape[:2]
        for f in fields(self):
            arr = getattr(self, f.name)
            if arr is not None and arr.shape[:2] != (b, t):
                raise ValueError(
                    f"Segments.{f.name} has leading shape {arr.shape[:2]}, expected {(b, t)} like obs"
                )

    def __len__(self) -> int:
        return self.obs.shape[0]

    @property
    def length(self) -> int:
        """Steps per segment (T)."""
        return self.obs.shape[1]

    @property
    def terminal_mask(self) -> np.ndarray:
        """``terminals`` as a ``[B, T]`` bool array, all False where the segments carry none."""
        return np.zeros(self.obs.shape[:2], bool) if self.terminals is None else self.terminals

    @property
    def absorbing(self) -> np.ndarray:
        """``[B, T]`` bool: steps in the absorbing state, i.e. after an earlier terminal step of the same segment."""
        return absorbing_steps(self.terminal_mask)

    def __getitem__(self, index) -> "Segments":
        return Segments(
            self.obs[index], self.actions[index], self.next_obs[index],
            _take(self.step_ids, index), _take(self.terminals, index),
        )

    @staticmethod
    def concatenate(parts: list["Segments"]) -> "Segments":
        """Stack along B; ``step_ids`` survive only if every part has them, ``terminals`` if
        any part has them (parts without count as never terminating)."""
        ids = None if any(p.step_ids is None for p in parts) else np.concatenate([p.step_ids for p in parts])
        terminals = None if all(p.terminals is None for p in parts) else np.concatenate([p.terminal_mask for p in parts])
        return Segments(
            np.concatenate([p.obs for p in parts]),
            np.concatenate([p.actions for p in parts]),
            np.concatenate([p.next_obs for p in parts]),
            ids,
            terminals,
        )


@dataclass(frozen=True)
class SegmentTruth:
    """Ground truth about segments: never handed to a learner.

    ``rewards`` and ``successes`` are ``[B, T]`` float arrays.
    """

    rewards: np.ndarray
    successes: np.ndarray

    def __getitem__(self, index) -> "SegmentTruth":
        return SegmentTruth(self.rewards[index], self.successes[index])

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted segment returns, ``[B]``."""
        return self.rewards.sum(axis=1)


@dataclass(frozen=True)
class Provenance:
    """Where each segment came from: ``episode`` and ``start`` are ``[B]`` ints,
    ``sim_states`` is ``[B, T, S]`` (state before each step) or ``None``; ``env_step``
    is the global env step at which each segment started (larger = more recent)."""

    env_id: str
    episode: np.ndarray
    start: np.ndarray
    sim_states: np.ndarray | None = None
    env_step: np.ndarray | None = None

    def __getitem__(self, index) -> "Provenance":
        return Provenance(
            self.env_id, self.episode[index], self.start[index], _take(self.sim_states, index), _take(self.env_step, index)
        )


@dataclass(frozen=True)
class SegmentBatch:
    """Segments with their truth and provenance; ``ids`` are store ids once persisted."""

    segments: Segments
    truth: SegmentTruth
    provenance: Provenance
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index) -> "SegmentBatch":
        return SegmentBatch(
            self.segments[index], self.truth[index], self.provenance[index], _take(self.ids, index)
        )

    def with_ids(self, ids: np.ndarray) -> "SegmentBatch":
        return SegmentBatch(self.segments, self.truth, self.provenance, np.asarray(ids, dtype=np.int64))


@dataclass(frozen=True)
class CandidatePairs:
    """Pairs a query strategy chooses among: ``left[i]`` is compared with ``right[i]``.

    Only :class:`Segments` are exposed, so a strategy cannot peek at true rewards.
    ``recency`` (``[B]``, larger = more recent, in env steps) lets near-on-policy
    strategies prefer fresh data.
    """

    left: Segments
    right: Segments
    recency: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


@dataclass(frozen=True)
class PreferenceDataset:
    """Labeled pairs for a learner: ``labels[i]`` = P[left_i ≻ right_i] in {0, ½, 1}."""

    left: Segments
    right: Segments
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> "PreferenceDataset":
        return PreferenceDataset(self.left[index], self.right[index], self.labels[index])
