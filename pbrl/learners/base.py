"""What the loop needs from a preference learner.

* :class:`PreferenceLearner` — anything that learns from labeled pairs (reward models
  and the reward-free IPL/CPL alike): ``update`` and save/load.
* :class:`RewardLearner` — a learner that also yields a reward ``r̂(s, a, s')`` for the
  agent, per-member pair probabilities for disagreement-style queries, and segment
  features for coverage-style queries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from pbrl.segments import PreferenceDataset, Segments
from pbrl.transitions import TransitionView


class PreferenceLearner(ABC):
    """Learns from a :class:`PreferenceDataset` (never sees true rewards)."""

    @abstractmethod
    def update(self, data: PreferenceDataset) -> dict[str, float]:
        """Fit to all labels so far; return scalars to log (e.g. ``train_accuracy``)."""

    @abstractmethod
    def preference_probability(self, left: Segments, right: Segments) -> np.ndarray:
        """The learner's ``P[left_i ≻ right_i]``, ``[B]`` (for held-out accuracy)."""

    def observe(self, view: TransitionView) -> dict[str, float]:
        """Learn from unlabeled experience before each ``update`` (e.g. a world model or a
        dynamics-aware encoder on the agent's recent transitions); returns scalars to log.
        The loop calls it every round with ``log.view()`` — observations, actions, next
        observations, terminals, simulator states and segment sampling, never a true reward;
        most learners need nothing from it."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (weights, optimiser, RNG)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RewardLearner(PreferenceLearner):
    """A preference learner that provides a reward to an RL agent."""

    device: torch.device

    @abstractmethod
    def reward_tensor(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Mean learned reward of a flat batch ``[N]`` (tensors on ``self.device``, no grad)."""

    @abstractmethod
    def member_segment_returns(self, segments: Segments) -> torch.Tensor:
        """Each member's predicted return of each segment, ``[E, B]``."""

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Mean learned reward of a flat numpy batch, ``[N]``."""
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=self.device)  # noqa: E731
        return self.reward_tensor(as_t(obs), as_t(actions), as_t(next_obs)).cpu().numpy()

    def pair_probabilities(self, left: Segments, right: Segments) -> np.ndarray:
        """``P_e[left_i ≻ right_i] = σ(R̂_e(left_i) − R̂_e(right_i))`` for every member, ``[E, B]``."""
        with torch.no_grad():
            diff = self.member_segment_returns(left) - self.member_segment_returns(right)
            return torch.sigmoid(diff).cpu().numpy()

    def preference_probability(self, left: Segments, right: Segments) -> np.ndarray:
        """Ensemble-mean preference probability, ``[B]``."""
        return self.pair_probabilities(left, right).mean(axis=0)

    def segment_features(self, segments: Segments) -> np.ndarray:
        """Features for coverage-based query selection: the flattened observations (B-Pref's k-center)."""
        return segments.obs.reshape(len(segments), -1)
