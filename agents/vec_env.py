"""The vector of environments an agent steps: one process, or one subprocess per env.

With ``n_envs > 1`` (PrefPPO) the envs step in parallel in subprocesses
(stable-baselines3's ``SubprocVecEnv``) and :class:`~pbrl.agents.preference_env.PreferenceVecEnv`
computes the learned reward of the whole vector in one call ``r̂(s[n], a[n], s'[n])``
in the main process, so the reward model is never copied into the workers. One env stays
in-process (``DummyVecEnv``): a subprocess would only add a pipe round-trip per step.

Infos (true reward, success, simulator state) cross the pipe pickled, as SB3 does for
any ``SubprocVecEnv``. The factories must be picklable by cloudpickle (closures over a
config are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

Vectorization = Literal["auto", "dummy", "subprocess"]


def make_vec_env(factories: Sequence[Callable[[], gym.Env]], vectorization: Vectorization = "auto",
                 start_method: str | None = None) -> VecEnv:
    """``DummyVecEnv`` for one env (or ``"dummy"``), ``SubprocVecEnv`` for several (or ``"subprocess"``).

    ``start_method``: SB3's (``None`` = ``forkserver`` where available, else ``spawn``).
    """
    if vectorization not in ("auto", "dummy", "subprocess"):
        raise ValueError(f"vectorization must be 'auto', 'dummy' or 'subprocess', got {vectorization!r}")
    subprocess = vectorization == "subprocess" or (vectorization == "auto" and len(factories) > 1)
    return SubprocVecEnv(list(factories), start_method=start_method) if subprocess else DummyVecEnv(list(factories))
