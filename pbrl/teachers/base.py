"""The teacher interface: whoever answers "which of these two segments is better?"."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from pbrl.segments import SegmentBatch
from pbrl.store import PreferenceStore


class Teacher(ABC):
    """Labels pairs of segments.

    ``label`` returns, for each pair, ``P[left ≻ right]`` in {0, ½, 1}, or NaN when the
    teacher declines to answer (a skip). Teachers are the only part of pbrl (besides
    metrics) that receive :class:`SegmentBatch` with its true rewards.
    """

    #: Recorded as the annotator of every label this teacher gives.
    name: str = "teacher"

    @abstractmethod
    def label(self, left: SegmentBatch, right: SegmentBatch, rng: np.random.Generator) -> np.ndarray:
        """Answer ``len(left)`` queries at once."""

    def answer(
        self, query_ids: np.ndarray, left: SegmentBatch, right: SegmentBatch, rng: np.random.Generator,
        store: PreferenceStore,
    ) -> np.ndarray:
        """Answer queries already persisted in ``store`` and make sure their labels are in it.

        The loop calls this, never :meth:`label` directly. The default labels at once and
        commits the labels under this teacher's name; a teacher whose answers reach the
        store by another way (people on a web page) overrides it, waits for them, and
        returns one label per query (NaN where none came).
        """
        labels = self.label(left, right, rng)
        store.add_labels(query_ids, labels, self.name)
        return labels

    def calibrate(self, mean_segment_return: float) -> None:
        """Called before each round with the mean true return of a segment-length slice
        of the agent's recent episodes; B-Pref's skip and equal thresholds scale with it."""
