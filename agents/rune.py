"""RUNE: exploration from reward uncertainty (Liang et al., "Reward Uncertainty for Exploration
in Preference-based Reinforcement Learning", ICLR 2022; reference code rll-research/rune,
``agent/sac_explore.py``, ``reward_model_explore.py``, ``replay_buffer_explore.py``).

After PEBBLE's unsupervised pre-training, SAC's critic regresses on

    r_t = r̂(s, a) + β_t · std_e r̂_e(s, a),     β_t = β_0 (1 − ρ)^t

with ``r̂`` the ensemble mean, ``std_e`` the population standard deviation over the E
members (``np.std``, ddof 0: ``r_hat_std_batch``) and ``t`` the global env step
(``SACAgent_Explore.beta``, schedule ``linear_decay``; ``constant`` keeps β_0). The
reference stores the std next to r̂ in its replay buffer, relabels both after every reward
update, and applies β_t when a minibatch is drawn. Defaults: β_0 = 0.05, ρ = 1e-5
(``config/agent/sac_explore.yaml``; ``scripts/drawer_open/5000`` uses ρ = 1e-3).

This module holds the computation; the replay buffers keep the column and apply β_t
(:meth:`pbrl.agents.replay.PreferenceReplayBuffer.attach_rune`, attached by ``SACAgent`` when
``agent.rune`` is a section; ``experiments/configs/rune_door_open.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pbrl.learners.base import RewardLearner
from pbrl.segments import Segments


@dataclass(frozen=True)
class RUNEConfig:
    """RUNE's exploration bonus (``agent.rune``)."""

    beta_init: float = 0.05
    """β_0, the bonus weight at step 0 (``beta_init``)."""
    beta_decay: float = 1e-5
    """ρ: β_t = β_0 (1 − ρ)^t per env step (``beta_decay``)."""
    schedule: str = "linear_decay"
    """'linear_decay' (the reference's name for the exponential decay above) or 'constant'."""

    def __post_init__(self) -> None:
        if self.schedule not in ("linear_decay", "constant"):
            raise ValueError(f"agent.rune.schedule must be 'linear_decay' or 'constant', got {self.schedule!r}")
        if self.beta_init < 0 or not 0.0 <= self.beta_decay < 1.0:
            raise ValueError("agent.rune.beta_init must be ≥ 0 and agent.rune.beta_decay in [0, 1)")


class RUNEBonus:
    """``β_t · std_e r̂_e(s, a)``: the std is a per-transition column relabeled with the reward;
    β_t is applied when a minibatch is drawn.

    The replay buffers' hook (``PreferenceReplayBuffer.attach_rune``): an array ``bonus`` shaped
    like ``rewards``, written with :meth:`std` wherever ``rewards`` is (re)labeled with the
    learner (``relabel_rows``) and for each newly stored row; sampled batches carry ``rewards +
    beta(model.num_timesteps) · bonus[rows]`` once the state-entropy reward of pre-training is off.
    """

    def __init__(self, config: RUNEConfig = RUNEConfig()) -> None:
        self.config = config

    def beta(self, step: int) -> float:
        """β_t at global env step ``t``."""
        cfg = self.config
        if cfg.schedule == "constant":
            return cfg.beta_init
        return cfg.beta_init * (1.0 - cfg.beta_decay) ** step

    @staticmethod
    def std(learner: RewardLearner, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """``std_e r̂_e(s, a)`` over the members (ddof 0), ``[N]``, for flat ``[N, ·]`` batches."""
        steps = Segments(np.asarray(obs, np.float32)[:, None], np.asarray(actions, np.float32)[:, None], np.asarray(next_obs, np.float32)[:, None])
        member = learner.member_segment_returns(steps).cpu().numpy()  # [E, N]: 1-step segments = per-step rewards
        return member.std(axis=0)

    def reward(self, learner: RewardLearner, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, step: int) -> np.ndarray:
        """``r̂(s, a) + β_t std_e r̂_e(s, a)``, ``[N]`` — the critic's reward at env step ``step``."""
        return learner.reward(obs, actions, next_obs) + self.beta(step) * self.std(learner, obs, actions, next_obs)


__all__ = ["RUNEBonus", "RUNEConfig"]
