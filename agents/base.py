"""What the run engine needs from an agent type (``agent.type`` in :data:`pbrl.registry.AGENTS`).

An SB3 agent adapter builds, loads and saves one stable-baselines3 model and says what the
model does after a feedback round (:class:`FeedbackHooks`). :class:`~pbrl.agents.sac.SACAgent`
and :class:`~pbrl.agents.ppo.PPOAgent` are the built-ins (registered in :mod:`pbrl.agents.catalog`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from pbrl.learners.base import PreferenceLearner


class FeedbackHooks(Protocol):
    """The agent's part of a feedback round."""

    def after_round(self, learner: PreferenceLearner) -> None:
        """After the learner was updated (e.g. relabel the replay buffer, reset the critic)."""

    def fix_latest(self, learner: PreferenceLearner) -> None:
        """On the step after a round (off-policy: the row SB3 stored after the round ran)."""


class SB3Agent(Protocol):
    """One agent type: how many envs it steps, how it wraps them, how its model is built, saved and loaded."""

    on_policy: bool
    """Feedback rounds at rollout start (PPO) rather than before a step is stored (SAC)."""
    n_envs: int
    """Parallel environments."""

    def wrap(self, env: VecEnv, checkpoint: Path | None) -> VecEnv:
        """The env the model steps (e.g. reward normalisation), its statistics restored from ``checkpoint``."""

    def build(self, env: VecEnv, learner: PreferenceLearner | None, steps: int) -> BaseAlgorithm:
        """A fresh model for a run of ``steps`` env steps."""

    def load(self, checkpoint: Path, env: VecEnv, learner: PreferenceLearner | None) -> BaseAlgorithm:
        """The model saved by :meth:`save` in ``checkpoint``."""

    def save(self, model: BaseAlgorithm, checkpoint: Path) -> None:
        """Everything needed to continue the model (weights, replay buffer, normalisation) into ``checkpoint``."""

    def hooks(self, model: BaseAlgorithm) -> FeedbackHooks:
        """What the model does after each feedback round."""
