"""Acting in an environment and recording it: one action scaling, one rollout loop.

Every place that steps an env from :func:`pbrl.envs.make` outside stable-baselines3 — dataset
collection, the reward-free online loop, demo segments for the labeling page, benches and
tests — uses these two pieces:

* :class:`ActionScale` — policies here act in the unit box ``[−1, 1]^a`` (tanh-squashed
  actors, CPL/IPL, scripted experts); envs take actions in their own ``Box(low, high)``::

      to_env(u)  = low + (clip(u, −1, 1) + 1) · (high − low) / 2
      to_unit(a) = 2 (a − low) / (high − low) − 1

* :class:`Rollout` — steps one env with a policy and records every step into a
  :class:`~pbrl.transitions.TransitionLog` (the true reward, success and simulator state
  from ``info``; gymnasium's ``terminated`` as the terminal flag), resets at episode ends
  and keeps every finished episode's true return and success.

API (stable; other modules build on it)::

    rollout = Rollout(env, log)                        # log optional; unit actions by default
    result = rollout.run(policy, episodes=10, seed=0)  # episodes reset with seeds 0, 1, …, 9
    result = rollout.run(policy, steps=1_000)          # continue; unseeded resets at episode ends
    obs = rollout.current_obs()                        # the observation to act on (resets at a boundary)
    done = rollout.step(policy(obs))                   # one step, for loops that learn in between
    rollout.returns, rollout.successes                 # every finished episode's true return and success

``policy`` maps one observation ``[obs_dim]`` to one action ``[act_dim]`` (in the unit box
unless ``unit_actions=False``); :class:`SineGait` is an open-loop one for data without an agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from pbrl.transitions import TransitionLog

Policy = Callable[[np.ndarray], np.ndarray]
"""One observation ``[obs_dim]`` → one action ``[act_dim]``."""


class ActionScale:
    """Maps actions between the unit box ``[−1, 1]^a`` and an env's action ``Box(low, high)``."""

    def __init__(self, space: gym.spaces.Box) -> None:
        if not isinstance(space, gym.spaces.Box) or not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"ActionScale needs a bounded Box action space, got {space}; pbrl's agents act in bounded boxes only")
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)

    def to_env(self, unit: np.ndarray) -> np.ndarray:
        """``low + (clip(u, −1, 1) + 1) · (high − low) / 2`` (float32, any leading shape)."""
        return (self.low + (np.clip(unit, -1.0, 1.0) + 1.0) * (self.high - self.low) / 2.0).astype(np.float32)

    def to_unit(self, action: np.ndarray) -> np.ndarray:
        """``2 (a − low) / (high − low) − 1`` (float32, any leading shape)."""
        return (2.0 * (action - self.low) / (self.high - self.low) - 1.0).astype(np.float32)


@dataclass(frozen=True)
class RolloutResult:
    """The episodes that finished during one :meth:`Rollout.run` call."""

    returns: list[float]
    """True (undiscounted) return of each finished episode."""
    successes: list[float]
    """Whether each finished episode ever succeeded (max of ``info["success"]``; 0 outside MetaWorld)."""
    lengths: list[int]
    """Steps of each finished episode."""
    steps: int
    """Env steps taken by the call (including those of an episode still running)."""


class Rollout:
    """Steps one env with a policy, records every step into a log, keeps per-episode stats.

    ``env`` must come from :func:`pbrl.envs.make` (``info`` carries ``true_reward``,
    ``success`` and ``sim_state``). With ``unit_actions`` (default) actions are in the unit
    box, clipped to it, logged as clipped and mapped to the env's box by :class:`ActionScale`;
    otherwise they go to the env unchanged. ``sim_states=False`` logs no simulator states
    (segments of such a log cannot be re-rendered).
    """

    def __init__(self, env: gym.Env, log: TransitionLog | None = None, *, unit_actions: bool = True,
                 sim_states: bool = True) -> None:
        if log is not None and log.n_envs != 1:
            raise ValueError(f"Rollout steps one env; give it a TransitionLog with n_envs=1, not {log.n_envs}")
        self.env, self.log = env, log
        self.scale = ActionScale(env.action_space) if unit_actions else None
        self.record_states = sim_states
        self.obs: np.ndarray | None = None  # None: at an episode boundary, the next step resets
        self.returns: list[float] = []
        self.successes: list[float] = []
        self.lengths: list[int] = []
        self._return, self._success, self._length = 0.0, 0.0, 0

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode (a running one is dropped; the log starts a fresh episode too)."""
        if self._length and self.log is not None:
            self.log.mark_episode_boundary()
        self.obs, _ = self.env.reset(seed=seed)
        self._return, self._success, self._length = 0.0, 0.0, 0
        return self.obs

    def current_obs(self) -> np.ndarray:
        """The observation to act on; at an episode boundary, the first one of a new (unseeded) episode."""
        return self.reset() if self.obs is None else self.obs

    def step(self, action: np.ndarray) -> bool:
        """Take ``action`` (chosen for :meth:`current_obs`) in the running episode; True when the episode ended."""
        if self.obs is None:
            raise RuntimeError("Rollout.step: no running episode; act on rollout.current_obs() (or reset()) first")
        obs = self.obs
        if self.scale is not None:
            action = np.clip(action, -1.0, 1.0).astype(np.float32)
            env_action = self.scale.to_env(action)
        else:
            env_action = action
        next_obs, _, terminated, truncated, info = self.env.step(env_action)
        done = bool(terminated or truncated)
        if self.log is not None:
            self.log.add(obs[None], np.asarray(action)[None], next_obs[None], np.array([info["true_reward"]]),
                         np.array([info["success"]]), np.array([done]),
                         sim_states=info["sim_state"][None] if self.record_states else None, terminals=np.array([terminated]))
        self._return += info["true_reward"]
        self._success = max(self._success, info["success"])
        self._length += 1
        self.obs = next_obs
        if done:
            self.returns.append(self._return)
            self.successes.append(self._success)
            self.lengths.append(self._length)
            self.obs, self._length = None, 0
        return done

    def run(self, policy: Policy, *, steps: int | None = None, episodes: int | None = None,
            seed: int | None = None) -> RolloutResult:
        """Act with ``policy`` for ``steps`` env steps or ``episodes`` whole episodes (give exactly one).

        ``episodes`` starts each episode with ``reset(seed=seed + i)`` (``seed=None``: unseeded) and
        needs the rollout at an episode boundary; ``steps`` continues the running episode and resets
        unseeded at episode ends.
        """
        if (steps is None) == (episodes is None):
            raise ValueError("Rollout.run: give exactly one of steps= or episodes=")
        if episodes is not None and self._length:
            raise ValueError("Rollout.run(episodes=...) starts whole episodes; finish the running one first (run(steps=...)) or reset()")
        finished, taken = len(self.returns), 0
        if episodes is not None:
            for i in range(episodes):
                self.reset(None if seed is None else seed + i)
                while True:
                    taken += 1
                    if self.step(policy(self.obs)):
                        break
        else:
            for _ in range(steps):
                self.step(policy(self.current_obs()))
                taken += 1
        return RolloutResult(self.returns[finished:], self.successes[finished:], self.lengths[finished:], taken)


class SineGait:
    """An open-loop behaviour for data without an agent: per joint ``j`` at step ``t`` of the episode,

        a_j(t) = clip(amplitude_j · sin(ω_j t + φ_j) + noise · ε,  −1, 1),   ε ~ N(0, 1)

    (unit-box actions; varied gaits give segments that range from running backwards to forwards).
    Make one per episode: it counts its calls as ``t``.
    """

    def __init__(self, amplitude: float | np.ndarray, omega: np.ndarray, phase: np.ndarray, noise: float,
                 rng: np.random.Generator) -> None:
        self.amplitude, self.omega, self.phase, self.noise, self.rng = amplitude, omega, phase, noise, rng
        self.t = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        wave = self.amplitude * np.sin(self.omega * self.t + self.phase) + self.noise * self.rng.normal(size=np.shape(self.omega))
        self.t += 1
        return np.clip(wave, -1.0, 1.0).astype(np.float32)
