"""``pbrl label-server`` and ``pbrl labels``: serve a run's labeling page, export its labels, agreement.

    pbrl train --env gym:HalfCheetah-v5 --teacher-type human            # the run serves the page itself
    pbrl label-server runs/my-run --add bob --add carol                  # the page of a run (or of a stopped one)
    pbrl label-server runs/my-run --store postgresql+psycopg://host/prefs --host 0.0.0.0
    pbrl label-server /tmp/try --demo gym:HalfCheetah-v5                # random-action pairs, to try the page
    pbrl label-server runs/my-run --add dave --expires 7d                # a link that stops working in a week
    pbrl label-server runs/my-run --revoke bob                           # bob's link stops working now
    pbrl labels runs/my-run --export labels.jsonl --agreement
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from pbrl.experiments.config import ConfigError, TrainConfig, load_run_config, parse_config, save_yaml
from pbrl.labeling.assignments import LabelQueue, check_annotator_name
from pbrl.rollout import Rollout
from pbrl.segments import SegmentBatch
from pbrl.store import PreferenceStore
from pbrl.teachers.human import HumanTeacherConfig
from pbrl.transitions import TransitionLog


def add_label_commands(sub: argparse._SubParsersAction) -> None:
    """Register the labeling subcommands on the ``pbrl`` parser."""
    server = sub.add_parser("label-server", help="serve a run's labeling page for human annotators; prints their links")
    server.add_argument("run_dir", nargs="?", help="the run directory (its config.yaml gives env, render and server "
                        "settings); not with --dataset")
    server.add_argument("--store", help="SQLAlchemy URL of the preference store (default: RUN_DIR/preferences.sqlite)")
    server.add_argument("--host", help="address to bind (default: teacher.host of a human-teacher run, 127.0.0.1)")
    server.add_argument("--port", type=int, help="port (default: teacher.port of a human-teacher run, 8765; 0: any free port)")
    server.add_argument("--add", action="append", default=[], metavar="NAME", help="add an annotator (repeatable)")
    server.add_argument("--expires", metavar="DURATION", help="links made now stop working after DURATION "
                        "(e.g. 90m, 12h, 7d; plain numbers are seconds)")
    server.add_argument("--revoke", action="append", default=[], metavar="NAME",
                        help="end NAME's link now and exit (repeatable); --add NAME later gives a new one")
    server.add_argument("--demo", metavar="ENV_ID", help="make RUN_DIR a demo: random-action pairs of ENV_ID, queued")
    server.add_argument("--pairs", type=int, help="pairs in a --demo store (20) or served from --dataset (200)")
    server.set_defaults(func=_label_server)
    labels = sub.add_parser("labels", help="a run's label counts, export (JSONL with segments, or CSV), agreement")
    labels.add_argument("run_dir")
    labels.add_argument("--store", help="SQLAlchemy URL of the preference store (default: RUN_DIR/preferences.sqlite)")
    labels.add_argument("--export", metavar="PATH", help="write every label to PATH (.jsonl or .csv)")
    labels.add_argument("--agreement", action="store_true", help="print agreement between annotators")
    labels.add_argument("--truth", action="store_true", help="print how often each annotator's labels prefer the "
                        "segment of higher true return (simulated segments)")
    labels.set_defaults(func=_labels)
    add_dataset_options(server, labels)


def start_labeling(trainer) -> None:  # noqa: ANN001 (experiments.train.Trainer; imported lazily by the CLI)
    """With the human teacher, serve the labeling page from the start of the run (and print the links)."""
    from pbrl.teachers.human import HumanTeacher

    if trainer.loop is not None and isinstance(trainer.loop.teacher, HumanTeacher):
        try:
            trainer.loop.teacher.serve(trainer.store)
        except RuntimeError as error:  # the port is taken
            raise ConfigError(str(error)) from None


def rollout_segments(env_id: str, count: int, length: int, seed: int = 0) -> SegmentBatch:
    """``count`` disjoint ``length``-step segments of random-action episodes (unit box), with simulator states."""
    from pbrl import envs

    env = envs.make(env_id, seed=seed)
    rng = np.random.default_rng(seed)
    log = TransitionLog(4 * count * length, env_id=env_id)
    rollout, shape = Rollout(env, log), env.action_space.shape
    rollout.run(lambda obs: rng.uniform(-1.0, 1.0, shape), steps=count * length)
    while len(starts := _disjoint_starts(log.valid_starts(length)[0], length)) < count:
        if log.size + length > log.capacity:
            raise ValueError(f"{env_id}: random-action episodes rarely last {length} steps; ask for shorter segments")
        rollout.run(lambda obs: rng.uniform(-1.0, 1.0, shape), steps=length)
    env.close()
    return log.gather(starts[:count], np.zeros(count, np.int64), length)


def _disjoint_starts(starts: np.ndarray, length: int) -> np.ndarray:
    """The earliest non-overlapping ones of sorted segment start rows (a log that never wrapped)."""
    keep, end = [], -1
    for start in starts:
        if start >= end:
            keep.append(start)
            end = start + length
    return np.asarray(keep, np.int64)


def demo_store(path: str | Path, env_id: str, pairs: int, length: int = 50, needed: int = 1,
               seed: int = 0) -> tuple[PreferenceStore, np.ndarray]:
    """A store of ``pairs`` random-action segment pairs of ``env_id``, queued for ``needed`` annotators each."""
    store = PreferenceStore(path)
    ids = store.add_segments(rollout_segments(env_id, 2 * pairs, length, seed))
    query_ids = store.add_queries(ids[:pairs], ids[pairs:], round_index=0, teacher="human")
    LabelQueue(store).enqueue(query_ids, needed)
    return store, query_ids


def _run_config(run_dir: Path) -> TrainConfig:
    return load_run_config(run_dir)


def _store(args: argparse.Namespace) -> PreferenceStore:
    run_dir = Path(args.run_dir)
    if args.store:
        return PreferenceStore(args.store)
    if not (run_dir / "preferences.sqlite").exists():
        raise ConfigError(f"{run_dir} has no preferences.sqlite; give the run directory or --store URL")
    return PreferenceStore(run_dir / "preferences.sqlite")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _server_options(args: argparse.Namespace) -> float | None:
    """Check the label server's options (one-line :class:`ConfigError`s); returns when new links expire."""
    if args.port is not None and not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535 (0: any free port), got {args.port}")
    for name in args.add + args.revoke:
        try:
            check_annotator_name(name, "--add" if name in args.add else "--revoke")
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if args.revoke and (args.add or args.demo or args.expires):
        raise ConfigError("--revoke only revokes (and exits); run --add NAME (with --expires) separately")
    if args.expires is None:
        return None
    match = _DURATION.match(args.expires.strip())
    if match is None or float(match[1]) <= 0:
        raise ConfigError(f"--expires must be a positive duration such as 90m, 12h or 7d, got {args.expires!r}")
    return time.time() + float(match[1]) * _SECONDS[match[2]]


def _revoke(args: argparse.Namespace) -> int:
    queue = LabelQueue(_store(args))
    for name in args.revoke:
        try:
            queue.revoke(name)
        except KeyError as error:
            raise ConfigError(error.args[0]) from None
        print(f"pbrl: {name}'s link is revoked (their labels stay); a new one: pbrl label-server "
              f"{args.run_dir} --add {name}", flush=True)
    return 0


def _label_server(args: argparse.Namespace) -> int:
    expires_at = _server_options(args)
    if args.dataset:
        return dataset_label_server(args, expires_at)
    if args.run_dir is None:
        raise ConfigError("give a run directory (pbrl label-server RUN_DIR) or a dataset (--dataset DATA.h5 --out DIR)")
    if args.revoke:
        return _revoke(args)
    try:
        from pbrl.labeling.server import LabelServer, default_task
    except ImportError:
        raise ConfigError("the labeling server needs its web stack: pip install -e '.[label]'") from None
    run_dir = Path(args.run_dir)
    if args.demo and not (run_dir / "config.yaml").exists():
        config = parse_config({"env": args.demo, "run_dir": str(run_dir), "teacher": {"type": "human"}})
        demo_store(run_dir / "preferences.sqlite", args.demo, args.pairs or 20)
        save_yaml(config, run_dir / "config.yaml")
    config = _run_config(run_dir)
    human = config.teacher if config.teacher_type == "human" else HumanTeacherConfig()  # server settings (defaults unless human)
    store = _store(args)
    cache_dir = human.cache_dir or str(run_dir / "videos")
    server = LabelServer(store, cache_dir, human.task or default_task(config.env), human.render_settings(),
                         args.host or human.host, human.port if args.port is None else args.port, human.lease)
    try:
        _serve(server, run_dir, list(human.annotators) + args.add, expires_at)
    except KeyboardInterrupt:  # the way to stop a label server: nothing to resume
        server.stop()
        print("\npbrl: label server stopped; every acknowledged label is in the store", flush=True)
    return 0


def _serve(server, run_dir: Path, names: list[str], expires_at: float | None) -> None:  # noqa: ANN001 (LabelServer)
    """Start ``server``, print its links (making those of new ``names``) and serve until it stops."""
    try:
        url = server.start()
    except RuntimeError as error:  # the port is taken
        raise ConfigError(str(error)) from None
    print(f"pbrl: labeling page of {run_dir} at {url}/ — one link per annotator (Ctrl-C stops):", flush=True)
    for who, link in server.links(names, expires_at).items():
        print(f"pbrl:   {who}: {link}", flush=True)
    if server.warning():
        print(f"pbrl: warning: {server.warning()}", flush=True)
    server.wait()


def _labels(args: argparse.Namespace) -> int:
    from pbrl.labeling.agreement import agreement, truth_agreement
    from pbrl.labeling.exchange import export_labels

    store = _store(args)
    if not args.export and not args.agreement and not args.truth:
        counts = store.counts()
        print(f"{counts.asked} queries asked, {counts.labeled} labeled, {counts.skipped} skipped, "
              f"{counts.pending} pending")
    if args.export:
        try:
            count = export_labels(store, args.export)
        except ValueError as error:  # an unknown file type
            raise ConfigError(f"--export: {error}") from None
        print(f"pbrl: {count} labels → {args.export}")
    if args.agreement:
        print("\n".join(agreement(store).lines()))
        print("\n".join(quality_lines(store, args)))
    if args.truth:
        found = truth_agreement(store)
        print("agreement with the true return" + ("" if found else ": no labels on pairs of different true return"))
        print("\n".join(stats.line(name) for name, stats in found.items()))
    if args.write:
        write_labels(args)
    return 0


# ---------------------------------------------------------------------- offline datasets (issue 18)
def add_dataset_options(server: argparse.ArgumentParser, labels: argparse.ArgumentParser) -> None:
    """``label-server --dataset DATA.h5 --out DIR`` (people label a collected dataset) and ``labels --write``."""
    server.add_argument("--dataset", metavar="DATA.h5", help="serve pairs of this offline dataset (pbrl collect) "
                        "instead of a run's; needs --out")
    server.add_argument("--out", metavar="DIR", help="--dataset: the labels folder (its store, videos); rerun with "
                        "the same folder to resume")
    server.add_argument("--annotators-per-pair", type=int, metavar="K", help="--dataset: answers per pair (3)")
    server.add_argument("--known-rate", type=float, help="--dataset: fraction of known-answer pairs (0.1)")
    server.add_argument("--known-margin", type=float, help="--dataset: a known-answer pair's true returns differ by "
                        "at least this many standard deviations of segment returns (1.0)")
    server.add_argument("--strategy", help="--dataset: query strategy choosing the pairs (uniform); anything else "
                        "ranks them with a Bradley–Terry ensemble fitted on the dataset's own labels")
    server.add_argument("--seed", type=int, help="--dataset: seed of the pairs drawn (0)")
    server.add_argument("--size", type=int, default=256, help="--dataset: video width and height (even)")
    labels.add_argument("--write", metavar="OUT.h5", help="labels folder of a dataset: write the answers as an "
                        "offline preference dataset (pbrl train --set reward_free.dataset=OUT.h5)")
    labels.add_argument("--aggregate", default="dawid-skene", choices=["dawid-skene", "majority"],
                        help="--write: one label per pair by Dawid–Skene EM (default) or majority")
    labels.add_argument("--drop", action="append", default=[], metavar="NAME", help="--write: leave out NAME's labels")
    labels.add_argument("--drop-flagged", action="store_true", help="--write: leave out the flagged annotators")
    labels.add_argument("--min-accuracy", type=float, default=0.75, help="flag below this known-answer accuracy")
    labels.add_argument("--min-known", type=int, default=5, help="flag only with this many known answers or more")


def dataset_label_server(args: argparse.Namespace, expires_at: float | None) -> int:
    """Serve the pairs of ``--dataset`` from the labels folder ``--out`` (set up, or resumed), printing the links."""
    from pbrl.datasets.offline import DatasetError, OfflinePreferenceData
    from pbrl.labeling.offline import OfflineLabelingConfig, fit_reward_model, open_labels, recorded

    if not args.out or args.run_dir or args.demo:
        raise ConfigError("--dataset DATA.h5 needs --out LABELS_DIR (and no RUN_DIR or --demo)")
    try:
        from pbrl.labeling.render import RenderSettings
        from pbrl.labeling.server import LabelServer, default_task
    except ImportError:
        raise ConfigError("the labeling server needs its web stack: pip install -e '.[label]'") from None
    given = {"pairs": args.pairs, "annotators_per_pair": args.annotators_per_pair, "known_rate": args.known_rate,
             "known_margin": args.known_margin, "strategy": args.strategy, "seed": args.seed}
    try:
        store_path = Path(args.out) / "preferences.sqlite"
        state = recorded(PreferenceStore(store_path)) if store_path.exists() else None
        planned = state is not None  # resuming: the recorded settings, unless given again; no model to fit
        config = OfflineLabelingConfig(**{**(state["settings"] if planned else {}),
                                          **{key: value for key, value in given.items() if value is not None}})
        learner = None
        if config.strategy != "uniform" and not planned:
            learner = fit_reward_model(OfflinePreferenceData.load(args.dataset), args.seed)
        store, data, _ = open_labels(args.dataset, args.out, config, learner)
        render = RenderSettings(args.size, args.size)
    except (ValueError, DatasetError) as error:
        raise ConfigError(str(error)) from None
    human = HumanTeacherConfig()
    server = LabelServer(store, Path(args.out) / "videos", default_task(data.env_id), render,
                         args.host or human.host, human.port if args.port is None else args.port, human.lease)
    try:
        _serve(server, Path(args.out), args.add or ["annotator"], expires_at)
    except KeyboardInterrupt:
        server.stop()
        print(f"\npbrl: label server stopped; every acknowledged label is in {args.out}; "
              f"pbrl labels {args.out} --write OUT.h5 makes the dataset", flush=True)
    return 0


def quality_lines(store: PreferenceStore, args: argparse.Namespace) -> list[str]:
    """The quality-control report (known-answer accuracy, agreement, median answer time, flags)."""
    from pbrl.labeling.quality import quality

    try:
        return quality(store, args.min_accuracy, args.min_known).lines()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def write_labels(args: argparse.Namespace) -> None:
    """``pbrl labels LABELS_DIR --write OUT.h5``: the answers as an offline preference dataset."""
    from pbrl.datasets.human_labels import write_human_dataset

    try:
        path, data = write_human_dataset(args.run_dir, args.write, method=args.aggregate, drop=args.drop,
                                         drop_flagged=args.drop_flagged, min_accuracy=args.min_accuracy,
                                         min_known=args.min_known)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    dropped = data.metadata["teacher"]["dropped"]
    print(f"pbrl: {len(data.labels)} pairs labeled by {data.metadata['teacher']['aggregation']} → {path}"
          + (f" (dropped: {', '.join(dropped)})" if dropped else ""), flush=True)
