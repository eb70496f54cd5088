"""PEBBLE's replay buffers (host NumPy and device-resident): relabeling, the intrinsic reward
during pre-training, QPA's hybrid replay and pickling."""

import pickle

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pbrl.agents.device_replay import DeviceReplayBuffer
from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.agents.state_entropy import RunningStd, StateEntropyReward
from pbrl.learners import BTEnsemble, BTEnsembleConfig

BUFFERS = [PreferenceReplayBuffer, DeviceReplayBuffer]


def as_np(x):
    return x.cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def _buffer(cls=PreferenceReplayBuffer, n=300, size=1000, n_envs=1):
    obs_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    buffer = cls(size, obs_space, act_space, device="cpu", n_envs=n_envs)
    rng = np.random.default_rng(0)
    for i in range(n):
        buffer.add(rng.normal(size=(n_envs, 3)), rng.normal(size=(n_envs, 3)), rng.uniform(-1, 1, (n_envs, 2)),
                   np.full(n_envs, 7.0), np.full(n_envs, i % 50 == 49), [{"TimeLimit.truncated": i % 100 == 99}] * n_envs)
    return buffer


@pytest.mark.parametrize("cls", BUFFERS)
def test_relabel_sets_every_stored_reward_to_the_learner_reward(cls):
    buffer = _buffer(cls, n=300)
    learner = BTEnsemble(3, 2, BTEnsembleConfig(hidden_sizes=(8,)), seed=0)
    buffer.relabel(learner, chunk=64)  # several chunks
    obs, act, nxt = (as_np(getattr(buffer, k)[:300, 0]) for k in ("observations", "actions", "next_observations"))
    np.testing.assert_allclose(as_np(buffer.rewards[:300, 0]), learner.reward(obs, act, nxt), rtol=1e-5, atol=1e-6)
    assert (as_np(buffer.rewards[300:]) == 0).all()  # untouched beyond the filled part
    buffer.add(np.ones((1, 3)), np.ones((1, 3)), np.zeros((1, 2)), np.array([7.0]), np.array([False]), [{}])
    buffer.relabel_latest(learner)
    assert as_np(buffer.rewards[300, 0]) == pytest.approx(learner.reward(np.ones((1, 3)), np.zeros((1, 2)), np.ones((1, 3)))[0], rel=1e-5)


@pytest.mark.parametrize("cls", BUFFERS)
def test_intrinsic_reward_replaces_stored_reward_only_while_set(cls):
    buffer = _buffer(cls, n=200)
    buffer.intrinsic = StateEntropyReward(k=5)
    batch = buffer.sample(32)
    assert not torch.allclose(batch.rewards, torch.full_like(batch.rewards, 7.0))
    assert (batch.rewards > 0).all()
    buffer.intrinsic = None
    assert torch.allclose(buffer.sample(32).rewards, torch.full((32, 1), 7.0))


def bpref_compute_state_entropy(obs, full_obs, k):
    """B-Pref ``agent/sac.py`` ``compute_state_entropy`` (rll-research/BPref), restated."""
    dists = []
    for idx in range(len(full_obs) // 500 + 1):
        dists.append(torch.norm(obs[:, None, :] - full_obs[None, idx * 500 : (idx + 1) * 500, :], dim=-1, p=2))
    return torch.kthvalue(torch.cat(dists, dim=1), k=k + 1, dim=1).values.unsqueeze(1)


@pytest.mark.parametrize("cls", BUFFERS)
def test_intrinsic_reward_is_bprefs_state_entropy_of_s_t(cls):
    """B-Pref ``agent/sac.py`` ``update_critic_state_ent``: ``compute_state_entropy(obs, full_obs, k=K)``
    on the batch's *current* states ``obs`` against every stored ``obs`` (``replay_buffer.py``
    ``sample_state_ent``), divided by the running std (``s_ent_stats``)."""
    buffer = _buffer(cls, n=700)
    buffer.intrinsic = StateEntropyReward(k=5)
    torch.manual_seed(0)
    np.random.seed(0)
    batch = buffer.sample(64)
    full_obs = torch.as_tensor(as_np(buffer.observations[:700, 0]))
    entropy = bpref_compute_state_entropy(batch.observations.float(), full_obs.float(), k=5)
    stats = RunningStd()
    stats.update(entropy)
    torch.testing.assert_close(batch.rewards, entropy / stats.std, rtol=1e-5, atol=1e-6)
    # the named option scores s_{t+1} instead
    buffer.intrinsic = StateEntropyReward(k=5, on="next_obs")
    batch = buffer.sample(64)
    entropy = bpref_compute_state_entropy(batch.next_observations.float(), full_obs.float(), k=5)
    stats = RunningStd()
    stats.update(entropy)
    torch.testing.assert_close(batch.rewards, entropy / stats.std, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="obs"):
        StateEntropyReward(on="state")


def test_device_buffer_stores_and_samples_what_sb3_stores():
    host, device = _buffer(PreferenceReplayBuffer, n=300, n_envs=2), _buffer(DeviceReplayBuffer, n=300, n_envs=2)
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        np.testing.assert_allclose(as_np(getattr(device, name)[:300]), getattr(host, name)[:300], rtol=1e-6)
    index = torch.arange(0, 300, 7)
    batch = device._get_samples(index)
    rows = index.numpy()
    # dones count only true terminations, not time-limit cuts (SB3's handle_timeout_termination)
    envs = [np.flatnonzero(np.isclose(host.observations[r], batch.observations[i].numpy()).all(axis=1))[0] for i, r in enumerate(rows)]
    expected = host.dones[rows, envs] * (1 - host.timeouts[rows, envs])
    np.testing.assert_array_equal(batch.dones[:, 0].numpy(), expected)
    assert expected.sum() > 0 and batch.observations.shape == (len(rows), 3) and batch.actions.shape == (len(rows), 2)


def test_device_buffer_hybrid_replay_draws_the_recent_rows_last():
    buffer = _buffer(DeviceReplayBuffer, n=500, size=400)  # wrapped around: pos = 100
    buffer.configure_hybrid_replay(0.5, window=30)
    batch = buffer.sample(64)
    recent = {tuple(np.round(as_np(buffer.observations[(buffer.pos - 1 - age) % 400, 0]), 5)) for age in range(30)}
    assert all(tuple(np.round(o, 5)) in recent for o in batch.observations[32:].numpy())
    assert not all(tuple(np.round(o, 5)) in recent for o in batch.observations[:32].numpy())


def test_device_buffer_pickles_its_filled_rows():
    buffer = _buffer(DeviceReplayBuffer, n=120, size=1000)
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored.filled() == 120 and restored.storage.shape == buffer.storage.shape
    torch.testing.assert_close(restored.storage, buffer.storage)
    restored.rewards[0] = 3.0  # the views point into the restored storage
    assert restored.storage[0, 0, restored._layout["rewards"]] == 3.0
    restored.device = "cpu"  # what SB3's load_replay_buffer does: storage follows the device
    assert restored.storage.device.type == "cpu" and restored.rewards[0, 0] == 3.0
    assert len(pickle.dumps(buffer)) < buffer.storage.numel() * 4 / 2  # only the filled rows travel


def test_gpu_check_relabel_measurement_runs_on_cpu():
    """The relabel part of experiments/bench/gpu_check.py (poisoned rewards: every row must be rewritten)."""
    from pbrl.experiments.bench.gpu_check import relabel_seconds

    assert relabel_seconds("cpu", 3000) > 0
