"""Where the runs of a sweep (or of ``pbrl reproduce``) execute: a local process pool, the
embedded default, or a Ray cluster (``--backend ray``).

A :class:`Job` is a run directory and the ``pbrl train`` arguments that start it. What a job
does is decided when it starts, from its directory (:func:`command`): nothing when its last
checkpoint is at the final step, ``pbrl resume RUN_DIR`` when the directory already holds a
run, ``pbrl train …`` otherwise. So a sweep started again skips finished runs and continues
unfinished ones, and a trial that Ray retries after its worker was killed or its node
preempted continues from the run's own checkpoint — the runner's resume, nothing of Ray's.

Both backends start every run the same way (:func:`run_job`): a child process running the
``pbrl`` CLI, its output appended to ``RUN_DIR.log``, one line per attempt appended to
``RUN_DIR/attempts.jsonl`` (host, worker and run pids, train or resume, the checkpoint step
it started from, exit code, wall time). The child dies with the process that started it
(Linux ``PR_SET_PDEATHSIG``), so a killed Ray worker never leaves an orphan writing into a
run directory that the retry is about to resume.

Ray tasks, not Ray Tune: a pbrl run already checkpoints atomically, resumes itself and writes
an ordinary run directory; what a cluster adds is placement (``num_cpus``, fractional
``num_gpus``) and retries on failure, which is exactly what a task with ``max_retries`` does.
Tune would wrap each run in a Trainable with its own results tree, trial state and checkpoint
restoration — a second copy of what the runner does. Across machines the output directory
must be on a filesystem every node mounts (NFS or similar), and pbrl installed on each node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pbrl.experiments.checkpoint import checkpoint_state
from pbrl.experiments.config import ConfigError, TrainConfig, load_yaml

BACKENDS = ("local", "ray")
_PARENT_ENV = "PBRL_BACKEND_PARENT"  # the launching process's pid, checked by the child after PR_SET_PDEATHSIG


@dataclass(frozen=True)
class Job:
    """One run: its directory, the ``pbrl train`` arguments that start it (``--run-dir`` is added),
    the share of a GPU it needs on a Ray cluster (0 on CPU), and the working directory its
    relative paths are meant from (the submitting process's; kept where it exists)."""

    run_dir: Path
    train_args: tuple[str, ...]
    gpus: float = 0.0
    cwd: str = field(default_factory=os.getcwd)


def finished(run_dir: Path) -> bool:
    """Whether the run's last complete checkpoint is at its final step."""
    state = checkpoint_state(run_dir) if (Path(run_dir) / "config.yaml").exists() else None
    return state is not None and state["num_timesteps"] >= load_yaml(Path(run_dir) / "config.yaml")["steps"]


def command(job: Job) -> list[str] | None:
    """The ``pbrl`` arguments that take the job from where its directory stands (None: finished)."""
    if (job.run_dir / "config.yaml").exists():
        return None if finished(job.run_dir) else ["resume", str(job.run_dir)]
    return ["train", "--no-progress", *job.train_args, "--run-dir", str(job.run_dir)]


def gpu_share(config: TrainConfig, share: float) -> float:
    """``share`` of a GPU when the run's agent or learner is on CUDA (``device: cuda…``), else 0."""
    devices = [str(getattr(section, "device", "cpu")) for section in (config.agent, config.learner) if section is not None]
    return share if any(d.startswith("cuda") for d in devices) else 0.0


def run_job(job: Job, backend: str = "local") -> int:
    """Run the job to its end in a child process; its exit code (0 when it was already finished,
    negative when a signal killed it)."""
    argv = command(job)
    if argv is None:
        return 0
    job.run_dir.mkdir(parents=True, exist_ok=True)
    state = checkpoint_state(job.run_dir)
    attempt = {"backend": backend, "host": socket.gethostname(), "worker_pid": os.getpid(), "mode": argv[0],
               "from_step": int(state["num_timesteps"]) if state else 0, "started": time.time()}
    env = {**os.environ, _PARENT_ENV: str(os.getpid())}
    started = time.perf_counter()
    with (job.run_dir.parent / f"{job.run_dir.name}.log").open("a") as log:
        child = subprocess.Popen([sys.executable, "-m", "pbrl.experiments.backends", *argv], stdout=log,
                                 stderr=subprocess.STDOUT, env=env,
                                 cwd=job.cwd if os.path.isdir(job.cwd) else None)
        _append(job.run_dir / "attempts.jsonl", {**attempt, "pid": child.pid})
        code = child.wait()
    _append(job.run_dir / "attempts.jsonl", {**attempt, "pid": child.pid, "exit": code,
                                              "wall_seconds": round(time.perf_counter() - started, 2)})
    return code


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def read_attempts(run_dir: Path) -> list[dict]:
    """The attempts of a run, one record per start and one per end (``exit`` set)."""
    path = Path(run_dir) / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# ---------------------------------------------------------------------------------- backends
def run_jobs(jobs: list[Job], backend: str = "local", parallel: int = 2, address: str | None = None,
             cpus_per_trial: float = 1.0, max_retries: int = 3) -> list[Path]:
    """Run every job; the run directories that failed. ``parallel``: the local pool's size, and
    the CPUs of the Ray instance started here when ``address`` is None."""
    if backend == "local":
        return run_local(jobs, parallel)
    if backend == "ray":
        return run_ray(jobs, address, parallel, cpus_per_trial, max_retries)
    raise ValueError(f"backend {backend!r} is unknown; choose one of {BACKENDS}")


def run_local(jobs: list[Job], parallel: int) -> list[Path]:
    """A pool of ``parallel`` child processes on this machine (one per core is the fast setting)."""
    failed = []
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for job, code in zip(jobs, pool.map(run_job, jobs)):
            _report(job, code)
            if code != 0:
                failed.append(job.run_dir)
    return failed


class TrialInterrupted(RuntimeError):
    """A run's process was killed by a signal (preemption, OOM killer, a person): Ray retries the
    task, and the retry resumes from the run's checkpoint."""


def _ray_trial(job: Job) -> int:
    code = run_job(job, backend="ray")
    if code < 0:
        raise TrialInterrupted(f"{job.run_dir}: killed by signal {-code}")
    return code


def run_ray(jobs: list[Job], address: str | None, cpus: int, cpus_per_trial: float, max_retries: int) -> list[Path]:
    """One Ray task per job (``cpus_per_trial`` CPUs, ``job.gpus`` of a GPU), retried up to
    ``max_retries`` times when its worker dies or its run is killed. ``address``: an existing
    cluster (``auto``, ``ray://host:10001``, ``host:6379``); None starts a local Ray with ``cpus``
    CPUs on the loopback interface (or uses the one this process already started)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'pbrl[ray]' (make install includes it)") from None

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    trial = ray.remote(_ray_trial)
    pending = {
        trial.options(num_cpus=cpus_per_trial, num_gpus=job.gpus, max_retries=max_retries,
                      retry_exceptions=[TrialInterrupted]).remote(job): job
        for job in jobs
    }
    failed = []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                code = ray.get(done[0])
            except Exception as error:  # noqa: BLE001 — a task that failed for good, after its retries
                print(f"  {job.run_dir.name}: FAILED on Ray ({type(error).__name__}: {str(error).splitlines()[0]})", flush=True)
                failed.append(job.run_dir)
                continue
            _report(job, code)
            if code != 0:
                failed.append(job.run_dir)
    finally:
        if started_here:
            ray.shutdown()
    return failed


def _report(job: Job, code: int) -> None:
    print(f"  {job.run_dir.name}: {'done' if code == 0 else f'FAILED (exit {code}, see {job.run_dir}.log)'}", flush=True)


# ------------------------------------------------------------------------ the child process
def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the one that started it dies (no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.environ.get(_PARENT_ENV) and os.getppid() != int(os.environ[_PARENT_ENV]):
        os._exit(1)  # the parent died before the request took effect


if __name__ == "__main__":
    _die_with_parent()
    from pbrl.experiments.cli import main

    sys.exit(main(sys.argv[1:]))
