"""Builders shared by the labeling tests: stores of queued pairs, with or without simulator states."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pbrl.experiments.label_cli import demo_store
from pbrl.labeling.assignments import LabelQueue
from pbrl.segments import Provenance, SegmentBatch, Segments, SegmentTruth
from pbrl.store import PreferenceStore


def queued_store(path: Path, pairs: int, length: int = 10, needed: int = 1) -> tuple[PreferenceStore, np.ndarray]:
    """A store with ``pairs`` queries of real HalfCheetah segments, queued for ``needed`` annotators each."""
    return demo_store(path, "gym:HalfCheetah-v5", pairs, length, needed)


def stateless_store(path: Path | str, pairs: int, needed: int = 1) -> tuple[PreferenceStore, np.ndarray]:
    """A store of ``pairs`` queued queries over fake segments without simulator states (nothing to render)."""
    store = PreferenceStore(path)
    rng = np.random.default_rng(0)
    n, length = 2 * pairs, 5
    batch = SegmentBatch(
        Segments(*(rng.normal(size=(n, length, 3)).astype(np.float32) for _ in range(3))),
        SegmentTruth(rng.normal(size=(n, length)), np.zeros((n, length))),
        Provenance("test", np.zeros(n, dtype=np.int64), np.arange(n) * length),
    )
    ids = store.add_segments(batch)
    query_ids = store.add_queries(ids[:pairs], ids[pairs:], round_index=0, teacher="human")
    LabelQueue(store).enqueue(query_ids, needed)
    return store, query_ids
