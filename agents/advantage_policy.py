"""Acting greedily on a learned optimal advantage: SAC's actor ascends Â, no critic.

Knox et al. ("Learning Optimal Advantage from Preferences and Mistaking it for Reward",
AAAI 2024) recommend using the Â learned from regret preferences greedily,
``π(s) = argmax_a Â(s, a)``, instead of as a reward. With continuous actions the argmax is
an actor trained, maximum-entropy style, on replayed states:

    a = tanh(μ_θ(s) + σ_θ(s) · ε),  ε ~ N(0, I)                          (reparameterised)
    L_π = E_s[ α log π_θ(a|s) − Â(s, a) ]
    L_α = −E_s[ log α · (log π_θ(a|s) + H̄) ],  H̄ = −|A|                 (SAC's tuning)

where ``Â`` is the learner's ensemble mean, its parameters frozen (the gradient flows
through the action only). Nothing is bootstrapped: no critic update, no target network,
no discount, and the replay buffer's rewards are never read (so never relabeled).

Before the first feedback round there is no Â: PEBBLE's unsupervised pre-training runs
unchanged (SB3's SAC update, critic and all, on the state-entropy reward). The first
round ends it; from then on only the actor and α learn. Without pre-training
(``agent.unsupervised_pretraining=false``) the actor ascends the untrained Â from
``learning_starts`` on, as PEBBLE's agent would follow the untrained reward.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from stable_baselines3 import SAC

from pbrl.agents.config import SACConfig
from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.learners.base import PreferenceLearner


class Advantage(Protocol):
    """What the greedy actor needs from a learner (:class:`~pbrl.learners.AdvantageLearner` has it)."""

    device: torch.device

    def differentiable_advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Â(s, a)``, ``[N]``, differentiable in ``actions``, not in the learner's parameters."""


class GreedyAdvantageSAC(SAC):
    """SB3 SAC whose actor maximises ``Â(s, π(s)) + α H(π(·|s))`` directly once Â exists.

    ``advantage`` is not saved with the agent: attach the learner after building or
    loading the model (``model.advantage = learner``), as :class:`pbrl.agents.sac.SACAgent` does.
    """

    advantage: Advantage | None = None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "advantage"]

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        buffer: PreferenceReplayBuffer = self.replay_buffer
        if buffer.intrinsic is not None:  # PEBBLE's unsupervised pre-training: no Â yet
            return super().train(gradient_steps, batch_size)
        if self.advantage is None:
            raise RuntimeError("GreedyAdvantageSAC has no Â to act on: attach the learner with model.advantage = learner (after .load too)")
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer] + ([self.ent_coef_optimizer] if self.ent_coef_optimizer is not None else [])
        self._update_learning_rate(optimizers)
        actor_losses, advantages, ent_coefs, ent_coef_losses = [], [], [], []

        for _ in range(gradient_steps):
            obs = buffer.sample(batch_size, env=self._vec_normalize_env).observations
            actions, log_prob = self.actor.action_log_prob(obs)  # a = tanh(μ(s) + σ(s)·ε)
            log_prob = log_prob.reshape(-1, 1)

            if self.ent_coef_optimizer is None:
                ent_coef = self.ent_coef_tensor
            else:
                ent_coef = torch.exp(self.log_ent_coef.detach())
                # L_α = −E[log α · (log π(a|s) + H̄)]
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
                ent_coef_losses.append(ent_coef_loss.item())
            ent_coefs.append(ent_coef.item())

            device = self.advantage.device
            advantage = self.advantage.differentiable_advantage(obs.to(device), actions.to(device)).to(self.device)
            # L_π = E_s[α log π(a|s) − Â(s, a)]  (Â frozen; the gradient reaches θ through a)
            actor_loss = (ent_coef * log_prob - advantage.reshape(-1, 1)).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            actor_losses.append(actor_loss.item())
            advantages.append(advantage.mean().item())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/advantage", np.mean(advantages))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))


class GreedyAdvantageHooks:
    """What the greedy agent does after a feedback round.

    Nothing is relabeled (the actor reads Â itself, never the buffer's rewards). The first
    round ends PEBBLE's pre-training and gives the actor ``agent.reset_update`` steps on the
    first Â before it acts again (PEBBLE's reset update, with no critic to reset).
    """

    def __init__(self, model: GreedyAdvantageSAC, config: SACConfig) -> None:
        self.model, self.config = model, config

    def after_round(self, learner: PreferenceLearner) -> None:
        buffer: PreferenceReplayBuffer = self.model.replay_buffer
        if buffer.intrinsic is None:
            return
        buffer.intrinsic = None
        if buffer.filled() >= self.model.batch_size:
            self.model.train(gradient_steps=self.config.reset_update, batch_size=self.model.batch_size)

    def fix_latest(self, learner: PreferenceLearner) -> None:
        return None
