"""Snapshot and restore the full simulator state of any env pbrl makes, as one float64 vector.

Why: segments are stored as states and re-rendered only when a person has to see them,
and a state restored then stepped must replay the original trajectory bit for bit.

The vector is ``[MuJoCo integration state | per-episode model fields | Python-side fields]``:

- MuJoCo's ``mjSTATE_INTEGRATION`` (time, qpos, qvel, act, warm start, mocap pos/quat,
  userdata, plugin state): everything ``mj_step`` reads. MetaWorld's gripper is
  mocap-driven, so mocap is essential there.
- Model fields a task rewrites per episode, so a frame shows *that* episode's goal:
  MetaWorld moves bodies (door, drawer, ...) and goal sites with ``model.body_pos`` /
  ``model.site_pos``; DMC tasks move targets with ``geom_pos`` / ``site_pos`` /
  ``light_pos`` and point_mass-hard rewires ``wrap_prm``.
- MetaWorld's Python-side state that the next observation reads: ``_target_pos`` (goal in
  the observation, and the reward's target) and ``_prev_obs`` (the frame-stacked half of
  the observation).

Not restored (documented limits): episode step counters (the time limit keeps counting
steps taken), MetaWorld's per-episode reward constants such as ``obj_init_pos`` (restoring
a state from *another* episode reproduces physics, observations and frames but the shaped
reward uses the current episode's constants), and DMC quadruped-escape's terrain heightfield.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import mujoco
import numpy as np

_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION


@dataclass(frozen=True)
class _Layout:
    """What, besides MuJoCo's integration state, a suite's state vector holds."""

    model_fields: tuple[str, ...] = ()
    env_attrs: tuple[tuple[str, int], ...] = ()
    """(attribute of the unwrapped env, its length); ``None`` values are stored as NaN."""


SimulatorKind = Literal["mujoco", "metaworld", "dmc"]
_LAYOUTS: dict[SimulatorKind, _Layout] = {
    "mujoco": _Layout(),
    "metaworld": _Layout(("body_pos", "site_pos"), (("_target_pos", 3), ("_prev_obs", 18))),
    "dmc": _Layout(("geom_pos", "site_pos", "light_pos", "wrap_prm")),
}


def sim_handles(env: gym.Env) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """The MuJoCo model and data behind ``env`` (any wrapper stack), for state and rendering."""
    base: Any = env.unwrapped
    physics = getattr(getattr(base, "_env", None), "physics", None)
    if physics is not None:  # dm_control through shimmy
        return physics.model.ptr, physics.data.ptr
    model, data = getattr(base, "model", None), getattr(base, "data", None)
    if isinstance(model, mujoco.MjModel) and isinstance(data, mujoco.MjData):
        return model, data
    raise TypeError(
        f"{type(base).__name__} has no MuJoCo simulator; sim state and rendering work for "
        "envs made by envs.make (Gymnasium MuJoCo, MetaWorld, DeepMind Control)."
    )


def simulator_kind(env: gym.Env) -> SimulatorKind:
    """Which kind of MuJoCo env this is; decides the state layout and the default camera."""
    base: Any = env.unwrapped
    if hasattr(getattr(base, "_env", None), "physics"):
        return "dmc"
    metaworld = sys.modules.get("metaworld.sawyer_xyz_env")  # loaded if base is MetaWorld's
    if metaworld is not None and isinstance(base, metaworld.SawyerXYZEnv):
        return "metaworld"
    return "mujoco"


def _layout(env: gym.Env) -> _Layout:
    return _LAYOUTS[simulator_kind(env)]


def get_sim_state(env: gym.Env) -> np.ndarray:
    """A flat float64 copy of ``env``'s full simulator state (see the module docstring)."""
    model, data = sim_handles(env)
    layout = _layout(env)
    parts = [np.empty(mujoco.mj_stateSize(model, _INTEGRATION))]
    mujoco.mj_getState(model, data, parts[0], _INTEGRATION)
    parts += [getattr(model, field).ravel() for field in layout.model_fields]
    for attr, size in layout.env_attrs:
        value = getattr(env.unwrapped, attr)
        part = np.full(size, np.nan) if value is None else np.asarray(value, np.float64).ravel()
        if part.size != size:
            raise RuntimeError(f"expected {attr} to hold {size} values, found {part.size}")
        parts.append(part)
    return np.concatenate(parts).astype(np.float64, copy=False)


def set_sim_state(env: gym.Env, state: np.ndarray) -> None:
    """Restore a state from :func:`get_sim_state` exactly, then ``mj_forward``.

    Stepping after a restore reproduces the original trajectory under the same actions.
    Raises ``ValueError`` if ``state`` was not taken from an env of the same id.
    """
    model, data = sim_handles(env)
    layout = _layout(env)
    state = np.asarray(state, dtype=np.float64)
    physics_size = mujoco.mj_stateSize(model, _INTEGRATION)
    sizes = [physics_size]
    sizes += [getattr(model, field).size for field in layout.model_fields]
    sizes += [size for _, size in layout.env_attrs]
    if state.shape != (sum(sizes),):
        raise ValueError(
            f"state has shape {state.shape} but {env.unwrapped.__class__.__name__}'s sim state "
            f"has {sum(sizes)} values; restore only states saved by get_sim_state from an env "
            "of the same id."
        )
    chunks = np.split(state, np.cumsum(sizes)[:-1])
    physics = np.ascontiguousarray(chunks[0])
    mujoco.mj_setState(model, data, physics, _INTEGRATION)
    for field, chunk in zip(layout.model_fields, chunks[1:]):
        target = getattr(model, field)
        target[...] = chunk.reshape(target.shape)
    attr_chunks = chunks[1 + len(layout.model_fields) :]
    for (attr, _), chunk in zip(layout.env_attrs, attr_chunks):
        setattr(env.unwrapped, attr, None if np.isnan(chunk).all() else chunk.copy())
    mujoco.mj_forward(model, data)
    # mj_forward overwrites the solver's warm start (qacc_warmstart) with its own solution;
    # put the saved one back so the next mj_step starts from exactly the saved state.
    mujoco.mj_setState(model, data, physics, _INTEGRATION)
