"""RUNE against its reference (rll-research/rune): the bonus β_t · std of the ensemble's
rewards (``reward_model_explore.r_hat_std_batch``) and its schedule (``SACAgent_Explore.beta``),
restated on small inputs; the replay buffers' bonus column and a tiny SAC run with ``agent.rune``, whose
sampled rewards are ``update_critic``'s ``ext_reward + β(step) · int_reward``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pbrl import Runner
from pbrl.agents.device_replay import DeviceReplayBuffer
from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.agents.rune import RUNEBonus, RUNEConfig
from pbrl.agents.state_entropy import StateEntropyReward
from pbrl.experiments.config import parse_config
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig


def reference_beta(step: int, beta_schedule: str, beta_init: float, beta_decay: float) -> float:
    """``SACAgent_Explore.beta``."""
    if beta_schedule == "constant":
        return beta_init
    elif beta_schedule == "linear_decay":
        return beta_init * ((1 - beta_decay) ** step)
    raise ValueError(beta_schedule)


def reference_r_hat_std_batch(members: list, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``RewardModel.r_hat_std_batch`` (one network per member)."""
    r_hats = []
    for member in members:
        r_hats.append(member(torch.as_tensor(x)).detach().cpu().numpy())
    r_hats = np.array(r_hats)
    return np.mean(r_hats, axis=0), np.std(r_hats, axis=0)


@pytest.mark.parametrize("schedule,decay", [("linear_decay", 1e-5), ("linear_decay", 1e-3), ("constant", 1e-5)])
def test_beta_schedule_matches_reference(schedule: str, decay: float) -> None:
    bonus = RUNEBonus(RUNEConfig(beta_init=0.05, beta_decay=decay, schedule=schedule))
    for step in (0, 1, 9000, 250_000, 1_000_000):
        assert bonus.beta(step) == pytest.approx(reference_beta(step, schedule, 0.05, decay), rel=1e-12)
    assert schedule == "constant" or bonus.beta(100_000) < bonus.beta(0)


def test_bonus_is_the_ensemble_std_times_beta() -> None:
    learner = BTEnsemble(4, 2, BTEnsembleConfig(ensemble_size=3, hidden_sizes=(16, 16)), seed=0)
    members = [lambda x, e=e: learner.net(x)[e] for e in range(3)]  # each member as its own network, [N, 1]
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(50, 4)).astype(np.float32), rng.uniform(-1, 1, (50, 2)).astype(np.float32)
    mean, std = reference_r_hat_std_batch(members, np.concatenate([obs, actions], axis=1))
    bonus = RUNEBonus(RUNEConfig(beta_decay=1e-3))
    np.testing.assert_allclose(bonus.std(learner, obs, actions, obs), std[:, 0], rtol=1e-5, atol=1e-7)
    assert std.min() > 0
    step = 700
    target = mean[:, 0] + reference_beta(step, "linear_decay", 0.05, 1e-3) * std[:, 0]  # ext + β(step) · int
    np.testing.assert_allclose(bonus.reward(learner, obs, actions, obs, step), target, rtol=1e-5, atol=1e-6)


def test_config_refuses_unknown_schedule() -> None:
    with pytest.raises(ValueError, match="schedule"):
        RUNEConfig(schedule="cosine")


# ---------------------------------------------------------------------------- the replay buffers' hook
def _filled_buffer(cls, n: int = 200):
    obs_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
    buffer = cls(1000, obs_space, spaces.Box(-1, 1, (2,), np.float32), device="cpu")
    rng = np.random.default_rng(0)
    for i in range(n):
        buffer.add(rng.normal(size=(1, 4)), rng.normal(size=(1, 4)), rng.uniform(-1, 1, (1, 2)), np.array([7.0]),
                   np.array([False]), [{}])
    return buffer


def _ensemble_members(learner: BTEnsemble) -> list:
    return [lambda x, e=e: learner.net(x)[e] for e in range(learner.config.ensemble_size)]


def _reference_batch_rewards(learner: BTEnsemble, batch, step: int, beta_decay: float) -> np.ndarray:
    """``ext_reward + β(step) · int_reward`` for a sampled batch (``update_critic``), from its own (s, a)."""
    x = np.concatenate([batch.observations.cpu().numpy(), batch.actions.cpu().numpy()], axis=1).astype(np.float32)
    mean, std = reference_r_hat_std_batch(_ensemble_members(learner), x)
    return mean[:, 0] + reference_beta(step, "linear_decay", 0.05, beta_decay) * std[:, 0]


@pytest.mark.parametrize("cls", [PreferenceReplayBuffer, DeviceReplayBuffer])
def test_buffer_serves_reward_plus_decaying_bonus_after_pretraining(cls) -> None:
    buffer = _filled_buffer(cls)
    learner = BTEnsemble(4, 2, BTEnsembleConfig(ensemble_size=3, hidden_sizes=(16, 16)), seed=0)
    clock = {"t": 500}
    buffer.intrinsic = StateEntropyReward(k=5)  # pre-training: the state-entropy reward, no bonus
    buffer.attach_rune(RUNEBonus(RUNEConfig(beta_decay=1e-3)), learner, lambda: clock["t"])
    assert not np.asarray(torch.as_tensor(buffer.bonus[:200])).any()  # no bonus written in pre-training
    buffer.intrinsic = None
    buffer.relabel(learner, chunk=64)  # the first round: rewards and bonus of every row
    torch.manual_seed(0), np.random.seed(0)
    batch = buffer.sample(64)
    np.testing.assert_allclose(batch.rewards[:, 0].numpy(), _reference_batch_rewards(learner, batch, 500, 1e-3), rtol=1e-5, atol=1e-6)
    clock["t"] = 3000  # β follows the clock: same rows, smaller bonus
    torch.manual_seed(0), np.random.seed(0)
    later = buffer.sample(64)
    np.testing.assert_allclose(later.rewards[:, 0].numpy(), _reference_batch_rewards(learner, later, 3000, 1e-3), rtol=1e-5, atol=1e-6)
    assert (later.rewards <= batch.rewards + 1e-7).all() and (later.rewards < batch.rewards).any()
    # a new row gets its bonus when stored; pickling keeps the column, not the attachment
    buffer.add(np.ones((1, 4)), np.ones((1, 4)), np.zeros((1, 2)), np.array([0.0]), np.array([False]), [{}])
    _, std = reference_r_hat_std_batch(_ensemble_members(learner), np.concatenate([np.ones((1, 4)), np.zeros((1, 2))], 1).astype(np.float32))
    assert float(torch.as_tensor(buffer.bonus[200, 0])) == pytest.approx(std[0, 0], rel=1e-5)
    copy = pickle.loads(pickle.dumps(buffer))
    np.testing.assert_array_equal(np.asarray(torch.as_tensor(copy.bonus[:201])), np.asarray(torch.as_tensor(buffer.bonus[:201])))
    assert copy._rune is None


def test_buffer_without_rune_samples_the_stored_rewards() -> None:
    for cls in (PreferenceReplayBuffer, DeviceReplayBuffer):
        buffer = _filled_buffer(cls)
        assert torch.allclose(buffer.sample(32).rewards, torch.full((32, 1), 7.0))


# ---------------------------------------------------------------------------- a SAC run (agent.rune)
TINY_RUNE = [
    "env=gym:HalfCheetah-v5", "max_episode_steps=100", "steps=500", "eval_interval=100000", "eval_episodes=0",
    "progress=false", "agent.learning_starts=100", "agent.batch_size=32", "agent.hidden_sizes=[16,16]",
    "feedback.first_query_step=200", "feedback.interval=150", "feedback.per_round=5", "feedback.budget=10",
    "feedback.segment_length=10", "learner.hidden_sizes=[16,16]", "learner.max_epochs=5",
]


def _run(tmp_path, *extra: str):
    runner = Runner(parse_config({}, [*TINY_RUNE, f"run_dir={tmp_path}", *extra]), tmp_path)
    runner.train()
    return runner


def test_sac_run_with_rune_trains_on_reward_plus_beta_t_std(tmp_path) -> None:
    runner = _run(tmp_path / "rune", "agent.rune={}", "agent.rune.beta_decay=1e-3")
    model, learner, buffer = runner.model, runner.learner, runner.model.replay_buffer
    n = buffer.filled()
    x = np.concatenate([buffer.observations[:n, 0], buffer.actions[:n, 0]], axis=1).astype(np.float32)
    mean, std = reference_r_hat_std_batch(_ensemble_members(learner), x)
    np.testing.assert_allclose(buffer.rewards[:n, 0], mean[:, 0], rtol=1e-4, atol=1e-5)  # relabeled, new rows rewarded alike
    np.testing.assert_allclose(buffer.bonus[:n, 0], std[:, 0], rtol=1e-4, atol=1e-6)  # the bonus column, every row
    assert model.num_timesteps == 500
    np.random.seed(1)
    batch = buffer.sample(64)
    np.testing.assert_allclose(batch.rewards[:, 0].numpy(), _reference_batch_rewards(learner, batch, 500, 1e-3), rtol=1e-4, atol=1e-5)
    model.num_timesteps = 2500  # β_t reads the model's env steps
    np.random.seed(1)
    later = buffer.sample(64)
    np.testing.assert_allclose(later.rewards[:, 0].numpy(), _reference_batch_rewards(learner, later, 2500, 1e-3), rtol=1e-4, atol=1e-5)
    assert (later.rewards < batch.rewards).any()


def test_rune_with_zero_beta_changes_no_number(tmp_path) -> None:
    """The hook draws nothing and changes nothing but the reward: β_0 = 0 trains exactly like RUNE off."""
    off = _run(tmp_path / "off")
    zero = _run(tmp_path / "zero", "agent.rune={}", "agent.rune.beta_init=0.0")
    for a, b in zip(off.model.policy.parameters(), zero.model.policy.parameters()):
        assert torch.equal(a, b)
    assert off.model.replay_buffer._rune is None and "bonus" not in vars(off.model.replay_buffer)
