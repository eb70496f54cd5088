"""Small builders shared by tests."""

from __future__ import annotations

import numpy as np

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
