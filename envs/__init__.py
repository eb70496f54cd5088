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


def mujoco_repair_command() -> str:
    """The one line that reinstalls the MuJoCo pbrl pins (3.3.0, the monolithic package) in this Python."""
    import sys
    from importlib.metadata import PackageNotFoundError, requires

    try:
        pin = next(r.split(";")[0].replace(" ", "") for r in requires("pbrl") or [] if r.startswith("mujoco=="))
    except (PackageNotFoundError, StopIteration):
        pin = "mujoco==3.3.0"
    python = sys.executable
    return f"{python} -m pip uninstall -y mujoco mujoco-core mujoco-studio && {python} -m pip install '{pin}'"


try:  # pbrl's first import of MuJoCo: a broken install gets its repair in one line, not a traceback
    import mujoco  # noqa: E402, F401
except (ImportError, OSError, AttributeError) as _error:
    _reason = (str(_error).strip().splitlines() or [type(_error).__name__])[0]
    raise SystemExit(
        f"pbrl: `import mujoco` fails ({type(_error).__name__}: {_reason}) — usually an environment moved across "
        f"MuJoCo 4's package split (mujoco, mujoco-core, mujoco-studio). Repair: {mujoco_repair_command()}"
    ) from None

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
