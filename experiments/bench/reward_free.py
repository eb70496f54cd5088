"""Bench: reward-free preference learning on the generated MetaWorld datasets.

    python -m pbrl.experiments.bench.reward_free                  # 3 tasks × 5 methods × 3 seeds, 2 processes

Methods, all offline on the same labeled pairs (``experiments/make_metaworld_datasets.py``;
generated first if missing):

* ``cpl`` — Contrastive Preference Learning (``experiments/configs/cpl_metaworld_offline.yaml``);
* ``ipl`` — Inverse Preference Learning with IQL extraction (``ipl_metaworld_offline.yaml``);
* ``p-iql`` — PEBBLE-style reward learning (Bradley–Terry ensemble) + offline RL (IQL), the
  two-phase baseline of both papers (the IPL settings for the IQL part);
* ``bc`` — behaviour cloning on every segment; ``sft`` — on the preferred segments only (the
  CPL paper's "SFT"); both with CPL's network and optimiser.

Each run's final policy is evaluated on 10 episodes (success rate, true return); wall time
is the whole run (training, both evaluations). Writes ``results/reward_free.md`` (mean ±
std over seeds) and ``results/reward_free.png``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pbrl.catalog import BCConfig  # noqa: E402
from pbrl.experiments.config import TrainConfig, load_yaml, parse_config  # noqa: E402
from pbrl.experiments.make_metaworld_datasets import TASKS, make_datasets  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
METHODS = {  # name -> (base config, method, extra overrides)
    "cpl": ("cpl_metaworld_offline.yaml", "cpl", []),
    "ipl": ("ipl_metaworld_offline.yaml", "ipl", []),
    "p-iql": ("piql_metaworld_offline.yaml", "piql", []),
    "bc": ("cpl_metaworld_offline.yaml", "bc", []),
    "sft": ("cpl_metaworld_offline.yaml", "bc", ["learner.bc_data=preferred"]),
}


def run_config(method: str, task: str, seed: int, data_dir: Path, runs: Path, steps: int) -> TrainConfig:
    base, name, extra = METHODS[method]
    overrides = [
        f"method={name}", f"env=metaworld:{task}", f"seed={seed}", f"steps={steps}", f"eval_interval={steps}",
        f"reward_free.dataset={data_dir / f'{task}.h5'}", f"run_dir={runs / task / method / f's{seed}'}", "progress=false",
    ]
    data = load_yaml(CONFIGS / base)
    if name == "bc":  # behaviour cloning keeps only the policy and optimiser keys of CPL's section
        data["learner"] = {"type": "bc", **{k: v for k, v in data["learner"].items() if k in {f.name for f in fields(BCConfig)}}}
    return parse_config(data, overrides + extra)


def _run(job: tuple[str, TrainConfig]) -> dict:
    from pbrl.experiments.runner import Runner

    method, config = job
    started = time.perf_counter()
    summary = Runner(config, Path(config.run_dir)).train()
    row = {"task": config.env.partition(":")[2], "method": method, "seed": config.seed,
           "success": summary["eval/success_rate"], "return": summary["eval/true_return"],
           "heldout_accuracy": summary.get("policy/heldout_accuracy", float("nan")),
           "seconds": time.perf_counter() - started}
    print(f"{row['task']:>16} {method:>6} s{config.seed}: success {row['success']:.2f}, return {row['return']:.0f}, "
          f"{row['seconds']:.0f} s", flush=True)
    return row


def _cell(values: list[float], spec: str) -> str:
    return f"{np.mean(values):{spec}} ± {np.std(values):{spec}}"


def write_report(rows: list[dict], out: Path, header: str) -> Path:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    pick = lambda t, m, k: [r[k] for r in rows if r["task"] == t and r["method"] == m]  # noqa: E731
    lines = [header, "", "Success rate (mean ± std over seeds):", "",
             "| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(_cell(pick(t, m, "success"), ".2f") for m in methods) + " |" for t in tasks]
    lines += ["", "True return:", "", "| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(_cell(pick(t, m, "return"), ".0f") for m in methods) + " |" for t in tasks]
    lines += ["", "Held-out preference accuracy (10% of pairs never trained on; bc/sft rank by log-likelihood):", "",
              "| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(_cell(pick(t, m, "heldout_accuracy"), ".2f") for m in methods) + " |" for t in tasks]
    lines += ["", "Wall time per run (s, training + two 10-episode evaluations, 1 torch thread, 2 runs at a time):", "",
              "| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(_cell(pick(t, m, "seconds"), ".0f") for m in methods) + " |" for t in tasks]
    out.parent.mkdir(parents=True, exist_ok=True)
    md = out.with_suffix(".md")
    md.write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        x = np.arange(len(tasks)) + i * width
        for ax, key in zip(axes, ("success", "seconds")):
            ax.bar(x, [np.mean(pick(t, m, key)) for t in tasks], width, yerr=[np.std(pick(t, m, key)) for t in tasks],
                   label=m, capsize=2)
    for ax, label in zip(axes, ("success rate", "wall seconds per run")):
        ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    plt.close(fig)
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPL vs IPL vs P-IQL vs BC/SFT on generated MetaWorld datasets")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500, help="gradient steps per run")
    parser.add_argument("--data", default="datasets/metaworld", help="dataset directory (made if missing)")
    parser.add_argument("--runs", default="runs/bench-reward-free", help="run directories (replaced)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "reward_free"))
    args = parser.parse_args(argv)

    data_dir, runs = Path(args.data), Path(args.runs)
    missing = tuple(t for t in args.tasks if not (data_dir / f"{t}.h5").exists())
    if missing:
        make_datasets(missing, data_dir, jobs=args.jobs)
    shutil.rmtree(runs, ignore_errors=True)
    jobs = [(m, run_config(m, t, s, data_dir, runs, args.steps)) for t in args.tasks for s in args.seeds for m in args.methods]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(_run, jobs))
    header = (f"# Reward-free preference learning on generated MetaWorld datasets\n\n"
              f"{len(args.seeds)} seeds × {args.steps} gradient steps per run; datasets from "
              f"`python -m pbrl.experiments.make_metaworld_datasets` (scripted expert blended with an untrained policy at "
              f"w = 0, ¼, ½, ¾, 1, noise 0.3, 40 episodes of 150 steps, 800 segments of 32 steps, 3,000 pairs, regret "
              f"labels). Total wall time {time.perf_counter() - started:.0f} s with {args.jobs} processes.")
    print(write_report(rows, Path(args.out), header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
