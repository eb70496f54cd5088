"""Small builders shared by tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pbrl.transitions import TransitionLog


def filled_log(steps: int = 300, episode_length: int = 100, n_envs: int = 1, obs_dim: int = 3, seed: int = 0) -> TransitionLog:
    """A transition log of fake episodes whose true reward is obs[0] (so it is checkable)."""
    rng = np.random.default_rng(seed)
    log = TransitionLog(capacity=steps, n_envs=n_envs, env_id="test")
    obs = rng.normal(size=(n_envs, obs_dim)).astype(np.float32)
    for t in range(steps):
        actions = rng.uniform(-1, 1, size=(n_envs, 2)).astype(np.float32)
        next_obs = rng.normal(size=(n_envs, obs_dim)).astype(np.float32)
        dones = np.full(n_envs, (t + 1) % episode_length == 0)
        log.add(obs, actions, next_obs, obs[:, 0], np.zeros(n_envs), dones, sim_states=np.full((n_envs, 2), t, np.float64))
        obs = next_obs
    return log


def train_until_round_then_kill(overrides: list[str], run_dir: Path, rounds: int = 2, deadline_s: float = 240) -> None:
    """Start ``pbrl train --set …`` in its own process group, wait until its checkpoint records
    ``rounds`` finished feedback rounds, then SIGKILL the whole group (a crash, not a clean exit)."""
    cmd = [sys.executable, "-m", "pbrl.experiments.cli", "train"] + [a for o in overrides for a in ("--set", o)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + deadline_s
    try:
        while time.time() < deadline:
            state = run_dir / "checkpoint" / "state.json"
            if state.exists() and json.loads(state.read_text())["loop"]["round_index"] >= rounds:
                break
            if process.poll() is not None:
                pytest.fail(f"training exited early: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail(f"no round {rounds} within {deadline_s} s")
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
