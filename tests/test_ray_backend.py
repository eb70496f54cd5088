"""The backends of sweeps: what a job does when it starts, GPU shares, and ``pbrl sweep
--backend ray`` end to end — a local Ray with 2 CPUs runs a 2-trial tiny sweep; one trial's
Ray worker is SIGKILLed mid-run (after its first checkpoint). The training process dies with
it, Ray retries the task, the retry resumes the run from its own checkpoint, and the report
holds both runs with every label of their budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pbrl.experiments.backends import Job, command, gpu_share, read_attempts
from pbrl.experiments.checkpoint import checkpoint_state
from pbrl.experiments.config import parse_config
from pbrl.experiments.sweep import sweep_jobs
from pbrl.store import PreferenceStore

SWEEP = [  # 2,000 SAC steps on 100-step HalfCheetah episodes, a feedback round (and checkpoint) every 300 steps
    "env=gym:HalfCheetah-v5", "max_episode_steps=100", "steps=2000", "eval_interval=1000", "eval_episodes=1",
    "agent.learning_starts=100", "agent.batch_size=32", "agent.hidden_sizes=[32,32]", "feedback.first_query_step=300",
    "feedback.interval=300", "feedback.per_round=5", "feedback.budget=30", "feedback.segment_length=10",
    "learner.hidden_sizes=[16,16]", "learner.max_epochs=5",
]


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait(condition, timeout: float, sweep: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert sweep.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_job_trains_resumes_or_skips_by_its_directory(tmp_path):
    job = Job(tmp_path / "run", ("--seed", "3"))
    assert command(job) == ["train", "--no-progress", "--seed", "3", "--run-dir", str(tmp_path / "run")]
    job.run_dir.mkdir()
    (job.run_dir / "config.yaml").write_text("steps: 100\n")
    assert command(job) == ["resume", str(job.run_dir)]  # begun, no checkpoint yet
    (job.run_dir / "checkpoint").mkdir()
    (job.run_dir / "checkpoint" / "state.json").write_text(json.dumps({"num_timesteps": 50}))
    assert command(job) == ["resume", str(job.run_dir)]
    (job.run_dir / "checkpoint" / "state.json").write_text(json.dumps({"num_timesteps": 100}))
    assert command(job) is None  # finished


def test_runs_on_cuda_ask_a_share_of_a_gpu(tmp_path):
    assert gpu_share(parse_config({}, ["agent.device=cuda"]), 0.25) == 0.25
    assert gpu_share(parse_config({}, ["learner.device=cuda:1"]), 0.5) == 0.5
    assert gpu_share(parse_config({}, []), 0.25) == 0.0
    jobs = sweep_jobs(None, [0], ["agent.device=cpu,cuda"], tmp_path, [])
    assert [(j.run_dir.name, j.gpus) for j in jobs] == [("device_cpu-s0", 0.0), ("device_cuda-s0", 0.25)]


def test_a_killed_ray_trial_resumes_from_its_checkpoint(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "pbrl.experiments.cli", "sweep", "--backend", "ray", "--jobs", "2",
               "--seeds", "0", "1", "--out", str(out)] + [a for item in SWEEP for a in ("--set", item)]
    with (tmp_path / "sweep.log").open("w") as log:
        sweep = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        victim = out / "base-s0"
        _wait(lambda: checkpoint_state(victim) is not None if victim.exists() else False, 240, sweep, "a first checkpoint")
        first = read_attempts(victim)[0]
        assert first["backend"] == "ray" and first["mode"] == "train"
        os.kill(first["worker_pid"], signal.SIGKILL)  # the Ray worker running the trial, as a preemption would
        _wait(lambda: not _alive(first["pid"]), 30, sweep, "the training process to die with its worker")
        assert sweep.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)

    starts = [a for a in read_attempts(victim) if "exit" not in a]
    assert [a["mode"] for a in starts] == ["train", "resume"], starts
    assert starts[1]["from_step"] >= 300 and starts[1]["worker_pid"] != first["worker_pid"]
    assert read_attempts(victim)[-1]["exit"] == 0
    assert [a["mode"] for a in read_attempts(out / "base-s1") if "exit" not in a] == ["train"]

    report = json.loads((out / "report.json").read_text())
    assert sum(group["runs"] for group in report["groups"].values()) == 2
    for run_dir in (out / "base-s0", out / "base-s1"):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        store = PreferenceStore(run_dir / "preferences.sqlite")
        counts = store.counts()
        store.close()
        assert counts.asked == counts.labeled == config["feedback"]["budget"]  # every label, none asked twice
        assert checkpoint_state(run_dir)["num_timesteps"] == config["steps"]
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert max(r["step"] for r in rows if "eval/true_return" in r) == config["steps"]
