"""The durable preference store (SQLite, append-only).

Every segment that was ever shown, every query that was ever asked and every label that
was ever given is written — and committed — the moment it exists, so a run killed at any
point resumes with all of them. Labels are never pickled: each row keeps the query, both
segment ids, the choice, whether left/right were swapped on screen, the annotator, and
when the pair was shown and answered.

Label convention everywhere in pbrl: ``label = P[left ≻ right]`` — 1.0 left is better,
0.0 right is better, 0.5 equally good; a skipped query stores ``label = NULL, skipped = 1``.
"""

from __future__ import annotations

import io
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pbrl.segments import PreferenceDataset, Provenance, SegmentBatch, Segments, SegmentTruth

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, env_id TEXT NOT NULL, episode INTEGER NOT NULL, start INTEGER NOT NULL,
    length INTEGER NOT NULL, data BLOB NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY, round INTEGER NOT NULL, left_id INTEGER NOT NULL REFERENCES segments(id),
    right_id INTEGER NOT NULL REFERENCES segments(id), teacher TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY, query_id INTEGER NOT NULL REFERENCES queries(id), label REAL,
    skipped INTEGER NOT NULL, annotator TEXT NOT NULL, swapped INTEGER NOT NULL DEFAULT 0,
    shown_at REAL, answered_at REAL NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS labels_by_query ON labels(query_id);
"""

_SEGMENT_ARRAYS = ("obs", "actions", "next_obs", "true_rewards", "successes", "sim_states")


class CorruptStoreError(RuntimeError):
    """The preference store file exists but cannot be read as a pbrl store."""


@dataclass(frozen=True)
class StoreCounts:
    """How many queries were asked, labeled (incl. ½) and skipped."""

    asked: int
    labeled: int
    skipped: int

    @property
    def pending(self) -> int:
        return self.asked - self.labeled - self.skipped


def _encode(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _decode(blob: bytes, segment_id: int, path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(blob)) as data:
            return {name: data[name] for name in data.files}
    except Exception as error:  # a truncated or overwritten blob
        raise CorruptStoreError(
            f"segment {segment_id} in preference store {path} cannot be decoded ({error}). "
            "The labels table is intact; restore the file from a checkpoint copy or drop that segment's queries."
        ) from error


class PreferenceStore:
    """Segments, queries and labels in one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._check_integrity()
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as error:
            raise CorruptStoreError(
                f"preference store {self.path} is not a readable SQLite database ({error}). "
                "pbrl did not modify it; move it aside (or restore a backup) and resume again."
            ) from error
        self._segment_cache: dict[int, dict[str, np.ndarray]] = {}

    # --------------------------------------------------------------- integrity
    def _check_integrity(self) -> None:
        result = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise CorruptStoreError(f"preference store {self.path} failed SQLite's integrity check: {result}")

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise CorruptStoreError(
                f"preference store {self.path} has schema version {row[0]}, this pbrl reads version {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._db.close()

    # --------------------------------------------------------------- writing
    def add_segments(self, batch: SegmentBatch) -> np.ndarray:
        """Persist segments (with truth and simulator states) and return their ids."""
        now = time.time()
        ids = []
        with self._db:
            for i in range(len(batch)):
                arrays = {
                    "obs": batch.segments.obs[i],
                    "actions": batch.segments.actions[i],
                    "next_obs": batch.segments.next_obs[i],
                    "true_rewards": batch.truth.rewards[i],
                    "successes": batch.truth.successes[i],
                }
                if batch.provenance.sim_states is not None:
                    arrays["sim_states"] = batch.provenance.sim_states[i]
                cursor = self._db.execute(
                    "INSERT INTO segments (env_id, episode, start, length, data, created_at) VALUES (?,?,?,?,?,?)",
                    (
                        batch.provenance.env_id,
                        int(batch.provenance.episode[i]),
                        int(batch.provenance.start[i]),
                        batch.segments.length,
                        _encode(arrays),
                        now,
                    ),
                )
                ids.append(cursor.lastrowid)
                self._segment_cache[cursor.lastrowid] = arrays
        return np.asarray(ids, dtype=np.int64)

    def add_queries(self, left_ids: np.ndarray, right_ids: np.ndarray, round_index: int, teacher: str) -> np.ndarray:
        """Record asked pairs (before any answer) and return their query ids."""
        now = time.time()
        with self._db:
            ids = [
                self._db.execute(
                    "INSERT INTO queries (round, left_id, right_id, teacher, created_at) VALUES (?,?,?,?,?)",
                    (round_index, int(a), int(b), teacher, now),
                ).lastrowid
                for a, b in zip(left_ids, right_ids)
            ]
        return np.asarray(ids, dtype=np.int64)

    def add_label(
        self,
        query_id: int,
        label: float | None,
        annotator: str,
        *,
        swapped: bool = False,
        shown_at: float | None = None,
        note: str = "",
    ) -> int:
        """Commit one answer; ``label=None`` (or NaN) records a skip."""
        skipped = label is None or bool(np.isnan(label))
        if not skipped and label not in (0.0, 0.5, 1.0):
            raise ValueError(f"label must be 0, 0.5, 1 or None (skip), got {label!r}")
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO labels (query_id, label, skipped, annotator, swapped, shown_at, answered_at, note) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (int(query_id), None if skipped else float(label), int(skipped), annotator, int(swapped),
                 shown_at, time.time(), note),
            )
        return int(cursor.lastrowid)

    def add_labels(self, query_ids: np.ndarray, labels: np.ndarray, annotator: str) -> None:
        """Commit a batch of answers from one annotator (NaN = skip) — each row durable on return."""
        for query_id, label in zip(query_ids, labels):
            self.add_label(int(query_id), float(label), annotator)

    # --------------------------------------------------------------- reading
    def counts(self) -> StoreCounts:
        asked = self._db.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
        labeled, skipped = self._db.execute(
            "SELECT COALESCE(SUM(1 - skipped), 0), COALESCE(SUM(skipped), 0) FROM "
            "(SELECT query_id, MIN(skipped) AS skipped FROM labels GROUP BY query_id)"
        ).fetchone()
        return StoreCounts(int(asked), int(labeled), int(skipped))

    def last_round(self) -> int:
        row = self._db.execute("SELECT MAX(round) FROM queries").fetchone()
        return -1 if row[0] is None else int(row[0])

    def label_rows(self, min_label_id: int = 0) -> list[tuple[int, int, int, int, float]]:
        """Non-skipped labels as ``(label_id, query_id, left_id, right_id, label)``, oldest first."""
        return self._db.execute(
            "SELECT l.id, q.id, q.left_id, q.right_id, l.label FROM labels l JOIN queries q ON q.id = l.query_id "
            "WHERE l.skipped = 0 AND l.id >= ? ORDER BY l.id",
            (min_label_id,),
        ).fetchall()

    def pending_queries(self) -> list[tuple[int, int, int]]:
        """Asked queries with no answer yet, as ``(query_id, left_id, right_id)``."""
        return self._db.execute(
            "SELECT q.id, q.left_id, q.right_id FROM queries q LEFT JOIN labels l ON l.query_id = q.id "
            "WHERE l.id IS NULL ORDER BY q.id"
        ).fetchall()

    def _segment_arrays(self, segment_id: int) -> dict[str, np.ndarray]:
        if segment_id not in self._segment_cache:
            row = self._db.execute("SELECT data FROM segments WHERE id = ?", (segment_id,)).fetchone()
            if row is None:
                raise CorruptStoreError(f"preference store {self.path} has a label for missing segment {segment_id}")
            self._segment_cache[segment_id] = _decode(row[0], segment_id, self.path)
        return self._segment_cache[segment_id]

    def segments(self, ids: np.ndarray) -> Segments:
        """Learner-visible arrays of stored segments, ``[len(ids), T, ...]``."""
        items = [self._segment_arrays(int(i)) for i in ids]
        return Segments(*(np.stack([item[name] for item in items]) for name in ("obs", "actions", "next_obs")))

    def segment_batch(self, ids: np.ndarray) -> SegmentBatch:
        """Stored segments with truth and provenance (for teachers, rendering, metrics)."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = {
            r[0]: r[1:]
            for r in self._db.execute(
                f"SELECT id, env_id, episode, start FROM segments WHERE id IN ({','.join('?' * len(ids))})",
                [int(i) for i in ids],
            )
        }
        items = [self._segment_arrays(int(i)) for i in ids]
        stack = lambda name: np.stack([item[name] for item in items])  # noqa: E731
        return SegmentBatch(
            Segments(stack("obs"), stack("actions"), stack("next_obs")),
            SegmentTruth(stack("true_rewards"), stack("successes")),
            Provenance(
                env_id=rows[int(ids[0])][0] if len(ids) else "",
                episode=np.array([rows[int(i)][1] for i in ids]),
                start=np.array([rows[int(i)][2] for i in ids]),
                sim_states=stack("sim_states") if items and "sim_states" in items[0] else None,
            ),
            ids,
        )

    def dataset(self, min_label_id: int = 0) -> tuple[PreferenceDataset, np.ndarray]:
        """All non-skipped labels (from ``min_label_id`` on) as a learner dataset, and their label ids."""
        rows = self.label_rows(min_label_id)
        if not rows:
            raise ValueError(f"preference store {self.path} holds no labels yet")
        label_ids, _, left, right, labels = (np.asarray(c) for c in zip(*rows))
        data = PreferenceDataset(self.segments(left), self.segments(right), labels.astype(np.float32))
        return data, label_ids.astype(np.int64)

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
