"""Re-render frames from stored simulator states, headless (EGL on Mesa, no display needed).

Nothing is drawn while an agent trains; a segment's frames are produced from its stored
``sim_state`` vectors only when a person has to see them. One ``mujoco.Renderer`` per
(env, size) is created on first use and kept until the env is closed. A renderer owns an
OpenGL context, made current on each render: render an env from one thread at a time
(e.g. one env per background worker).

Default cameras: Gymnasium MuJoCo envs use their ``"track"`` camera where the model has
one, else a free camera framing the whole model; MetaWorld uses ``"corner"``; DMC uses
camera 0 (tracking in the locomotion domains) except quadruped's camera 2, as DrQ does.
Fixed cameras whose "up" points below the horizon (MetaWorld's ``corner*`` cameras are
defined upside down) are turned the right way up by rotating the image 180 degrees.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from pbrl.envs.sim_state import get_sim_state, set_sim_state, sim_handles, simulator_kind

_RENDERERS: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], mujoco.Renderer]] = (
    weakref.WeakKeyDictionary()
)

_DMC_DOMAIN_CAMERA = {"quadruped": 2}
"""DMC cameras other than 0, as in DrQ: quadruped's camera 0 is a distant overview."""


def render_states(
    env: gym.Env,
    states: np.ndarray,
    width: int = 256,
    height: int = 256,
    camera: str | int | None = None,
) -> np.ndarray:
    """Frames ``[T, height, width, 3]`` (uint8 RGB) of ``env`` in each of ``states[T, S]``.

    ``camera`` is a camera name or id of the env's model (-1: a free camera), or ``None``
    for the env's default view (see the module docstring). The env's own state is restored
    afterwards, so rendering between steps does not change the trajectory.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2:
        raise ValueError(
            f"states must be a [T, S] array of get_sim_state vectors, got shape {states.shape}; "
            "for a single state pass states[None]."
        )
    model, data = sim_handles(env)
    renderer = _renderer(env, model, width, height)
    view = _camera(env, model, camera)
    frames = np.empty((len(states), height, width, 3), dtype=np.uint8)
    upside_down = False
    saved = get_sim_state(env)
    try:
        for t, state in enumerate(states):
            set_sim_state(env, state)
            if t == 0 and isinstance(view, int) and view >= 0:
                # Column 1 of the camera frame is its "up" direction in world coordinates.
                upside_down = bool(data.cam_xmat[view].reshape(3, 3)[2, 1] < 0)
            renderer.update_scene(data, camera=view)
            renderer.render(out=frames[t])
    finally:
        set_sim_state(env, saved)
    return np.ascontiguousarray(frames[:, ::-1, ::-1]) if upside_down else frames


def close_renderers(env: gym.Env) -> None:
    """Free the renderers (and their OpenGL contexts) cached for ``env``."""
    for renderer in _RENDERERS.pop(env.unwrapped, {}).values():
        renderer.close()


def _renderer(env: gym.Env, model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    cache = _RENDERERS.setdefault(env.unwrapped, {})
    if (width, height) not in cache:
        # The offscreen buffer's size is a model setting; grow it rather than refuse.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        # Shadow maps are sized when the context is made; models ask for 4096^2, which costs
        # Mesa's software renderer 2.5x the frame time of a 1024^2 map with no visible gain
        # at these sizes (HalfCheetah 256x256: 19 -> 47 frames/s on one busy core).
        shadow_size = model.vis.quality.shadowsize
        model.vis.quality.shadowsize = min(shadow_size, 4 * max(width, height))
        try:
            cache[(width, height)] = mujoco.Renderer(model, height=height, width=width)
            close_renderers_first_at_exit()
        except Exception as err:
            raise RuntimeError(
                f"Could not create a headless MuJoCo renderer ({err}). Set MUJOCO_GL=egl "
                "before mujoco is first imported (import envs first, or export MUJOCO_GL=egl) "
                "and install EGL with Mesa: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"
            ) from err
        finally:
            model.vis.quality.shadowsize = shadow_size
    return cache[(width, height)]


def _camera(env: gym.Env, model: mujoco.MjModel, camera: str | int | None) -> int | mujoco.MjvCamera:
    """A fixed camera id, or a free ``MjvCamera`` framing the model."""
    if camera is None:
        camera = _default_camera(env, model)
    if isinstance(camera, str):
        camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if camera_id < 0:
            names = [model.camera(i).name or f"#{i}" for i in range(model.ncam)]
            raise ValueError(
                f"No camera named {camera!r} in this model; its cameras are {names}. Pass one "
                "of them, a camera id, -1 for a free camera, or None for the default view."
            )
        return camera_id
    if not -1 <= camera < model.ncam:
        raise ValueError(f"camera id {camera} out of range: this model has {model.ncam} cameras")
    if camera >= 0:
        return int(camera)
    free = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, free)
    return free


def _default_camera(env: gym.Env, model: mujoco.MjModel) -> str | int:
    kind = simulator_kind(env)
    if kind == "metaworld":
        return "corner"
    if kind == "dmc":
        domain = type(env.unwrapped._env.task).__module__.rpartition(".")[2]  # type: ignore[attr-defined]
        return _DMC_DOMAIN_CAMERA.get(domain, 0)
    return "track" if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0 else -1


def close_renderers_first_at_exit() -> None:
    """(Re-)register the exit hook that closes our renderers, so that it runs first.

    Exit hooks run last-registered first, and both mujoco (on its first EGL context) and
    dm_control (on import) register an ``eglTerminate`` hook; closing a context after that
    raises EGL errors at exit. Called whenever a renderer is made or dm_control imported.
    """
    atexit.unregister(_close_all_renderers)
    atexit.register(_close_all_renderers)


def _close_all_renderers() -> None:
    for cache in list(_RENDERERS.values()):
        for renderer in cache.values():
            renderer.close()
    _RENDERERS.clear()
