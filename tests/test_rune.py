"""RUNE against its reference (rll-research/rune): the bonus β_t · std of the ensemble's
rewards (``reward_model_explore.r_hat_std_batch``) and its schedule (``SACAgent_Explore.beta``),
restated on small inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pbrl.agents.rune import RUNEBonus, RUNEConfig
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
