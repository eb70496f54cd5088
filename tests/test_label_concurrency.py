"""Several annotators submitting at once over HTTP while the run queues more pairs: no label
lost, none counted twice, no pair answered by more annotators than it asked for — on SQLite
and on PostgreSQL (``store_location``, tests/postgres.py)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from pbrl.labeling.render import RenderSettings  # noqa: E402
from pbrl.labeling.server import LabelServer  # noqa: E402
from tests.labeling_helpers import stateless_store  # noqa: E402

ANNOTATORS, SECONDS, K = 5, 3.0, 2
ENOUGH, HARD_LIMIT = 30, 90.0  # annotators go on past SECONDS until ENOUGH answers (a loaded CI machine), never past HARD_LIMIT


def test_concurrent_annotators_lose_and_double_count_nothing(tmp_path, store_location):
    store, first = stateless_store(store_location, pairs=40, needed=K)
    server = LabelServer(store, tmp_path / "videos", "task", RenderSettings(32, 32), port=0)
    url = server.start()
    tokens = {f"a{i}": server.queue.add_annotator(f"a{i}") for i in range(ANNOTATORS)}
    acknowledged: dict[str, list[int]] = {name: [] for name in tokens}
    problems: list[str] = []
    deadline = time.monotonic() + SECONDS
    hard_deadline = deadline - SECONDS + HARD_LIMIT

    def going_on() -> bool:
        now = time.monotonic()
        return now < deadline or (now < hard_deadline and sum(map(len, acknowledged.values())) < ENOUGH)

    def annotate(name: str) -> None:
        rng = np.random.default_rng(len(name) + int(name[1:]))
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=30) as client:
            while going_on():
                pair = client.get("/api/next").json()["pair"]
                if pair is None:
                    time.sleep(0.02)
                    continue
                body = {"pair": pair["id"], "choice": str(rng.choice(["left", "right", "equal", "skip"])),
                        "request_id": uuid.uuid4().hex}
                replies = [client.post("/api/label", json=body)]
                if rng.random() < 0.3:  # the page re-sends after a dropped response
                    replies.append(client.post("/api/label", json=body))
                if rng.random() < 0.2:  # a second, different answer to the same pair (another tab)
                    other = client.post("/api/label", json={**body, "request_id": uuid.uuid4().hex})
                    if other.status_code != 409:
                        problems.append(f"second answer got {other.status_code}")
                first_reply, *retries = replies
                if first_reply.status_code != 200 or first_reply.json()["duplicate"]:
                    problems.append(f"first answer got {first_reply.status_code} {first_reply.text}")
                    continue
                acknowledged[name].append(first_reply.json()["label_id"])
                for retry in retries:
                    if retry.status_code != 200 or retry.json() != {**first_reply.json(), "duplicate": True,
                                                                     "progress": retry.json()["progress"]}:
                        problems.append(f"retry got {retry.status_code} {retry.text}")

    def run_queues_more() -> None:  # the training run adding rounds meanwhile
        left_ids = store.execute("SELECT left_id FROM queries ORDER BY id")
        while time.monotonic() < deadline - 0.5:
            time.sleep(0.4)
            ids = [row[0] for row in left_ids[:10]]
            server.enqueue(store.add_queries(ids, ids[::-1], round_index=store.last_round() + 1, teacher="human"), K)

    threads = [threading.Thread(target=annotate, args=(name,)) for name in tokens] + [threading.Thread(target=run_queues_more)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HARD_LIMIT + 30)
    finally:
        server.stop()

    assert not problems, problems[:5]
    labels = store.execute("SELECT id, query_id, annotator FROM labels")
    given = [label_id for ids in acknowledged.values() for label_id in ids]
    assert len(given) >= ENOUGH, f"the annotators answered only {len(given)} pairs in {HARD_LIMIT:.0f} s"
    assert sorted(given) == sorted(row[0] for row in labels)  # every acknowledged label stored, nothing else
    for name, ids in acknowledged.items():
        assert {row[2] for row in labels if row[0] in set(ids)} <= {name}  # stored under the annotator who gave it
    assert max(Counter((row[1], row[2]) for row in labels).values()) == 1  # one label per pair and annotator
    assert max(Counter(row[1] for row in labels).values()) <= K  # no pair beyond its k annotators
    answered = store.execute("SELECT COUNT(*) FROM assignments WHERE label_id IS NOT NULL")[0][0]
    assert answered == len(labels)
    assert store.last_round() >= 2 and len(first) == 40


CROWD, SHARED_PAIRS = 16, 6


def test_crowd_answering_the_same_pairs_stores_one_label_per_assignment(tmp_path, store_location):
    """16 annotators answer the same pairs at once (each pair wants all 16), every answer sent twice
    at the same moment (a double click) and once more later (a retry after a dropped response):
    exactly one label per assignment, each acknowledged to every copy of its request."""
    store, queries = stateless_store(store_location, pairs=SHARED_PAIRS, needed=CROWD)
    server = LabelServer(store, tmp_path / "videos", "task", RenderSettings(32, 32), port=0)
    url = server.start()
    tokens = {f"c{i:02d}": server.queue.add_annotator(f"c{i:02d}") for i in range(CROWD)}
    acknowledged: dict[str, set[int]] = {name: set() for name in tokens}
    problems: list[str] = []
    twin_refused: list[str] = []  # a copy of an answer refused (409) while its twin was stored
    start = threading.Barrier(CROWD)

    def annotate(name: str) -> None:
        rng = np.random.default_rng(int(name[1:]))
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=60) as client:
            start.wait(30)
            for _ in range(3 * SHARED_PAIRS):  # bounded: each annotator has SHARED_PAIRS pairs to answer
                pair = client.get("/api/next").json()["pair"]
                if pair is None:
                    return
                body = {"pair": pair["id"], "choice": str(rng.choice(["left", "right", "equal", "skip"])),
                        "request_id": uuid.uuid4().hex}
                replies: list[httpx.Response] = []
                twins = [threading.Thread(target=lambda: replies.append(client.post("/api/label", json=body)))
                         for _ in range(2)]
                for twin in twins:
                    twin.start()
                for twin in twins:
                    twin.join(60)
                replies.append(client.post("/api/label", json=body))
                codes = [r.status_code for r in replies]
                if codes != [200] * 3:
                    what = f"{name} pair {pair['id']}: {[(r.status_code, r.text[:80]) for r in replies]}"
                    (twin_refused if sorted(codes) == [200, 200, 409] else problems).append(what)
                accepted = [r.json() for r in replies if r.status_code == 200]
                if len({a["label_id"] for a in accepted}) != 1 or [a["duplicate"] for a in accepted].count(False) > 1:
                    problems.append(f"{name} pair {pair['id']}: {accepted}")
                acknowledged[name] |= {a["label_id"] for a in accepted}
            problems.append(f"{name} was still handed pairs after {3 * SHARED_PAIRS} answers")

    threads = [threading.Thread(target=annotate, args=(name,)) for name in tokens]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        server.stop()

    assert not problems, problems[:5]
    assignments = store.execute("SELECT query_id, annotator, label_id FROM assignments")
    labels = store.execute("SELECT id, query_id, annotator FROM labels")
    assert len(assignments) == CROWD * SHARED_PAIRS  # every annotator took every pair, once
    assert all(label_id is not None for _, _, label_id in assignments)
    assert sorted(row[2] for row in assignments) == sorted(row[0] for row in labels)  # one label per assignment
    by_id = {row[0]: (row[1], row[2]) for row in labels}
    assert all(by_id[label_id] == (query, who) for query, who, label_id in assignments)
    assert sorted(i for ids in acknowledged.values() for i in ids) == sorted(by_id)  # each acknowledged, once
    assert Counter(query for query, _ in by_id.values()) == {int(q): CROWD for q in queries}
    assert not twin_refused, twin_refused[:5]
