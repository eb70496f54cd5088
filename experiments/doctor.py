"""``pbrl doctor``: what this Python has, and whether each environment suite really works.

It prints the versions of the packages pbrl runs on, whether CUDA is visible, which
MuJoCo rendering backends make a context (each tried in a fresh process: MuJoCo picks its
backend once, at import), and one verdict per suite — the suite's env is made, reset,
stepped and a frame rendered from a saved state, exactly as training and the labeling page
do. Exit status 1 when a suite that is installed fails (or MuJoCo itself cannot be
imported); a suite whose extra is not installed is reported with the command that adds it.
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("torch", "mujoco", "metaworld", "dm-control", "shimmy", "gymnasium", "stable-baselines3", "numpy",
            "sqlalchemy", "psycopg", "ray")
"""Distributions whose versions are listed (the first seven are the ones pbrl's suites depend on)."""

SUITES = {"gym": "gym:HalfCheetah-v5", "metaworld": "metaworld:door-open-v3", "dmc": "dmc:walker-walk"}
"""One env per suite: the one the suite's verdict is about."""

BACKENDS = ("egl", "osmesa", "glfw")
_PROBE = ("import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\".1\"/></worldbody>"
          "</mujoco>'); r = mujoco.Renderer(m, 16, 16); d = mujoco.MjData(m); mujoco.mj_forward(m, d); "
          "r.update_scene(d); r.render(); r.close()")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _one_line(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {text}"[:160]


def backend_works(backend: str, timeout: float = 60.0) -> tuple[bool, str]:
    """Whether MuJoCo makes a rendering context with ``MUJOCO_GL=backend``, tried in a fresh process."""
    env = {key: value for key, value in os.environ.items() if key != "PYOPENGL_PLATFORM"}  # mujoco sets it
    env["MUJOCO_GL"] = backend
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"no context within {timeout:.0f} s"
    if result.returncode == 0:
        return True, "works"
    if backend == "glfw" and "DISPLAY" in result.stderr:
        return False, "no screen (DISPLAY is unset): glfw needs one; use egl headless"
    if backend == "osmesa" and ctypes.util.find_library("OSMesa") is None:
        return False, "libOSMesa is not installed (Debian: apt-get install libosmesa6)"
    if backend == "egl" and ctypes.util.find_library("EGL") is None:
        return False, "libEGL is not installed (Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return False, (lines[-1] if lines else f"exit status {result.returncode}")[:160]


def check_suite(env_id: str, size: int = 64) -> tuple[str, str]:
    """``("ok" | "missing" | "FAIL", detail)`` for one env: made, reset, stepped, a frame rendered."""
    import numpy as np

    from pbrl import envs

    start = time.perf_counter()
    try:
        env = envs.make(env_id, seed=0)
    except ImportError as error:  # the suite's extra is not installed
        return "missing", _one_line(error)
    try:
        _, info = env.reset(seed=0)
        rng = np.random.default_rng(0)
        space = env.action_space
        for _ in range(5):
            _, _, _, _, info = env.step(rng.uniform(space.low, space.high).astype(space.dtype))
        frame = envs.render_states(env, info["sim_state"][None], size, size)[0]
        env.close()
    except Exception as error:  # report, don't crash: the other suites still get their verdict
        return "FAIL", _one_line(error)
    if frame.shape != (size, size, 3) or float(frame.std()) == 0.0:
        return "FAIL", f"rendered a blank {frame.shape} frame"
    return "ok", f"made, stepped 5 steps, rendered {size}×{size} in {time.perf_counter() - start:.1f} s"


def doctor(backends: bool = True) -> int:
    """Print the report; 0 when MuJoCo and every installed suite work, else 1."""
    print(f"{'python':<18}{platform.python_version()} ({sys.executable})")
    print(f"{'pbrl':<18}{_version('pbrl') or 'not installed (pip install -e .)'}")
    for name in PACKAGES:
        print(f"{name:<18}{_version(name) or 'not installed'}")
    try:
        import torch

        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            cuda = f"visible: {torch.cuda.device_count()} device(s) ({names}), CUDA {torch.version.cuda}"
        else:
            build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build of torch"
            cuda = f"not visible ({build})"
    except Exception as error:  # a torch that cannot be imported
        cuda = f"unknown ({_one_line(error)})"
    print(f"{'CUDA':<18}{cuda}")

    chosen = os.environ.get("MUJOCO_GL", "egl")
    if backends:
        results = {backend: backend_works(backend) for backend in BACKENDS}
        working = [b for b, (ok, _) in results.items() if ok]
        print(f"{'rendering':<18}MUJOCO_GL={chosen} (pbrl's default: egl); working: {', '.join(working) or 'none'}")
        for backend, (ok, detail) in results.items():
            print(f"  {backend:<16}{'works' if ok else 'fails: ' + detail}")
    else:
        print(f"{'rendering':<18}MUJOCO_GL={chosen}")

    try:
        from pbrl import envs  # noqa: F401  (a broken MuJoCo install exits here with its repair command)
    except SystemExit as broken:
        print(f"{'MuJoCo':<18}FAIL  {broken}")
        return 1
    failed = False
    print("suites")
    for suite, env_id in SUITES.items():
        verdict, detail = check_suite(env_id)
        if verdict == "missing" and suite == "dmc":
            detail = "not installed: pip install -e '.[dmc]'"
        failed |= verdict != "ok" and not (verdict == "missing" and suite == "dmc")
        print(f"  {suite:<16}{verdict:<8}{env_id}: {detail}")
    print(f"{'verdict':<18}" + ("something is broken (see FAIL above)" if failed else "ready"))
    return 1 if failed else 0


def _doctor(args: argparse.Namespace) -> int:
    return doctor(backends=not args.no_backends)


def add_doctor_command(sub: argparse._SubParsersAction) -> None:
    """Register ``pbrl doctor`` on the ``pbrl`` parser."""
    parser = sub.add_parser("doctor", help="versions, CUDA, rendering backends, and whether each env suite works")
    parser.add_argument("--no-backends", action="store_true", help="skip trying each rendering backend")
    parser.set_defaults(func=_doctor)


if __name__ == "__main__":  # python -m pbrl.experiments.doctor [--no-backends]: without the rest of the CLI
    sys.exit(doctor(backends="--no-backends" not in sys.argv[1:]))
