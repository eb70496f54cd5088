"""Offline preference datasets: the HDF5 format (:mod:`pbrl.datasets.offline`) and the steps
that build one from rollouts (:mod:`pbrl.datasets.building`)."""

from pbrl.datasets.building import cut_segments, draw_pairs, label_dataset, stack_episodes
from pbrl.datasets.offline import FORMAT, FORMAT_VERSION, Episodes, OfflinePreferenceData

__all__ = [
    "FORMAT", "FORMAT_VERSION", "Episodes", "OfflinePreferenceData", "cut_segments", "draw_pairs", "label_dataset",
    "stack_episodes",
]
