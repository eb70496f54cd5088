"""PrefPPO: stable-baselines3 PPO on the learned reward.

The learned reward reaches PPO through :class:`~agents.preference_env.PreferenceVecEnv`
(optionally scaled by ``VecNormalize``'s running return statistics, rewards only), and
feedback rounds run at the *start* of a rollout, so every rollout is collected under one
reward function.
"""

from __future__ import annotations

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from pbrl.agents.config import PPOConfig


def make_ppo(env: VecEnv, config: PPOConfig, seed: int, tensorboard_log: str | None = None) -> PPO:
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        policy_kwargs={"net_arch": list(config.hidden_sizes)},
        tensorboard_log=tensorboard_log,
        seed=seed,
        device=config.device,
        verbose=0,
    )


class PPOFeedbackHooks:
    """PPO needs nothing after a round: the wrapper already uses the updated learner."""

    def after_round(self, learner) -> None:  # noqa: D102
        return None

    def fix_latest(self, learner) -> None:  # noqa: D102
        return None
