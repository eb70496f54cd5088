"""``pbrl`` command line: train, resume, collect offline datasets, inspect configs, list environments.

Examples::

    pbrl train --env gym:HalfCheetah-v5 --method pebble --teacher oracle --feedback 1000 --steps 200000 --seed 0
    pbrl train --config experiments/configs/pebble_halfcheetah.yaml --set agent.device=cuda
    pbrl resume runs/gym-HalfCheetah-v5-pebble-s0-20261123-101500
    pbrl train --env gym:HalfCheetah-v5 --teacher-type human          # people label on a web page the run serves
    pbrl collect --set env=metaworld:drawer-open-v3 --set expert=scripted --set teacher.type=regret
    pbrl train --config experiments/configs/cpl_metaworld_offline.yaml    # reward-free: cpl | ipl | piql | bc
    pbrl config --describe
    pbrl config --convert runs/old-run      # a run directory written before type-tagged configs
    pbrl sweep --config experiments/configs/demo.yaml --seeds 0 1 --backend ray --out runs/sweep
    pbrl reproduce --list
    pbrl reproduce pebble-walker-walk --scale 0.02 --seeds 2 --grid-axes none
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from pbrl.experiments.config import (
    METHODS,
    ConfigError,
    TrainConfig,
    convert_run_dir,
    describe,
    load_run_config,
    load_yaml,
    parse_config,
    parse_dataclass,
    to_dict,
)
from pbrl.experiments.doctor import add_doctor_command
from pbrl.experiments.label_cli import add_label_commands, start_labeling
from pbrl.experiments.reproduce.run import add_reproduce_command

_SHORTCUTS = {  # CLI flag -> dotted config key
    "env": "env",
    "method": "method",
    "teacher": "teacher.preset",
    "teacher_type": "teacher.type",
    "feedback": "feedback.budget",
    "steps": "steps",
    "seed": "seed",
    "run_dir": "run_dir",
    "query": "query.strategy",
}


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file (see experiments/configs/)")
    parser.add_argument("--env", help="environment id, e.g. gym:HalfCheetah-v5, metaworld:door-open-v3, dmc:walker-walk")
    parser.add_argument("--method", help=f"shortcut for learner.type + agent.type: {' | '.join(METHODS)}")
    parser.add_argument("--teacher", help="synthetic teacher preset: oracle, stoc, mistake, skip, equal, myopic")
    parser.add_argument("--teacher-type", dest="teacher_type", help="synthetic | regret | human (a labeling web page)")
    parser.add_argument("--feedback", type=int, help="total query budget")
    parser.add_argument("--query", help="query strategy name")
    parser.add_argument("--steps", type=int, help="total environment steps (offline reward-free runs: gradient steps)")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--run-dir", dest="run_dir", help="run directory")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace) -> TrainConfig:
    data = load_yaml(args.config) if args.config else {}
    overrides = [f"{key}={getattr(args, flag)}" for flag, key in _SHORTCUTS.items() if getattr(args, flag, None) is not None]
    if getattr(args, "no_progress", False):
        overrides.append("progress=false")
    return parse_config(data, overrides + list(args.set))


def _run(config: TrainConfig, run_dir: Path, resume: bool, force: bool = False) -> int:
    """Train (or resume) the run with the one runner and print its summary."""
    from pbrl.experiments.runner import Runner
    from pbrl.experiments.summary import format_summary

    runner = Runner(config, run_dir, resume=resume, force=force)
    start_labeling(runner)
    print(format_summary(runner.train(), run_dir, config))
    return 0


def _train(args: argparse.Namespace) -> int:
    from pbrl.experiments.runner import default_run_dir

    config = build_config(args)
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    if (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} already holds a run; continue it with `pbrl resume {run_dir}` or pick another --run-dir")
    print(f"pbrl: training {config.method} on {config.env} for {config.steps} steps → {run_dir}", flush=True)
    return _run(config, run_dir, resume=False)


def _resume(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if convert_run_dir(run_dir):
        print(f"pbrl: converted {run_dir}/config.yaml to the type-tagged format (the original: config.legacy.yaml)", flush=True)
    config = load_run_config(run_dir, [f"steps={args.steps}"] if args.steps else [])
    print(f"pbrl: resuming {run_dir} to {config.steps} steps", flush=True)
    return _run(config, run_dir, resume=True, force=args.force)


def _export_run(args: argparse.Namespace) -> int:
    from pbrl.experiments.checkpoint import export_run

    print(f"pbrl: copied {args.run_dir} whole to {export_run(Path(args.run_dir), Path(args.dest))}")
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.describe:
        print("\n".join(describe()))
    elif args.convert:
        converted = convert_run_dir(Path(args.convert))
        print(f"pbrl: {args.convert}/config.yaml " + ("converted (the original: config.legacy.yaml)" if converted else "is already current"))
    else:
        print(yaml.safe_dump(to_dict(build_config(args)), sort_keys=False))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from pbrl.experiments.plots import plot_runs

    out = Path(args.out) if args.out else Path(args.run_dirs[0]) / "curves.png"
    print(plot_runs([Path(r) for r in args.run_dirs], out))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from pbrl.experiments.report import write_report
    from pbrl.experiments.sweep import run_sweep

    out = Path(args.out)
    failed = run_sweep(args.config, args.seeds, args.grid, out, args.jobs, args.set, args.backend, args.address, args.gpu_fraction)
    print(write_report(out))
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from pbrl.experiments.report import write_report

    print(write_report(Path(args.root), args.metric))
    return 0


def _collect(args: argparse.Namespace) -> int:
    from pbrl.experiments.collect import CollectConfig, collect

    data = load_yaml(args.config) if args.config else {}
    collect(parse_dataclass(CollectConfig, data, list(args.set)))
    return 0


def _envs(_: argparse.Namespace) -> int:
    from pbrl import envs

    print("\n".join(envs.available_env_ids()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pbrl", description="Preference-based reinforcement learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an agent from preferences")
    _add_config_args(train)
    train.set_defaults(func=_train)
    resume = sub.add_parser("resume", help="continue a stopped run from its directory")
    resume.add_argument("run_dir")
    resume.add_argument("--steps", type=int, help="new total step count, to train a finished run longer (default: the run's own)")
    resume.add_argument("--force", action="store_true",
                        help="resume with a preference store that is missing, another run's or older than the checkpoint: "
                             "the agent and learner keep what the checkpoint holds, the budget counts only that store's queries")
    resume.set_defaults(func=_resume)
    export = sub.add_parser("export-run", help="copy a run directory whole (a consistent store and checkpoint), also while it runs")
    export.add_argument("run_dir")
    export.add_argument("dest", help="new directory to copy the run into")
    export.set_defaults(func=_export_run)
    config = sub.add_parser("config", help="print the resolved config (or --describe every key)")
    _add_config_args(config)
    config.add_argument("--describe", action="store_true", help="list every key of every type with its default and meaning")
    config.add_argument("--convert", metavar="RUN_DIR", help="rewrite a run directory's config.yaml written before type-tagged configs")
    config.set_defaults(func=_config)
    plot = sub.add_parser("plot", help="learning curves of one or more runs (PNG)")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", help="PNG path (default: RUN_DIR/curves.png)")
    plot.set_defaults(func=_plot)
    sweep = sub.add_parser("sweep", help="a grid of configs × seeds, one process per core, then a report")
    sweep.add_argument("--config", help="base YAML config")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a grid axis (repeatable)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    sweep.add_argument("--jobs", type=int, default=2, help="parallel runs (one per core; the CPUs of a local Ray)")
    sweep.add_argument("--backend", choices=("local", "ray"), default="local", help="local process pool (default) or Ray tasks")
    sweep.add_argument("--address", help="Ray cluster address (default: start a local Ray with --jobs CPUs)")
    sweep.add_argument("--gpu-fraction", dest="gpu_fraction", type=float, default=0.25, help="share of a GPU per CUDA run on Ray")
    sweep.add_argument("--out", required=True, help="sweep directory")
    sweep.set_defaults(func=_sweep)
    report = sub.add_parser("report", help="IQM + 95%% bootstrap CI and curves of the runs below a directory")
    report.add_argument("root")
    report.add_argument("--metric", default="eval/true_return")
    report.set_defaults(func=_report)
    add_label_commands(sub)
    add_doctor_command(sub)
    add_reproduce_command(sub)
    sub.add_parser("envs", help="list supported environment ids").set_defaults(func=_envs)
    collect = sub.add_parser("collect", help="make an offline preference dataset (expert, mixed-quality rollouts, labels)")
    collect.add_argument("--config", help="YAML with CollectConfig keys (see experiments/collect.py)")
    collect.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any collect key (repeatable)")
    collect.set_defaults(func=_collect)

    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of an error")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as error:
        if args.debug:
            raise
        code, line = _one_line(error)
        print(f"pbrl: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("\npbrl: interrupted; every label is in the store — `pbrl resume RUN_DIR` continues from the last checkpoint",
              file=sys.stderr)
        return 130


def _one_line(error: Exception) -> tuple[int, str]:
    """The exit code and one line for an error: what is wrong and what to do for the library's own errors
    (exit 2), the type and message plus how to see the traceback for anything else (exit 1)."""
    from pbrl.datasets.offline import DatasetError
    from pbrl.envs import UnknownEnvError
    from pbrl.experiments.checkpoint import RunDirError
    from pbrl.experiments.reproduce.catalogue import CatalogueError
    from pbrl.store import StoreError

    if isinstance(error, ConfigError):
        return 2, f"config error: {error}"
    if isinstance(error, UnknownEnvError):  # its text lists every valid id: the problem and the suggestion only
        lines = str(error).splitlines()
        suggestion = [line for line in lines[1:2] if line.startswith("Did you mean")]
        return 2, " ".join([lines[0], *suggestion, "`pbrl envs` lists every id."])
    if isinstance(error, (DatasetError, RunDirError, StoreError, CatalogueError, FileNotFoundError)):
        return 2, " ".join(str(error).split())
    return 1, f"error: {type(error).__name__}: {' '.join(str(error).split())} (rerun with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
