"""The VecEnv wrapper that puts the preference loop between the env and the agent.

It does three things on every step, for SAC and PPO alike:

* replaces the env's reward with the learner's reward ``r̂(s, a, s')`` (the true reward
  stays in ``info["true_reward"]``), so the agent never trains on the true reward —
  unless there is no learner at all (``learner=None``: the true-reward SAC baseline);
* logs the transition — with its true reward, success, whether it truly terminated the
  episode (not a time-limit cut) and the simulator state before the step — into the
  :class:`~pbrl.transitions.TransitionLog` that segments are drawn from;
* keeps the true return and success of recent episodes (for logging and for the
  teacher's B-Pref thresholds).

Actions are logged and fed to the learner normalised to [-1, 1] by the action space's
bounds — the same representation SAC stores in its replay buffer — so relabeling the
buffer and rewarding new steps use one and the same reward function.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.rollout import ActionScale
from pbrl.transitions import TransitionLog


class PreferenceVecEnv(VecEnvWrapper):
    """Learned reward in, transitions and true returns out."""

    def __init__(self, venv: VecEnv, learner: PreferenceLearner | None, log: TransitionLog, history: int = 100) -> None:
        super().__init__(venv)
        if not isinstance(venv.action_space, spaces.Box):
            raise TypeError("pbrl supports continuous (Box) action spaces only")
        self.learner = learner
        self.log = log
        self.scale = ActionScale(venv.action_space)  # the log keeps actions in [−1, 1] (SB3's scale_action)
        self.episode_returns: deque[float] = deque(maxlen=history)
        self.episode_successes: deque[float] = deque(maxlen=history)
        self.episode_learned_returns: deque[float] = deque(maxlen=history)
        self._return = np.zeros(self.num_envs)
        self._learned_return = np.zeros(self.num_envs)
        self._success = np.zeros(self.num_envs)
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        self._return[:] = self._learned_return[:] = self._success[:] = 0.0
        self.log.mark_episode_boundary()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = self.scale.to_unit(np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1))
        self.venv.step_async(actions)

    def step_wait(self):
        obs, env_rewards, dones, infos = self.venv.step_wait()
        next_obs = np.array(obs, dtype=np.float32, copy=True)
        for i, done in enumerate(dones):
            if done and "terminal_observation" in infos[i]:
                next_obs[i] = infos[i]["terminal_observation"]
        true_rewards = np.array([info["true_reward"] for info in infos], dtype=np.float32)
        successes = np.array([info.get("success", 0.0) for info in infos], dtype=np.float32)
        sim_states = np.stack([info["sim_state"] for info in infos]) if "sim_state" in infos[0] else None
        # SB3 folds terminated and truncated into ``dones``; a time-limit cut is flagged in the info
        terminals = np.array([done and not info.get("TimeLimit.truncated", False) for done, info in zip(dones, infos)])

        if isinstance(self.learner, RewardLearner):
            rewards = self.learner.reward(self._obs, self._actions, next_obs).astype(np.float32)
        elif self.learner is None:  # the true-reward baseline
            rewards = np.asarray(env_rewards, dtype=np.float32)
        else:  # reward-free learners own their policy; the env reward is not used
            rewards = np.zeros(self.num_envs, dtype=np.float32)
        self.log.add(self._obs, self._actions, next_obs, true_rewards, successes, dones, sim_states, terminals)

        self._return += true_rewards
        self._learned_return += rewards
        self._success = np.maximum(self._success, successes)
        for i in np.flatnonzero(dones):
            self.episode_returns.append(float(self._return[i]))
            self.episode_learned_returns.append(float(self._learned_return[i]))
            self.episode_successes.append(float(self._success[i]))
            self._return[i] = self._learned_return[i] = self._success[i] = 0.0
        self._obs = obs
        return obs, rewards, dones, infos
