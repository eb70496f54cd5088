"""The human teacher: people answer on a labeling web page that the run serves itself.

At its first round the teacher starts the labeling server on the run's preference store
(:class:`~pbrl.labeling.server.LabelServer`) and prints the annotators' links. Each round
it queues the loop's persisted queries for ``annotators_per_pair`` people, renders their
videos ahead, and waits until every queued pair has its answers — or until
``round_timeout`` — printing progress. The server stores each label the moment it is
acknowledged, so the loop writes nothing for them: this is a
:class:`~pbrl.teachers.base.QueuedTeacher`, whose :meth:`HumanTeacher.ask` returns one consensus label
per query (NaN where none came; those pairs stay queued, and answers that arrive later count
from the next update on).

A run stopped while waiting keeps its queue, assignments and labels in the store; on
resume the loop asks again for the queries that have no answer and the page carries on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pbrl.labeling.render import RenderSettings
from pbrl.store import PreferenceStore
from pbrl.teachers.base import QueuedTeacher

if TYPE_CHECKING:  # the web stack is an extra (pip install -e '.[label]'); imported when a round needs it
    from pbrl.labeling.server import LabelServer


@dataclass(frozen=True)
class HumanTeacherConfig:
    """The labeling page a run serves when teacher.type=human (see docs/labeling.md)."""

    host: str = "127.0.0.1"
    """Address the labeling server binds: 127.0.0.1 is this machine only; 0.0.0.0 exposes it to the network."""
    port: int = 8765
    """Port of the labeling server (0: any free port)."""
    round_timeout: float = math.inf
    """Seconds a round waits for its answers before going on with those it has (inf: wait for all)."""
    annotators_per_pair: int = 1
    """k: how many different annotators answer each pair."""
    annotators: tuple[str, ...] = ("annotator",)
    """Annotator names, each given a personal link (add more later with `pbrl label-server RUN_DIR --add NAME`)."""
    width: int = 256
    """Video width in pixels (even)."""
    height: int = 256
    """Video height in pixels (even)."""
    camera: str | None = None
    """Camera name or id (-1: free camera); None: the suite's default (tracking for locomotion, MetaWorld's corner)."""
    fps: int | None = None
    """Video frame rate; None: the env's real-time rate, at most 30."""
    render_workers: int = 1
    """Background processes rendering videos ahead of the annotators."""
    lease: float = 600.0
    """Seconds an unanswered assignment holds its pair before another annotator may take it."""
    task: str | None = None
    """The question shown above the clips; None: a default for the env (e.g. 'moving forward faster')."""
    cache_dir: str | None = None
    """Folder of the rendered videos; None: videos/ next to the run's preferences.sqlite."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"teacher.port must be in 0..65535, got {self.port}")
        if self.annotators_per_pair < 1:
            raise ValueError(f"teacher.annotators_per_pair must be ≥ 1, got {self.annotators_per_pair}")
        if not self.round_timeout > 0 or not self.lease > 0:
            raise ValueError("teacher.round_timeout and teacher.lease must be > 0 seconds")
        if not self.annotators:
            raise ValueError("teacher.annotators needs at least one name")
        self.render_settings()  # validates size, fps and workers

    def render_settings(self) -> RenderSettings:
        try:
            return RenderSettings(self.width, self.height, self.camera, self.fps, self.render_workers)
        except ValueError as error:
            raise ValueError(f"teacher.human: {error}") from None


class HumanTeacher(QueuedTeacher):
    """Queues each round's pairs on the run's labeling page and waits for people's answers."""

    def __init__(self, config: HumanTeacherConfig, env_id: str, budget: int | None = None, name: str = "human",
                 poll_seconds: float = 0.5, report_seconds: float = 10.0) -> None:
        self.config, self.env_id, self.budget, self.name = config, env_id, budget, name
        self.poll_seconds, self.report_seconds = poll_seconds, report_seconds  # store polls; progress lines at most
        self.server: LabelServer | None = None  # started at the first round

    def ask(self, query_ids: np.ndarray, store: PreferenceStore) -> np.ndarray:
        """Queue the queries for ``annotators_per_pair`` people each, wait (up to ``round_timeout``), return the consensus."""
        server = self.serve(store)
        server.enqueue(query_ids, self.config.annotators_per_pair)
        self._wait(query_ids)
        return server.queue.consensus(query_ids)

    def serve(self, store: PreferenceStore) -> LabelServer:
        """Start the labeling server on ``store`` (once) and print the links; returns it."""
        if self.server is not None:
            return self.server
        from pbrl.labeling.server import LabelServer, default_task

        cfg = self.config
        cache_dir = cfg.cache_dir
        if cache_dir is None:
            if not store.sqlite or store.path == ":memory:":
                raise ValueError("teacher.cache_dir is needed when the store is not a SQLite file")
            cache_dir = str(Path(store.path).parent / "videos")
        if self.budget is not None:
            store.set_meta("label_budget", str(self.budget))
        server = LabelServer(store, cache_dir, cfg.task or default_task(self.env_id), cfg.render_settings(),
                             cfg.host, cfg.port, cfg.lease)
        url = server.start()
        self.server = server  # published once it accepts connections: its url then has the real port
        print(f"pbrl: labeling page for this run at {url}/ — one link per annotator:", flush=True)
        links = self.server.links(cfg.annotators)
        for who, link in links.items():
            print(f"pbrl:   {who}: {link}", flush=True)
        if cfg.annotators_per_pair > len(links):
            print(f"pbrl: warning: each pair wants {cfg.annotators_per_pair} annotators but only {len(links)} have "
                  "links; add some with `pbrl label-server RUN_DIR --add NAME`", flush=True)
        if self.server.warning():
            print(f"pbrl: warning: {self.server.warning()}", flush=True)
        return self.server

    def _wait(self, query_ids: np.ndarray) -> None:
        queue, total = self.server.queue, len(query_ids) * self.config.annotators_per_pair
        missing = queue.missing(query_ids)
        timeout = self.config.round_timeout
        limit = "no timeout" if math.isinf(timeout) else f"timeout {timeout:g} s"
        print(f"pbrl: waiting for {missing} of {total} answers on {len(query_ids)} pairs at {self.server.url}/ "
              f"({limit}; the run goes on when they are in)", flush=True)
        deadline, last, shown = time.monotonic() + timeout, missing, time.monotonic()
        while missing > 0:
            if time.monotonic() >= deadline:
                print(f"pbrl: round timeout after {timeout:g} s with {total - missing}/{total} answers; going on "
                      "(unanswered pairs stay on the page, their answers count from the next update)", flush=True)
                return
            time.sleep(self.poll_seconds)
            missing = queue.missing(query_ids)
            if missing != last and (missing == 0 or time.monotonic() - shown >= self.report_seconds):
                print(f"pbrl: {total - missing}/{total} answers", flush=True)
                last, shown = missing, time.monotonic()

    def close(self) -> None:
        """Stop the labeling server (it also stops with the process)."""
        if self.server is not None:
            self.server.stop()
            self.server = None
