"""Generate small offline preference datasets for a few MetaWorld tasks, in minutes on a CPU.

    python -m pbrl.experiments.make_metaworld_datasets                       # reach, button-press, drawer-open
    python -m pbrl.experiments.make_metaworld_datasets --tasks drawer-open-v3 --teacher synthetic --out datasets/mw

Each task gets ``<out>/<task>.h5`` from ``pbrl collect`` with MetaWorld's scripted expert
(no SAC run): five behaviour policies that blend the expert with a fixed untrained policy
at weights 0, ¼, ½, ¾, 1 (stand-ins for checkpoints along training), each with Gaussian
action noise 0.3 — the CPL paper's noise level — for 8 episodes of 150 steps; 800
segments of 32 steps and 3,000 random pairs, labeled by the regret teacher with the
expert's max-ent advantage (``--teacher synthetic`` for B-Pref partial-return labels).
The CPL paper's datasets are larger (2,500 episodes, 64-step segments, a SAC expert);
these keep its recipe — suboptimal policies plus noise, regret labels — at CPU scale.
Tasks run in parallel, one process per core.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect

TASKS = ("reach-v3", "button-press-v3", "drawer-open-v3")


def task_config(task: str, out: Path, teacher: str, seed: int) -> CollectConfig:
    """The collect settings used for every task (see the module docstring)."""
    return CollectConfig(
        env=f"metaworld:{task}", expert="scripted", weights=(0.0, 0.25, 0.5, 0.75, 1.0), noise=(0.3,),
        episodes_per_policy=8, max_episode_steps=150, segment_length=32, segments=800, pairs=3_000,
        seed=seed, out=str(out / f"{task}.h5"), teacher=CollectTeacherConfig(type=teacher),
    )


def _make(config: CollectConfig) -> Path:
    return collect(config, log=lambda line: print(f"[{config.env}] {line}", flush=True))


def make_datasets(tasks: tuple[str, ...], out: Path, teacher: str = "regret", seed: int = 0, jobs: int = 2) -> list[Path]:
    """Write one dataset per task under ``out``; returns their paths."""
    configs = [task_config(task, out, teacher, seed) for task in tasks]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(_make, configs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="MetaWorld v3 task names")
    parser.add_argument("--out", default="datasets/metaworld", help="output directory")
    parser.add_argument("--teacher", default="regret", choices=["regret", "synthetic"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (one per core)")
    args = parser.parse_args(argv)
    for path in make_datasets(tuple(args.tasks), Path(args.out), args.teacher, args.seed, args.jobs):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
