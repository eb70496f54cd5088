"""Run a grid of configurations × seeds, one process per core, then report.

    pbrl sweep --config experiments/configs/demo.yaml --seeds 0 1 2 3 4 \\
        --grid teacher.preset=oracle,mistake,skip --jobs 2 --out runs/sweep

Every run is an ordinary run directory (``OUT/<variant>-s<seed>``) that can be resumed
alone; a finished run (its ``checkpoint`` at the final step) is skipped when the sweep is
started again, an unfinished one is resumed. B-Pref's robustness grid is
``--grid teacher.preset=oracle,stoc,mistake,skip,equal,myopic``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pbrl.experiments.config import ConfigError, load_yaml


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


def _finished(run_dir: Path) -> bool:
    """Whether the run's last checkpoint is at its final step."""
    state = run_dir / "checkpoint" / "state.json"
    if not state.exists():
        return False
    return json.loads(state.read_text())["num_timesteps"] >= load_yaml(run_dir / "config.yaml")["steps"]


def run_sweep(config: str | None, seeds: list[int], grid: list[str], out: Path, jobs: int, extra: list[str]) -> list[Path]:
    commands = []
    for overrides in expand_grid(grid):
        for seed in seeds:
            run_dir = out / f"{_variant_name(overrides)}-s{seed}"
            if (run_dir / "config.yaml").exists():
                if _finished(run_dir):
                    continue
                commands.append((run_dir, [sys.executable, "-m", "pbrl.experiments.cli", "resume", str(run_dir)]))
                continue
            cmd = [sys.executable, "-m", "pbrl.experiments.cli", "train", "--no-progress", "--seed", str(seed), "--run-dir", str(run_dir)]
            cmd += ["--config", config] if config else []
            for o in overrides + extra:
                cmd += ["--set", o]
            commands.append((run_dir, cmd))

    def launch(item: tuple[Path, list[str]]) -> tuple[Path, int]:
        run_dir, cmd = item
        run_dir.mkdir(parents=True, exist_ok=True)
        with (run_dir.parent / f"{run_dir.name}.log").open("a") as log:
            return run_dir, subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)

    print(f"pbrl sweep: {len(commands)} runs to do in {out} with {jobs} parallel jobs", flush=True)
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for run_dir, code in pool.map(launch, commands):
            print(f"  {run_dir.name}: {'done' if code == 0 else f'FAILED (exit {code}, see {run_dir}.log)'}", flush=True)
            if code != 0:
                failed.append(run_dir)
    return failed
