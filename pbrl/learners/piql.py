"""Preference IQL (P-IQL): the two-phase baseline of the CPL and IPL papers — a reward model fit
to the preferences (PEBBLE's Bradley–Terry ensemble), then offline RL (IQL) on the
transitions relabeled with it.

It is :class:`~pbrl.learners.ipl.IPL` with one change, the critic's target: instead of the
implicit-reward likelihood, the usual IQL regression on the learned reward

    L_Q = E[(Q_i(s, a) − r̂(s, a, s') − γ (1 − d) V(s'))²]

with ``d = 1`` after a true termination, nothing bootstrapped past it (see :mod:`pbrl.learners.ipl`);
value expectile and advantage-weighted policy as in IPL, same ``ipl`` settings. The
reward model is refit whenever the dataset grew since the last fit (offline: once).

``r̂`` is fixed between fits, so it is not recomputed per minibatch: after a fit (and when
the labeled dataset or the replay is replaced) every step of the labeled segments and every
replay transition is relabeled in one pass (:class:`CachedRewards`), and a minibatch reads
its rewards by the same indices it was drawn with — the same numbers as scoring the
minibatch, one ensemble pass per fit instead of one per gradient step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pbrl.learners.base import RewardLearner
from pbrl.learners.ipl import IPL, IPLConfig, Replay
from pbrl.learners.policies import PairBatch
from pbrl.segments import PreferenceDataset, Segments


@dataclass(frozen=True)
class CachedRewards:
    """``r̂`` of everything a minibatch can draw, under the reward model's current fit: ``segments``
    ``[2, N, T]`` for the steps of ``data``'s left (0) and right (1) segments, ``replay`` ``[M]``
    for the transitions of ``source_replay`` (``None`` without one). Valid for that fit, ``data``
    and ``source_replay`` only."""

    data: PreferenceDataset
    source_replay: Replay | None
    segments: torch.Tensor
    replay: torch.Tensor | None

    @classmethod
    def compute(
        cls, reward: RewardLearner, data: PreferenceDataset, replay: Replay | None, device: torch.device
    ) -> "CachedRewards":
        """Score every step of ``data``'s segments and every ``replay`` transition in one pass each."""

        def score(obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> torch.Tensor:
            flat = [torch.as_tensor(a.reshape(-1, a.shape[-1]), dtype=torch.float32) for a in (obs, actions, next_obs)]
            return reward.reward_tensor(*(x.to(reward.device) for x in flat)).to(device)

        both = lambda name: np.stack([getattr(data.left, name), getattr(data.right, name)])  # noqa: E731
        segments = score(both("obs"), both("actions"), both("next_obs")).reshape(2, len(data), data.left.length)
        replay_rewards = None if replay is None else score(replay.obs, replay.actions, replay.next_obs)
        return cls(data, replay, segments, replay_rewards)

    def holds(self, data: PreferenceDataset, replay: Replay | None) -> bool:
        """Whether these are the rewards of ``data`` and ``replay`` (the same objects)."""
        return self.data is data and self.source_replay is replay

    def lookup(self, batch: PairBatch, replay_index: np.ndarray | None) -> torch.Tensor:
        """Rewards of a minibatch's flattened labeled steps (``[2, B, T]`` order), then its replay rows."""
        device = self.segments.device
        rows, steps = (torch.as_tensor(i, device=device) for i in (batch.index[:, None], batch.steps))
        rewards = self.segments[:, rows, steps].reshape(-1)
        if replay_index is None:
            return rewards
        return torch.cat([rewards, self.replay[torch.as_tensor(replay_index, device=device)]])


class PreferenceIQL(IPL):
    """Reward model + IQL (see the module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, reward: RewardLearner, config: IPLConfig = IPLConfig(), seed: int = 0) -> None:
        super().__init__(obs_dim, act_dim, config, seed)
        self.reward = reward
        self.reward_fit_on = 0  # labels the reward model was last fit to
        self.cached: CachedRewards | None = None  # r̂ under the current fit (made by update)

    def update(self, data: PreferenceDataset) -> dict[str, float]:
        fit: dict[str, float] = {}
        if len(data) != self.reward_fit_on:
            fit = {f"reward_model/{k}": v for k, v in self.reward.update(data).items()}
            self.reward_fit_on = len(data)
            self.cached = None
        if self.cached is None or not self.cached.holds(data, self.replay):
            self.cached = CachedRewards.compute(self.reward, data, self.replay, self.device)
        return {**fit, **super().update(data)}

    def transition_rewards(self, batch: PairBatch, replay_index: np.ndarray | None) -> torch.Tensor:
        """``r̂`` of a minibatch's transitions (labeled steps, then replay rows), from the cache."""
        return self.cached.lookup(batch, replay_index)

    def critic_loss(
        self, q: torch.Tensor, next_v: torch.Tensor, batch: PairBatch, replay_index: np.ndarray | None, labeled: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """IQL's TD regression on the learned reward, ``(Q_i − r̂ − γ next_v)²`` with ``next_v = (1 − d) V(s')``
        (labeled and replay steps mixed)."""
        with torch.no_grad():
            reward = self.transition_rewards(batch, replay_index)
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
        self.cached = None
