"""IPL: implicit reward, χ² regulariser and expectile loss on hand-computed tensors; updates."""

import math

import numpy as np
import pytest
import torch

from pbrl.learners.ipl import IPL, IPLConfig, Replay, expectile_loss, ipl_critic_loss
from tests.test_cpl import saved_and_loaded, toy_dataset


def test_expectile_loss_weights_the_two_sides():
    # u = target − prediction: τ u² above, (1 − τ) u² below
    out = expectile_loss(torch.tensor([1.0, -2.0]), expectile=0.7)
    assert out.tolist() == pytest.approx([0.7, 0.3 * 4.0])


def test_implicit_reward_preference_and_chi2_by_hand():
    # one critic, one pair, T = 2; r = Q − γ V(s') with γ = 0.5
    q = torch.tensor([[[[1.0, 2.0]], [[0.5, 0.0]]]])  # [E=1, 2, B=1, T=2]
    next_v = torch.tensor([[[2.0, 1.0]], [[1.0, 0.0]]])  # [2, 1, 2]
    preference, chi2, reward = ipl_critic_loss(q, next_v, torch.tensor([1.0]), discount=0.5, chi2=0.5)
    assert reward.flatten().tolist() == pytest.approx([0.0, 1.5, 0.0, 0.0])
    assert preference.item() == pytest.approx(math.log1p(math.exp(-1.5)))  # −log σ(1.5 − 0)
    assert chi2.item() == pytest.approx(0.5 * (1.5**2) / 4)  # λ · mean r²
    flipped, _, _ = ipl_critic_loss(q, next_v, torch.tensor([0.0]), discount=0.5, chi2=0.5)
    assert flipped.item() == pytest.approx(math.log1p(math.exp(1.5)))


def test_preference_loss_averages_over_critics():
    q = torch.zeros(2, 2, 1, 1)
    q[0, 0], q[1, 0] = 1.0, 3.0  # left returns 1 and 3 under the two critics
    preference, _, _ = ipl_critic_loss(q, torch.zeros(2, 1, 1), torch.tensor([1.0]), discount=0.9, chi2=1.0)
    assert preference.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log1p(math.exp(-3))) / 2)


FAST = IPLConfig(hidden_sizes=(32,), batch_size=16, steps_per_update=200, lr=3e-3, chi2=0.5, expectile=0.7, target_clipping=True, window=None)  # the gym-locomotion loss knobs, whole toy segments


def test_ipl_learns_to_rank_and_act_on_a_toy_problem():
    data = toy_dataset()
    learner = IPL(3, 2, FAST, seed=0)
    metrics = learner.update(data)
    assert metrics["train_accuracy"] > 0.9
    p = learner.preference_probability(data.left, data.right)
    assert np.mean((p > 0.5) == (data.labels > 0.5)) > 0.9
    obs = np.random.default_rng(1).normal(size=(50, 3))
    assert learner.act(obs).mean() > 0.2  # advantage weighting favours the preferred +0.5


def test_replay_joins_the_losses_and_resume_is_exact():
    data = toy_dataset(16)
    config = IPLConfig(hidden_sizes=(16,), batch_size=4, steps_per_update=10, replay_batch_size=8)
    rng = np.random.default_rng(0)
    replay = Replay(*(rng.normal(size=(100, d)).astype(np.float32) for d in (3, 2, 3)))
    a, b = IPL(3, 2, config, seed=1), IPL(3, 2, config, seed=1)
    a.set_replay(replay)
    b.set_replay(replay)
    assert a.update(data) == b.update(data)
    resumed = IPL(3, 2, config, seed=7)
    resumed.set_replay(replay)
    resumed.load_state_dict(saved_and_loaded(a.state_dict()))
    assert a.update(data) == resumed.update(data)


def test_preference_iql_fits_the_reward_once_then_runs_iql():
    from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
    from pbrl.learners.piql import PreferenceIQL

    data = toy_dataset()
    reward = BTEnsemble(3, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(16,), lr=3e-3, max_epochs=100), seed=0)
    learner = PreferenceIQL(3, 2, reward, FAST, seed=0)
    first = learner.update(data)
    assert first["reward_model/train_accuracy"] > 0.9 and "td_loss" in first
    assert "reward_model/train_accuracy" not in learner.update(data)  # same labels: no refit
    obs = np.random.default_rng(1).normal(size=(50, 3))
    assert learner.act(obs).mean() > 0.05  # toward the preferred +0.5 (cloning both would give 0)
    p = learner.preference_probability(data.left, data.right)
    assert np.mean((p > 0.5) == (data.labels > 0.5)) > 0.9


# ---------------------------------------------------------------- true terminations: r_Q = Q − γ (1 − d) V(s')
def _constant_ipl(q: float, v: float, learner_class=IPL, *args, **config) -> IPL:
    """A 1-d IPL whose critics output ``q`` and value ``v`` everywhere, frozen by lr = 0 (γ = λ_χ² = ½)."""
    cfg = IPLConfig(hidden_sizes=(4,), discount=0.5, chi2=0.5, lr=0.0, batch_size=1, steps_per_update=1, **config)
    learner = learner_class(1, 1, *args, cfg, seed=0)
    with torch.no_grad():
        for net, value in [*((m, q) for m in (*learner.critic.members, *learner.target.members)), (learner.value, v)]:
            net[-1].weight.zero_()
            net[-1].bias.fill_(value)
    return learner


def _terminal_pair():
    """One pair of 2-step segments: the left one ends in a true termination (preferred), the right runs on."""
    from pbrl.segments import PreferenceDataset, Segments

    zeros = np.zeros((1, 2, 1), np.float32)
    left = Segments(zeros, zeros, zeros, terminals=np.array([[False, True]]))
    return PreferenceDataset(left, Segments(zeros, zeros, zeros), np.array([1.0], np.float32))


TERMINAL_REPLAY = Replay(*(np.zeros((4, 1), np.float32) for _ in range(3)), terminals=np.ones(4, bool))


def test_implicit_reward_stops_bootstrapping_at_a_termination():
    # Q = 1, V = 2, γ = ½: r = 1 − ½·2 = 0 before the end, r = 1 − 0 = 1 at the terminal step
    learner, data = _constant_ipl(1.0, 2.0), _terminal_pair()
    assert learner.implicit_reward(data.left).tolist() == [[0.0, 1.0]]
    assert learner.implicit_reward(data.right).tolist() == [[0.0, 0.0]]
    assert learner.preference_probability(data.left, data.right)[0] == pytest.approx(1 / (1 + math.exp(-1)))


def test_ipl_losses_with_terminals_by_hand():
    learner = _constant_ipl(1.0, 2.0, replay_batch_size=2, replay_weight=0.5)
    learner.set_replay(TERMINAL_REPLAY)  # every replay transition terminates: r = Q = 1
    metrics = learner.update(_terminal_pair())
    assert metrics["preference_loss"] == pytest.approx(math.log1p(math.exp(-1)))  # −log σ((0 + 1) − (0 + 0))
    # λ (½ · mean([0, 1, 0, 0]²) + ½ · mean([1, 1]²)) with λ = ½
    assert metrics["chi2_loss"] == pytest.approx(0.5 * (0.5 * 0.25 + 0.5 * 1.0))
    assert metrics["implicit_reward"] == pytest.approx(0.25) and metrics["train_accuracy"] == 1.0


def test_preference_iql_target_stops_bootstrapping_at_a_termination():
    from pbrl.learners.piql import PreferenceIQL

    class ZeroReward:  # r̂ = 0, so the TD error is Q − γ (1 − d) V(s')
        def update(self, data):
            return {}

        def reward_tensor(self, obs, actions, next_obs):
            return torch.zeros(len(obs))

    learner = _constant_ipl(1.0, 2.0, PreferenceIQL, ZeroReward())
    assert learner.update(_terminal_pair())["td_loss"] == pytest.approx(0.25)  # mean([0, 1, 0, 0]²)
    learner = _constant_ipl(1.0, 2.0, PreferenceIQL, ZeroReward(), replay_batch_size=2, replay_weight=0.5)
    learner.set_replay(TERMINAL_REPLAY)
    assert learner.update(_terminal_pair())["td_loss"] == pytest.approx(0.5 * 0.25 + 0.5 * 1.0)
