"""CPL: the loss on hand-computed tensors, BC pre-training, determinism and resume."""

import io
import math

import numpy as np
import pytest
import torch

from pbrl.learners.cpl import CPL, BehaviourCloning, CPLConfig, bc_loss, cpl_loss, segment_advantage
from pbrl.learners.policies import sample_pairs
from pbrl.segments import PreferenceDataset, Segments

LEFT = torch.tensor([[-1.0, -2.0]])  # log π(a_t|s_t) of one left segment, T = 2
RIGHT = torch.tensor([[-3.0, -1.0]])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_segment_advantage_is_discounted_and_scaled():
    # A = α Σ γ^t log π: 0.5 · (−1 + 0.5 · −2) = −1 and 0.5 · (−3 + 0.5 · −1) = −1.75
    assert segment_advantage(LEFT, alpha=0.5, discount=0.5).item() == pytest.approx(-1.0)
    assert segment_advantage(RIGHT, alpha=0.5, discount=0.5).item() == pytest.approx(-1.75)


@pytest.mark.parametrize(
    "label, expected",
    [
        (1.0, softplus(0.125)),  # −log σ(A_L − λ A_R) = −log σ(−1 + 0.875)
        (0.0, softplus(1.25)),  # −log σ(A_R − λ A_L) = −log σ(−1.75 + 0.5)
        (0.5, 0.5 * softplus(0.125) + 0.5 * softplus(1.25)),
    ],
)
def test_cpl_loss_with_conservative_bias_and_discount(label, expected):
    loss, accuracy = cpl_loss(LEFT, RIGHT, torch.tensor([label]), alpha=0.5, bias=0.5, discount=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    if label != 0.5:
        assert accuracy.item() == (1.0 if label == 1.0 else 0.0)  # A_L > A_R: ranks left first


def test_cpl_loss_with_unit_bias_is_bradley_terry():
    loss, _ = cpl_loss(LEFT, RIGHT, torch.tensor([1.0]), alpha=1.0, bias=1.0, discount=1.0)
    assert loss.item() == pytest.approx(softplus(-1.0))  # −log σ(−3 − (−4))


def test_cpl_loss_is_stable_for_huge_logits():
    loss, _ = cpl_loss(torch.tensor([[-1e4]]), torch.tensor([[0.0]]), torch.tensor([1.0]), alpha=1.0, bias=0.5)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(1e4)


def toy_dataset(pairs: int = 64, length: int = 5, seed: int = 0) -> PreferenceDataset:
    """Preferred segments act +0.5 everywhere, dispreferred ones −0.5 (left/right shuffled)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(2, pairs, length, 3)).astype(np.float32)
    good = np.full((pairs, length, 2), 0.5, np.float32)
    left_good = rng.random(pairs) < 0.5
    actions_left = np.where(left_good[:, None, None], good, -good)
    seg = lambda o, a: Segments(o, a, o)  # noqa: E731
    return PreferenceDataset(seg(obs[0], actions_left), seg(obs[1], -actions_left), left_good.astype(np.float32))


def test_bc_loss_on_preferred_segments_only():
    data = toy_dataset(8)
    batch = sample_pairs(data, 8, None, np.random.default_rng(0), torch.device("cpu"))
    log_probs = -torch.square(batch.actions - 0.5).sum(dim=-1)  # a policy that always says +0.5
    assert bc_loss(log_probs, batch, "preferred").item() == pytest.approx(0.0)
    assert bc_loss(log_probs, batch, "all").item() == pytest.approx(0.5 * 2.0)  # half the segments miss by 1 in 2 dims


FAST = CPLConfig(hidden_sizes=(32,), dropout=0.0, batch_size=16, steps_per_update=150, lr=3e-3, bc_steps=0, warmup_steps=10)


def test_cpl_learns_the_preferred_actions_where_bc_cannot():
    data = toy_dataset()
    cpl, bc = CPL(3, 2, FAST, seed=0), BehaviourCloning(3, 2, FAST, seed=0)
    metrics = cpl.update(data)
    bc.update(data)
    assert metrics["train_accuracy"] > 0.9
    obs = np.random.default_rng(1).normal(size=(50, 3))
    assert cpl.act(obs).mean() > 0.3  # moves toward the preferred +0.5
    assert abs(bc.act(obs).mean()) < 0.15  # the mixture's mean: 0
    p = cpl.preference_probability(data.left, data.right)
    assert np.mean((p > 0.5) == (data.labels > 0.5)) > 0.9


def test_bc_pretraining_switches_to_cpl_with_warmup():
    config = CPLConfig(hidden_sizes=(8,), batch_size=4, steps_per_update=5, bc_steps=5, warmup_steps=4)
    learner = CPL(3, 2, config)
    first = learner.update(toy_dataset(8))
    assert "cpl_loss" not in first
    second = learner.update(toy_dataset(8))
    assert "cpl_loss" in second and learner.optimizer.param_groups[0]["lr"] == pytest.approx(config.lr)


def test_same_seed_same_numbers_and_resume():
    data = toy_dataset(16)
    config = CPLConfig(hidden_sizes=(16,), batch_size=4, steps_per_update=10, bc_steps=10, warmup_steps=5)
    a, b = CPL(3, 2, config, seed=3), CPL(3, 2, config, seed=3)
    assert a.update(data) == b.update(data)
    resumed = CPL(3, 2, config, seed=99)
    resumed.load_state_dict(saved_and_loaded(a.state_dict()))
    assert a.update(data) == resumed.update(data)
    np.testing.assert_array_equal(a.act(data.left.obs[0]), resumed.act(data.left.obs[0]))


def saved_and_loaded(state: dict) -> dict:
    """The state as a checkpoint gives it back (torch.save / torch.load; nothing shared)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_invalid_bias_is_rejected():
    with pytest.raises(ValueError, match="bias"):
        CPLConfig(bias=0.0)
