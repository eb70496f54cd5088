"""Learning curves of one or more runs from their ``metrics.jsonl`` (``pbrl plot RUN_DIR…``).

Four panels: true return against env steps (evaluation, and training episodes), true
return against labels, and the reward model's accuracy and reward correlation against
labels — the plots PbRL papers report.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pbrl.run_log import MetricsLog  # noqa: E402


def _series(rows: list[dict], x: str, y: str) -> tuple[list[float], list[float]]:
    labels = 0.0
    xs, ys = [], []
    for row in rows:
        labels = row.get("teacher/labeled", labels) or labels
        if row.get(y) is None:
            continue
        xs.append(labels if x == "labels" else row["step"])
        ys.append(row[y])
    return xs, ys


def plot_runs(run_dirs: list[Path], out: Path) -> Path:
    """Draw the four panels for every run and save a PNG; a run without ``metrics.jsonl`` is refused
    (``FileNotFoundError``) before anything is drawn, rather than giving an empty figure."""
    for run in run_dirs:
        if not (Path(run) / "metrics.jsonl").is_file():
            what = "is not a pbrl run directory (no metrics.jsonl)" if Path(run).is_dir() else "does not exist"
            raise FileNotFoundError(f"{run} {what}; pbrl plot takes run directories")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    panels = [
        (axes[0, 0], "step", ["eval/true_return", "train/true_episode_return"], "env steps", "true return"),
        (axes[0, 1], "labels", ["eval/true_return"], "labels", "true return (eval)"),
        (axes[1, 0], "labels", ["reward/heldout_accuracy", "reward/fresh_pair_accuracy"], "labels", "preference accuracy"),
        (axes[1, 1], "labels", ["reward/true_correlation"], "labels", "corr(learned, true reward)"),
    ]
    for run in run_dirs:
        rows = MetricsLog(Path(run) / "metrics.jsonl").read()
        for ax, x, keys, xlabel, ylabel in panels:
            for key in keys:
                xs, ys = _series(rows, x, key)
                if xs:
                    ax.plot(xs, ys, marker="." if x == "labels" else None, label=f"{Path(run).name}: {key.split('/')[1]}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    axes[1, 0].axhline(0.5, color="grey", lw=0.8, ls="--")
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
