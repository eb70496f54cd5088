"""Bench: every learner inside the online loop — policy returns, side by side on the same runs.

    python -m pbrl.experiments.bench.online_learners --expert runs/expert/checkpoint/agent.zip [--seeds 0 1]

Three groups; inside a group the runs differ only in the learner (same seeds, env, label
budget and schedule):

* ``oracle`` — the README's demo (``experiments/configs/demo.yaml``: HalfCheetah-v5, 20k env
  steps, 400 labels in rounds of 50, disagreement queries) with partial-return labels:
  ``learner.type=bt`` (PEBBLE), ``hprior`` (Hindsight PRIOR), ``reed`` (REED).
* ``regret`` (needs ``--expert``) — the same runs labeled by the expert's optimal advantage
  (Knox et al.): ``bt`` (Â mistaken for a reward: PEBBLE's pipeline), ``regret`` with
  ``learner.mode=greedy`` (an actor on Â, the second paper's recommendation) and
  ``learner.mode=reward`` (Â as SAC's reward, with the fix).
* ``reward-free`` — MetaWorld reach-v3, 20k env steps, 2,000 oracle labels in rounds of 200,
  uniform queries (``experiments/configs/{cpl,ipl}_metaworld_online.yaml``): online CPL and
  IPL (the policy collects, the teacher labels, the learner updates), and PEBBLE on the same
  schedule.

Every variant is a :mod:`pbrl.experiments.sweep` directory (re-running skips finished runs and
resumes unfinished ones). Writes ``results/online_learners.md`` (final evaluation return and
success: mean ± std over seeds, and the env-steps/s of each run) and
``results/online_learners.png`` (evaluation return against env steps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pbrl.experiments.report import final_value, load_runs  # noqa: E402
from pbrl.experiments.sweep import run_sweep  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RESULTS = Path(__file__).resolve().parent / "results"
DEMO = str(CONFIGS / "demo.yaml")
EVAL = ["eval_episodes=5"]


def groups(expert: str | None) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Group → [(variant, base config, overrides)]."""
    out = {"oracle": [(learner, DEMO, [*EVAL, f"learner.type={learner}"]) for learner in ("bt", "hprior", "reed")]}
    if expert:
        regret = [*EVAL, "teacher.type=regret", f"teacher.expert={expert}"]
        out["regret"] = [
            ("bt", DEMO, [*regret, "learner.type=bt"]),
            ("regret-greedy", DEMO, [*regret, "learner.type=advantage", "learner.mode=greedy"]),
            ("regret-reward", DEMO, [*regret, "learner.type=advantage", "learner.mode=reward"]),
        ]
    cpl, ipl = str(CONFIGS / "cpl_metaworld_online.yaml"), str(CONFIGS / "ipl_metaworld_online.yaml")
    out["reward-free"] = [("cpl", cpl, []), ("ipl", ipl, []), ("pebble", cpl, ["method=pebble", "reward_free=null"])]
    return out


def _finished_runs(directory: Path) -> list[dict]:
    """The runs below ``directory`` that reached their final step (a stopped run would compare early numbers)."""
    runs = load_runs(directory) if directory.exists() else []
    return [r for r in runs if r["rows"] and r["rows"][-1]["step"] >= r["config"]["steps"]]


def _cell(values: list[float], spec: str) -> str:
    values = [v for v in values if not np.isnan(v)]
    return f"{np.mean(values):{spec}} ± {np.std(values):{spec}}" if values else "—"


def write_results(out: Path, plan: dict[str, list[tuple[str, str, list[str]]]]) -> Path:
    lines = ["# Learners in the online loop", "", "Final evaluation (5 episodes) at the last step, mean ± std over the seeds whose runs finished. "
             "Steps/s: env steps per wall second of the whole run (training, labeling, evaluation), 1 torch thread "
             "per run, two runs at a time on 2 shared cores.", ""]
    fig, axes = plt.subplots(1, len(plan), figsize=(5 * len(plan), 3.8), squeeze=False)
    for ax, (group, variants) in zip(axes[0], plan.items()):
        lines += [f"## {group}", "", "| learner | seeds | eval return | eval success | labels | steps/s |", "|---|---:|---:|---:|---:|---:|"]
        for name, _, _ in variants:
            runs = _finished_runs(out / group / name)
            if not runs:
                continue
            ret = [final_value(r["rows"], "eval/true_return") for r in runs]
            success = [final_value(r["rows"], "eval/success_rate") for r in runs]
            labels = [final_value(r["rows"], "teacher/labeled") for r in runs]
            speed = [r["rows"][-1]["step"] / max(r["rows"][-1]["time"] - r["rows"][0]["time"], 1e-9) for r in runs]
            lines.append(f"| {name} | {len(runs)} | {_cell(ret, '.1f')} | {_cell(success, '.2f')} | "
                         f"{np.mean(labels):.0f} | {np.mean(speed):.1f} |")
            curves = [np.array([(row["step"], row["eval/true_return"]) for row in r["rows"] if row.get("eval/true_return") is not None])
                      for r in runs]
            length = min(len(c) for c in curves)
            if length:
                stacked = np.stack([c[:length] for c in curves])
                line = ax.plot(stacked[0, :, 0], stacked[:, :, 1].mean(0), marker=".", label=name)[0]
                ax.fill_between(stacked[0, :, 0], stacked[:, :, 1].min(0), stacked[:, :, 1].max(0), color=line.get_color(), alpha=0.15)
        lines.append("")
        ax.set_title(group)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval true return")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / "online_learners.png", dpi=110)
    plt.close(fig)
    report = RESULTS / "online_learners.md"
    report.write_text("\n".join(lines) + "\n![curves](online_learners.png)\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expert", help="SAC checkpoint (agent.zip) for the regret-teacher group; omitted: that group is skipped")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--groups", nargs="+", help="only these groups (default: all)")
    parser.add_argument("--out", default="runs/bench-online-learners")
    args = parser.parse_args()
    out, plan = Path(args.out), groups(args.expert)
    for group, variants in plan.items():
        if args.groups and group not in args.groups:
            continue
        for name, config, overrides in variants:
            run_sweep(config, args.seeds, [], out / group / name, args.jobs, overrides)
    print(write_results(out, plan))


if __name__ == "__main__":
    main()
