"""Hindsight PRIOR: the world model's importances, the redistribution loss by hand, the learner in the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pbrl.learners import BTEnsembleConfig, HindsightPrior, HindsightPriorConfig, prior_loss
from pbrl.learners.world_model import WorldModel
from pbrl.segments import PreferenceDataset, Segments

T = 10


def decisive_segments(n: int, rng: np.random.Generator):
    """Segments in which one flagged step k alone decides the outcome: the last next state
    reveals the action taken at step k (obs = [flag, noise], one action dimension)."""
    k = rng.integers(0, T - 1, n)
    obs = np.zeros((n, T, 2), np.float32)
    obs[:, :, 1] = rng.normal(size=(n, T))
    obs[np.arange(n), k, 0] = 1.0
    actions = rng.uniform(-1, 1, (n, T, 1)).astype(np.float32)
    next_obs = np.concatenate([obs[:, 1:], rng.normal(size=(n, 1, 2)).astype(np.float32)], axis=1)
    next_obs[:, -1] = 0.0
    next_obs[:, -1, 1] = actions[np.arange(n), k, 0]
    return Segments(obs, actions, next_obs), k


def as_tensors(segments: Segments):
    return [torch.as_tensor(a) for a in (segments.obs, segments.actions, segments.next_obs)]


def small_world_model(seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(2, 1, T, dim=32, layers=1, heads=1)


@pytest.fixture(scope="module")
def trained_world() -> WorldModel:
    """The small world model after 400 Adam steps on decisive segments."""
    rng = np.random.default_rng(0)
    world = small_world_model()
    optimizer = torch.optim.Adam(world.parameters(), lr=3e-3)
    for _ in range(400):
        loss = world.loss(*as_tensors(decisive_segments(64, rng)[0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return world


def test_importance_sums_to_one_and_finds_the_decisive_step(trained_world):
    held_out, k = decisive_segments(500, np.random.default_rng(7))
    before = small_world_model().importance(*as_tensors(held_out)[:2])
    torch.testing.assert_close(before.sum(dim=1), torch.ones(500))
    after = trained_world.importance(*as_tensors(held_out)[:2])
    torch.testing.assert_close(after.sum(dim=1), torch.ones(500))
    hits_before, hits_after = ((a.argmax(dim=1).numpy() == k).mean() for a in (before, after))
    assert hits_after > 0.9 and hits_after > hits_before + 0.3  # after training the decisive step gets the largest weight


def test_importance_of_a_multi_layer_model_sums_to_one():
    world = WorldModel(3, 2, 7, dim=16, layers=3, heads=2)
    alpha = world.importance(torch.randn(5, 7, 3), torch.randn(5, 7, 2))
    assert alpha.shape == (5, 7) and (alpha >= 0).all()
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(5))


def test_prior_loss_by_hand():
    alpha = torch.tensor([[0.5, 0.25, 0.25]])
    # Rewards proportional to importance: already redistributed, nothing to pull.
    assert prior_loss(3.0 * alpha[None], alpha).item() == 0.0
    # r = [1, 0, 0]: R̂ = 1, target = [0.5, 0.25, 0.25], squared errors [0.25, 0.0625, 0.0625] → mean 0.125.
    rewards = torch.tensor([[[1.0, 0.0, 0.0]]], requires_grad=True)
    loss = prior_loss(rewards, alpha)
    assert loss.item() == pytest.approx(0.125)
    loss.sum().backward()  # the target is a stop-gradient: d/dr_t = 2 (r_t − target_t) / T
    torch.testing.assert_close(rewards.grad, torch.tensor([[[1 / 3, -1 / 6, -1 / 6]]]))


def test_learner_loss_is_bt_plus_weighted_prior():
    rng = np.random.default_rng(0)
    left, _ = decisive_segments(8, rng)
    right, _ = decisive_segments(8, rng)
    labels = torch.tensor(rng.integers(0, 2, 8), dtype=torch.float32)
    learner = HindsightPrior(2, 1, T, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(8,)), HindsightPriorConfig(weight=0.7), seed=0)
    context = learner.update_context(PreferenceDataset(left, right, labels.numpy()))
    x_left, x_right = learner._labeled(left), learner._labeled(right)
    index = torch.stack([torch.arange(8), torch.arange(8).flip(0)])
    loss, r_left, r_right = learner._batch_loss(x_left, x_right, index, labels[index], context)
    steps = lambda x: learner._member_step_rewards(x, index)  # noqa: E731
    bt = torch.nn.functional.binary_cross_entropy_with_logits(r_left - r_right, labels[index], reduction="none").mean(1)
    prior = 0.5 * (prior_loss(steps(x_left), context[0][index]) + prior_loss(steps(x_right), context[1][index]))
    torch.testing.assert_close(loss, (bt + 0.7 * prior).sum())


def _decisive_reward_share(world: WorldModel, weight: float) -> tuple[float, float]:
    """Train on pairs labeled by the decisive actions; return (corr of r̂_k with a_k, mean share of |r̂| on step k)."""
    rng = np.random.default_rng(1)
    learner = HindsightPrior(2, 1, T, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(32, 32), lr=3e-3, max_epochs=60),
                             HindsightPriorConfig(weight=weight, world_dim=32, world_layers=1, world_heads=1), seed=0)
    learner.world.load_state_dict(world.state_dict())
    (left, k_left), (right, k_right) = decisive_segments(300, rng), decisive_segments(300, rng)
    labels = (left.actions[np.arange(300), k_left, 0] > right.actions[np.arange(300), k_right, 0]).astype(np.float64)
    learner.update(PreferenceDataset(left, right, labels))
    test, k = decisive_segments(200, rng)
    rewards = learner.reward(test.obs.reshape(-1, 2), test.actions.reshape(-1, 1), None).reshape(200, T)
    decisive = rewards[np.arange(200), k]
    share = (np.abs(decisive) / np.abs(rewards).sum(axis=1)).mean()
    return np.corrcoef(decisive, test.actions[np.arange(200), k, 0])[0, 1], share


def test_prior_concentrates_reward_on_the_decisive_step(trained_world):
    # Pairs are labeled by the action at each segment's decisive step; the other steps carry nothing.
    corr_bt, share_bt = _decisive_reward_share(trained_world, 0.0)
    corr_prior, share_prior = _decisive_reward_share(trained_world, 1.0)
    assert corr_bt > 0.8 and corr_prior > 0.8  # both learn what the decisive action is worth …
    assert share_prior > 1.5 * share_bt  # … the prior also takes the credit away from the steps that did not matter


def test_hprior_in_the_loop_observes_and_resumes(tmp_path):
    import json

    from pbrl import Runner
    from tests.test_training import tiny

    config = tiny(tmp_path, "learner.type=hprior", "learner.world_dim=16", "learner.world_heads=2", "learner.world_steps=10",
                  "steps=500", "feedback.budget=10")
    trainer = Runner(config, tmp_path)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum("reward/world_model_loss" in r for r in rows) == 2  # refreshed before each of the two rounds
    assert trainer.learner.updates == 2
    again = Runner(config, tmp_path, resume=True).learner
    for name, tensor in trainer.learner.world.state_dict().items():
        torch.testing.assert_close(again.world.state_dict()[name], tensor)
    assert again.updates == 2
