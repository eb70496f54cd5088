"""``pbrl reproduce NAME``: run a catalogue entry — its grid (or part of it) and the SAC-on-true-
reward baselines that normalise the scores, same seeds and steps — and write the rliable report
with every deviation from the published config listed beside the numbers.

    pbrl reproduce --list
    pbrl reproduce pebble-walker-walk --scale 0.02 --seeds 2 --grid-axes none     # the published cell only
    pbrl reproduce pebble-walker-walk --scale 0.2 --seeds 3 --only teacher=oracle --only sampling=disagreement
    pbrl reproduce pebble-walker-walk --backend ray --address auto --scale 1 --seeds 10

The output directory holds one ordinary run directory per run (``OUT/<cell>_seed=<s>``,
``OUT/baseline=sac_env=<env>_seed=<s>``), ``reproduce.yaml`` (the plan: entry, scale, seeds,
command, every run's pbrl config and deviations) and the report. Started again with the same
arguments it skips finished runs and resumes unfinished ones from their checkpoints.

**Evaluation at small scale.** ``--scale`` shrinks the evaluation interval with the run, which
keeps the number of evaluations and so multiplies their share of the env steps by 1/scale (at
0.02, walker-walk would spend 50× its training steps evaluating). Below scale 1 the episodes
per evaluation shrink to ``max(1, ⌊E·scale⌋)`` and, where one episode is still too many, the
interval grows to ``I·E'/E``: evaluation keeps at most its published share of the run. The
report lists this as a deviation.
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pbrl.experiments.backends import BACKENDS, Job, finished, gpu_share, run_jobs
from pbrl.experiments.config import TrainConfig, parse_config, to_dict
from pbrl.experiments.reproduce.catalogue import Entry, RunSpec, expand, list_entries, load_catalogue
from pbrl.experiments.reproduce.translate import nested, translate
from pbrl.registry import ConfigError

REWARD_FREE = ("cpl", "ipl", "piql", "bc")
# The sections a run of each method has not (so a --set of theirs skips it).
_ABSENT = {"sac": ("learner", "teacher", "feedback", "query"), **{m: ("agent", "teacher", "feedback", "query") for m in REWARD_FREE}}


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: its spec, its pbrl config (dotted keys) and what differs from the published config."""

    spec: RunSpec
    overrides: dict[str, Any]
    deviations: dict[str, str]
    resolved: dict[str, Any]
    """The parsed config, flattened as the report reads a run's config.yaml."""

    @property
    def dirname(self) -> str:
        return self.spec.name.replace(",", "_").replace(":", "-").replace("/", "-")


# ---------------------------------------------------------------------------------- the plan
def select_cells(entry: Entry, only: list[str] = (), grid_axes: str | None = None) -> list[dict[str, str]]:
    """The grid cells to run. ``only``: ``AXIS=L1,L2`` restrictions; ``grid_axes``: the axes kept
    as axes (comma-separated, ``none`` for a single cell), the others fixed at the published cell
    — the labels of the entry's first published figure with a cell, else the first label the
    reference ran (``published_cells``), else the axis's first label."""
    allowed: dict[str, set[str]] = {}
    for item in only:
        axis, _, labels = item.partition("=")
        if axis not in entry.grid:
            raise ConfigError(f"--only {item!r}: {entry.name} has no grid axis {axis!r} (axes: {', '.join(entry.grid) or 'none'})")
        unknown = set(labels.split(",")) - set(entry.grid[axis])
        if not labels or unknown:
            raise ConfigError(f"--only {item!r}: labels of {axis} are {', '.join(entry.grid[axis])}")
        allowed[axis] = set(labels.split(","))
    if grid_axes is not None:
        kept = set() if grid_axes == "none" else set(grid_axes.split(","))
        if kept - set(entry.grid):
            raise ConfigError(f"--grid-axes {grid_axes!r}: {entry.name}'s axes are {', '.join(entry.grid) or 'none'}")
        default = published_cell(entry)
        for axis in entry.grid:
            if axis not in kept and axis not in allowed:
                allowed[axis] = {default[axis]}
    return [cell for cell in entry.cells() if all(cell[a] in labels for a, labels in allowed.items())]


def published_cell(entry: Entry) -> dict[str, str]:
    """The cell a small run stands for (see :func:`select_cells`)."""
    figure = next((f["cell"] for f in entry.published if f.get("cell")), {})
    return {axis: str(figure.get(axis) or (entry.published_cells.get(axis) or list(labels))[0])
            for axis, labels in entry.grid.items()}


def _evaluation(overrides: dict[str, Any], scale: float) -> tuple[dict[str, Any], str | None]:
    """The evaluation schedule at ``scale`` (module docstring), and the deviation it makes (None at scale 1)."""
    episodes = int(overrides.get("eval_episodes", TrainConfig.eval_episodes))
    if scale >= 1.0 or episodes == 0:
        return overrides, None
    if "eval_interval" in overrides:  # the entry's schedule, already scaled with the steps
        interval = int(overrides["eval_interval"])
        published_interval = max(1, round(interval / scale))
    else:  # no published schedule: pbrl's default stands for it
        published_interval = TrainConfig.eval_interval
        interval = max(1, round(published_interval * scale))
    new_episodes = max(1, math.floor(episodes * scale))
    new_interval = max(interval, math.ceil(published_interval * new_episodes / episodes))
    if (new_episodes, new_interval) == (episodes, interval):
        return overrides, None
    note = (f"{new_episodes} episode(s) every {new_interval:,} steps instead of {episodes} every {interval:,} "
            f"(the published {episodes} every {published_interval:,} with the interval scaled by {scale}): evaluation "
            "keeps at most its published share of the env steps, with noisier final scores")
    return {**overrides, "eval_episodes": new_episodes, "eval_interval": new_interval}, note


def plan_runs(entry: Entry, scale: float, seeds: int | None, cells: list[dict[str, str]], sets: list[str] = (),
              datasets: dict[str, str] | None = None) -> list[PlannedRun]:
    """Every run of the selection: the cells' runs, then the baselines of their envs, each translated
    into a validated pbrl config (``sets``: ``KEY=VALUE`` for every run that has the key's section,
    recorded as deviations; ``datasets``: env → offline dataset for reward-free entries)."""
    from pbrl.experiments.report import _flatten  # the report's view of a config (heavy imports: only when planning)

    specs = expand(entry, scale=scale, seeds=seeds)
    methods = [s for s in specs if s.role == "method" and s.cell in cells]
    envs = {s.env for s in methods}
    runs = []
    for spec in methods + [s for s in specs if s.role == "baseline" and s.env in envs]:
        translated, deviations = translate(spec)
        overrides, note = _evaluation(translated, scale)
        if note:
            deviations["evaluation"] = note
        if spec.method in REWARD_FREE:
            if not (datasets or {}).get(spec.env):
                raise ConfigError(f"{entry.name} learns offline: give each env its dataset made by `pbrl collect` "
                                  f"(--dataset {spec.env}=PATH)")
            overrides["reward_free.dataset"] = str(Path(datasets[spec.env]).resolve())
        for item in sets:
            key, _, value = item.partition("=")
            if key.split(".")[0] in _ABSENT.get(spec.method, ()):
                continue  # a section this run has not (the baseline's learner, a reward-free learner's agent)
            published = translated.get(key, "pbrl's default")
            planned = overrides.get(key, published)
            overrides[key] = yaml.safe_load(value)
            deviations[f"--set {key}"] = f"{value} (published: {published}" + (
                f"; {planned} after the scaling above)" if planned != published else ")")
        resolved = _flatten(to_dict(parse_config(nested(overrides))))  # a bad config fails here, before anything runs
        runs.append(PlannedRun(spec, overrides, deviations, resolved))
    return runs


# ------------------------------------------------------------------------------ the report
def report_notes(entry: Entry, runs: list[PlannedRun], scale: float, command: str, wall: float | None) -> list[str]:
    """The lines under the report's title: what was run, at which scale, and every deviation."""
    methods = [r for r in runs if r.spec.role == "method"]
    first = methods[0].spec
    cells = sorted({",".join(f"{a}={v}" for a, v in r.spec.cell.items()) or "default" for r in methods})
    notes = [
        f"**{entry.name}**: {entry.title}. {entry.paper}. Settings from {entry.source_line()}.",
        f"Command: `{command}`" + (f"; wall time of this invocation {wall / 60:.1f} min" if wall is not None else ""),
        f"Scale {scale}: {first.steps:,} steps per run (published {first.published_steps:,}); every step and label count "
        f"× {scale} ({', '.join(first.scaled_keys) or 'none changed'}).",
        f"Seeds {sorted({r.spec.seed for r in methods})}; {len(cells)} of {len(entry.cells())} grid cells: {'; '.join(cells)}.",
        f"{sum(r.spec.role == 'baseline' for r in runs)} SAC-on-true-reward baseline runs (same seeds and steps) normalise the scores.",
    ]
    seen: dict[str, set[str]] = {}
    for run in runs:
        for key, text in run.deviations.items():
            seen.setdefault(f"{key}: {text}", set()).add(run.spec.role)
    notes += [f"Deviation ({' and '.join(sorted(roles))} runs) — {text}" for text, roles in seen.items()]
    notes += [f"Known difference — {d}" for d in entry.differences]
    return notes


def published_figures(entry: Entry, runs: list[PlannedRun]) -> list[dict]:
    """The entry's figures for :func:`write_report`, each matched to its runs by the config values of its cell."""
    from pbrl.experiments.report import BASELINE_GROUP

    methods = [r for r in runs if r.spec.role == "method"]
    varying = {k for k in set().union(*(r.resolved for r in methods)) if k != "seed"
               and len({str(r.resolved.get(k)) for r in methods}) > 1}
    figures = []
    for figure in entry.published:
        figure = dict(figure)
        cell = {a: str(v) for a, v in (figure.pop("cell", None) or {}).items()}
        hit = next((r for r in methods if cell and all(r.spec.cell.get(a) == v for a, v in cell.items())), None)
        if hit is not None:
            figure["match"] = {k: hit.resolved.get(k) for k in sorted(varying)}
            if not figure["match"]:
                figure["group"] = "all runs"
        elif not cell and "SAC" in str(figure.get("metric", "")):
            figure["group"] = BASELINE_GROUP
        figures.append(figure)
    return figures


def saved_plan(out: Path) -> tuple[dict[str, Any], list[PlannedRun]]:
    """The plan a reproduction ran (its ``reproduce.yaml``), each run's config resolved with today's defaults
    as the report resolves the runs' own configs."""
    from pbrl.experiments.report import _flatten

    path = out / "reproduce.yaml"
    if not path.exists():
        raise ConfigError(f"--report-only: {path} does not exist; run the reproduction first (without --report-only)")
    plan = yaml.safe_load(path.read_text())
    runs = []
    for run in plan["runs"]:
        spec = RunSpec(**run["spec"])
        overrides = _flatten(run["config"])
        runs.append(PlannedRun(spec, overrides, run["deviations"], _flatten(to_dict(parse_config(run["config"])))))
    return plan, runs


def write_reproduction_report(out: Path, entry: Entry, runs: list[PlannedRun], scale: float, command: str,
                              wall: float | None, metric: str | None, failed: list[Path] = ()) -> str:
    """``report.md`` / ``.png`` / ``.json`` of a reproduction: the notes (command, scale, deviations) and the published figures."""
    from pbrl.experiments.report import write_report

    metric = metric or ("eval/success_rate" if entry.env.startswith("metaworld:") else "eval/true_return")
    notes = report_notes(entry, runs, scale, command, wall)
    if failed:
        notes.insert(1, f"**{len(failed)} runs failed** (see their .log files): {', '.join(p.name for p in failed)}")
    return write_report(out, metric, published=published_figures(entry, runs), notes=notes)


# ------------------------------------------------------------------------------ the command
def reproduce(args: argparse.Namespace) -> int:
    if args.list:
        print(list_entries())
        return 0
    catalogue = load_catalogue()
    if args.name not in catalogue:
        raise ConfigError(f"no catalogue entry {args.name!r}; `pbrl reproduce --list` shows them: {', '.join(catalogue)}")
    entry = catalogue[args.name]
    if args.report_only:  # the saved plan, not a new one: the code may have changed since the runs were planned
        out = Path(args.out or f"runs/reproduce/{entry.name}-scale{args.scale:g}").resolve()
        plan, runs = saved_plan(out)
        print(write_reproduction_report(out, entry, runs, plan["scale"], plan["command"], None, args.metric))
        return 0
    datasets = dict(item.split("=", 1) for item in args.dataset)
    cells = select_cells(entry, args.only, args.grid_axes)
    if not cells:
        raise ConfigError(f"--only {args.only} with --grid-axes {args.grid_axes} leaves no cell of {entry.name}'s grid")
    runs = plan_runs(entry, args.scale, args.seeds, cells, args.set, datasets)
    out = Path(args.out or f"runs/reproduce/{entry.name}-scale{args.scale:g}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = command_line(args)
    (out / "reproduce.yaml").write_text(yaml.safe_dump({
        "entry": entry.name, "scale": args.scale, "seeds": args.seeds, "command": command, "backend": args.backend,
        "runs": [{"dir": r.dirname, "spec": r.spec.to_dict(), "config": nested(r.overrides), "deviations": r.deviations}
                 for r in runs],
    }, sort_keys=False, allow_unicode=True))
    for run in runs:
        check_started_run(out / run.dirname, run)
    jobs = []
    for run in runs:
        (out / "configs").mkdir(exist_ok=True)
        config_file = out / "configs" / f"{run.dirname}.yaml"
        config_file.write_text(yaml.safe_dump(nested({**run.overrides, "progress": False}), sort_keys=False))
        share = gpu_share(parse_config(nested(run.overrides)), args.gpu_fraction)
        jobs.append(Job(out / run.dirname, ("--config", str(config_file)), share))
    todo = [job for job in jobs if not finished(job.run_dir)]
    print(f"pbrl reproduce: {entry.name} at scale {args.scale}: {len(runs)} runs ({len(todo)} to do) in {out} "
          f"on the {args.backend} backend", flush=True)
    if args.dry_run:
        return 0
    started = time.perf_counter()
    failed = run_jobs(todo, args.backend, args.jobs, args.address)
    wall = time.perf_counter() - started
    print(write_reproduction_report(out, entry, runs, args.scale, command, wall, args.metric, failed))
    return 1 if failed else 0


def check_started_run(run_dir: Path, run: PlannedRun) -> None:
    """Refuse to plan over a run started with other settings: it resumes from its own config.yaml, so
    the new plan's values would be reported but not run."""
    from pbrl.experiments.report import _flatten, resolved  # heavy imports: only when planning

    path = run_dir / "config.yaml"
    if not path.exists():
        return
    started = _flatten(resolved(yaml.safe_load(path.read_text()) or {}))
    ignored = ("run_dir", "progress")
    keys = sorted(k for k in set(started) | set(run.resolved)
                  if k not in ignored and str(started.get(k)) != str(run.resolved.get(k)))
    if keys:
        changes = ", ".join(f"{k}: {started.get(k)} → {run.resolved.get(k)}" for k in keys[:4]) + (" …" if len(keys) > 4 else "")
        raise ConfigError(f"{run_dir.name} was started with other settings ({changes}) and resumes from its own "
                          "config.yaml: give this plan another --out (--report-only rewrites the report of what ran)")


def add_reproduce_command(sub: argparse._SubParsersAction) -> None:
    """Register ``pbrl reproduce`` on the ``pbrl`` parser."""
    parser = sub.add_parser("reproduce", help="run a published experiment of the catalogue and report it against the paper")
    parser.add_argument("name", nargs="?", help="catalogue entry (pbrl reproduce --list)")
    parser.add_argument("--list", action="store_true", help="print the catalogue with each entry's source")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply steps and labels (and every schedule step) by this, in (0, 1]")
    parser.add_argument("--seeds", type=int, help="the first N of the reference's seeds (default: all of them)")
    parser.add_argument("--only", action="append", default=[], metavar="AXIS=L1,L2", help="run only these labels of a grid axis (repeatable)")
    parser.add_argument("--grid-axes", dest="grid_axes", metavar="A,B|none",
                        help="keep only these axes (the others at the published cell); none = the published cell alone")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a pbrl key in every run that has it (listed as a deviation), e.g. agent.batch_size=256")
    parser.add_argument("--dataset", action="append", default=[], metavar="ENV=PATH", help="offline entries: each env's dataset (pbrl collect)")
    parser.add_argument("--backend", choices=BACKENDS, default="local", help="local process pool (default) or Ray tasks")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray with --jobs CPUs)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs (local pool size / CPUs of a local Ray)")
    parser.add_argument("--gpu-fraction", dest="gpu_fraction", type=float, default=0.25, help="share of a GPU per CUDA run on Ray")
    parser.add_argument("--metric", help="score (default: eval/success_rate on MetaWorld, eval/true_return elsewhere)")
    parser.add_argument("--out", help="output directory (default: runs/reproduce/NAME-scaleF)")
    parser.add_argument("--dry-run", dest="dry_run", action="store_true", help="write the plan (reproduce.yaml, configs/) and stop")
    parser.add_argument("--report-only", dest="report_only", action="store_true",
                        help="rewrite the report of the reproduction in --out from its saved plan (reproduce.yaml); runs nothing")
    parser.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    if not args.list and not args.name:
        raise ConfigError("pbrl reproduce needs an entry name (or --list)")
    return reproduce(args)


def command_line(args: argparse.Namespace) -> str:
    """The ``pbrl reproduce`` command that makes this plan (for the report)."""
    parts = [args.name, "--scale", f"{args.scale:g}"] + (["--seeds", str(args.seeds)] if args.seeds else [])
    parts += [p for item in args.only for p in ("--only", item)] + (["--grid-axes", args.grid_axes] if args.grid_axes else [])
    parts += [p for item in args.set for p in ("--set", item)] + [p for item in args.dataset for p in ("--dataset", item)]
    parts += ["--backend", args.backend, "--jobs", str(args.jobs)] + (["--address", args.address] if args.address else [])
    return "pbrl reproduce " + shlex.join(parts)
