"""Segment videos: re-rendered from stored simulator states in background processes, cached on disk.

Nothing is drawn while an agent trains. When a pair is queued for people, both of its
segments are rendered ahead of the annotator: each worker process keeps its own env per
env id (an OpenGL context belongs to one process), draws the segment's frames from its
``sim_states`` with :func:`pbrl.envs.render_states` (headless EGL on Mesa) and encodes an
H.264 / yuv420p mp4 (``+faststart``, plays in every browser) with imageio-ffmpeg. A video
is written under a temporary name and renamed into place, so the cache folder only ever
holds whole files, named by store, segment id and render settings.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import secrets
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pbrl.store import PreferenceStore


@dataclass(frozen=True)
class RenderSettings:
    """How segments look on the labeling page."""

    width: int = 256
    height: int = 256
    camera: str | None = None
    """Camera name or id (``"-1"``: free camera); ``None``: the suite's default (tracking for locomotion)."""
    fps: int | None = None
    """Frames per second; ``None``: the env's real-time rate, at most 30 (so short segments stay watchable)."""
    workers: int = 1
    """Render processes."""

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 16 or value % 2:
                raise ValueError(f"video {name} must be an even number ≥ 16 (H.264 yuv420p), got {value}")
        if self.fps is not None and not 1 <= self.fps <= 120:
            raise ValueError(f"video fps must be in 1..120, got {self.fps}")
        if self.workers < 1:
            raise ValueError(f"render workers must be ≥ 1, got {self.workers}")

    def file_name(self, segment_id: int) -> str:
        camera = re.sub(r"[^A-Za-z0-9_-]", "_", self.camera) if self.camera is not None else "default"
        return f"{int(segment_id)}-{self.width}x{self.height}-{camera}-{self.fps or 'rt'}.mp4"


# ---------------------------------------------------------------------- worker processes
_ENVS: dict[str, Any] = {}


def _camera(camera: str | None) -> str | int | None:
    return int(camera) if camera is not None and re.fullmatch(r"-?\d+", camera) else camera


def render_video(env_id: str, states: np.ndarray, path: str, settings: RenderSettings) -> str:
    """Draw ``states[T, S]`` of ``env_id`` and encode them to ``path`` (runs in a worker process)."""
    from pbrl import envs  # sets MUJOCO_GL before mujoco loads
    import imageio_ffmpeg

    if env_id not in _ENVS:
        _ENVS[env_id] = envs.make(env_id, seed=0)
        _ENVS[env_id].reset(seed=0)
    env = _ENVS[env_id]
    frames = envs.render_states(env, states, settings.width, settings.height, _camera(settings.camera))
    fps = settings.fps or min(30, int(env.metadata.get("render_fps") or 25))
    target = Path(path)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(partial), (settings.width, settings.height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=2, ffmpeg_log_level="error",
        output_params=["-crf", "23", "-preset", "veryfast", "-movflags", "+faststart"],
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    os.replace(partial, target)
    return str(target)


def _start_worker(parent: int) -> None:
    """Runs first in each render process: leave when the process that started us is gone.

    A worker holds both ends of its job pipe, so it would never see the parent's exit; a
    training run killed outright must not leave render processes behind.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="pbrl-parent-watch", daemon=True).start()


def _warm() -> None:
    """Load what rendering needs, so that a worker is ready before the first pair is queued."""
    from pbrl import envs  # noqa: F401
    import imageio_ffmpeg  # noqa: F401


# ---------------------------------------------------------------------- the cache
class Unrenderable(ValueError):
    """A segment stored without simulator states (imported, or from an env that has none)."""


class VideoCache:
    """Videos of stored segments in ``directory``, rendered by a pool of processes.

    Segments wait in this cache's own queue and go to the pool one per free worker, so a
    video someone is waiting for can jump the queue (``urgent``) and a run that exits
    leaves at most one render per worker to finish.
    """

    def __init__(self, store: PreferenceStore, directory: str | Path, settings: RenderSettings = RenderSettings()):
        self.store, self.settings = store, settings
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = store.get_meta("video_key")  # names this store's videos: segment ids repeat across stores
        if self.key is None:
            self.key = secrets.token_hex(4)
            store.set_meta("video_key", self.key)
        self._jobs: dict[int, Future[str]] = {}
        self._waiting: deque[int] = deque()
        self._inputs: dict[int, tuple[str, np.ndarray]] = {}  # env id and states of each waiting segment
        self._busy = 0
        self._lock = threading.RLock()  # a render's done-callback may run inside submit(), under the lock
        self._pool: ProcessPoolExecutor | None = None

    def path(self, segment_id: int) -> Path:
        """Where a segment's video is (or will be) — always inside the cache folder."""
        path = (self.directory / f"{self.key}-{self.settings.file_name(segment_id)}").resolve()
        if path.parent != self.directory:
            raise ValueError(f"video path {path} would leave the cache folder")
        return path

    def request(self, segment_id: int, urgent: bool = False) -> Future[str]:
        """A future for the segment's video file; queues its render unless cached or queued already.

        ``urgent`` puts it at the head of the queue (someone is waiting for it now).
        """
        path = self.path(segment_id)
        with self._lock:
            job = self._jobs.get(segment_id)
            if job is not None and not (job.done() and job.exception() is not None):
                if urgent and segment_id in self._inputs:
                    self._waiting.remove(segment_id)
                    self._waiting.appendleft(segment_id)
                return job
            job = Future()
            if path.exists():
                job.set_result(str(path))
            else:
                batch = self.store.segment_batch([segment_id])
                if batch.provenance.sim_states is None:
                    raise Unrenderable(f"segment {segment_id} was stored without simulator states: it cannot be shown")
                self._inputs[segment_id] = (batch.provenance.env_id, batch.provenance.sim_states[0])
                (self._waiting.appendleft if urgent else self._waiting.append)(segment_id)
            self._jobs[segment_id] = job
            self._pump()
            return job

    def _pump(self) -> None:
        """Hand waiting segments to free workers (called with the lock held)."""
        while self._busy < self.settings.workers and self._waiting:
            segment_id = self._waiting[0]
            env_id, states = self._inputs[segment_id]
            job_args = (render_video, env_id, states, str(self.path(segment_id)), self.settings)
            try:
                work = self._workers().submit(*job_args)
            except BrokenProcessPool:  # a render process died (e.g. an OpenGL crash): start fresh ones
                self._pool = None
                work = self._workers().submit(*job_args)
            except RuntimeError:  # the interpreter is exiting: render nothing more
                return
            self._waiting.popleft()
            del self._inputs[segment_id]
            self._busy += 1
            work.add_done_callback(lambda done, segment_id=segment_id: self._finished(segment_id, done))

    def _finished(self, segment_id: int, work: Future[str]) -> None:
        with self._lock:
            self._busy -= 1
            job = self._jobs[segment_id]
            if work.cancelled():
                job.cancel()
            elif work.exception() is not None:
                job.set_exception(work.exception())
            else:
                job.set_result(work.result())
            self._pump()

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.settings.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(os.getpid(),))
        return self._pool

    def warm(self) -> None:
        """Start the render processes now (in the background), not at the first request."""
        with self._lock:
            for _ in range(self.settings.workers):
                self._workers().submit(_warm)

    def prefetch(self, segment_ids: list[int], urgent: bool = False) -> None:
        """Queue these segments' renders (in this order) unless cached; segments without states are passed over."""
        for segment_id in reversed(segment_ids) if urgent else segment_ids:
            try:
                self.request(segment_id, urgent)
            except Unrenderable:
                continue

    def close(self) -> None:
        """Drop the waiting renders, let running ones finish, stop the processes (videos stay cached)."""
        with self._lock:
            for segment_id in self._waiting:
                self._jobs.pop(segment_id).cancel()
            self._waiting.clear()
            self._inputs.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
