"""Run a grid of configurations × seeds, one process per core (or on a Ray cluster), then report.

    pbrl sweep --config experiments/configs/demo.yaml --seeds 0 1 2 3 4 \\
        --grid teacher.preset=oracle,mistake,skip --jobs 2 --out runs/sweep
    pbrl sweep ... --backend ray [--address auto]     # Ray tasks, see experiments/backends.py

Every run is an ordinary run directory (``OUT/<variant>-s<seed>``) that can be resumed
alone; a finished run (its ``checkpoint`` at the final step) is skipped when the sweep is
started again, an unfinished one is resumed. B-Pref's robustness grid is
``--grid teacher.preset=oracle,stoc,mistake,skip,equal,myopic``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from pbrl.experiments.backends import Job, finished, gpu_share, run_jobs
from pbrl.experiments.config import ConfigError, load_yaml, parse_config


def expand_grid(grid: list[str]) -> list[list[str]]:
    """``["a=1,2", "b=x"]`` → ``[["a=1", "b=x"], ["a=2", "b=x"]]``."""
    axes = []
    for item in grid:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,…, got {item!r}")
        key, values = item.split("=", 1)
        axes.append([f"{key}={v}" for v in values.split(",")])
    return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


def _variant_name(overrides: list[str]) -> str:
    return "-".join(o.split(".")[-1].replace("=", "_") for o in overrides) or "base"


def sweep_jobs(config: str | None, seeds: list[int], grid: list[str], out: Path, extra: list[str],
               gpu_fraction: float = 0.25) -> list[Job]:
    """One job per grid cell × seed, in ``OUT/<variant>-s<seed>``; runs on CUDA ask ``gpu_fraction``
    of a GPU on Ray. Every config is parsed here, so a bad one fails before anything starts."""
    data = load_yaml(config) if config else {}
    jobs = []
    for overrides in expand_grid(grid):
        for seed in seeds:
            args = ["--seed", str(seed), *(["--config", str(Path(config).resolve())] if config else [])]
            for o in overrides + extra:
                args += ["--set", o]
            share = gpu_share(parse_config(data, [*overrides, *extra, f"seed={seed}"]), gpu_fraction)
            jobs.append(Job(Path(out).resolve() / f"{_variant_name(overrides)}-s{seed}", tuple(args), share))
    return jobs


def run_sweep(config: str | None, seeds: list[int], grid: list[str], out: Path, jobs: int, extra: list[str],
              backend: str = "local", address: str | None = None, gpu_fraction: float = 0.25) -> list[Path]:
    """Run the sweep (``backend`` local or ray, see :mod:`pbrl.experiments.backends`); the failed run directories."""
    todo = [job for job in sweep_jobs(config, seeds, grid, out, extra, gpu_fraction) if not finished(job.run_dir)]
    print(f"pbrl sweep: {len(todo)} runs to do in {out} on the {backend} backend ({jobs} parallel)", flush=True)
    return run_jobs(todo, backend, jobs, address)
