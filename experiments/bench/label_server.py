"""The labeling server: how soon a queued pair is playable, and how many labels it takes per second.

Everything runs on loopback against a real server (uvicorn in a thread, render processes):

* **queued → playable** — 50-step HalfCheetah segments at the default render settings
  (256×256, tracking camera). A pair counts as playable when an annotator asking for it
  has downloaded both of its mp4s in full. Two cases: pairs queued *one at a time*
  (each waits for nothing but its own two renders), and a *round* of pairs queued at
  once and answered instantly (later pairs wait for the earlier ones: the render
  throughput shows). Render workers are warmed up first, as a training run does at
  start; the cold start is reported separately.
* **labels per second** — annotator threads that ask for a pair and answer it at once,
  for a bounded time, over pairs with nothing to render; every answer is committed
  (SQLite, ``synchronous=FULL``) before it is acknowledged.
* **memory under large bodies** — a server in its own process receives unauthenticated
  48 MB POSTs at once (with a ``Content-Length``, then chunked without one); its resident
  memory (``VmRSS``, and the peak ``VmHWM``) is read from ``/proc`` before and after.

Usage::

    python -m pbrl.experiments.bench.label_server [--pairs 10] [--round 10] [--workers 1] [--annotators 8] [--seconds 10]

Prints a table and writes ``experiments/bench/results/label_server.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from pbrl.experiments.label_cli import rollout_segments
from pbrl.labeling.assignments import LabelQueue
from pbrl.labeling.render import RenderSettings
from pbrl.labeling.server import LabelServer, default_task
from pbrl.segments import Provenance, SegmentBatch, Segments, SegmentTruth
from pbrl.store import PreferenceStore

ENV_ID = "gym:HalfCheetah-v5"

RESULTS = Path(__file__).parent / "results" / "label_server.md"


def _percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.median(values)), float(np.percentile(values, 95))


def _fetch_pair(client: httpx.Client) -> dict:
    """Ask for the next pair and download both videos; returns the pair."""
    while (pair := client.get("/api/next").json()["pair"]) is None:
        time.sleep(0.01)
    for side in ("left", "right"):
        response = client.get(pair[side]["video"], timeout=300)
        response.raise_for_status()
    return pair


def _answer(client: httpx.Client, pair: dict) -> None:
    body = {"pair": pair["id"], "choice": "left", "request_id": uuid.uuid4().hex}
    client.post("/api/label", json=body).raise_for_status()


def playable_latency(root: Path, pairs: int, round_size: int, workers: int) -> dict[str, object]:
    """Seconds from queued to playable: cold start, pairs one at a time, and a round at once."""
    store = PreferenceStore(root / "render.sqlite")
    ids = store.add_segments(rollout_segments(ENV_ID, 2 * (1 + pairs + round_size), 50, seed=1))
    left, right = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    queries = store.add_queries(left, right, round_index=0, teacher="human")
    server = LabelServer(store, root / "videos", default_task(ENV_ID), RenderSettings(workers=workers), port=0)
    started = time.perf_counter()
    url = server.start()
    token = server.queue.add_annotator("bench")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
        server.enqueue(queries[:1], 1)
        _answer(client, _fetch_pair(client))
        cold = time.perf_counter() - started
        single = []
        for query in queries[1 : 1 + pairs]:
            queued = time.perf_counter()
            server.enqueue(np.array([query]), 1)
            pair = _fetch_pair(client)
            single.append(time.perf_counter() - queued)
            _answer(client, pair)
        queued = time.perf_counter()
        server.enqueue(queries[1 + pairs :], 1)
        in_round = []
        for _ in range(round_size):
            pair = _fetch_pair(client)
            in_round.append(time.perf_counter() - queued)
            _answer(client, pair)
    server.stop()
    return {"cold": cold, "single": single, "round": in_round}


def _queued_store(path: Path, queued: int, round_size: int = 100) -> PreferenceStore:
    """A store of ``queued`` pairs of fake segments (nothing to render), queued in rounds of ``round_size``."""
    store = PreferenceStore(path)
    n, rng = 2 * queued, np.random.default_rng(0)
    fake = SegmentBatch(Segments(*(rng.normal(size=(n, 5, 3)).astype(np.float32) for _ in range(3))),
                        SegmentTruth(np.zeros((n, 5)), np.zeros((n, 5))), Provenance("fake", np.zeros(n), np.zeros(n)))
    ids = store.add_segments(fake)
    queue = LabelQueue(store)
    for start in range(0, queued, round_size):
        rows = slice(start, min(start + round_size, queued))
        queue.enqueue(store.add_queries(ids[:queued][rows], ids[queued:][rows], start // round_size, "human"), 1)
    return store


def store_costs(root: Path, queued: int, labels: int = 100) -> dict[str, float]:
    """Median milliseconds of the store's work for one label (what the two requests of a label do, without
    HTTP, from one thread), and of one 4 KiB write + fsync in the same folder (the disk's floor per commit)."""
    queue = LabelQueue(_queued_store(root / f"costs-{queued}.sqlite", queued))
    token = queue.add_annotator("solo")
    parts: dict[str, list[float]] = {"token checks (2)": [], "next pair (commits the assignment)": [],
                                     "answer (commits the label)": [], "progress counters (2)": []}
    for _ in range(labels):
        times = [time.perf_counter()]
        queue.authenticate(token), queue.authenticate(token)
        times.append(time.perf_counter())
        assignment = queue.next_for("solo")
        times.append(time.perf_counter())
        queue.submit("solo", assignment.query_id, "left", uuid.uuid4().hex)
        times.append(time.perf_counter())
        queue.progress("solo"), queue.progress("solo")
        times.append(time.perf_counter())
        for part, start, end in zip(parts.values(), times, times[1:]):
            part.append(end - start)
    fd = os.open(root / "fsync-probe", os.O_WRONLY | os.O_CREAT)
    synced = []
    for _ in range(50):
        start = time.perf_counter()
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        synced.append(time.perf_counter() - start)
    os.close(fd)
    costs = {name: float(np.median(values)) * 1e3 for name, values in parts.items()}
    costs["fsync of 4 KiB (disk)"] = float(np.median(synced)) * 1e3
    return costs


def label_throughput(root: Path, annotators: int, seconds: float, queued: int, round_size: int = 100) -> dict:
    """Answers acknowledged per second by ``annotators`` threads, for at most ``seconds`` or ``queued`` pairs.

    The queue holds ``queued`` pairs in rounds of ``round_size`` (a run's budget of queries);
    the segments have no simulator states, so nothing is rendered.
    """
    store = _queued_store(root / f"labels-{queued}.sqlite", queued, round_size)
    server = LabelServer(store, root / "videos-none", "bench", port=0)
    url = server.start()
    tokens = [server.queue.add_annotator(f"a{i}") for i in range(annotators)]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def annotate(token: str) -> None:
        mine = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            while time.perf_counter() < deadline and (pair := client.get("/api/next").json()["pair"]) is not None:
                sent = time.perf_counter()
                _answer(client, pair)
                mine.append(time.perf_counter() - sent)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=annotate, args=(t,)) for t in tokens]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    server.stop()
    stored = store.counts().labeled + store.counts().skipped
    assert stored == len(latencies), "every acknowledged answer is in the store"
    median, p95 = _percentiles(latencies)
    return {"queued": queued, "labels": stored, "seconds": elapsed, "per_second": stored / elapsed,
            "submit_median": median, "submit_p95": p95}


def _serve(store_path: str, videos: str, ready: multiprocessing.Queue) -> None:
    """A label server in its own process (for the memory probe): puts its address and a token on ``ready``."""
    server = LabelServer(PreferenceStore(store_path), videos, "bench", port=0)
    ready.put((server.start(), server.queue.add_annotator("probe")))
    server.wait()


def _memory(pid: int) -> dict[str, float]:
    """Resident memory of a process in MiB: now (``VmRSS``) and its peak so far (``VmHWM``)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def _post_large(url: str, megabytes: int, chunked: bool) -> str:
    """One unauthenticated POST of ``megabytes`` MB to /api/label; what came back (status, or the error)."""
    piece = b"x" * (1 << 20)
    content = (piece for _ in range(megabytes)) if chunked else piece * megabytes
    try:
        response = httpx.post(f"{url}/api/label", content=content, headers={"Content-Type": "application/json"},
                              timeout=60)
        return str(response.status_code)
    except httpx.HTTPError as error:  # the server answered and closed before the body was sent
        return type(error).__name__


def memory_probe(root: Path, bodies: int, megabytes: int) -> dict[str, object]:
    """The server process's memory before and after ``bodies`` concurrent unauthenticated POSTs of
    ``megabytes`` MB each, sent with a ``Content-Length`` and then chunked without one."""
    store_path = root / "memory.sqlite"
    PreferenceStore(store_path).close()
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    process = context.Process(target=_serve, args=(str(store_path), str(root / "videos-memory"), ready))
    process.start()
    try:
        url, token = ready.get(timeout=120)
        before = _memory(process.pid)
        outcomes: dict[str, list[str]] = {}
        for chunked in (False, True):
            results: list[str] = []
            threads = [threading.Thread(target=lambda: results.append(_post_large(url, megabytes, chunked)))
                       for _ in range(bodies)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            outcomes["chunked" if chunked else "with Content-Length"] = sorted(results)
        after = _memory(process.pid)
        alive = httpx.get(f"{url}/api/session", headers={"Authorization": f"Bearer {token}"}).status_code
    finally:
        process.terminate()
        process.join(10)
    return {"before": before, "after": after, "outcomes": outcomes, "alive": alive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="pairs queued one at a time")
    parser.add_argument("--round", type=int, default=10, help="pairs queued at once (a round)")
    parser.add_argument("--workers", type=int, default=1, help="render processes (the default of teacher.human)")
    parser.add_argument("--annotators", type=int, default=8, help="annotator threads for the throughput test")
    parser.add_argument("--seconds", type=float, default=10.0, help="longest duration of each throughput test")
    parser.add_argument("--queued", type=int, nargs="+", default=[1000, 20000],
                        help="queue sizes for the throughput test (pairs, in rounds of 100)")
    parser.add_argument("--bodies", type=int, default=4, help="concurrent large unauthenticated POSTs (memory probe)")
    parser.add_argument("--megabytes", type=int, default=48, help="size of each large POST")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        latency = playable_latency(Path(tmp), args.pairs, args.round, args.workers)
        throughput = [label_throughput(Path(tmp), args.annotators, args.seconds, queued) for queued in args.queued]
        costs = store_costs(Path(tmp), args.queued[0])
        memory = memory_probe(Path(tmp), args.bodies, args.megabytes)
    single, in_round = _percentiles(latency["single"]), _percentiles(latency["round"])
    pace = (max(latency["round"]) - min(latency["round"])) / max(len(latency["round"]) - 1, 1)
    load = os.getloadavg()[0]
    lines = [
        "# Labeling server bench",
        "",
        f"`python -m pbrl.experiments.bench.label_server --pairs {args.pairs} --round {args.round} --workers {args.workers} "
        f"--annotators {args.annotators} --seconds {args.seconds:g} --queued {' '.join(map(str, args.queued))} "
        f"--bodies {args.bodies} --megabytes {args.megabytes}` "
        f"on {os.cpu_count()} CPU cores "
        f"(load average {load:.1f} at the end: the cores are shared), no GPU, MuJoCo on Mesa's software EGL.",
        "",
        "## Queued → playable (50-step HalfCheetah segments, 256×256, H.264 mp4, both clips downloaded)",
        "",
        "| case | pairs | median s | p95 s |",
        "| --- | ---: | ---: | ---: |",
        f"| one pair queued at a time | {len(latency['single'])} | {single[0]:.2f} | {single[1]:.2f} |",
        f"| a round queued at once, answered instantly | {len(latency['round'])} | {in_round[0]:.2f} "
        f"| {in_round[1]:.2f} |",
        f"| first pair after server start (cold workers) | 1 | {latency['cold']:.2f} | |",
        "",
        f"In a round the pairs become playable one after another, one every {pace:.1f} s with {args.workers} render "
        "worker(s): an annotator who spends longer than that on a pair never waits after the first one.",
        "",
        "## Labels per second (loopback, nothing to render)",
        "",
        "| queued pairs | annotators | labels | seconds | labels/s | submit median ms | submit p95 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {t['queued']} | {args.annotators} | {t['labels']} | {t['seconds']:.1f} | {t['per_second']:.0f} | "
          f"{t['submit_median'] * 1e3:.1f} | {t['submit_p95'] * 1e3:.1f} |" for t in throughput),
        "",
        "Each label is one `GET /api/next` and one `POST /api/label`; the answer is committed to SQLite "
        "(WAL, `synchronous=FULL`) before it is acknowledged.",
        "",
        f"### Where a label's time goes (store work only, one thread, {args.queued[0]} queued pairs, median ms)",
        "",
        "| part | ms |",
        "| --- | ---: |",
        *(f"| {name} | {ms:.2f} |" for name, ms in costs.items()),
        "",
        f"The store's work for one label sums to {sum(v for k, v in costs.items() if 'disk' not in k):.1f} ms, "
        f"two commits of it durable (an fsync each, {costs['fsync of 4 KiB (disk)']:.1f} ms here). SQLite takes "
        "one writer at a time, so the commits of concurrent annotators queue one behind the other whatever their "
        f"number: at most {1e3 / (costs['next pair (commits the assignment)'] + costs['answer (commits the label)']):.0f}"
        " labels/s from the two write transactions alone, before HTTP and JSON.",
        "",
        f"## Memory of the server process under {args.bodies} concurrent unauthenticated {args.megabytes} MB POSTs",
        "",
        "| | VmRSS MiB | peak (VmHWM) MiB |",
        "| --- | ---: | ---: |",
        f"| before | {memory['before']['VmRSS']:.0f} | {memory['before']['VmHWM']:.0f} |",
        f"| after | {memory['after']['VmRSS']:.0f} | {memory['after']['VmHWM']:.0f} |",
        "",
        "What the senders got back: " + "; ".join(f"{kind}: {', '.join(got)}" for kind, got in memory["outcomes"].items())
        + f". The server answered an authenticated request afterwards with {memory['alive']}.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
