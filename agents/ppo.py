"""PrefPPO: stable-baselines3 PPO on the learned reward.

The learned reward reaches PPO through :class:`~agents.preference_env.PreferenceVecEnv`
(optionally scaled by ``VecNormalize``'s running return statistics, rewards only), and
feedback rounds run at the *start* of a rollout, so every rollout is collected under one
reward function.
"""

from __future__ import annotations

from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from pbrl.agents.config import PPOConfig
from pbrl.learners.base import PreferenceLearner
from pbrl.registry import BuildContext


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


class PPOAgent:
    """``agent.type=ppo``: PrefPPO, the learned reward scaled by ``VecNormalize`` (``normalize_reward``)."""

    on_policy = True

    def __init__(self, config: PPOConfig, ctx: BuildContext) -> None:
        self.config, self.seed, self.n_envs = config, ctx.seed, config.n_envs

    def wrap(self, env: VecEnv, checkpoint: Path | None) -> VecEnv:
        if not self.config.normalize_reward:
            return env
        if checkpoint is not None:
            return VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), env)
        return VecNormalize(env, norm_obs=False, norm_reward=True, gamma=self.config.gamma)

    def build(self, env: VecEnv, learner: PreferenceLearner | None, steps: int) -> PPO:
        return make_ppo(env, self.config, self.seed)

    def load(self, checkpoint: Path, env: VecEnv, learner: PreferenceLearner | None) -> PPO:
        return PPO.load(checkpoint / "agent.zip", env=env, device=self.config.device)

    def save(self, model: PPO, checkpoint: Path) -> None:
        model.save(checkpoint / "agent.zip")
        if isinstance(model.get_env(), VecNormalize):
            model.get_env().save(str(checkpoint / "vecnormalize.pkl"))

    def hooks(self, model: PPO) -> PPOFeedbackHooks:
        return PPOFeedbackHooks()
