"""Aggregate many runs the way the field reports them (Agarwal et al., 2021, "Deep RL at the
Edge of the Statistical Precipice"): the interquartile mean (IQM) of final scores with a
95% stratified percentile-bootstrap interval, per group of runs (e.g. per teacher preset),
and mean learning curves against env steps and against labels.

``pbrl report SWEEP_DIR`` reads every ``*/metrics.jsonl`` below it, groups runs by the
config keys that differ between them (seeds excluded), writes ``report.md`` and
``report.png`` next to them.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from pbrl.run_log import MetricsLog  # noqa: E402


def iqm(scores: np.ndarray) -> float:
    """Mean of the middle 50% of scores (25%–75% quantiles, trimming ⌊n/4⌋ runs on each side)."""
    x = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    cut = len(x) // 4
    return float(x[cut : len(x) - cut].mean()) if len(x) else float("nan")


def stratified_bootstrap_ci(
    scores: np.ndarray, statistic=iqm, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over runs ``scores[run, task]``,
    resampling runs with replacement independently within each task (stratified)."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[:, None] if scores.ndim == 1 else scores
    rng = np.random.default_rng(seed)
    n = scores.shape[0]
    stats = [statistic(np.take_along_axis(scores, rng.integers(0, n, size=scores.shape), axis=0)) for _ in range(reps)]
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_runs(root: Path) -> list[dict]:
    """Every run below ``root``: its flattened config and metrics rows."""
    runs = []
    for metrics in sorted(Path(root).glob("**/metrics.jsonl")):
        config_path = metrics.parent / "config.yaml"
        if config_path.exists():
            config = _flatten(yaml.safe_load(config_path.read_text()))
            runs.append({"dir": metrics.parent, "config": config, "rows": MetricsLog(metrics).read()})
    return runs


def group_runs(runs: list[dict]) -> dict[str, list[dict]]:
    """Group by the config values that differ across runs, ignoring seed and run_dir."""
    keys = sorted({k for r in runs for k in r["config"]})
    varying = [k for k in keys if k not in ("seed", "run_dir") and len({str(r["config"].get(k)) for r in runs}) > 1]
    groups: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        name = ", ".join(f"{k}={run['config'].get(k)}" for k in varying) or "all runs"
        groups[name].append(run)
    return dict(groups)


def final_value(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(values[-1]) if values else float("nan")


def write_report(root: Path, metric: str = "eval/true_return") -> Path:
    """Markdown table (IQM, 95% CI, mean, n) and curves of every group below ``root``."""
    runs = load_runs(root)
    if not runs:
        raise FileNotFoundError(f"no runs (metrics.jsonl + config.yaml) below {root}")
    groups = group_runs(runs)
    lines = [f"# Report: {root}", "", f"Final `{metric}` per group: IQM with a 95% stratified bootstrap interval.", "",
             "| group | runs | IQM | 95% CI | mean | final labels | reward corr. |", "| --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    fig, (ax_steps, ax_labels) = plt.subplots(1, 2, figsize=(11, 4))
    for name, members in groups.items():
        finals = np.array([final_value(r["rows"], metric) for r in members])
        finals = finals[~np.isnan(finals)]
        low, high = stratified_bootstrap_ci(finals) if len(finals) else (float("nan"), float("nan"))
        labels = np.nanmean([final_value(r["rows"], "teacher/labeled") for r in members])
        corr = np.nanmean([final_value(r["rows"], "reward/true_correlation") for r in members])
        lines.append(f"| {name} | {len(members)} | {iqm(finals):.1f} | [{low:.1f}, {high:.1f}] | {finals.mean():.1f} | "
                     f"{labels:.0f} | {corr:.2f} |")
        _plot_group(ax_steps, ax_labels, members, metric, name)
    for ax, xlabel in ((ax_steps, "env steps"), (ax_labels, "labels")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(root) / "report.png", dpi=110)
    plt.close(fig)
    out = Path(root) / "report.md"
    out.write_text("\n".join(lines) + "\n\n![curves](report.png)\n")
    return out


def _plot_group(ax_steps, ax_labels, members: list[dict], metric: str, name: str) -> None:
    """Mean curve with a min–max band across seeds, against steps and against labels."""
    curves = []
    for run in members:
        labels = 0.0
        points = []
        for row in run["rows"]:
            labels = row.get("teacher/labeled", labels) or labels
            if row.get(metric) is not None:
                points.append((row["step"], labels, row[metric]))
        if points:
            curves.append(np.array(points))
    if not curves:
        return
    length = min(len(c) for c in curves)
    stacked = np.stack([c[:length] for c in curves])  # [runs, points, (step, labels, value)]
    steps, labels, values = stacked[0, :, 0], stacked[:, :, 1].mean(0), stacked[:, :, 2]
    line = ax_steps.plot(steps, values.mean(0), label=name)[0]
    ax_steps.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.15)
    ax_labels.plot(labels, values.mean(0), marker=".", color=line.get_color(), label=name)
