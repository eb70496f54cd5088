"""The labeling API: tokens, every bad input refused with a clear 4xx and no store change,
exactly-once answers, k annotators per pair, leases, videos (Range, no traversal)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # Starlette's TestClient prefers httpx2 (a deprecation notice, not a problem)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from pbrl.labeling.render import RenderSettings  # noqa: E402
from pbrl.labeling.server import LabelServer  # noqa: E402
from pbrl.teachers.human import HumanTeacherConfig  # noqa: E402
from tests.labeling_helpers import queued_store, stateless_store  # noqa: E402

JSON, PLAIN = {"Content-Type": "application/json"}, {"Content-Type": "text/plain"}
TASK = 'Which is better? <script>alert("x")</script> & "quotes"'


def _server(store, tmp_path, **kwargs) -> LabelServer:
    return LabelServer(store, tmp_path / "videos", TASK, RenderSettings(32, 32), port=0, **kwargs)


LOCAL = "http://127.0.0.1:8765"  # the Host a browser sends to a server on loopback


def _client(server: LabelServer, name: str = "alice") -> TestClient:
    token = server.queue.add_annotator(name)
    return TestClient(server.app, base_url=LOCAL, headers={"Authorization": f"Bearer {token}"})


def _snapshot(store) -> tuple:
    return tuple(store.execute(f"SELECT * FROM {table} ORDER BY 1") for table in ("labels", "assignments", "label_queue"))


def _answer(client: TestClient, pair: int, choice: str = "left", request_id: str = "request-0001", **extra):
    return client.post("/api/label", json={"pair": pair, "choice": choice, "request_id": request_id, **extra})


@pytest.fixture
def served(tmp_path):
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=4)
    return store, queries, _server(store, tmp_path)


def test_requests_without_a_valid_token_are_refused(served):
    store, queries, server = served
    anonymous = TestClient(server.app, base_url=LOCAL, headers=JSON)
    server.queue.add_annotator("alice")
    before = _snapshot(store)
    for method, path in [("get", "/api/session"), ("get", "/api/next"), ("get", "/api/progress"),
                         ("post", "/api/label"), ("get", "/video/1.mp4")]:
        assert getattr(anonymous, method)(path).status_code == 401, path
        assert getattr(anonymous, method)(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert getattr(anonymous, method)(path + "?token=nope").status_code == 401
    assert "missing annotator token" in anonymous.get("/api/next").json()["detail"]
    assert _snapshot(store) == before
    assert anonymous.get("/").status_code == 200  # the page itself is static; it reads the token from its link


def test_every_bad_answer_is_refused_without_touching_the_store(served):
    store, queries, server = served
    alice, bob = _client(server, "alice"), _client(server, "bob")
    pair = alice.get("/api/next").json()["pair"]["id"]
    other = int(queries[-1])  # exists, but not assigned to alice
    before = _snapshot(store)
    bad = {
        "malformed JSON": (alice.post("/api/label", content=b'{"pair": 1,', headers={"Content-Type": "application/json"}), 400),
        "not JSON at all": (alice.post("/api/label", content=b"left please", headers=JSON), 400),
        "JSON sent as text/plain": (alice.post("/api/label", content=b'{"pair": 1}', headers=PLAIN), 415),
        "unknown pair": (_answer(alice, 10_000), 404),
        "pair not assigned": (_answer(alice, other), 403),
        "pair assigned to someone else": (_answer(bob, pair), 403),
        "bad choice": (_answer(alice, pair, "maybe"), 422),
        "pair as a string": (alice.post("/api/label", json={"pair": str(pair), "choice": "left",
                                                             "request_id": "request-0001"}), 422),
        "pair as a bool": (alice.post("/api/label", json={"pair": True, "choice": "left", "request_id": "request-01"}), 422),
        "negative pair": (_answer(alice, -3), 422),
        "huge pair": (_answer(alice, 2**70), 422),
        "missing request id": (alice.post("/api/label", json={"pair": pair, "choice": "left"}), 422),
        "bad request id": (_answer(alice, pair, request_id="../../x"), 422),
        "note too long": (_answer(alice, pair, note="x" * 1001), 422),
        "unknown field": (_answer(alice, pair, label=1.0), 422),
        "a list": (alice.post("/api/label", json=[pair, "left"]), 400),
    }
    for name, (response, status) in bad.items():
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.json()["detail"], name
    assert _snapshot(store) == before  # nothing written by any refused request

    first = _answer(alice, pair, "equal", note="legs tangled")
    assert first.status_code == 200 and not first.json()["duplicate"]
    after_first = _snapshot(store)
    retry = _answer(alice, pair, "equal", note="legs tangled")  # the same answer re-sent after a dropped response
    assert retry.status_code == 200 and retry.json() == {**first.json(), "duplicate": True}
    second = _answer(alice, pair, "left", request_id="request-0002")  # a second label for the same assignment
    assert second.status_code == 409 and "already" in second.json()["detail"]
    assert _snapshot(store) == after_first
    label = store.execute("SELECT query_id, label, annotator, note FROM labels")
    assert label == [(pair, 0.5, "alice", "legs tangled")]


def test_screen_order_is_randomised_and_stored_labels_compare_the_query(tmp_path):
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=12)
    server = _server(store, tmp_path)
    alice = _client(server)
    stored = {}
    for _ in range(12):
        pair = alice.get("/api/next").json()["pair"]
        left_on_screen = pair["left"]["segment"]
        assert _answer(alice, pair["id"], "left", request_id=f"request-{pair['id']:04d}").status_code == 200
        query_left = store.execute(f"SELECT left_id FROM queries WHERE id = {pair['id']}")[0][0]
        stored[pair["id"]] = (left_on_screen == query_left, store.execute(
            f"SELECT label, swapped FROM labels WHERE query_id = {pair['id']}")[0])
    assert {swapped for _, (_, swapped) in stored.values()} == {0, 1}  # both orders were shown
    for same_order, (label, swapped) in stored.values():
        assert swapped == (not same_order) and label == (1.0 if same_order else 0.0)
    assert alice.get("/api/next").json()["pair"] is None


def test_k_annotators_per_pair_leases_and_progress(tmp_path):
    store, queries = stateless_store(tmp_path / "p.sqlite", pairs=2, needed=2)
    store.set_meta("label_budget", "50")
    server = _server(store, tmp_path, lease=2.0)  # long enough for the steps below on a loaded machine
    alice, bob, carol = (_client(server, n) for n in ("alice", "bob", "carol"))
    a, b, c = (x.get("/api/next").json()["pair"]["id"] for x in (alice, bob, carol))
    assert a == b == int(queries[0]) and c == int(queries[1])  # two people on the first pair, the third on the next
    assert alice.get("/api/next").json()["pair"]["id"] == a  # a reload shows the same open pair
    assert _answer(alice, a).status_code == 200 and _answer(bob, a, "right").status_code == 200
    assert alice.get("/api/next").json()["pair"]["id"] == int(queries[1])
    dave = _client(server, "dave")
    assert dave.get("/api/next").json()["pair"] is None  # both pairs are held (answered, or within their lease)
    time.sleep(2.1)  # carol's lease on the second pair runs out
    assert dave.get("/api/next").json()["pair"]["id"] == int(queries[1])
    progress = alice.get("/api/progress").json()
    assert progress == {"yours": 1, "round": {"index": 0, "done": 2, "quota": 4},
                        "budget": {"answered": 1, "asked": 2, "total": 50}}
    assert server.queue.missing(queries) == 2
    labels = [row[0] for row in store.execute(f"SELECT label FROM labels WHERE query_id = {a}")]
    consensus = server.queue.consensus(queries)
    assert consensus[0] == (labels[0] if labels[0] == labels[1] else 0.5) and np.isnan(consensus[1])


def test_videos_are_served_with_range_requests_and_only_from_the_cache(tmp_path):
    store, queries = queued_store(tmp_path / "p.sqlite", pairs=2, length=10)
    server = _server(store, tmp_path)
    alice = _client(server)
    pair = alice.get("/api/next").json()["pair"]
    url = pair["left"]["video"]
    try:
        whole = alice.get(url)
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        assert whole.content[4:8] == b"ftyp" and whole.headers["accept-ranges"] == "bytes"
        part = alice.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == whole.content[:100]
        assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
        files = sorted(p.name for p in (tmp_path / "videos").iterdir())
        assert files and all(name.endswith(".mp4") and not name.startswith(".") for name in files)
        shown = {pair["left"]["segment"], pair["right"]["segment"]}
        others = {row[0] for row in store.execute("SELECT id FROM segments")} - shown
        for path in [f"/video/{min(others)}.mp4", "/video/999.mp4", "/video/0.mp4", "/video/-1.mp4",
                     "/video/..%2F..%2Fp.sqlite", "/video/%2e%2e%2fp.sqlite.mp4", "/video/1.mp4/../../p.sqlite",
                     "/static/../p.sqlite", "/static/..%2F..%2Fstore.py", "/video/abc.mp4"]:
            response = alice.get(path)
            assert response.status_code in (404, 422), (path, response.status_code)
            assert b"SQLite" not in response.content
    finally:
        server.cache.close()


def test_task_text_is_data_and_pages_carry_a_strict_policy(served):
    store, queries, server = served
    alice = _client(server)
    assert alice.get("/api/session").json()["task"] == TASK  # JSON; the page sets it with textContent
    page = alice.get("/")
    assert "<script>alert" not in page.text and "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer" and alice.get("/api/next").headers["cache-control"] == "no-store"


def test_servers_bind_loopback_by_default(served, tmp_path):
    store, queries, server = served
    assert server.host == "127.0.0.1" and HumanTeacherConfig().host == "127.0.0.1" and server.warning() is None
    assert "reachable from the network" in _server(store, tmp_path, host="0.0.0.0").warning()


def test_a_wanted_video_jumps_the_render_queue_and_close_drops_the_rest(tmp_path):
    store, _ = queued_store(tmp_path / "p.sqlite", pairs=3, length=5)
    cache = _server(store, tmp_path).cache  # one render worker
    try:
        first, *middle, last = (cache.request(segment) for segment in range(1, 7))
        wanted = cache.request(6, urgent=True)
        assert wanted is last and wanted.result(timeout=120).endswith(".mp4")
        assert first.done() and not any(job.done() for job in middle[1:])  # 6 went right after the one in flight
    finally:
        cache.close()
    assert all(job.cancelled() for job in middle[2:]) and cache.path(6).exists() and not cache.path(5).exists()
    other, _ = stateless_store(tmp_path / "other.sqlite", pairs=3)  # another store's segment 6 is another video
    assert _server(other, tmp_path).cache.path(6) != cache.path(6) == _server(store, tmp_path).cache.path(6)


def _call(app, method: str, headers: dict[str, str]) -> tuple[int, bool]:
    """One raw ASGI request whose body is never sent: (status, whether the app asked for the body)."""
    import asyncio

    asked, sent = [], []

    async def receive():  # noqa: ANN202
        asked.append(True)
        raise AssertionError("the body was read")

    async def send(message) -> None:  # noqa: ANN001
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/api/label", "raw_path": b"/api/label", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()], "http_version": "1.1",
             "scheme": "http", "server": ("127.0.0.1", 8765), "client": ("127.0.0.1", 5000), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), bool(asked)


def test_bodies_are_refused_by_size_and_token_before_they_are_read(served):
    store, queries, server = served
    token = server.queue.add_annotator("alice")
    host = {"Host": "127.0.0.1:8765", "Content-Type": "application/json"}
    # 48 MB announced: refused from the header, with or without a token, before a byte is read
    assert _call(server.app, "POST", {**host, "Content-Length": str(48 << 20)}) == (413, False)
    assert _call(server.app, "POST", {**host, "Content-Length": str(48 << 20), "Authorization": f"Bearer {token}"}) \
        == (413, False)
    # chunked (no length) and no valid token: 401, the body never read
    assert _call(server.app, "POST", {**host, "Transfer-Encoding": "chunked"}) == (401, False)
    assert _call(server.app, "POST", {**host, "Transfer-Encoding": "chunked", "Authorization": "Bearer nope"}) \
        == (401, False)
    anonymous = TestClient(server.app, base_url=LOCAL)
    malformed = anonymous.post("/api/label", content=b'{"pair": 1,', headers=JSON)
    assert malformed.status_code == 401  # authenticated before parsing (the old app answered 400: it parsed first)
    chunks = (b"x" * 4096 for _ in range(8))  # 32 KiB without a length, with a token: cut off at the limit
    assert _client_for(server, token).post("/api/label", content=chunks, headers=JSON).status_code == 413


def test_writes_must_be_json_so_no_page_can_post_without_a_preflight(served):
    store, queries, server = served
    alice = _client(server)
    pair = alice.get("/api/next").json()["pair"]["id"]
    body = b'{"pair": %d, "choice": "left", "request_id": "request-0001"}' % pair
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = alice.post("/api/label", content=body, headers=headers)
        assert response.status_code == 415 and "application/json" in response.json()["detail"], content_type
    assert store.counts().labeled == 0
    assert alice.post("/api/label", content=body, headers={"Content-Type": "application/json; charset=utf-8"}).json()


def test_only_the_hosts_the_server_answers_to_are_served(served, tmp_path):
    store, queries, server = served
    token = server.queue.add_annotator("alice")
    auth = {"Authorization": f"Bearer {token}"}
    for host in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST.", "[::1]:8765"):
        assert TestClient(server.app, base_url=f"http://{host}").get("/api/session", headers=auth).status_code == 200
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.nip.io:8765", "10.0.0.8:8765", ""):
        response = TestClient(server.app).get("/api/session", headers={**auth, "Host": host})
        assert response.status_code == 400 and "host" in response.json()["detail"], host
        assert TestClient(server.app).get("/", headers={"Host": host}).status_code == 400
    wide = _server(store, tmp_path, host="0.0.0.0")  # on every address: any IP, this machine's names, no others
    check = wide.app.user_middleware[0].kwargs["allow_host"]
    assert check("192.168.1.20") and check("::1") and check("localhost") and not check("evil.example")
    proxied = _server(store, tmp_path, allowed_hosts=("label.example.org",))
    assert proxied.app.user_middleware[0].kwargs["allow_host"]("label.example.org")


def test_links_are_stored_hashed_can_be_revoked_and_expire(served):
    store, queries, server = served
    token = server.queue.add_annotator("alice")
    assert server.queue.add_annotator("alice") is None  # a working link is not replaced (nor shown again)
    stored = store.execute("SELECT token FROM annotators WHERE name = 'alice'")[0][0]
    assert token not in stored and len(stored) == 64  # SHA-256 digest only
    alice = TestClient(server.app, base_url=LOCAL, headers={"Authorization": f"Bearer {token}"})
    assert alice.get("/api/session").status_code == 200
    server.queue.revoke("alice")
    refused = alice.get("/api/next")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert alice.get(f"/api/next?token={token}").status_code == 401
    again = server.queue.add_annotator("alice")  # a new link for the same name
    assert again and again != token and _client_for(server, again).get("/api/session").json()["annotator"] == "alice"
    assert alice.get("/api/session").status_code == 401  # the old one stays dead
    brief = server.queue.add_annotator("bob", expires_at=time.time() + 2.0)
    assert _client_for(server, brief).get("/api/session").status_code == 200
    time.sleep(2.1)
    expired = _client_for(server, brief).get("/api/session")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert server.queue.annotators() == ["alice"]
    with pytest.raises(KeyError, match="no annotator named 'carol'"):
        server.queue.revoke("carol")


def _client_for(server: LabelServer, token: str) -> TestClient:
    return TestClient(server.app, base_url=LOCAL, headers={"Authorization": f"Bearer {token}"})


def test_a_request_id_resent_with_another_answer_is_refused(served):
    store, queries, server = served
    alice = _client(server)
    pair = alice.get("/api/next").json()["pair"]["id"]
    assert _answer(alice, pair, "left", request_id="request-0007").status_code == 200
    before = _snapshot(store)
    for changed in ({"choice": "right"}, {"choice": "skip"}, {"choice": "left", "note": "changed my mind"}):
        response = _answer(alice, pair, request_id="request-0007", **changed)
        assert response.status_code == 409 and "request request-0007" in response.json()["detail"], changed
    assert _answer(alice, pair, "left", request_id="request-0007").json()["duplicate"]  # the same answer: acknowledged
    assert _snapshot(store) == before


def test_video_ids_beyond_64_bits_are_not_found(served):
    store, queries, server = served
    alice = _client(server)
    alice.get("/api/next")
    for segment in (2**63 - 1, 2**63, 2**64, 10**30):
        response = alice.get(f"/video/{segment}.mp4")
        assert response.status_code == 404 and "video" in response.json()["detail"], segment


def test_ctrl_c_stops_the_label_server_without_suggesting_a_resume(tmp_path, monkeypatch, capsys):
    from pbrl.experiments.cli import main

    stopped = []
    monkeypatch.setattr(LabelServer, "start", lambda self, timeout=30.0: self.url)
    monkeypatch.setattr(LabelServer, "wait", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    monkeypatch.setattr(LabelServer, "stop", lambda self: stopped.append(True))
    code = main(["label-server", str(tmp_path / "try"), "--demo", "gym:HalfCheetah-v5", "--pairs", "2", "--port", "0"])
    out = capsys.readouterr()
    assert code == 0 and stopped and "label server stopped" in out.out
    assert "resume" not in out.out + out.err
