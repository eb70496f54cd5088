"""PEBBLE's replay buffer: relabeling and the intrinsic reward during pre-training."""

import numpy as np
import torch
from gymnasium import spaces

from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.agents.state_entropy import StateEntropyReward
from pbrl.learners import BTEnsemble, BTEnsembleConfig


def _buffer(n=300, size=1000):
    obs_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    buffer = PreferenceReplayBuffer(size, obs_space, act_space, device="cpu", n_envs=1)
    rng = np.random.default_rng(0)
    for _ in range(n):
        buffer.add(rng.normal(size=(1, 3)), rng.normal(size=(1, 3)), rng.uniform(-1, 1, (1, 2)), np.array([7.0]),
                   np.array([False]), [{}])
    return buffer


def test_relabel_sets_every_stored_reward_to_the_learner_reward():
    buffer = _buffer(n=300)
    learner = BTEnsemble(3, 2, BTEnsembleConfig(hidden_sizes=(8,)), seed=0)
    buffer.relabel(learner, chunk=64)  # several chunks
    expected = learner.reward(buffer.observations[:300, 0], buffer.actions[:300, 0], buffer.next_observations[:300, 0])
    np.testing.assert_allclose(buffer.rewards[:300, 0], expected, rtol=1e-5, atol=1e-6)
    assert (buffer.rewards[300:] == 0).all()  # untouched beyond the filled part


def test_intrinsic_reward_replaces_stored_reward_only_while_set():
    buffer = _buffer(n=200)
    buffer.intrinsic = StateEntropyReward(k=5)
    batch = buffer.sample(32)
    assert not torch.allclose(batch.rewards, torch.full_like(batch.rewards, 7.0))
    assert (batch.rewards > 0).all()
    buffer.intrinsic = None
    assert torch.allclose(buffer.sample(32).rewards, torch.full((32, 1), 7.0))
