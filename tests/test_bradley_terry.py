"""The PEBBLE Bradley–Terry reward ensemble: loss by hand, batched members, learning."""

import math

import numpy as np
import torch

from pbrl.learners import BTEnsemble, BTEnsembleConfig, bradley_terry_loss
from pbrl.learners.ensemble import EnsembleMLP
from pbrl.segments import PreferenceDataset, Segments


def test_bt_loss_by_hand():
    r1, r2 = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 3.0])
    y = torch.tensor([1.0, 0.5, 0.0])
    loss = bradley_terry_loss(r1, r2, y)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = [
        -math.log(sig(1.0)),  # left preferred, R¹−R² = 1
        -(0.5 * math.log(0.5) + 0.5 * math.log(0.5)),  # ½ label, equal returns: log 2
        -math.log(sig(2.0)),  # right preferred, R²−R¹ = 2
    ]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)
    assert abs(loss[1].item() - math.log(2)) < 1e-6


def test_half_label_is_minimised_at_equal_returns():
    diff = torch.linspace(-3, 3, 61)
    loss = bradley_terry_loss(diff, torch.zeros_like(diff), torch.full_like(diff, 0.5))
    assert diff[loss.argmin()].abs() < 1e-6


def test_batched_ensemble_equals_separate_members():
    torch.manual_seed(0)
    net = EnsembleMLP(3, 5, (8, 8))
    x = torch.randn(4, 5)
    out = net(x)  # [E, N, 1]
    for e in range(3):
        h = x
        layers = [m for m in net.net if hasattr(m, "weight")]
        for i, layer in enumerate(layers):
            h = h @ layer.weight[e] + layer.bias[e]
            h = torch.nn.functional.leaky_relu(h) if i < len(layers) - 1 else torch.tanh(h)
        torch.testing.assert_close(out[e], h)


def _linear_task(rng, n, t=10, obs_dim=4, act_dim=2):
    w = np.array([1.0, -0.5, 0.0, 0.25])
    make = lambda: Segments(  # noqa: E731
        rng.normal(size=(n, t, obs_dim)).astype(np.float32),
        rng.uniform(-1, 1, size=(n, t, act_dim)).astype(np.float32),
        rng.normal(size=(n, t, obs_dim)).astype(np.float32),
    )
    left, right = make(), make()
    labels = ((left.obs @ w).sum(1) > (right.obs @ w).sum(1)).astype(np.float32)
    return PreferenceDataset(left, right, labels), w


def test_update_learns_and_reports_accuracy():
    rng = np.random.default_rng(0)
    data, w = _linear_task(rng, 300)
    test, _ = _linear_task(rng, 300)
    learner = BTEnsemble(4, 2, BTEnsembleConfig(hidden_sizes=(32, 32), max_epochs=150), seed=0)
    before = (learner.preference_probability(test.left, test.right) > 0.5) == (test.labels == 1)
    metrics = learner.update(data)
    after = (learner.preference_probability(test.left, test.right) > 0.5) == (test.labels == 1)
    assert metrics["train_accuracy"] > 0.9
    assert after.mean() > 0.85 and after.mean() > before.mean() + 0.2
    obs = rng.normal(size=(500, 4)).astype(np.float32)
    learned = learner.reward(obs, np.zeros((500, 2), np.float32), obs)
    assert np.corrcoef(learned, obs @ w)[0, 1] > 0.8
    assert learner.pair_probabilities(test.left, test.right).shape == (3, 300)


def test_members_see_different_orders_and_save_load_round_trips():
    rng = np.random.default_rng(1)
    data, _ = _linear_task(rng, 64)
    a = BTEnsemble(4, 2, BTEnsembleConfig(hidden_sizes=(16,), max_epochs=2), seed=3)
    a.update(data)
    b = BTEnsemble(4, 2, BTEnsembleConfig(hidden_sizes=(16,), max_epochs=2), seed=99)
    b.load_state_dict(a.state_dict())
    np.testing.assert_allclose(a.pair_probabilities(data.left, data.right), b.pair_probabilities(data.left, data.right))
    probs = a.pair_probabilities(data.left, data.right)
    assert not np.allclose(probs[0], probs[1])  # members differ


def test_scoring_by_step_ids_equals_scoring_every_step():
    from tests.helpers import filled_log

    log = filled_log(steps=400, episode_length=100)
    rng = np.random.default_rng(0)
    left, right = log.sample_segments(64, 20, rng).segments, log.sample_segments(64, 20, rng).segments
    plain = lambda s: Segments(s.obs, s.actions, s.next_obs)  # noqa: E731
    learner = BTEnsemble(3, 2, BTEnsembleConfig(hidden_sizes=(16,)), seed=0)
    assert left.step_ids is not None
    np.testing.assert_allclose(learner.pair_probabilities(left, right), learner.pair_probabilities(plain(left), plain(right)), rtol=1e-5)
    np.testing.assert_allclose(learner.member_segment_returns(left), learner.member_segment_returns(plain(left)), rtol=1e-5)


def _fit(learner_cls, data, weights=None, seed=0):
    learner = learner_cls(4, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(16,), max_epochs=3), seed=seed)
    metrics = learner.update(data, weights)
    return learner, metrics


def test_pair_weights_scale_each_pairs_loss():
    import pytest

    rng = np.random.default_rng(2)
    data, _ = _linear_task(rng, 40)
    ones, _ = _fit(BTEnsemble, data, np.ones(40))
    plain, _ = _fit(BTEnsemble, data)
    for a, b in zip(ones.net.parameters(), plain.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # w = 1 is exactly the plain fit
    # a pair of weight 0 contributes nothing: the same fit as without that pair's gradient
    learner = BTEnsemble(4, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(16,)), seed=0)
    x_left, x_right = learner._labeled(data.left), learner._labeled(data.right)
    index = torch.stack([torch.arange(8), torch.arange(8)])
    y = torch.as_tensor(data.labels)[index]
    w = torch.tensor([[2.0, 0, 1, 1, 1, 1, 1, 1]] * 2)
    loss, r_left, r_right = learner._batch_loss(x_left, x_right, index, y, None, w)
    torch.testing.assert_close(loss, (bradley_terry_loss(r_left, r_right, y) * w).mean(dim=1).sum())
    with pytest.raises(ValueError, match="weights must be 40 finite values"):
        learner.update(data, -np.ones(40))


def test_extra_loss_and_context_reach_every_minibatch():
    rng = np.random.default_rng(3)
    data, _ = _linear_task(rng, 40)
    seen = []

    class Pulled(BTEnsemble):
        def update_context(self, data):
            return torch.full((len(data),), 5.0)

        def extra_loss(self, steps_left, steps_right, index, context):
            seen.append((index.shape, context[index].mean().item()))
            return 0.1 * (steps_left.sum(-1) - context[index]).square().mean(dim=1)  # pull R̂(left) toward 5

    pulled, _ = _fit(Pulled, data)
    plain, _ = _fit(BTEnsemble, data)
    assert len(seen) == 3 * 1 and all(shape == (2, 40) and value == 5.0 for shape, value in seen)  # 3 epochs × 1 batch
    returns = lambda m: m.member_segment_returns(data.left).mean().item()  # noqa: E731
    assert returns(pulled) > returns(plain)


def test_frozen_keeps_parameters_out_of_a_fit_and_restores_them():
    rng = np.random.default_rng(4)
    data, _ = _linear_task(rng, 40)
    learner = BTEnsemble(4, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(16,), max_epochs=2), seed=0)
    first = list(learner.net.parameters())[:2]  # the first layer
    before = [p.detach().clone() for p in learner.net.parameters()]
    with learner.frozen(first):
        learner.update(data)
    after = list(learner.net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before[:2], after[:2]))
    assert not any(torch.equal(a, b) for a, b in zip(before[2:], after[2:]))
    assert all(p.requires_grad for p in learner.net.parameters())
