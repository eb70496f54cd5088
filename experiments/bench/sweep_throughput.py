"""Many seeds at once: the summed env-step throughput of a 2-job sweep against one run alone.

Both go through the sweep's own path (:func:`pbrl.experiments.backends.run_local`, one child
process per run, one torch thread each): ``single`` runs one seed, ``pair`` two seeds at
once, alternating ``--repeats`` times so both see the same machine load. For each
measurement: wall seconds, env steps per wall second summed over the runs (start-up,
evaluation and feedback rounds included: what a sweep really gets), the runs' CPU seconds
(``RUSAGE_CHILDREN``), steps per CPU second, and the load average around it.

The goal (issue 12) is ``pair ≥ 0.9 × 2 × single``. On a machine other processes share, the
wall-clock ratio measures the cores left over as much as pbrl: the CPU columns separate the
two — if steps per CPU second are the same alone and in pairs, the runs do not slow each
other down, and ``CPU s ÷ wall s`` says how many cores the runs actually got.

    python -m pbrl.experiments.bench.sweep_throughput --steps 5000 --repeats 2

Writes ``sweep_throughput.md`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pbrl.experiments.backends import Job, run_local

RESULTS = Path(__file__).resolve().parent / "results"
DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


@dataclass
class Measurement:
    kind: str  # "single" or "pair"
    runs: int
    steps: int
    wall_s: float
    cpu_s: float
    load_before: float
    load_after: float

    @property
    def steps_per_s(self) -> float:
        return self.runs * self.steps / self.wall_s

    @property
    def steps_per_cpu_s(self) -> float:
        return self.runs * self.steps / self.cpu_s

    @property
    def cores_used(self) -> float:
        return self.cpu_s / self.wall_s


def measure(kind: str, seeds: list[int], steps: int, config: Path, sets: list[str], root: Path) -> Measurement:
    """Run ``seeds`` at once (one process each) and time them."""
    args = ["--config", str(config), "--set", f"steps={steps}", *[a for s in sets for a in ("--set", s)]]
    jobs = [Job(root / f"{kind}-{time.monotonic_ns()}-s{seed}", ("--seed", str(seed), *args)) for seed in seeds]
    load = os.getloadavg()[0]
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    failed = run_local(jobs, parallel=len(jobs))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if failed:
        raise RuntimeError(f"runs failed: {failed} (see their .log files)")
    cpu_s = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return Measurement(kind, len(jobs), steps, wall, cpu_s, load, os.getloadavg()[0])


def write(results: list[Measurement], args: argparse.Namespace, path: Path) -> None:
    single = [m for m in results if m.kind == "single"]
    pair = [m for m in results if m.kind == "pair"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    ratio = mean([m.steps_per_s for m in pair]) / mean([m.steps_per_s for m in single])
    cpu_ratio = mean([m.steps_per_cpu_s for m in pair]) / mean([m.steps_per_cpu_s for m in single])
    lines = [
        "# Sweep throughput: 2 runs at once against 1 (bench sweep_throughput)", "",
        f"Command: `python -m pbrl.experiments.bench.sweep_throughput --steps {args.steps} --repeats {args.repeats}"
        + "".join(f" --set {s}" for s in args.set) + f"`; config {args.config.name} (PEBBLE, HalfCheetah-v5), "
        f"{os.cpu_count()} CPUs, one torch thread per run, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
        "| # | kind | runs | wall s | env steps/s (sum) | CPU s | steps per CPU s | cores used | load avg before → after |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for i, m in enumerate(results):
        lines.append(f"| {i} | {m.kind} | {m.runs} | {m.wall_s:.1f} | {m.steps_per_s:.1f} | {m.cpu_s:.1f} | "
                     f"{m.steps_per_cpu_s:.1f} | {m.cores_used:.2f} | {m.load_before:.1f} → {m.load_after:.1f} |")
    lines += [
        "",
        f"**Pair ÷ single, env steps per wall second: {ratio:.2f}** (goal ≥ 1.8 = 0.9 × 2). "
        f"Steps per CPU second, pair ÷ single: {cpu_ratio:.2f} (1.0 = the runs do not slow each other's work down).",
        "",
        f"Cores the runs got: {mean([m.cores_used for m in single]):.2f} alone, {mean([m.cores_used for m in pair]):.2f} "
        f"for the pair (2.0 would be both cores); the load average (other processes included) was "
        f"{min(min(m.load_before, m.load_after) for m in results):.1f}–{max(max(m.load_before, m.load_after) for m in results):.1f} "
        f"on {os.cpu_count()} CPUs.",
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEMO)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="sweep_throughput-") as tmp:
        for repeat in range(args.repeats):
            for kind, seeds in (("single", [repeat]), ("pair", [repeat, repeat + 100])):
                results.append(measure(kind, seeds, args.steps, args.config, args.set, Path(tmp)))
                print(f"{kind}: {results[-1]}", flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write(results, args, args.out_dir / "sweep_throughput.md")
    print((args.out_dir / "sweep_throughput.md").read_text())


if __name__ == "__main__":
    main()
