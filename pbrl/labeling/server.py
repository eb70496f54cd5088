"""Run the labeling app for one preference store in a background thread — inside a training
run, or as ``pbrl label-server`` (which then waits on it) — with its video cache and links."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import uvicorn

from pbrl.labeling.app import create_app
from pbrl.labeling.assignments import LabelQueue
from pbrl.labeling.render import RenderSettings, VideoCache
from pbrl.store import PreferenceStore

_LOCOMOTION = ("HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid", "Swimmer")


def default_task(env_id: str) -> str:
    """The question shown above the clips when the config gives none."""
    suite, _, name = env_id.partition(":")
    if suite == "gym" and name.startswith(_LOCOMOTION):
        robot = name.split("-")[0].replace("Walker2d", "walker").replace("HalfCheetah", "half-cheetah").lower()
        return f"Which clip shows the {robot} moving forward faster, without falling over?"
    if suite == "metaworld":
        task = name.rsplit("-v", 1)[0].replace("-", " ")
        return f"In which clip does the robot arm get closer to completing the task “{task}”?"
    if suite == "dmc":
        domain, _, task = name.partition("-")
        return f"Which clip shows the {domain} doing better at “{task}”?"
    return f"Which clip shows the agent doing better at {env_id}?"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_check(bind: str, extra: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """Which ``Host`` names a server bound to ``bind`` answers to (DNS rebinding defence): on loopback
    its own address and ``localhost``; on one address that address, and on a wildcard any address,
    plus this machine's names; and ``extra`` names (e.g. a reverse proxy's)."""
    names = {bind.lower().strip("[]"), "localhost", *(name.lower() for name in extra)}
    if is_loopback(bind):
        names |= {"127.0.0.1", "::1"}
    else:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    wildcard = bind in ("0.0.0.0", "::", "")
    return lambda name: name in names or (wildcard and _is_ip(name))


class LabelServer:
    """The labeling web app over a store: ``start()`` serves it in a daemon thread, ``wait()`` blocks on it."""

    def __init__(
        self,
        store: PreferenceStore,
        cache_dir: str | Path,
        task: str,
        render: RenderSettings = RenderSettings(),
        host: str = "127.0.0.1",
        port: int = 8765,
        lease: float = 600.0,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        """``allowed_hosts``: ``Host`` names to answer to besides the bound address's own (see :func:`host_check`)."""
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535 (0: any free port), got {port}")
        self.store, self.host = store, host
        self.queue = LabelQueue(store, lease)
        self.cache = VideoCache(store, cache_dir, render)
        self.app = create_app(self.queue, self.cache, task, host_check(host, allowed_hosts))
        self._tokens: dict[str, str] = {}  # links made by this server: the store keeps only the tokens' digests
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base address (with the real port once started, also when asked for port 0)."""
        port = self._server.config.port
        if self._server.started and self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    def links(self, names: tuple[str, ...] | list[str] = (), expires_at: float | None = None) -> dict[str, str]:
        """Each annotator's personal link, giving the named annotators without a working link one (valid until
        ``expires_at``, Unix time, if given). The store keeps only digests of tokens, so a link made earlier
        (by another process) is not shown again: its line says how to make a new one."""
        for name in names:
            token = self.queue.add_annotator(name, expires_at)
            if token is not None:
                self._tokens[name] = token
        return {name: f"{self.url}/?token={self._tokens[name]}" if name in self._tokens else
                f"link given when it was made (pbrl keeps only its digest; a new one: `pbrl label-server RUN_DIR "
                f"--revoke {name}`, then `--add {name}`)" for name in self.queue.annotators()}

    def enqueue(self, query_ids: np.ndarray, needed: int) -> None:
        """Queue stored queries for ``needed`` annotators each and start rendering their videos."""
        self.queue.enqueue(query_ids, needed)
        self.prefetch(query_ids)

    def prefetch(self, query_ids: np.ndarray | None = None) -> None:
        """Render (in queue order) both segments of every queued pair (or of these) that still wants answers."""
        open_pairs = [row for row in self.queue.status(query_ids) if row.missing]
        self.cache.prefetch([segment for row in open_pairs for segment in (row.left_id, row.right_id)])

    def warning(self) -> str | None:
        """A line to print when the server is reachable from other machines."""
        if is_loopback(self.host):
            return None
        return (f"the labeling server listens on {self.host}, reachable from the network over plain HTTP; "
                "anyone holding a link can label — share links privately, or put it behind HTTPS")

    # ------------------------------------------------------------------ running
    def start(self, timeout: float = 30.0) -> str:
        """Serve in a daemon thread; returns the base address once it accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="pbrl-label-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the labeling server could not listen on {self.host}:{self._server.config.port} "
                    "(port in use? choose another with teacher.port, or 0 for any free port)"
                )
            time.sleep(0.02)
        self.cache.warm()
        self.prefetch()
        return self.url

    def wait(self) -> None:
        """Block until the server stops; Ctrl-C stops it (and the render processes)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and stop the render processes."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.cache.close()
