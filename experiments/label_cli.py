"""``pbrl label-server`` and ``pbrl labels``: serve a run's labeling page, export its labels, agreement.

    pbrl train --env gym:HalfCheetah-v5 --teacher-type human            # the run serves the page itself
    pbrl label-server runs/my-run --add bob --add carol                  # the page of a run (or of a stopped one)
    pbrl label-server runs/my-run --store postgresql+psycopg://host/prefs --host 0.0.0.0
    pbrl label-server /tmp/try --demo gym:HalfCheetah-v5                # random-action pairs, to try the page
    pbrl labels runs/my-run --export labels.jsonl --agreement
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pbrl.experiments.config import ConfigError, TrainConfig, from_dict, load_yaml, save_yaml
from pbrl.rollout import Rollout
from pbrl.segments import SegmentBatch
from pbrl.store import PreferenceStore
from pbrl.transitions import TransitionLog


def add_label_commands(sub: argparse._SubParsersAction) -> None:
    """Register the labeling subcommands on the ``pbrl`` parser."""
    server = sub.add_parser("label-server", help="serve a run's labeling page for human annotators; prints their links")
    server.add_argument("run_dir", help="the run directory (its config.yaml gives env, render and server settings)")
    server.add_argument("--store", help="SQLAlchemy URL of the preference store (default: RUN_DIR/preferences.sqlite)")
    server.add_argument("--host", help="address to bind (default: teacher.human.host, 127.0.0.1)")
    server.add_argument("--port", type=int, help="port (default: teacher.human.port, 8765; 0: any free port)")
    server.add_argument("--add", action="append", default=[], metavar="NAME", help="add an annotator (repeatable)")
    server.add_argument("--demo", metavar="ENV_ID", help="make RUN_DIR a demo: random-action pairs of ENV_ID, queued")
    server.add_argument("--pairs", type=int, default=20, help="pairs in a --demo store")
    server.set_defaults(func=_label_server)
    labels = sub.add_parser("labels", help="a run's label counts, export (JSONL with segments, or CSV), agreement")
    labels.add_argument("run_dir")
    labels.add_argument("--store", help="SQLAlchemy URL of the preference store (default: RUN_DIR/preferences.sqlite)")
    labels.add_argument("--export", metavar="PATH", help="write every label to PATH (.jsonl or .csv)")
    labels.add_argument("--agreement", action="store_true", help="print agreement between annotators")
    labels.set_defaults(func=_labels)


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
    from pbrl.labeling.assignments import LabelQueue

    store = PreferenceStore(path)
    ids = store.add_segments(rollout_segments(env_id, 2 * pairs, length, seed))
    query_ids = store.add_queries(ids[:pairs], ids[pairs:], round_index=0, teacher="human")
    LabelQueue(store).enqueue(query_ids, needed)
    return store, query_ids


def _run_config(run_dir: Path) -> TrainConfig:
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a pbrl run directory (no config.yaml)")
    return from_dict(TrainConfig, load_yaml(run_dir / "config.yaml"))


def _store(args: argparse.Namespace) -> PreferenceStore:
    run_dir = Path(args.run_dir)
    if args.store:
        return PreferenceStore(args.store)
    if not (run_dir / "preferences.sqlite").exists():
        raise ConfigError(f"{run_dir} has no preferences.sqlite; give the run directory or --store URL")
    return PreferenceStore(run_dir / "preferences.sqlite")


def _label_server(args: argparse.Namespace) -> int:
    try:
        from pbrl.labeling.server import LabelServer, default_task
    except ImportError:
        raise ConfigError("the labeling server needs its web stack: pip install -e '.[label]'") from None
    run_dir = Path(args.run_dir)
    if args.demo and not (run_dir / "config.yaml").exists():
        config = from_dict(TrainConfig, {"env": args.demo, "run_dir": str(run_dir)})
        demo_store(run_dir / "preferences.sqlite", args.demo, args.pairs)
        save_yaml(config, run_dir / "config.yaml")
    config = _run_config(run_dir)
    human = config.teacher.human
    store = _store(args)
    cache_dir = human.cache_dir or str(run_dir / "videos")
    server = LabelServer(store, cache_dir, human.task or default_task(config.env), human.render_settings(),
                         args.host or human.host, human.port if args.port is None else args.port, human.lease)
    try:
        url = server.start()
    except RuntimeError as error:  # the port is taken
        raise ConfigError(str(error)) from None
    print(f"pbrl: labeling page of {run_dir} at {url}/ — one link per annotator (Ctrl-C stops):", flush=True)
    for who, link in server.links(list(human.annotators) + args.add).items():
        print(f"pbrl:   {who}: {link}", flush=True)
    if server.warning():
        print(f"pbrl: warning: {server.warning()}", flush=True)
    server.wait()
    return 0


def _labels(args: argparse.Namespace) -> int:
    from pbrl.labeling.agreement import agreement
    from pbrl.labeling.exchange import export_labels

    store = _store(args)
    if not args.export and not args.agreement:
        counts = store.counts()
        print(f"{counts.asked} queries asked, {counts.labeled} labeled, {counts.skipped} skipped, "
              f"{counts.pending} pending")
    if args.export:
        print(f"pbrl: {export_labels(store, args.export)} labels → {args.export}")
    if args.agreement:
        print("\n".join(agreement(store).lines()))
    return 0
