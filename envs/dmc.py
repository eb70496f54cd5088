"""The DeepMind Control suite through shimmy: an optional extra (``pip install 'pbrl[dmc]'``).

Nothing here imports shimmy or dm_control at module level, so the task list is known
(and listed by :func:`pbrl.envs.available_env_ids`) on installs without the extra.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from pbrl.envs.rendering import close_renderers_first_at_exit

DMC_TASKS: tuple[str, ...] = tuple(
    f"{domain}-{task}"
    for domain, tasks in {
        "acrobot": ("swingup", "swingup_sparse"),
        "ball_in_cup": ("catch",),
        "cartpole": (
            "balance", "balance_sparse", "swingup", "swingup_sparse", "two_poles", "three_poles",
        ),
        "cheetah": ("run",),
        "dog": ("stand", "walk", "trot", "run", "fetch"),
        "finger": ("spin", "turn_easy", "turn_hard"),
        "fish": ("upright", "swim"),
        "hopper": ("stand", "hop"),
        "humanoid": ("stand", "walk", "run", "run_pure_state"),
        "humanoid_CMU": ("stand", "walk", "run"),
        "lqr": ("lqr_2_1", "lqr_6_2"),
        "manipulator": ("bring_ball", "bring_peg", "insert_ball", "insert_peg"),
        "pendulum": ("swingup",),
        "point_mass": ("easy", "hard"),
        "quadruped": ("walk", "run", "escape", "fetch"),
        "reacher": ("easy", "hard"),
        "stacker": ("stack_2", "stack_4"),
        "swimmer": ("swimmer6", "swimmer15"),
        "walker": ("stand", "walk", "run"),
    }.items()
    for task in tasks
)
"""Every task of ``dm_control.suite.ALL_TASKS`` as ``<domain>-<task>`` (what shimmy registers
as ``dm_control/<domain>-<task>-v0``); a test checks it against dm_control when installed."""

DMC_EPISODE_STEPS = 1000
"""Suite tasks last 1000 control steps (e.g. walker: 25 s at 0.025 s per step)."""

INSTALL_HINT = (
    "DeepMind Control envs ('dmc:...') need the optional extra: "
    "pip install 'pbrl[dmc]'  (equivalently: pip install 'shimmy[dm-control]')"
)


def make_dmc(name: str, seed: int | None) -> gym.Env:
    """Make ``dm_control/<name>-v0`` with dm_control's own time limit switched off.

    The episode limit is applied by :func:`pbrl.envs.make` with a ``TimeLimit`` wrapper, so a
    ``max_episode_steps`` override works beyond 1000 and the end of an episode always comes
    out as ``truncated=True``. ``seed`` seeds the task's ``RandomState`` (initial poses,
    targets); ``reset(seed=...)`` re-seeds it, as shimmy does.
    """
    try:
        import shimmy  # noqa: F401  (registers the dm_control/... ids with gymnasium)
        from dm_control.suite import quadruped
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT}. Import failed with: {err}") from err
    close_renderers_first_at_exit()  # dm_control's import registered its EGL teardown
    if not hasattr(np, "in1d"):
        # dm_control <= 1.0.28 (the newest that supports mujoco 3.3) calls np.in1d in the
        # quadruped domain; NumPy 2.4 removed it. Give only that module a NumPy that has it.
        quadruped.np = _NumpyWithIn1d()
    task_kwargs: dict[str, Any] = {"random": seed, "time_limit": float("inf")}
    return gym.make(f"dm_control/{name}-v0", task_kwargs=task_kwargs, disable_env_checker=True)


class _NumpyWithIn1d:
    """NumPy, plus ``in1d`` (removed in NumPy 2.4) defined as ``isin`` on the flattened input."""

    @staticmethod
    def in1d(values: Any, test_values: Any) -> np.ndarray:
        return np.isin(np.ravel(values), test_values)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)
