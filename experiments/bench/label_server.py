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

Usage::

    python -m pbrl.experiments.bench.label_server [--pairs 10] [--round 10] [--workers 1] [--annotators 4] [--seconds 10]

Prints a table and writes ``experiments/bench/results/label_server.md``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from pbrl.experiments.label_cli import rollout_segments
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


def label_throughput(root: Path, annotators: int, seconds: float, queued: int, round_size: int = 100) -> dict:
    """Answers acknowledged per second by ``annotators`` threads, for at most ``seconds`` or ``queued`` pairs.

    The queue holds ``queued`` pairs in rounds of ``round_size`` (a run's budget of queries);
    the segments have no simulator states, so nothing is rendered.
    """
    store = PreferenceStore(root / f"labels-{queued}.sqlite")
    n, rng = 2 * queued, np.random.default_rng(0)
    fake = SegmentBatch(Segments(*(rng.normal(size=(n, 5, 3)).astype(np.float32) for _ in range(3))),
                        SegmentTruth(np.zeros((n, 5)), np.zeros((n, 5))), Provenance("fake", np.zeros(n), np.zeros(n)))
    ids = store.add_segments(fake)
    server = LabelServer(store, root / "videos-none", "bench", port=0)
    for start in range(0, queued, round_size):
        rows = slice(start, min(start + round_size, queued))
        left, right = ids[:queued][rows], ids[queued:][rows]
        server.enqueue(store.add_queries(left, right, round_index=start // round_size, teacher="human"), 1)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="pairs queued one at a time")
    parser.add_argument("--round", type=int, default=10, help="pairs queued at once (a round)")
    parser.add_argument("--workers", type=int, default=1, help="render processes (the default of teacher.human)")
    parser.add_argument("--annotators", type=int, default=4, help="annotator threads for the throughput test")
    parser.add_argument("--seconds", type=float, default=10.0, help="longest duration of each throughput test")
    parser.add_argument("--queued", type=int, nargs="+", default=[1000, 20000],
                        help="queue sizes for the throughput test (pairs, in rounds of 100)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        latency = playable_latency(Path(tmp), args.pairs, args.round, args.workers)
        throughput = [label_throughput(Path(tmp), args.annotators, args.seconds, queued) for queued in args.queued]
    single, in_round = _percentiles(latency["single"]), _percentiles(latency["round"])
    pace = (max(latency["round"]) - min(latency["round"])) / max(len(latency["round"]) - 1, 1)
    load = os.getloadavg()[0]
    lines = [
        "# Labeling server bench",
        "",
        f"`python -m pbrl.experiments.bench.label_server --pairs {args.pairs} --round {args.round} --workers {args.workers} "
        f"--annotators {args.annotators} --seconds {args.seconds:g} --queued {' '.join(map(str, args.queued))}` "
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
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
