"""Who labels what: annotators and their tokens, the label queue, assignments and submissions.

All of it lives in the preference store, so a labeling server can be restarted (or a
second one started against the same store) without losing a queued pair, an open
assignment or a label.

* An **annotator** is a name with an unguessable token (the token goes in their link). The
  store keeps only the token's SHA-256 digest, so a link is shown once, when it is made; a
  link can be revoked, and may expire (``expires_at``).
* The **label queue** holds the queries that people should answer, each wanting
  ``needed`` annotators (k annotators per pair).
* An **assignment** gives one queued query to one annotator, with the left/right order
  they see (randomly swapped, to cancel position bias). An annotator keeps their open
  assignment until they answer it (a reload shows the same pair again); an assignment
  left open for longer than the lease no longer holds the query's place, so someone
  else may take it.
* A **submission** answers an assignment exactly once: a retried submission with the
  same ``request_id`` and the same answer is acknowledged again without a second label; a
  different answer — under a new request id or the same one — is refused.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sqlalchemy import Connection, case, func, insert, or_, select, update

from pbrl.database import (
    annotators_table, assignments_table, labels_table, meta_table, queries_table, queue_table, token_digest,
)
from pbrl.store import PreferenceStore

CHOICES: dict[str, float | None] = {"left": 1.0, "right": 0.0, "equal": 0.5, "skip": None}
"""On-screen answers and their label ``P[shown left ≻ shown right]`` (``None``: can't tell)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_annotator_name(name: object, field: str = "annotator name") -> str:
    """``name`` if it may name an annotator — 1-64 letters, digits, ``_``, ``.`` or ``-``, starting with a
    letter or digit (it appears in links, exports and command lines) — else a one-line ``ValueError`` naming
    ``field`` (e.g. ``teacher.human.annotators``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{field}: {name!r} is not a valid annotator name; use 1-64 letters, digits, '_', '.' "
                         "or '-', starting with a letter or digit")
    return name


class LabelingError(Exception):
    """A request the labeling API refuses; ``status`` is its HTTP status code."""

    status = 400


class UnknownPair(LabelingError):
    status = 404


class NotAssigned(LabelingError):
    status = 403


class AlreadyLabeled(LabelingError):
    status = 409


class Unauthorized(LabelingError):
    status = 401


@dataclass(frozen=True)
class Assignment:
    """A queued query as one annotator sees it: ``shown_left`` / ``shown_right`` are segment ids on screen."""

    query_id: int
    round: int
    shown_left: int
    shown_right: int
    swapped: bool


class QueuedQuery(NamedTuple):
    """A query in the label queue: its pair, and how many answers it wants and has."""

    query_id: int
    round: int
    left_id: int
    right_id: int
    needed: int
    answered: int

    @property
    def missing(self) -> int:
        return max(self.needed - self.answered, 0)


@dataclass(frozen=True)
class Submission:
    """An acknowledged answer: the label's id, and whether it had been stored by an earlier try."""

    label_id: int
    duplicate: bool


class LabelQueue:
    """The labeling state of one preference store."""

    def __init__(self, store: PreferenceStore, lease: float = 600.0, seed: int | None = None) -> None:
        self.store, self.lease = store, lease
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ annotators
    def add_annotator(self, name: str, expires_at: float | None = None) -> str | None:
        """Give ``name`` a link: returns the new token (shown once: the store keeps only its digest), or
        ``None`` if ``name`` already has a working link. A revoked or expired name gets a new token;
        ``expires_at`` (Unix time) ends the new link's validity (``None``: never)."""
        check_annotator_name(name)
        c, now = annotators_table.c, time.time()
        with self.store.transaction() as connection:
            row = connection.execute(select(c.revoked_at, c.expires_at).where(c.name == name)).first()
            if row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > now):
                return None
            token = secrets.token_urlsafe(24)
            values = {"token": token_digest(token), "created_at": now, "revoked_at": None, "expires_at": expires_at}
            if row is None:
                connection.execute(insert(annotators_table).values(name=name, **values))
            else:
                connection.execute(update(annotators_table).where(c.name == name).values(**values))
        return token

    def revoke(self, name: str) -> None:
        """End ``name``'s link now (their labels stay; :meth:`add_annotator` gives them a new link)."""
        c = annotators_table.c
        with self.store.transaction() as connection:
            if connection.execute(update(annotators_table).where(c.name == name)
                                  .values(revoked_at=time.time())).rowcount == 0:
                known = ", ".join(sorted(connection.execute(select(c.name)).scalars())) or "none"
                raise KeyError(f"no annotator named {name!r} in {self.store.path} (annotators: {known})")

    def annotators(self) -> list[str]:
        """The names whose link works now (not revoked, not expired)."""
        c = annotators_table.c
        statement = select(c.name).where(c.revoked_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > time.time()))
        return sorted(row[0] for row in self.store.read(statement))

    def authenticate(self, token: str) -> str:
        """The annotator a token belongs to; :class:`Unauthorized` (401) for an unknown, revoked or expired one."""
        c = annotators_table.c
        row = self.store.read(select(c.name, c.revoked_at, c.expires_at).where(c.token == token_digest(token)))
        if not row:
            raise Unauthorized("invalid annotator token: ask for a new link")
        name, revoked_at, expires_at = row[0]
        if revoked_at is not None:
            raise Unauthorized(f"{name}'s link was revoked: ask for a new link")
        if expires_at is not None and expires_at <= time.time():
            raise Unauthorized(f"{name}'s link expired: ask for a new link")
        return name

    # ------------------------------------------------------------------ the queue
    def enqueue(self, query_ids: np.ndarray, needed: int) -> None:
        """Queue stored queries for ``needed`` annotators each (queries already queued are left as they are)."""
        ids = [int(i) for i in query_ids]
        with self.store.transaction() as connection:
            q = queue_table.c
            queued = set(connection.execute(select(q.query_id).where(q.query_id.in_(ids))).scalars())
            rows = [{"query_id": i, "needed": needed, "queued_at": time.time()} for i in ids if i not in queued]
            if rows:
                connection.execute(insert(queue_table), rows)

    def next_for(self, annotator: str) -> Assignment | None:
        """The annotator's open assignment, else a new one on the newest round's first query they can take."""
        a, queries = assignments_table.c, queries_table.c
        now = time.time()
        with self.store.transaction() as connection:
            query_id = connection.execute(
                select(a.query_id).where(a.annotator == annotator, a.label_id.is_(None)).order_by(a.id).limit(1)
            ).scalar()
            if query_id is None:
                query_id = self._take(connection, annotator, now)
                if query_id is None:
                    return None
                swapped = int(self.rng.integers(2))
                connection.execute(insert(assignments_table).values(
                    query_id=query_id, annotator=annotator, swapped=swapped, assigned_at=now))
            row = connection.execute(
                select(queries.round, queries.left_id, queries.right_id, a.swapped)
                .join_from(queries_table, assignments_table, a.query_id == queries.id)
                .where(queries.id == query_id, a.annotator == annotator)
            ).one()
        round_index, left, right, swapped = row
        shown = (right, left) if swapped else (left, right)
        return Assignment(int(query_id), int(round_index), int(shown[0]), int(shown[1]), bool(swapped))

    def _take(self, connection: Connection, annotator: str, now: float) -> int | None:
        """The first queued query this annotator may take (locked for this transaction), or ``None``."""
        a, q, queries = assignments_table.c, queue_table.c, queries_table.c
        mine = select(a.id).where(a.query_id == q.query_id, a.annotator == annotator).exists()
        holding = (
            select(func.count()).select_from(assignments_table)
            .where(a.query_id == q.query_id, or_(a.label_id.is_not(None), a.assigned_at > now - self.lease))
            .scalar_subquery()
        )
        free = select(q.query_id).join_from(queue_table, queries_table, queries.id == q.query_id).where(
            ~mine, holding < q.needed)
        while True:
            # SQLite runs one writer at a time. PostgreSQL may let a concurrent annotator take the candidate
            # between our read and our lock: once the lock is ours, a new statement sees their assignment.
            candidate = connection.execute(
                free.order_by(queries.round.desc(), q.query_id).limit(1).with_for_update(of=queue_table)
            ).scalar()
            if candidate is None or connection.execute(free.where(q.query_id == candidate)).scalar() is not None:
                return candidate
    def submit(self, annotator: str, query_id: int, choice: str, request_id: str, note: str = "") -> Submission:
        """Store an annotator's on-screen ``choice`` (see :data:`CHOICES`) for their assignment, exactly once."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {sorted(CHOICES)}, got {choice!r}")
        a = assignments_table.c
        with self.store.transaction() as connection:
            if connection.execute(select(queries_table.c.id).where(queries_table.c.id == query_id)).first() is None:
                raise UnknownPair(f"pair {query_id} does not exist")
            assignment = connection.execute(
                select(a.id, a.swapped, a.assigned_at, a.label_id, a.request_id)
                .where(a.query_id == query_id, a.annotator == annotator)
                .with_for_update()  # PostgreSQL: a simultaneous copy of this answer waits here, then sees it answered
            ).first()
            if assignment is None:
                raise NotAssigned(f"pair {query_id} is not assigned to {annotator}; ask /api/next for your pair")
            label = CHOICES[choice]
            if label is not None and assignment.swapped:
                label = 1.0 - label  # the store's label compares the query's left and right, not the screen's
            if assignment.label_id is not None:
                c = labels_table.c
                stored = connection.execute(select(c.label, c.note).where(c.id == assignment.label_id)).one()
                if assignment.request_id != request_id:
                    raise AlreadyLabeled(f"pair {query_id} already has {annotator}'s label; a second one is not accepted")
                if tuple(stored) != (label, note):
                    raise AlreadyLabeled(f"request {request_id} already answered pair {query_id} with another choice or "
                                         "note; a changed answer is not accepted")
                return Submission(int(assignment.label_id), duplicate=True)
            label_id = self.store.insert_label(
                connection, query_id, label, annotator, swapped=bool(assignment.swapped),
                shown_at=assignment.assigned_at, note=note,
            )
            claimed = connection.execute(update(assignments_table).where(a.id == assignment.id, a.label_id.is_(None))
                                         .values(label_id=label_id, request_id=request_id)).rowcount
            if claimed != 1:  # a concurrent answer won (possible on PostgreSQL; SQLite serialises writers): undo ours
                raise AlreadyLabeled(f"pair {query_id} already has {annotator}'s label; a second one is not accepted")
        return Submission(label_id, duplicate=False)

    def shows(self, annotator: str, segment_id: int) -> bool:
        """Whether one of the annotator's assignments shows this segment (videos are served only then)."""
        a, queries = assignments_table.c, queries_table.c
        statement = (
            select(a.id).join_from(assignments_table, queries_table, queries.id == a.query_id)
            .where(a.annotator == annotator, or_(queries.left_id == segment_id, queries.right_id == segment_id))
            .limit(1)
        )
        return bool(self.store.read(statement))

    # ------------------------------------------------------------------ state
    def status(self, query_ids: np.ndarray | None = None) -> list[QueuedQuery]:
        """Queued queries (all, or these) in the order they are handed out, with their answer counts."""
        a, q, queries = assignments_table.c, queue_table.c, queries_table.c
        answered = (
            select(func.count()).select_from(assignments_table)
            .where(a.query_id == q.query_id, a.label_id.is_not(None)).scalar_subquery()
        )
        statement = (
            select(q.query_id, queries.round, queries.left_id, queries.right_id, q.needed, answered)
            .join_from(queue_table, queries_table, queries.id == q.query_id)
            .order_by(queries.round.desc(), q.query_id)
        )
        if query_ids is not None:
            statement = statement.where(q.query_id.in_([int(i) for i in query_ids]))
        return [QueuedQuery(*(int(v) for v in row)) for row in self.store.read(statement)]

    def missing(self, query_ids: np.ndarray) -> int:
        """How many answers these queued queries still want (0: the round's quota is met)."""
        return sum(row.missing for row in self.status(query_ids))

    def consensus(self, query_ids: np.ndarray) -> np.ndarray:
        """One label per query from all its labels: the side they prefer on average, ½ on a tie, NaN if none."""
        return self.store.query_labels(query_ids)

    def progress(self, annotator: str) -> dict[str, object]:
        """Counters for the page — the annotator's answers, the newest round's quota, the whole budget — in one
        read (every answer and every page load asks for them)."""
        a, q, queries, labels, meta = (t.c for t in (assignments_table, queue_table, queries_table, labels_table,
                                                      meta_table))
        newest = (select(func.max(queries.round)).join_from(queue_table, queries_table, queries.id == q.query_id)
                  .scalar_subquery())
        answered = (
            select(func.count()).select_from(assignments_table)
            .where(a.query_id == q.query_id, a.label_id.is_not(None)).scalar_subquery()
        )
        newest_round = (
            select(q.needed, case((answered > q.needed, q.needed), else_=answered).label("done"))
            .join_from(queue_table, queries_table, queries.id == q.query_id).where(queries.round == newest).subquery()
        )
        count = lambda table, *where: select(func.count()).select_from(table).where(*where).scalar_subquery()  # noqa: E731
        row = self.store.read(select(
            count(assignments_table, a.annotator == annotator, a.label_id.is_not(None)), newest,
            func.coalesce(func.sum(newest_round.c.needed), 0), func.coalesce(func.sum(newest_round.c.done), 0),
            select(func.count(func.distinct(labels.query_id))).scalar_subquery(), count(queries_table),
            select(meta.value).where(meta.key == "label_budget").scalar_subquery(),
        ).select_from(newest_round))[0]
        yours, round_index, quota, done, answered_queries, asked, budget = row
        return {
            "yours": int(yours),
            "round": {"index": round_index, "done": int(done), "quota": int(quota)},
            "budget": {"answered": int(answered_queries), "asked": int(asked), "total": int(budget) if budget else None},
        }
