"""Preference IQL (P-IQL): the two-phase baseline of the CPL and IPL papers — a reward model fit
to the preferences (PEBBLE's Bradley–Terry ensemble), then offline RL (IQL) on the
transitions relabeled with it.

It is :class:`~pbrl.learners.ipl.IPL` with one change, the critic's target: instead of the
implicit-reward likelihood, the usual IQL regression on the learned reward

    L_Q = E[(Q_i(s, a) − r̂(s, a, s') − γ (1 − d) V(s'))²]

with ``d = 1`` after a true termination, nothing bootstrapped past it (see :mod:`pbrl.learners.ipl`);
value expectile and advantage-weighted policy as in IPL, same ``ipl`` settings. The
reward model is refit whenever the dataset grew since the last fit (offline: once).
"""

from __future__ import annotations

from typing import Any

import torch

from pbrl.learners.base import RewardLearner
from pbrl.learners.ipl import IPL, IPLConfig
from pbrl.learners.policies import PairBatch
from pbrl.segments import PreferenceDataset, Segments


class PreferenceIQL(IPL):
    """Reward model + IQL (see the module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, reward: RewardLearner, config: IPLConfig = IPLConfig(), seed: int = 0) -> None:
        super().__init__(obs_dim, act_dim, config, seed)
        self.reward = reward
        self.reward_fit_on = 0  # labels the reward model was last fit to

    def update(self, data: PreferenceDataset) -> dict[str, float]:
        fit: dict[str, float] = {}
        if len(data) != self.reward_fit_on:
            fit = {f"reward_model/{k}": v for k, v in self.reward.update(data).items()}
            self.reward_fit_on = len(data)
        return {**fit, **super().update(data)}

    def critic_loss(
        self, q: torch.Tensor, next_v: torch.Tensor, batch: PairBatch, transitions: tuple[torch.Tensor, ...], labeled: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """IQL's TD regression on the learned reward, ``(Q_i − r̂ − γ next_v)²`` with ``next_v = (1 − d) V(s')``
        (labeled and replay steps mixed)."""
        with torch.no_grad():
            reward = self.reward.reward_tensor(*transitions).to(q.device)
            target = reward + self.config.discount * next_v
        loss = self._mix((q - target).square().mean(dim=0), labeled)
        return loss, {"td_loss": loss.item(), "learned_reward": reward.mean().item()}

    def preference_probability(self, left: Segments, right: Segments) -> Any:
        """The reward model's ``P[left ≻ right]``."""
        return self.reward.preference_probability(left, right)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "reward": self.reward.state_dict(), "reward_fit_on": self.reward_fit_on}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.reward.load_state_dict(state["reward"])
        self.reward_fit_on = int(state["reward_fit_on"])
