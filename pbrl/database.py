"""The store's database: its tables (one SQLAlchemy ``MetaData``), their upgrades, and how engines are made.

SQLite (the embedded default) is opened in WAL mode with ``synchronous=FULL`` — a commit
is on disk when it returns — and SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``:
write transactions (``execution_options(pbrl_write=True)``) take the write lock up front
with ``BEGIN IMMEDIATE``, so concurrent writers (annotators submitting at once, the run
adding queries) queue behind the 30 s busy timeout instead of failing on a lock upgrade.
Any other SQLAlchemy URL (``postgresql+psycopg://…``) gets a plain pooled engine.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column, Connection, Double, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table, Text,
    UniqueConstraint, create_engine, event, inspect, select, text, update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another's lock before :class:`~pbrl.store.StoreLockedError`."""

SCHEMA_VERSION = 3
"""1: meta, segments, queries, labels. 2: + annotators, label_queue, assignments (added in place to a v1 store).
3: annotators' tokens stored as SHA-256 digests, + ``revoked_at`` and ``expires_at`` (a v2 store is upgraded
in place by :func:`upgrade`: its plain tokens are hashed, so existing links keep working)."""

METADATA = MetaData()
meta_table = Table("meta", METADATA, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))
segments_table = Table(
    "segments", METADATA,
    Column("id", Integer, primary_key=True), Column("env_id", Text, nullable=False),
    Column("episode", Integer, nullable=False), Column("start", Integer, nullable=False),
    Column("length", Integer, nullable=False), Column("data", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)
queries_table = Table(
    "queries", METADATA,
    Column("id", Integer, primary_key=True), Column("round", Integer, nullable=False),
    Column("left_id", Integer, ForeignKey("segments.id"), nullable=False),
    Column("right_id", Integer, ForeignKey("segments.id"), nullable=False),
    Column("teacher", Text, nullable=False), Column("created_at", Double, nullable=False),
)
labels_table = Table(
    "labels", METADATA,
    Column("id", Integer, primary_key=True), Column("query_id", Integer, ForeignKey("queries.id"), nullable=False),
    Column("label", Double), Column("skipped", Integer, nullable=False), Column("annotator", Text, nullable=False),
    Column("swapped", Integer, nullable=False, server_default="0"), Column("shown_at", Double),
    Column("answered_at", Double, nullable=False), Column("note", Text, nullable=False, server_default=""),
    Index("labels_by_query", "query_id"),
)
annotators_table = Table(
    "annotators", METADATA,
    Column("name", String(64), primary_key=True), Column("token", String(64), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double), Column("expires_at", Double),
)
"""``token`` holds :func:`token_digest` of the annotator's token, never the token itself."""
queue_table = Table(
    "label_queue", METADATA,
    Column("query_id", Integer, ForeignKey("queries.id"), primary_key=True),
    Column("needed", Integer, nullable=False), Column("queued_at", Double, nullable=False),
)
assignments_table = Table(
    "assignments", METADATA,
    Column("id", Integer, primary_key=True), Column("query_id", Integer, ForeignKey("queries.id"), nullable=False),
    Column("annotator", String(64), ForeignKey("annotators.name"), nullable=False),
    Column("swapped", Integer, nullable=False), Column("assigned_at", Double, nullable=False),
    Column("label_id", Integer, ForeignKey("labels.id")), Column("request_id", String(64)),
    UniqueConstraint("query_id", "annotator", name="one_assignment_per_annotator"),
)


def token_digest(token: str) -> str:
    """What the store keeps of an annotator's token: its SHA-256 hex digest (tokens carry 192 random bits,
    so an unsalted fast hash is enough; whoever reads the store cannot label as anyone)."""
    return hashlib.sha256(token.encode()).hexdigest()


def upgrade(connection: Connection, version: int) -> None:
    """Bring a store of schema ``version`` (tables already created by ``create_all``) to :data:`SCHEMA_VERSION`
    inside the caller's transaction. v2 → v3: add the annotators' new columns and hash their plain tokens."""
    if version == 2:
        present = {column["name"] for column in inspect(connection).get_columns("annotators")}
        double = Double().compile(dialect=connection.dialect)
        for name in ("revoked_at", "expires_at"):
            if name not in present:
                connection.execute(text(f"ALTER TABLE annotators ADD COLUMN {name} {double}"))
        c = annotators_table.c
        for name, token in connection.execute(select(c.name, c.token)).all():
            connection.execute(update(annotators_table).where(c.name == name).values(token=token_digest(token)))


def make_engine(location: str) -> Engine:
    """An engine for a SQLAlchemy URL, or for a SQLite file path (``":memory:"`` for tests)."""
    if "://" in location:
        url = make_url(location)
        if url.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        location = url.database or ":memory:"
    if location == ":memory:":  # one connection shared by all threads, else each thread sees its own database
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{location}", connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=FULL")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("pbrl_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
