"""The store's labeling side: schema upgrade, SQLAlchemy URLs, export/import, agreement, the
human teacher's consensus and round timeout."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
import uuid

import numpy as np
import pytest

from pbrl.database import SCHEMA_VERSION
from pbrl.labeling.agreement import agreement, truth_agreement
from pbrl.labeling.assignments import LabelQueue, Unauthorized
from pbrl.labeling.exchange import export_labels, read_dataset
from pbrl.store import PreferenceStore
from tests.labeling_helpers import stateless_store


def _answer_all(queue: LabelQueue, annotator: str, choices: list[str]) -> None:
    for i, choice in enumerate(choices):
        assignment = queue.next_for(annotator)
        queue.submit(annotator, assignment.query_id, choice, f"{annotator}-{i:04d}")


def test_a_version_1_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / "p.sqlite"
    store, queries = stateless_store(path, pairs=2)
    store.add_labels(queries, np.array([1.0, 0.0]), "synthetic")
    store.close()
    with sqlite3.connect(path) as db:  # what pbrl 1 left: no labeling tables, version 1
        for table in ("assignments", "label_queue", "annotators"):
            db.execute(f"DROP TABLE {table}")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    upgraded = PreferenceStore(f"sqlite:///{path}")  # any SQLAlchemy URL; SQLite's too
    assert upgraded.get_meta("schema_version") == str(SCHEMA_VERSION) and upgraded.counts().labeled == 2
    assert LabelQueue(upgraded).add_annotator("alice")


def test_a_version_2_store_keeps_its_links_with_the_tokens_hashed(tmp_path):
    path = tmp_path / "p.sqlite"
    store, _ = stateless_store(path, pairs=2)
    store.close()
    with sqlite3.connect(path) as db:  # what pbrl wrote before tokens were hashed: plain tokens, no revocation
        db.execute("DROP TABLE annotators")
        db.execute("CREATE TABLE annotators (name VARCHAR(64) NOT NULL PRIMARY KEY, token VARCHAR(64) NOT NULL "
                    "UNIQUE, created_at FLOAT NOT NULL)")
        db.execute("INSERT INTO annotators VALUES ('alice', 'plain-token-of-alice-0123456789ab', 0)")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    upgraded = PreferenceStore(path)
    assert upgraded.get_meta("schema_version") == str(SCHEMA_VERSION) == "3"
    assert upgraded.execute("SELECT token FROM annotators")[0][0] != "plain-token-of-alice-0123456789ab"
    queue = LabelQueue(upgraded)
    assert queue.authenticate("plain-token-of-alice-0123456789ab") == "alice"  # the link given before still works
    queue.revoke("alice")
    reopened = LabelQueue(PreferenceStore(path))  # upgraded once: the digest is not hashed again
    with pytest.raises(Unauthorized, match="alice's link was revoked"):
        reopened.authenticate("plain-token-of-alice-0123456789ab")
    assert reopened.annotators() == []


def test_csv_export_writes_formulas_as_text(tmp_path):
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=7)
    queue = LabelQueue(store, seed=0)
    notes = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "fine = ok"]
    for i, note in enumerate(notes):
        queue.submit("alice", queue.next_for("alice").query_id, "left", f"alice-{i:04d}", note)
    export_labels(store, tmp_path / "labels.csv")
    with (tmp_path / "labels.csv").open(newline="") as file:
        written = [row["note"] for row in csv.DictReader(file)]
    assert written == ["'" + note for note in notes[:-1]] + ["fine = ok"]
    assert len(read_dataset(tmp_path / "labels.csv", store)) == 7  # numbers are untouched: it still reads back


def test_export_and_import_round_trip_as_a_preference_dataset(tmp_path):
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=6, needed=2)
    queue = LabelQueue(store, seed=0)
    _answer_all(queue, "alice", ["left", "right", "equal", "skip", "left", "right"])
    _answer_all(queue, "bob", ["left", "left", "equal", "right", "skip", "right"])
    expected, _ = store.dataset()
    assert export_labels(store, tmp_path / "labels.jsonl") == 12 and export_labels(store, tmp_path / "labels.csv") == 12
    from_jsonl = read_dataset(tmp_path / "labels.jsonl")  # self-contained: no store needed
    from_csv = read_dataset(tmp_path / "labels.csv", store)
    for data in (from_jsonl, from_csv):
        np.testing.assert_array_equal(data.labels, expected.labels)
        for side in ("left", "right"):
            for name in ("obs", "actions", "next_obs"):
                np.testing.assert_array_equal(getattr(getattr(data, side), name), getattr(getattr(expected, side), name))
    records = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    label = next(r for r in records if r["type"] == "label")
    assert {"annotator", "swapped", "shown_at", "answered_at", "note", "round"} <= set(label)
    with pytest.raises(ValueError, match="pass the preference store"):
        read_dataset(tmp_path / "labels.csv")
    (tmp_path / "bad.jsonl").write_text('{"type": "label", "left": 1, "right": 2, "skipped": 0, "label": 1.0}\n')
    with pytest.raises(ValueError, match="segments it does not hold"):
        read_dataset(tmp_path / "bad.jsonl")


def test_agreement_statistics(tmp_path):
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=4, needed=3)
    rows = {  # query → stored labels of alice, bob, carol (None: skip)
        0: (1.0, 1.0, 1.0), 1: (0.0, 0.0, 1.0), 2: (0.5, 1.0, None), 3: (1.0, None, None),
    }
    for index, given in rows.items():
        for name, label in zip(("alice", "bob", "carol"), given):
            store.add_label(int(queries[index]), label, name)
    stats = agreement(store)
    # queries 0, 1, 2 have ≥ 2 answers; agreeing ordered pairs: 6 + 2 + 0 of 6 + 6 + 2
    assert stats.queries == 3 and stats.pairwise == pytest.approx(8 / 14)
    counts = np.array([[0, 0, 3], [2, 0, 1], [0, 1, 1]], dtype=float)  # categories 0, ½, 1
    per_query = (counts * (counts - 1)).sum(1) / (counts.sum(1) * (counts.sum(1) - 1))
    chance = ((counts.sum(0) / counts.sum()) ** 2).sum()
    assert stats.kappa == pytest.approx((per_query.mean() - chance) / (1 - chance))
    assert stats.annotators["carol"].skips == 2 and stats.annotators["alice"].labels == 4
    assert stats.annotators["bob"].agreement == pytest.approx(3 / 5)
    assert "Fleiss" in "\n".join(stats.lines())


def test_agreement_with_the_true_return(tmp_path):
    """Per annotator: the share of labels naming the segment of higher Σ_t r_t; "equal" answers count
    as not naming it, skips not at all."""
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=4, needed=2)
    pairs = [store.round_queries(0)[i][1:] for i in range(4)]
    truth = store.segment_batch([s for pair in pairs for s in pair]).truth.returns.reshape(4, 2)
    better_left = truth[:, 0] > truth[:, 1]
    right_answer = better_left.astype(float)
    given = {"alice": [right_answer[0], right_answer[1], 1 - right_answer[2], 0.5],
             "bob": [right_answer[0], None, right_answer[2], right_answer[3]]}
    for name, labels in given.items():
        for query, label in zip(queries, labels):
            store.add_label(int(query), label, name)
    found = truth_agreement(store)
    assert (found["alice"].labels, found["alice"].equal) == (4, 1) and found["alice"].agreement == pytest.approx(2 / 4)
    assert found["bob"].labels == 3 and found["bob"].agreement == pytest.approx(1.0)
    assert "agree with the true return 0.500" in found["alice"].line("alice")


def test_human_teacher_returns_consensus_and_goes_on_after_its_timeout(tmp_path, capsys):
    pytest.importorskip("fastapi")
    from pbrl.teachers.human import HumanTeacher, HumanTeacherConfig

    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=3)
    config = HumanTeacherConfig(port=0, round_timeout=0.5, annotators=("alice",))
    teacher = HumanTeacher(config, "gym:HalfCheetah-v5", budget=30)
    assert not hasattr(teacher, "label")  # people are not a Teacher: they answer persisted queries only
    queue = LabelQueue(store)
    try:
        teacher.serve(store)  # makes alice's link (printed once: the store keeps only its digest)
        first = queue.next_for("alice")
        queue.submit("alice", first.query_id, "left", "alice-0001")
        labels = teacher.ask(queries, store)
    finally:
        teacher.close()
    stored = store.execute(f"SELECT label FROM labels WHERE query_id = {first.query_id}")[0][0]
    assert labels[0] == stored and np.isnan(labels[1:]).all()
    out = capsys.readouterr().out
    assert "alice: http://127.0.0.1:" in out and "round timeout after 0.5 s with 1/3 answers" in out
    assert store.get_meta("label_budget") == "30" and store.counts().labeled == 1  # the teacher wrote nothing itself


POSTGRES = os.environ.get("PBRL_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES, reason="set PBRL_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db (a scratch "
                    "database: its pbrl tables are dropped) to run the store and the label queue on PostgreSQL")
def test_store_and_label_queue_on_postgresql(tmp_path):
    from sqlalchemy import create_engine

    from pbrl.database import METADATA

    METADATA.drop_all(create_engine(POSTGRES))
    store, queries = stateless_store(POSTGRES, pairs=30, needed=2)
    queue = LabelQueue(store)
    names = [f"a{i}" for i in range(4)]
    for name in names:
        queue.add_annotator(name)

    def annotate(name: str) -> None:
        while (assignment := queue.next_for(name)) is not None:
            queue.submit(name, assignment.query_id, "left", uuid.uuid4().hex)

    threads = [threading.Thread(target=annotate, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    per_query = store.execute("SELECT query_id, COUNT(*) FROM labels GROUP BY query_id")
    assert len(per_query) == 30 and {n for _, n in per_query} == {2}  # k annotators per pair, no more
    assert queue.missing(queries) == 0 and store.counts().labeled == 30
    export_labels(store, tmp_path / "labels.jsonl")
    assert len(read_dataset(tmp_path / "labels.jsonl")) == len(store.dataset()[0]) == 60
    assert PreferenceStore(POSTGRES).get_meta("schema_version") == str(SCHEMA_VERSION)
