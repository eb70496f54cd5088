"""Deterministic evaluation episodes on the true reward, of an SB3 model or of a reward-free
learner's own policy (through :class:`PolicyAgent`, which gives it SB3's ``predict``)."""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np

from pbrl.learners.policies import PolicyLearner
from pbrl.rollout import ActionScale


class Predictor(Protocol):
    """stable-baselines3's ``predict``: what an evaluated agent needs."""

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, object]: ...


class PolicyAgent:
    """A policy learner (CPL, IPL, P-IQL, BC) behind SB3's ``predict``: its mean action, mapped from
    the unit box to the env's action box."""

    def __init__(self, learner: PolicyLearner, space: gym.spaces.Box) -> None:
        self.learner, self.scale = learner, ActionScale(space)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.scale.to_env(self.learner.act(obs)), None


class Evaluator:
    """Runs ``episodes`` deterministic episodes on a separate env; reports true return and success rate."""

    def __init__(self, env: gym.Env, episodes: int = 5, seed: int = 0) -> None:
        self.env, self.episodes, self.seed = env, episodes, seed
        self._resets = 0

    def evaluate(self, model: Predictor) -> dict[str, float]:
        returns, successes = [], []
        for _ in range(self.episodes):
            obs, _ = self.env.reset(seed=self.seed + self._resets)
            self._resets += 1
            done, total, success = False, 0.0, 0.0
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = self.env.step(action)
                total += info["true_reward"]
                success = max(success, float(info.get("success", 0.0)))
                done = terminated or truncated
            returns.append(total)
            successes.append(success)
        return {
            "eval/true_return": float(np.mean(returns)),
            "eval/true_return_std": float(np.std(returns)),
            "eval/success_rate": float(np.mean(successes)),
        }
