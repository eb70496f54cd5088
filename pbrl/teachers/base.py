"""The teacher interface: whoever answers "which of these two segments is better?"."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from pbrl.segments import SegmentBatch


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

    def calibrate(self, mean_segment_return: float) -> None:
        """Called before each round with the mean true return of a segment-length slice
        of the agent's recent episodes; B-Pref's skip and equal thresholds scale with it."""
