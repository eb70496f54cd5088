"""The wrappers :func:`pbrl.envs.make` applies so that every suite obeys one contract.

- :class:`MetaWorldSeeding` makes ``reset(seed=...)`` mean what it means in Gymnasium.
- :class:`FlatFloat32Observation` turns observations into one float32 vector.
- :class:`PreferenceInfoWrapper` (applied last) puts ``true_reward``, ``success`` and
  ``sim_state`` into every ``info`` and remembers the episode limit and the seed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from pbrl.envs.rendering import close_renderers
from pbrl.envs.sim_state import get_sim_state


class MetaWorldSeeding(gym.Wrapper):
    """Seeds MetaWorld on ``reset(seed=s)``; MetaWorld's own ``reset`` ignores its seed.

    Wrap MetaWorld's ``RandomTaskSelectWrapper`` with this: the seed then fixes both which
    of the task's 50 goals the episode gets and everything MetaWorld samples after it.
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self.env.unwrapped.seed(seed)  # type: ignore[attr-defined]
        return self.env.reset(options=options)


class FlatFloat32Observation(gym.ObservationWrapper):
    """Observations as one float32 vector: Box ones are cast, Dict ones (DMC) flattened.

    Dict observations are concatenated in the order of the observation space's keys.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        flat = gym.spaces.flatten_space(env.observation_space)
        with np.errstate(over="ignore"):  # finite float64 bounds beyond float32 become inf
            low, high = flat.low.astype(np.float32), flat.high.astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._dict_space = (
            env.observation_space if isinstance(env.observation_space, gym.spaces.Dict) else None
        )

    def observation(self, observation: Any) -> np.ndarray:
        if self._dict_space is not None:
            observation = gym.spaces.flatten(self._dict_space, observation)
        return np.asarray(observation, dtype=np.float32)


class PreferenceInfoWrapper(gym.Wrapper):
    """The outermost wrapper of every env from :func:`pbrl.envs.make`.

    ``step`` returns the env's true reward (agents replace it later) and always adds to
    ``info``: ``"true_reward"`` (float), ``"success"`` (float 0/1; MetaWorld's flag, 0.0
    elsewhere) and ``"sim_state"``, the simulator state *before* the step, i.e. the frame
    the agent saw when it chose the action. ``reset`` adds ``"sim_state"`` after reset.

    The seed given to ``make`` is used by the first ``reset`` that passes none, and seeds the
    action and observation spaces.
    """

    def __init__(self, env: gym.Env, *, env_id: str, episode_limit: int, seed: int | None) -> None:
        super().__init__(env)
        self.env_id = env_id
        self.episode_limit = episode_limit
        self._pending_seed = seed
        if seed is not None:
            self.action_space.seed(seed)
            self.observation_space.seed(seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        seed = self._pending_seed if seed is None else seed
        self._pending_seed = None
        observation, info = self.env.reset(seed=seed, options=options)
        info = dict(info)
        info["sim_state"] = get_sim_state(self.env)
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        state_before = get_sim_state(self.env)
        observation, reward, terminated, truncated, info = self.env.step(action)
        true_reward = float(reward)
        info = dict(info)
        info["true_reward"] = true_reward
        info["success"] = float(info.get("success", 0.0))
        info["sim_state"] = state_before
        return observation, true_reward, bool(terminated), bool(truncated), info

    def close(self) -> None:
        close_renderers(self)
        super().close()


def episode_limit(env: gym.Env) -> int:
    """The maximum number of steps in an episode of ``env`` (after which it truncates)."""
    try:
        return int(env.get_wrapper_attr("episode_limit"))
    except AttributeError:
        pass
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return int(env.spec.max_episode_steps)
    raise ValueError(
        f"{env} has no known episode limit; make it with envs.make, which sets one."
    )
