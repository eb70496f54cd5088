"""REED: the SFC loss by hand, the encoder on real HalfCheetah transitions, frozen vs fine-tuned, the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pbrl.learners.bradley_terry import BTEnsembleConfig
from pbrl.learners.reed import REED, REEDConfig
from pbrl.segments import PreferenceDataset
from pbrl.transitions import TransitionLog


def halfcheetah_log(steps: int, seed: int) -> TransitionLog:
    """Random-action HalfCheetah transitions (short episodes for varied states)."""
    from pbrl import envs
    from pbrl.rollout import Rollout

    env = envs.make("gym:HalfCheetah-v5", seed=seed, max_episode_steps=200)
    log, rng = TransitionLog(steps, 1, "gym:HalfCheetah-v5"), np.random.default_rng(seed)
    Rollout(env, log, sim_states=False).run(lambda obs: rng.uniform(-1, 1, env.action_space.shape), steps=steps)
    return log


@pytest.fixture(scope="module")
def cheetah():
    train, held_out = halfcheetah_log(3000, 0), halfcheetah_log(400, 1)
    segments, _ = held_out.recent(400)
    x = torch.as_tensor(np.concatenate([segments.obs[:, 0], segments.actions[:, 0]], axis=1))
    return train, x, torch.as_tensor(segments.next_obs[:, 0])


def mean_rank(learner: REED, x: torch.Tensor, next_obs: torch.Tensor) -> float:
    """How far down the true next state ranks among all held-out next states by cos(p, z') (0 = first, ½ = chance)."""
    net = learner.net
    net.eval()
    with torch.no_grad():
        p = net.predictor(net.projector(net.next_state(net.encode(x))))[0]
        z = net.projector(net.state_encoder(next_obs.expand(net.members, -1, -1)))[0]
    net.train()
    similarity = F.normalize(p, dim=-1) @ F.normalize(z, dim=-1).T
    return ((similarity > similarity.diag()[:, None]).float().sum(dim=1) / (len(x) - 1)).mean().item()


def test_sfc_loss_by_hand():
    torch.manual_seed(0)
    learner = REED(3, 2, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,)), REEDConfig(comparison_dim=4), seed=0)
    net = learner.net
    net.eval()
    x, next_obs = torch.randn(5, 5), torch.randn(5, 3)
    z_sa = net.trunk(torch.cat([net.state_encoder(x[:, :3][None]), net.action_encoder(x[:, 3:][None])], dim=-1))
    p = net.predictor(net.projector(net.next_state(z_sa)))[0]
    target = net.projector(net.state_encoder(next_obs[None]))[0]
    expected = -(p * target).sum(-1) / (p.norm(dim=-1) * target.norm(dim=-1))
    torch.testing.assert_close(net.sfc_loss(x, next_obs), expected.mean())
    # Stop-gradient: the target side gets no gradient through the next state's embedding.
    next_obs.requires_grad_(True)
    net.sfc_loss(x, next_obs).backward()
    assert next_obs.grad is None


def test_sfc_loss_falls_and_beats_a_random_encoder_on_held_out_transitions(cheetah):
    train, x, next_obs = cheetah
    config = REEDConfig(sfc_optimizer="adam", sfc_lr=1e-3, sfc_epochs=6)
    learner = REED(17, 6, BTEnsembleConfig(ensemble_size=2), config, seed=0)
    random_encoder = REED(17, 6, BTEnsembleConfig(ensemble_size=2), config, seed=1)
    first = learner.observe(train.view())
    second = learner.observe(train.view())
    assert second["sfc_train_loss"] < first["sfc_train_loss"] - 0.1
    assert second["sfc_heldout_loss"] < first["sfc_heldout_loss"]
    assert learner.sfc_eval_loss(x, next_obs) < random_encoder.sfc_eval_loss(x, next_obs) - 0.3
    # Not a collapse: the predicted embedding picks out its own next state among 400 held-out ones.
    assert mean_rank(learner, x, next_obs) < 0.15 < 0.35 < mean_rank(random_encoder, x, next_obs)


@pytest.mark.parametrize("freeze", [True, False])
def test_reward_head_trains_frozen_or_fine_tuned(cheetah, freeze):
    train, _, _ = cheetah
    learner = REED(17, 6, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(32, 32), max_epochs=5), REEDConfig(freeze=freeze), seed=0)
    learner.observe(train.view())
    rng = np.random.default_rng(0)
    left, right = train.sample_segments(64, 10, rng), train.sample_segments(64, 10, rng)
    labels = (left.truth.returns > right.truth.returns).astype(float)
    encoder = [p.detach().clone() for p in learner.net.encoder_parameters()]
    head = [p.detach().clone() for p in learner.net.reward_head.parameters()]
    learner.update(PreferenceDataset(left.segments, right.segments, labels))
    encoder_moved = any(not torch.equal(a, b) for a, b in zip(encoder, learner.net.encoder_parameters()))
    assert encoder_moved is not freeze
    assert all(not torch.equal(a, b) for a, b in zip(head, learner.net.reward_head.parameters()))
    assert all(p.requires_grad for p in learner.net.parameters())  # the SFC objective still trains the encoder


def test_reed_in_the_loop_relabels_and_resumes(tmp_path):
    import json

    from pbrl import Runner
    from tests.test_training import tiny

    config = tiny(tmp_path, "learner.type=reed", "learner.comparison_dim=32", "learner.sfc_interval=2", "query.strategy=disagreement",
                  "steps=500", "feedback.budget=10")
    trainer = Runner(config, tmp_path)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum("reward/sfc_heldout_loss" in r for r in rows) == 1  # before the first of two rounds (interval 2)
    buffer, learner = trainer.model.replay_buffer, trainer.learner
    n = buffer.filled()
    expected = learner.reward(buffer.observations[:n, 0], buffer.actions[:n, 0], buffer.next_observations[:n, 0])
    np.testing.assert_allclose(buffer.rewards[:n, 0], expected, rtol=1e-4, atol=1e-5)
    again = Runner(config, tmp_path, resume=True).learner
    assert again.updates == 2
    np.testing.assert_allclose(again.reward(buffer.observations[:50, 0], buffer.actions[:50, 0], None), expected[:50], rtol=1e-5)
