"""Deterministic evaluation episodes on the true reward."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm


class Evaluator:
    """Runs ``episodes`` deterministic episodes on a separate env; reports true return and success rate."""

    def __init__(self, env: gym.Env, episodes: int = 5, seed: int = 0) -> None:
        self.env, self.episodes, self.seed = env, episodes, seed
        self._resets = 0

    def evaluate(self, model: BaseAlgorithm) -> dict[str, float]:
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
