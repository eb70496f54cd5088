"""Aggregate many runs the way the field reports them (Agarwal et al., 2021, "Deep RL at the
Edge of the Statistical Precipice"), with the library that paper released, ``rliable``:
the interquartile mean (IQM) of final scores with a 95% stratified-bootstrap interval per
method, performance profiles, and learning curves against env steps and against labels.

``pbrl report ROOT`` reads every ``*/metrics.jsonl`` below ``ROOT``. Runs on the true reward
(``method=sac``, or a config with ``reproduce.role: baseline``) are the **baseline**: when
present, a run's score is its eval return ÷ the baseline's eval return at the same step
(the mean over the baseline runs of the same env, interpolated between their
evaluations) — the normalised score; otherwise the raw metric. The other runs are grouped
by the config keys that differ between them (seed, run directory and env excluded: envs
are the tasks of rliable's runs × tasks score matrix). Writes ``report.md``, ``report.png``
(curves), ``report_profiles.png`` (performance profiles) and ``report.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from rliable import library as rly  # noqa: E402
from rliable import metrics as rly_metrics  # noqa: E402

from pbrl.experiments.config import ConfigError, convert_legacy_config, is_legacy, parse_config, to_dict  # noqa: E402
from pbrl.run_log import MetricsLog  # noqa: E402
from pbrl.teachers.synthetic import KNOBS, PRESETS  # noqa: E402

REPS = 2000  # bootstrap resamples (rliable's paper uses 50,000; 2,000 keeps a 72-group report near a minute)
BASELINE_GROUP = "SAC on the true reward (baseline)"
NAMING_KEYS = ("teacher.preset",)
"""Keys that name a bundle of settings: a group is named by them rather than by the settings they fix."""
_EPS = 1e-8


# ------------------------------------------------------------------------------ statistics
def iqm(scores: np.ndarray) -> float:
    """Interquartile mean (rliable.metrics.aggregate_iqm: 25% trimmed on each side over all
    runs and tasks, i.e. ⌊n/4⌋ runs cut on each side)."""
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    return float(rly_metrics.aggregate_iqm(x.reshape(x.shape[0], -1)))


def _seeded(seed: int):
    """rliable 1.2's StratifiedBootstrap draws its indices from NumPy's *global* RNG
    (``np.random.choice`` in ``update_indices``; the ``random_state`` it forwards to arch is
    never used), so seed that, and put the caller's global state back afterwards."""

    class _Seeded:
        def __enter__(self):
            self.state = np.random.get_state()
            np.random.seed(seed)

        def __exit__(self, *exc):
            np.random.set_state(self.state)

    return _Seeded()


def interval_estimates(
    scores: np.ndarray, statistic=iqm, reps: int = REPS, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """``(point, low, high)``: ``statistic`` of ``scores[run, task]`` and its percentile
    stratified-bootstrap interval, from ``rliable.library.get_interval_estimates`` (runs
    resampled with replacement within each task), with NumPy's global RNG seeded to ``seed``
    for the call (see :func:`_seeded`)."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[:, None] if scores.ndim == 1 else scores
    with _seeded(seed):
        points, intervals = rly.get_interval_estimates(
            {"scores": scores}, lambda x: np.array([statistic(x)]), reps=reps, confidence_interval_size=1.0 - alpha
        )
    return float(points["scores"][0]), float(intervals["scores"][0, 0]), float(intervals["scores"][1, 0])


def stratified_bootstrap_ci(
    scores: np.ndarray, statistic=iqm, reps: int = REPS, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile stratified-bootstrap interval of ``statistic`` over ``scores[run, task]`` (rliable)."""
    _, low, high = interval_estimates(scores, statistic, reps, alpha, seed)
    return low, high


def performance_profile(
    scores: np.ndarray, taus: np.ndarray, reps: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """rliable's score-distribution profile P(score > τ) over all runs and tasks, and its 95%
    stratified-bootstrap band ``[2, len(taus)]`` (seeded, unlike ``create_performance_profile``)."""
    taus = np.asarray(taus, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[:, None] if scores.ndim == 1 else scores
    with _seeded(seed):
        points, intervals = rly.get_interval_estimates({"p": scores}, lambda x: rly.score_distributions(x, taus), reps=reps)
    return points["p"], intervals["p"]


# ---------------------------------------------------------------------------- loading runs
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resolved(raw: dict) -> dict:
    """A run's config with today's defaults filled in, so that a run written before a key existed
    groups with the runs that have it at its default (what the older code did); a config that no
    longer parses is kept as written."""
    try:
        config = to_dict(parse_config(convert_legacy_config(raw) if is_legacy(raw) else raw))
    except ConfigError:
        return raw
    return named_preset(config)


def named_preset(config: dict) -> dict:
    """B-Pref's teachers by name: a synthetic teacher whose five knobs equal one of the six presets'
    is named by that preset (the reproduce catalogue writes B-Pref's knobs as the reference scripts
    do, beside the default preset name), so a teacher grid groups as ``teacher.preset=mistake``."""
    teacher = config.get("teacher") or {}
    if teacher.get("type") == "synthetic":
        for name, preset in PRESETS.items():
            if all(teacher.get(knob) is not None and float(teacher[knob]) == getattr(preset, knob) for knob in KNOBS):
                return {**config, "teacher": {**teacher, "preset": name}}
    return config


def load_runs(root: Path) -> list[dict]:
    """Every run below ``root``: its flattened, :func:`resolved` config and metrics rows."""
    runs = []
    for metrics in sorted(Path(root).glob("**/metrics.jsonl")):
        config_path = metrics.parent / "config.yaml"
        if config_path.exists():
            config = _flatten(resolved(yaml.safe_load(config_path.read_text()) or {}))
            runs.append({"dir": metrics.parent, "config": config, "rows": MetricsLog(metrics).read()})
    return runs


def is_baseline(config: dict) -> bool:
    """A run on the true reward: ``method=sac`` (or ``agent.type=sac`` with no learner), or marked
    ``reproduce.role: baseline`` by the reproduction runner."""
    if config.get("reproduce.role") is not None:
        return config.get("reproduce.role") == "baseline"
    if config.get("method") is not None:
        return config.get("method") == "sac"
    return config.get("agent.type") == "sac" and config.get("learner.type") in (None, "none")


def run_env(config: dict) -> str:
    return str(config.get("env", config.get("env.id", "env")))


def group_runs(runs: list[dict], exclude: tuple[str, ...] = ("seed", "run_dir", "env")) -> dict[str, list[dict]]:
    """Group by the config values that differ across runs, ignoring ``exclude``. A key whose value
    follows from a finer varying key, or from a key of :data:`NAMING_KEYS`, is left out of the names:
    a teacher grid's groups are ``teacher.preset=mistake``, not that and the ``teacher.eps_mistake=0.1``
    the preset sets."""
    keys = sorted({k for r in runs for k in r["config"]})
    values = {k: [str(r["config"].get(k)) for r in runs] for k in keys if k not in exclude}
    varying = [k for k, v in values.items() if len(set(v)) > 1]

    def determines(a: str, b: str) -> bool:  # b's value is a function of a's
        return len(set(zip(values[a], values[b]))) == len(set(values[a]))

    varying = [k for k in varying
               if not any(determines(p, k) and (p in NAMING_KEYS or not determines(k, p)) for p in varying if p != k)]
    groups: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        name = ", ".join(f"{k}={run['config'].get(k)}" for k in varying) or "all runs"
        groups[name].append(run)
    return dict(groups)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def final_value(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(values[-1]) if values else float("nan")


def curve(rows: list[dict], key: str) -> np.ndarray:
    """``[points, 3]``: (env step, labels so far, value) at every row that has ``key``."""
    labels, points = 0.0, []
    for row in rows:
        labels = row.get("teacher/labeled", labels) or labels
        if row.get(key) is not None:
            points.append((float(row["step"]), float(labels), float(row[key])))
    return np.array(points, dtype=np.float64).reshape(-1, 3)


def baseline_curves(baselines: list[dict], metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per env: (steps, mean baseline value) over the baseline runs, each interpolated onto the union of their steps."""
    per_env: dict[str, list[np.ndarray]] = defaultdict(list)
    for run in baselines:
        c = curve(run["rows"], metric)
        if len(c):
            per_env[run_env(run["config"])].append(c)
    out = {}
    for env, curves in per_env.items():
        steps = np.unique(np.concatenate([c[:, 0] for c in curves]))
        out[env] = (steps, np.mean([np.interp(steps, c[:, 0], c[:, 2]) for c in curves], axis=0))
    return out


def normalise(values: np.ndarray, steps: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """values ÷ the baseline at the same steps (linear interpolation, held flat past its ends); NaN where it is ~0."""
    if reference is None:
        return np.asarray(values, dtype=np.float64)
    denominator = np.interp(steps, reference[0], reference[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(denominator) > _EPS, values / denominator, np.nan)


# ------------------------------------------------------------------------------- the report
def score_matrix(members: list[dict], metric: str, references: dict) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(scores[run, task], tasks, raw[run, task])`` of the final ``metric`` (normalised where a
    baseline exists); runs beyond the smallest count per task are dropped so tasks align."""
    per_task: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in sorted(members, key=lambda r: (run_env(r["config"]), str(r["config"].get("seed")))):
        c = curve(run["rows"], metric)
        if not len(c) or not np.isfinite(c[-1, 2]):
            continue
        env = run_env(run["config"])
        score = normalise(c[-1:, 2], c[-1:, 0], references.get(env) if references else None)[0]
        if np.isfinite(score):
            per_task[env].append((score, c[-1, 2]))
    tasks = sorted(per_task)
    n = min((len(v) for v in per_task.values()), default=0)
    scores = np.array([[per_task[t][i][0] for t in tasks] for i in range(n)], dtype=np.float64).reshape(n, len(tasks))
    raw = np.array([[per_task[t][i][1] for t in tasks] for i in range(n)], dtype=np.float64).reshape(n, len(tasks))
    return scores, tasks, raw


def _match(figure: dict, name: str, members: list[dict]) -> bool:
    if figure.get("group") is not None:
        return figure["group"] == name
    match = figure.get("match") or {}
    return bool(match) and all(str(r["config"].get(k)) == str(v) for r in members for k, v in match.items())


def write_report(
    root: Path, metric: str = "eval/true_return", published: list[dict] | None = None,
    notes: list[str] | None = None, reps: int = REPS, seed: int = 0,
) -> Path:
    """``report.md`` + ``report.png`` + ``report_profiles.png`` + ``report.json`` for the runs below
    ``root``. ``published``: reference figures ``{metric, value (number or "not retrieved"),
    source, group | match: {config key: value}}`` to set beside ours; ``notes``: lines printed
    under the title (scale, deviations from the published config)."""
    root = Path(root)
    runs = load_runs(root)
    if not runs:
        raise FileNotFoundError(f"no runs (metrics.jsonl + config.yaml) below {root}")
    baselines = [r for r in runs if is_baseline(r["config"])]
    methods = [r for r in runs if not is_baseline(r["config"])]
    references = baseline_curves(baselines, metric) if methods else {}
    normalised = bool(references)
    groups = group_runs(methods) if methods else {}
    if baselines:
        groups[BASELINE_GROUP] = baselines
    score_name = f"normalised `{metric}` (÷ SAC on the true reward at the same step)" if normalised else f"`{metric}`"
    lines = [f"# Report: {root}", ""] + [f"* {n}" for n in notes or []] + ([""] if notes else [])
    lines += [f"Final {score_name} per group: IQM with a 95% stratified-bootstrap interval "
              f"(rliable, {reps:,} resamples, seed {seed}), runs × tasks with tasks = envs.", ""]
    header = "| group | runs | tasks | IQM | 95% CI | mean |" + (" raw IQM |" if normalised else "") + " final labels | fresh-pair acc. | reward corr. |"
    lines += [header, "|" + " --- |" * (header.count("|") - 1)]
    summary: dict[str, Any] = {"metric": metric, "normalised": normalised, "reps": reps, "seed": seed, "groups": {}}
    fig, (ax_steps, ax_labels) = plt.subplots(1, 2, figsize=(12, 4.5))
    all_scores = {}
    for name, members in groups.items():
        scores, tasks, raw = score_matrix(members, metric, references)
        if scores.size:
            point, low, high = interval_estimates(scores, reps=reps, seed=seed)
            all_scores[name] = scores
        else:
            point = low = high = float("nan")
        labels = _nanmean([final_value(r["rows"], "teacher/labeled") for r in members])
        corr = _nanmean([final_value(r["rows"], "reward/true_correlation") for r in members])
        accuracy = _nanmean([final_value(r["rows"], "reward/fresh_pair_accuracy") for r in members])
        mean = float(np.mean(scores)) if scores.size else float("nan")
        row = f"| {name} | {len(members)} | {len(tasks)} | {point:.3g} | [{low:.3g}, {high:.3g}] | {mean:.3g} |"
        if normalised:
            row += f" {iqm(raw) if raw.size else float('nan'):.4g} |"
        lines.append(row + f" {labels:.0f} | {accuracy:.3f} | {corr:.2f} |")
        summary["groups"][name] = {"iqm": point, "ci": [low, high], "mean": mean, "runs": len(members), "tasks": tasks,
                                   "scores": scores.tolist(), "raw": raw.tolist(), "labels": float(labels),
                                   "fresh_pair_accuracy": accuracy, "reward_correlation": corr}
        _plot_group(ax_steps, ax_labels, members, metric, name, references if normalised else {})
    _finish_curves(fig, ax_steps, ax_labels, score_name.replace("`", ""), root / "report.png")
    if all_scores:
        _plot_profiles(all_scores, root / "report_profiles.png", "normalised score" if normalised else metric, seed)
    if published:
        lines += ["", "## Against the published figures", "",
                  "| figure | published | source | ours: IQM [95% CI] | runs |", "| --- | ---: | --- | --- | ---: |"]
        for figure in published:
            hit = next((n for n, m in groups.items() if _match(figure, n, m)), None)
            ours = summary["groups"].get(hit) if hit else None
            ours_text = f"{ours['iqm']:.3g} [{ours['ci'][0]:.3g}, {ours['ci'][1]:.3g}]" if ours else "no matching runs"
            value = figure.get("value", "not retrieved")
            value_text = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
            source = figure.get("source") or figure.get("note") or ""
            lines.append(f"| {figure.get('metric', '')} | {value_text} | {source} | {ours_text} | "
                         f"{ours['runs'] if ours else 0} |")
        summary["published"] = published
    lines += ["", "![curves](report.png)"] + (["", "![performance profiles](report_profiles.png)"] if all_scores else [])
    (root / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    out = root / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out


# --------------------------------------------------------------------------------- plotting
def _plot_group(ax_steps, ax_labels, members: list[dict], metric: str, name: str, references: dict) -> None:
    """IQM across runs at each evaluation, with the interquartile band, against steps and labels."""
    curves = []
    for run in members:
        c = curve(run["rows"], metric)
        if len(c):
            c[:, 2] = normalise(c[:, 2], c[:, 0], references.get(run_env(run["config"])) if references else None)
            curves.append(c)
    if not curves:
        return
    length = min(len(c) for c in curves)
    stacked = np.stack([c[:length] for c in curves])  # [runs, points, (step, labels, value)]
    steps, labels, values = stacked[0, :, 0], stacked[:, :, 1].mean(0), stacked[:, :, 2]
    centre = np.array([iqm(values[:, i][np.isfinite(values[:, i])]) for i in range(length)])
    low, high = np.nanpercentile(values, 25, axis=0), np.nanpercentile(values, 75, axis=0)
    line = ax_steps.plot(steps, centre, label=name)[0]
    ax_steps.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
    if np.nanmax(labels, initial=0.0) > 0:  # runs on the true reward ask no labels
        ax_labels.plot(labels, centre, marker=".", color=line.get_color(), label=name)


def _finish_curves(fig, ax_steps, ax_labels, ylabel: str, path: Path) -> None:
    for ax, xlabel in ((ax_steps, "env steps"), (ax_labels, "labels")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel if len(ylabel) < 40 else ylabel.split(" (")[0])
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles[:12], labels[:12], fontsize=7)
    ax_steps.set_title("IQM over runs (band: 25–75%)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_profiles(all_scores: dict[str, np.ndarray], path: Path, xlabel: str, seed: int) -> None:
    finite = np.concatenate([s.ravel() for s in all_scores.values()])
    finite = finite[np.isfinite(finite)]
    top = max(1.0, float(finite.max()) * 1.05) if finite.size else 1.0
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    taus = np.linspace(low, top, 101)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, scores in list(all_scores.items())[:12]:
        profile, band = performance_profile(scores, taus, seed=seed)
        line = ax.plot(taus, profile, label=name)[0]
        ax.fill_between(taus, band[0], band[1], color=line.get_color(), alpha=0.15)
    ax.set_xlabel(f"{xlabel} τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("Performance profiles (rliable score distributions, 95% CI)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
