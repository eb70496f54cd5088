"""The durable preference store, on SQLite and on PostgreSQL (``store_location``, tests/postgres.py)."""

import numpy as np
import pytest
from sqlalchemy import update

from pbrl.database import segments_table
from pbrl.store import CorruptStoreError, PreferenceStore
from tests.helpers import filled_log


def _ask(store, n=4, seed=0):
    log = filled_log(steps=200, episode_length=50)
    rng = np.random.default_rng(seed)
    left = log.sample_segments(n, 10, rng)
    right = log.sample_segments(n, 10, rng)
    left_ids, right_ids = store.add_segments(left), store.add_segments(right)
    return store.add_queries(left_ids, right_ids, round_index=0, teacher="t"), left, right


def test_labels_survive_reopening(store_location):
    path = store_location
    store = PreferenceStore(path)
    queries, left, right = _ask(store)
    store.add_labels(queries[:3], np.array([1.0, np.nan, 0.5]), "alice")
    del store  # no close(): a killed process
    reopened = PreferenceStore(path)
    counts = reopened.counts()
    assert (counts.asked, counts.labeled, counts.skipped, counts.pending) == (4, 2, 1, 1)
    data, _ = reopened.dataset()
    np.testing.assert_array_equal(data.labels, [1.0, 0.5])
    np.testing.assert_array_equal(data.left.obs[0], left.segments.obs[0])
    assert [q for q, _, _ in reopened.pending_queries()] == [int(queries[3])]
    batch = reopened.segment_batch(np.array([1, 2]))
    np.testing.assert_array_equal(batch.truth.rewards[0], left.truth.rewards[0])
    assert batch.provenance.sim_states.shape == (2, 10, 2)


def test_bad_label_is_rejected_without_writing(store_location):
    store = PreferenceStore(store_location)
    queries, _, _ = _ask(store)
    with pytest.raises(ValueError, match="label must be"):
        store.add_label(int(queries[0]), 0.7, "bob")
    assert store.counts().labeled == 0


def test_garbage_file_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "prefs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CorruptStoreError, match="not a readable SQLite database"):
        PreferenceStore(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_damaged_segment_blob_names_the_segment(store_location):
    store = PreferenceStore(store_location)
    queries, _, _ = _ask(store)
    store.add_labels(queries, np.ones(4), "t")
    with store.transaction() as connection:  # another process overwrote the blob
        connection.execute(update(segments_table).where(segments_table.c.id == 1).values(data=bytes.fromhex("00112233")))
    store.close()
    reopened = PreferenceStore(store_location)
    with pytest.raises(CorruptStoreError, match="segment 1"):
        reopened.dataset()
    assert reopened.counts().labeled == 4  # every label still there


def test_newer_schema_is_refused(store_location):
    path = store_location
    PreferenceStore(path).set_meta("schema_version", "99")
    with pytest.raises(CorruptStoreError, match="schema version 99"):
        PreferenceStore(path)
