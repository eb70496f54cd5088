"""Who answers "which of these two segments is better?": two interfaces, neither of which stores labels.

* :class:`Teacher` — answers at once from what it is shown (synthetic and regret teachers):
  ``label(left, right, rng) -> labels`` and nothing else; the loop commits its labels.
* :class:`QueuedTeacher` — people answering persisted queries elsewhere (the labeling page):
  ``ask(query_ids, store) -> labels`` queues them and waits; the page's server commits each
  person's answer the moment it arrives, so the loop writes nothing for them.
"""

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

    def calibrate(self, mean_segment_return: float, round_index: int = 0) -> None:
        """Called before each round (``round_index``, 0 = the first) with the mean true return of a
        segment-length slice of the agent's recent episodes; B-Pref's skip and equal thresholds scale with it."""


class QueuedTeacher(ABC):
    """People who answer persisted queries outside the process (the labeling page).

    Their answers reach the store through whoever receives them (the labeling server commits
    each one as it is acknowledged), never through the loop, which only hands over the queries
    and takes the consensus back.
    """

    #: Recorded as the teacher of every query handed to these people.
    name: str = "human"

    @abstractmethod
    def ask(self, query_ids: np.ndarray, store: PreferenceStore) -> np.ndarray:
        """Queue the queries persisted in ``store`` under ``query_ids``, wait for answers, and return one
        consensus label per query (NaN where none came in time)."""
