"""Segment videos: re-rendered from stored simulator states in background processes, cached on disk.

Nothing is drawn while an agent trains. When a pair is queued for people, both of its
segments are rendered ahead of the annotator: each worker process keeps its own env per
env id (an OpenGL context belongs to one process), draws the segment's frames from its
``sim_states`` with :func:`envs.render_states` (headless EGL on Mesa) and encodes an
H.264 / yuv420p mp4 (``+faststart``, plays in every browser) with imageio-ffmpeg. A video
is written under a temporary name and renamed into place, so the cache folder only ever
holds whole files, named by segment id and render settings.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
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
    import envs  # sets MUJOCO_GL before mujoco loads
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
    import envs  # noqa: F401
    import imageio_ffmpeg  # noqa: F401


# ---------------------------------------------------------------------- the cache
class Unrenderable(ValueError):
    """A segment stored without simulator states (imported, or from an env that has none)."""


class VideoCache:
    """Videos of stored segments in ``directory``, rendered on request by a pool of processes."""

    def __init__(self, store: PreferenceStore, directory: str | Path, settings: RenderSettings = RenderSettings()):
        self.store, self.settings = store, settings
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[int, Future[str]] = {}
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def path(self, segment_id: int) -> Path:
        """Where a segment's video is (or will be) — always inside the cache folder."""
        path = (self.directory / self.settings.file_name(segment_id)).resolve()
        if path.parent != self.directory:
            raise ValueError(f"video path {path} would leave the cache folder")
        return path

    def request(self, segment_id: int) -> Future[str]:
        """A future for the segment's video file; renders it unless cached or already rendering."""
        path = self.path(segment_id)
        with self._lock:
            job = self._jobs.get(segment_id)
            if job is not None and not (job.done() and job.exception() is not None):
                return job
            if path.exists():
                done: Future[str] = Future()
                done.set_result(str(path))
                self._jobs[segment_id] = done
                return done
            batch = self.store.segment_batch([segment_id])
            if batch.provenance.sim_states is None:
                raise Unrenderable(f"segment {segment_id} was stored without simulator states; it cannot be rendered")
            job_args = (render_video, batch.provenance.env_id, batch.provenance.sim_states[0], str(path), self.settings)
            try:
                job = self._workers().submit(*job_args)
            except BrokenProcessPool:  # a render process died (e.g. an OpenGL crash): start fresh ones
                self._pool = None
                job = self._workers().submit(*job_args)
            self._jobs[segment_id] = job
            return job

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

    def prefetch(self, segment_ids: list[int]) -> None:
        """Start rendering these segments (in this order) unless cached; segments without states are passed over."""
        for segment_id in segment_ids:
            try:
                self.request(segment_id)
            except Unrenderable:
                continue

    def close(self) -> None:
        """Stop the render processes (queued jobs are dropped; finished videos stay cached)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
