"""pbrl's environments: make any supported env by one id, snapshot and re-render its states.

    from pbrl import envs
    env = envs.make("metaworld:door-open-v3", seed=0)
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["true_reward"], info["success"], info["sim_state"]      # always present
    frames = envs.render_states(env, np.stack([info["sim_state"]]))   # [1, 256, 256, 3]

Ids are ``gym:<Gymnasium MuJoCo v5 id>``, ``metaworld:<task>-v3`` and
``dmc:<domain>-<task>`` (DMC needs ``pip install 'pbrl[dmc]'``); see
:func:`available_env_ids`.
"""

import os

# Headless rendering: MuJoCo picks its OpenGL backend when first imported, so this must
# run before anything imports mujoco. An explicit MUJOCO_GL from the user wins.
os.environ.setdefault("MUJOCO_GL", "egl")

from pbrl.envs.factory import make  # noqa: E402
from pbrl.envs.registry import UnknownEnvError, available_env_ids, suite_of  # noqa: E402
from pbrl.envs.rendering import render_states  # noqa: E402
from pbrl.envs.sim_state import get_sim_state, set_sim_state  # noqa: E402
from pbrl.envs.wrappers import PreferenceInfoWrapper, episode_limit  # noqa: E402

__all__ = [
    "PreferenceInfoWrapper",
    "UnknownEnvError",
    "available_env_ids",
    "episode_limit",
    "get_sim_state",
    "make",
    "render_states",
    "set_sim_state",
    "suite_of",
]
