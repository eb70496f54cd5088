"""The durable preference store (append-only), on any SQLAlchemy database.

Every segment that was ever shown, every query that was ever asked and every label that
was ever given is written — and committed — the moment it exists, so a run killed at any
point resumes with all of them. Labels are never pickled: each row keeps the query, both
segment ids, the choice, whether left/right were swapped on screen, the annotator, and
when the pair was shown and answered.

A store is a SQLite file by default; any SQLAlchemy URL works too, e.g.
``postgresql+psycopg://host/db`` for a labeling deployment shared by many annotators
(see :mod:`pbrl.database` for the tables and the engine settings). The human-labeling
tables (annotators, the label queue, assignments) are versioned with the rest;
:mod:`pbrl.labeling.assignments` owns the logic that uses them.

Label convention everywhere in pbrl: ``label = P[left ≻ right]`` — 1.0 left is better,
0.0 right is better, 0.5 equally good; a skipped query stores ``label = NULL, skipped = 1``.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Row, Table, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from pbrl import database
from pbrl.database import (
    METADATA, SCHEMA_VERSION, labels_table, make_engine, meta_table, queries_table, segments_table, upgrade,
)
from pbrl.segments import PreferenceDataset, Provenance, SegmentBatch, Segments, SegmentTruth


class StoreError(RuntimeError):
    """The preference store cannot be used as it is; the message says which store and what to do."""


class CorruptStoreError(StoreError):
    """The preference store exists but cannot be read as a pbrl store."""


class StoreLockedError(StoreError):
    """Another process held the store's write lock past the busy timeout."""


@dataclass(frozen=True)
class StoreIdentity:
    """What a checkpoint records of its store, to recognise it on resume: the run id written into the
    store's metadata when it was created, and how far it had got (answered queries, last round)."""

    run_id: str
    answered: int
    last_round: int


@dataclass(frozen=True)
class StoreCounts:
    """How many queries were asked, labeled (incl. ½) and skipped."""

    asked: int
    labeled: int
    skipped: int

    @property
    def pending(self) -> int:
        return self.asked - self.labeled - self.skipped


def _locked(error: DBAPIError) -> bool:
    return "locked" in str(error.orig).lower() or "busy" in str(error.orig).lower()


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


def _stack_segments(items: list[dict[str, np.ndarray]]) -> Segments:
    """Learner-visible arrays of decoded segments, ``[len(items), T, ...]``. ``terminals`` is
    kept when any segment has it (segments stored before pbrl recorded it never terminate)."""
    stack = lambda name: np.stack([item[name] for item in items])  # noqa: E731
    terminals = None
    if any("terminals" in item for item in items):
        terminals = np.stack([item.get("terminals", np.zeros(len(item["obs"]), bool)) for item in items])
    return Segments(stack("obs"), stack("actions"), stack("next_obs"), terminals=terminals)


def check_label(label: float | None) -> float | None:
    """``label`` as stored: 0, ½ or 1, or ``None`` for a skip (``None`` or NaN); anything else is refused."""
    if label is None or bool(np.isnan(label)):
        return None
    if label not in (0.0, 0.5, 1.0):
        raise ValueError(f"label must be 0, 0.5, 1 or None (skip), got {label!r}")
    return float(label)


class PreferenceStore:
    """Segments, queries and labels in one database: a SQLite path (``":memory:"`` for tests) or a SQLAlchemy URL."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.engine = make_engine(self.path)
        self.sqlite = self.engine.dialect.name == "sqlite"
        # SQLite takes one writer at a time: this process's writers (annotators' requests) queue on a lock that
        # wakes the next one at once, rather than on SQLite's busy handler, which polls with sleeps of up to 100 ms
        self._writer = threading.RLock() if self.sqlite else contextlib.nullcontext()
        if "://" in self.path:
            self.path = self.engine.url.render_as_string(hide_password=True)
        kind = "SQLite" if self.sqlite else self.engine.dialect.name
        try:
            if self.sqlite:
                self._check_integrity()
            METADATA.create_all(self.engine)
            self._check_version()
            if self.get_meta("run_id") is None:
                self._write_run_id()
        except DBAPIError as error:
            self.engine.dispose()
            if _locked(error):
                raise self._locked_error() from error
            raise CorruptStoreError(
                f"preference store {self.path} is not a readable {kind} database ({error.orig}). "
                "pbrl did not modify it; move it aside (or restore a backup) and resume again."
            ) from error
        self._segment_cache: dict[int, dict[str, np.ndarray]] = {}

    # --------------------------------------------------------------- plumbing
    def read(self, statement: Executable | str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run one read (a Core statement, or SQL text) and return every row."""
        with self.engine.connect() as connection:
            return list(connection.execute(text(statement) if isinstance(statement, str) else statement, params or {}))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, committed (durably) on exit; concurrent writers wait their turn (a
        :class:`StoreLockedError` once the busy timeout has passed)."""
        try:
            with self._writer, self.engine.connect() as connection:
                connection.execution_options(pbrl_write=True)
                with connection.begin():
                    yield connection
        except DBAPIError as error:
            if _locked(error):
                raise self._locked_error() from error
            raise

    def _locked_error(self) -> StoreLockedError:
        return StoreLockedError(
            f"preference store {self.path} stayed locked by another process past the {database.BUSY_TIMEOUT_S:g} s timeout; "
            "stop the other process that writes it (another `pbrl train`/`resume`, a sqlite3 shell) and try again"
        )

    @property
    def _db(self) -> PreferenceStore:
        """Ad-hoc reads as with the sqlite3 store this replaced: ``store._db.execute("SELECT …")``."""
        return self

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """An ad-hoc read in SQL text (debugging, notebooks)."""
        return self.read(sql, params)

    # --------------------------------------------------------------- integrity
    def _check_integrity(self) -> None:
        result = self.read("PRAGMA quick_check")[0][0]
        if result != "ok":
            raise CorruptStoreError(f"preference store {self.path} failed SQLite's integrity check: {result}")

    def _check_version(self) -> None:
        version = self.get_meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise CorruptStoreError(
                f"preference store {self.path} has schema version {version}, this pbrl reads version {SCHEMA_VERSION}"
            )
        if version is None or int(version) < SCHEMA_VERSION:  # new, or older: create_all added the newer tables
            with self.transaction() as connection:  # once, also when two processes open an old store at once
                m = meta_table.c
                version = connection.execute(
                    select(m.value).where(m.key == "schema_version").with_for_update()).scalar()
                if version is None or int(version) < SCHEMA_VERSION:
                    upgrade(connection, int(version or SCHEMA_VERSION))
                    self._write_meta(connection, "schema_version", str(SCHEMA_VERSION))

    def _write_run_id(self) -> None:
        """Give the store its run id (at creation; an older store gets one the first time it is opened)."""
        with self.transaction() as connection:
            m = meta_table.c
            if connection.execute(select(m.value).where(m.key == "run_id").with_for_update()).scalar() is None:
                self._write_meta(connection, "run_id", uuid.uuid4().hex)

    def identity(self) -> StoreIdentity:
        """The store's run id and how far it has got (recorded in every checkpoint)."""
        counts = self.counts()
        return StoreIdentity(str(self.get_meta("run_id")), counts.labeled + counts.skipped, self.last_round())

    def flush(self) -> None:
        """Move SQLite's write-ahead log into the main file (``PRAGMA wal_checkpoint(TRUNCATE)``), so that
        ``preferences.sqlite`` alone holds every committed row and a plain copy of it is whole. Readers or
        writers busy at that moment only delay it to the next flush (nothing is lost either way)."""
        if self.sqlite and self.path != ":memory:":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.flush()
        self.engine.dispose()

    # --------------------------------------------------------------- writing
    def add_segments(self, batch: SegmentBatch) -> np.ndarray:
        """Persist segments (with truth and simulator states) and return their ids.

        Each segment's arrays are one ``.npz`` blob; ``terminals`` is one of its entries only
        when the segments carry it, so stores written before it existed read as before.
        """
        now, rows, arrays = time.time(), [], []
        for i in range(len(batch)):
            item = {
                "obs": batch.segments.obs[i],
                "actions": batch.segments.actions[i],
                "next_obs": batch.segments.next_obs[i],
                "true_rewards": batch.truth.rewards[i],
                "successes": batch.truth.successes[i],
            }
            if batch.segments.terminals is not None:
                item["terminals"] = batch.segments.terminals[i]
            if batch.provenance.sim_states is not None:
                item["sim_states"] = batch.provenance.sim_states[i]
            arrays.append(item)
            rows.append({
                "env_id": batch.provenance.env_id, "episode": int(batch.provenance.episode[i]),
                "start": int(batch.provenance.start[i]), "length": batch.segments.length,
                "data": _encode(item), "created_at": now,
            })
        ids = self._insert_many(segments_table, rows)
        self._segment_cache.update(zip(ids, arrays))
        return np.asarray(ids, dtype=np.int64)

    def add_queries(self, left_ids: np.ndarray, right_ids: np.ndarray, round_index: int, teacher: str) -> np.ndarray:
        """Record asked pairs (before any answer) and return their query ids."""
        now = time.time()
        rows = [{"round": round_index, "left_id": int(a), "right_id": int(b), "teacher": teacher, "created_at": now}
                for a, b in zip(left_ids, right_ids)]
        return np.asarray(self._insert_many(queries_table, rows), dtype=np.int64)

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        with self.transaction() as connection:
            result = connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
            return [int(row[0]) for row in result]

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
        value = check_label(label)
        with self.transaction() as connection:
            return self.insert_label(
                connection, query_id, value, annotator, swapped=swapped, shown_at=shown_at, note=note
            )

    @staticmethod
    def insert_label(
        connection: Connection, query_id: int, label: float | None, annotator: str, *,
        swapped: bool = False, shown_at: float | None = None, note: str = "",
    ) -> int:
        """Insert a checked label (see :func:`check_label`) inside a caller's :meth:`transaction`; returns its id."""
        row = {"query_id": int(query_id), "label": label, "skipped": int(label is None), "annotator": annotator,
               "swapped": int(swapped), "shown_at": shown_at, "answered_at": time.time(), "note": note}
        return int(connection.execute(insert(labels_table).returning(labels_table.c.id), row).scalar_one())

    def add_labels(self, query_ids: np.ndarray, labels: np.ndarray, annotator: str) -> None:
        """Commit a batch of answers from one annotator (NaN = skip) — each row durable on return."""
        for query_id, label in zip(query_ids, labels):
            self.add_label(int(query_id), float(label), annotator)

    # --------------------------------------------------------------- reading
    def counts(self, before_round: int | None = None) -> StoreCounts:
        """Asked, labeled and skipped queries (only those of rounds before ``before_round`` when given)."""
        queries, labels = queries_table.c, labels_table.c
        asked_statement = select(func.count()).select_from(queries_table)
        answers = select(labels.query_id, func.min(labels.skipped).label("skipped"))
        if before_round is not None:
            asked_statement = asked_statement.where(queries.round < before_round)
            answers = answers.join_from(labels_table, queries_table, queries.id == labels.query_id).where(
                queries.round < before_round)
        asked = self.read(asked_statement)[0][0]
        sub = answers.group_by(labels.query_id).subquery()
        labeled, skipped = self.read(
            select(func.coalesce(func.sum(1 - sub.c.skipped), 0), func.coalesce(func.sum(sub.c.skipped), 0))
        )[0]
        return StoreCounts(int(asked), int(labeled), int(skipped))

    def last_round(self) -> int:
        value = self.read(select(func.max(queries_table.c.round)))[0][0]
        return -1 if value is None else int(value)

    def label_rows(self, min_label_id: int = 0) -> list[tuple[int, int, int, int, float]]:
        """Non-skipped labels as ``(label_id, query_id, left_id, right_id, label)``, oldest first."""
        labels, queries = labels_table.c, queries_table.c
        statement = (
            select(labels.id, queries.id, queries.left_id, queries.right_id, labels.label)
            .join_from(labels_table, queries_table, queries.id == labels.query_id)
            .where(labels.skipped == 0, labels.id >= min_label_id)
            .order_by(labels.id)
        )
        return [tuple(row) for row in self.read(statement)]

    def pending_queries(self) -> list[tuple[int, int, int]]:
        """Asked queries with no answer yet, as ``(query_id, left_id, right_id)``."""
        queries = queries_table.c
        answered = select(labels_table.c.id).where(labels_table.c.query_id == queries.id).exists()
        statement = select(queries.id, queries.left_id, queries.right_id).where(~answered).order_by(queries.id)
        return [tuple(row) for row in self.read(statement)]

    def round_queries(self, round_index: int) -> list[tuple[int, int, int]]:
        """The queries asked in round ``round_index``, as ``(query_id, left_id, right_id)`` in the order asked."""
        queries = queries_table.c
        statement = select(queries.id, queries.left_id, queries.right_id).where(queries.round == round_index)
        return [tuple(row) for row in self.read(statement.order_by(queries.id))]

    def query_labels(self, query_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """One label per query from all its labels: the side they prefer on average, ½ on a tie, NaN if
        none (skipped or unanswered)."""
        c = labels_table.c
        rows = self.read(
            select(c.query_id, func.avg(c.label)).where(c.query_id.in_([int(i) for i in query_ids]), c.skipped == 0)
            .group_by(c.query_id)
        )
        mean = {int(query): float(value) for query, value in rows}
        return np.array([np.nan if int(i) not in mean else float(np.sign(mean[int(i)] - 0.5) / 2 + 0.5)
                         for i in query_ids])

    def _segment_arrays(self, segment_id: int) -> dict[str, np.ndarray]:
        if segment_id not in self._segment_cache:
            rows = self.read(select(segments_table.c.data).where(segments_table.c.id == segment_id))
            if not rows:
                raise CorruptStoreError(f"preference store {self.path} has a label for missing segment {segment_id}")
            self._segment_cache[segment_id] = _decode(rows[0][0], segment_id, self.path)
        return self._segment_cache[segment_id]

    def segments(self, ids: np.ndarray) -> Segments:
        """Learner-visible arrays of stored segments, ``[len(ids), T, ...]``."""
        return _stack_segments([self._segment_arrays(int(i)) for i in ids])

    def segment_batch(self, ids: Sequence[int] | np.ndarray) -> SegmentBatch:
        """Stored segments with truth and provenance (for teachers, rendering, metrics)."""
        ids = np.asarray(ids, dtype=np.int64)
        columns = (segments_table.c.id, segments_table.c.env_id, segments_table.c.episode, segments_table.c.start)
        rows = {r[0]: r[1:] for r in self.read(select(*columns).where(segments_table.c.id.in_([int(i) for i in ids])))}
        items = [self._segment_arrays(int(i)) for i in ids]
        stack = lambda name: np.stack([item[name] for item in items])  # noqa: E731
        return SegmentBatch(
            _stack_segments(items),
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
        label_ids, _, left, right, values = (np.asarray(c) for c in zip(*rows))
        data = PreferenceDataset(self.segments(left), self.segments(right), values.astype(np.float32))
        return data, label_ids.astype(np.int64)

    def get_meta(self, key: str) -> str | None:
        rows = self.read(select(meta_table.c.value).where(meta_table.c.key == key))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as connection:
            self._write_meta(connection, key, value)

    @staticmethod
    def _write_meta(connection: Connection, key: str, value: str) -> None:
        if connection.execute(update(meta_table).where(meta_table.c.key == key).values(value=value)).rowcount == 0:
            connection.execute(insert(meta_table).values(key=key, value=value))
