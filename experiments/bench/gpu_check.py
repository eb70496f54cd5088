"""The speed check behind ``experiments/bench/gpu_check.sh``: one JSON line of measurements.

Each measurement runs on its own and fails soft: a failure is recorded as
``{"error": "..."}`` under its key and the others still run. Measured (``--device cuda``
on a lent GPU; ``--device cpu --quick`` checks the same code paths here in a minute):

* ``sac/<env>/sb3`` and ``sac/<env>/fast`` — env steps per second of plain SB3 SAC and
  FastSAC (``execution=auto``: a CUDA-graph update on CUDA) on the true reward, timed
  after ``learning_starts`` random steps; ``sac/<env>/fast_over_sb3`` their ratio;
* ``pebble/<env>`` — steps per second of the whole PEBBLE loop through the Runner
  (``method=pebble agent.impl=fast``, reward ensemble 3×256, agent and learner on the
  device, feedback rounds, relabeling, checkpoints); ``pebble/<env>/over_sb3`` its ratio
  to plain SB3 SAC;
* ``relabel_1m_s`` — PEBBLE's whole-buffer relabel of 1M transitions (``--quick``: 100k)
  in a :class:`~pbrl.agents.device_replay.DeviceReplayBuffer` with the 3 × 3×256 ensemble;
* ``reward_update_s`` — one reward-ensemble minibatch (128 pairs × 50 steps, 3×256),
  float32 and bf16 autocast;
* ``reward_graph_inference`` — per-step reward (one row) eager vs CUDA-graph replay, and
  the largest difference between them (CUDA only);
* ``peak_gpu_mem_gib`` — ``torch.cuda.max_memory_allocated`` over the whole check.

Envs: ``gym:HalfCheetah-v5`` and ``dmc:walker-walk`` (needs ``pip install -e '.[dmc]'``).

Usage::

    python -m pbrl.experiments.bench.gpu_check --device cuda [--out FILE]
    python -m pbrl.experiments.bench.gpu_check --device cpu --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ENVS = ("gym:HalfCheetah-v5", "dmc:walker-walk")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sac_steps_per_second(impl: str, env_id: str, device: str, steps: int, learning_starts: int) -> float:
    """Env steps/s of SB3 SAC or FastSAC on the true reward, after the random warm-up."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    from pbrl import envs
    from pbrl.agents.fast_sac import FastSAC

    venv = DummyVecEnv([lambda: envs.make(env_id, seed=0)])
    cls = FastSAC if impl == "fast" else SAC
    model = cls("MlpPolicy", venv, learning_starts=learning_starts, batch_size=256, ent_coef="auto_0.1",
                policy_kwargs={"net_arch": [256, 256]}, buffer_size=learning_starts + steps + 10, seed=0,
                device=device, verbose=0)
    model.learn(learning_starts + 50)  # random steps, then 50 updates: graph capture / first kernels out of the timing
    _sync(device)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    _sync(device)
    return steps / (time.perf_counter() - start)


def pebble_steps_per_second(env_id: str, device: str, steps: int, run_dir: Path) -> dict[str, float]:
    """Steps/s (wall) and process CPU seconds of the whole PEBBLE loop with FastSAC (reward net 3×256)."""
    from pbrl.experiments.bench.loop_overhead import pbrl_run

    wall, cpu, _ = pbrl_run(env_id, "pbrl-pebble-fast", steps, 0, device, [256, 256, 256], run_dir)
    return {"steps_per_s": steps / wall, "wall_s": wall, "cpu_s": cpu}


def relabel_seconds(device: str, rows: int) -> float:
    """Median wall seconds of relabeling ``rows`` transitions in place on ``device`` (3 × 3×256 ensemble)."""
    from gymnasium import spaces

    from pbrl.agents.device_replay import DeviceReplayBuffer
    from pbrl.learners import BTEnsemble, BTEnsembleConfig

    buffer = DeviceReplayBuffer(rows, spaces.Box(-np.inf, np.inf, (17,), np.float32), spaces.Box(-1, 1, (6,), np.float32),
                                device=device)
    buffer.storage.normal_()  # random contents, never zeros
    buffer.pos, buffer.full = 0, True
    learner = BTEnsemble(17, 6, BTEnsembleConfig(device=device), seed=0)
    times = []
    for _ in range(3):
        buffer.rewards.fill_(float("nan"))  # poisoned: every row must be written
        _sync(device)
        start = time.perf_counter()
        buffer.relabel(learner)
        _sync(device)
        times.append(time.perf_counter() - start)
        if torch.isnan(buffer.rewards).any():
            raise RuntimeError("relabel left rows unwritten")
    return float(np.median(times))


def reward_graph_inference(device: str, repeats: int = 200) -> dict[str, float]:
    """Per-step reward (one row): eager vs graph replay on CUDA, and their largest difference."""
    from pbrl.learners import BTEnsemble, BTEnsembleConfig

    learner = BTEnsemble(17, 6, BTEnsembleConfig(device=device), seed=0)
    x = np.random.default_rng(0).normal(size=(repeats, 23)).astype(np.float32)
    out = {}
    for mode in (False, True):
        learner.net.graph_inference = mode
        learner.reward(x[:1, :17], x[:1, 17:], x[:1, :17])  # warm-up / capture
        start = time.perf_counter()
        rewards = np.concatenate([learner.reward(x[i : i + 1, :17], x[i : i + 1, 17:], x[i : i + 1, :17]) for i in range(repeats)])
        out["graph_us" if mode else "eager_us"] = (time.perf_counter() - start) / repeats * 1e6
        out["graph_rewards" if mode else "eager_rewards"] = rewards
    diff = float(np.abs(out.pop("graph_rewards") - out.pop("eager_rewards")).max())
    if not diff < 1e-5:
        raise RuntimeError(f"graph inference differs from eager by {diff}")
    return {**out, "max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths, not the speed")
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cuda = args.device.startswith("cuda")
    quick = args.quick
    sizes = {
        "sb3_steps": 200 if quick else 2500, "fast_steps": 200 if quick else 8000, "learning_starts": 300 if quick else 1000,
        "pebble_steps": 1500 if quick else 8000, "relabel_rows": 20_000 if quick else 1_000_000,
    }
    result: dict[str, Any] = {"device": args.device, "quick": quick, "sizes": sizes,
                              "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if cuda else None}

    def measure(key: str, fn: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            value = fn()
            result[key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in value.items()} if isinstance(value, dict) \
                else round(value, 4)
        except Exception as error:  # fail soft: record and go on
            result[key] = {"error": f"{type(error).__name__}: {error}"[:300]}
            traceback.print_exc(file=sys.stderr)
        print(f"[gpu_check] {key}: {result[key]} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        if args.out:  # what is measured so far survives a kill (gpu_check.sh prints it)
            Path(args.out).write_text(json.dumps({**result, "complete": False}) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.envs:
            for impl, steps in (("sb3", sizes["sb3_steps"]), ("fast", sizes["fast_steps"])):
                measure(f"sac/{env_id}/{impl}", lambda: sac_steps_per_second(impl, env_id, args.device, steps, sizes["learning_starts"]))
            measure(f"pebble/{env_id}", lambda: pebble_steps_per_second(env_id, args.device, sizes["pebble_steps"],
                                                                         Path(tmp) / env_id.replace(":", "-")))
            sb3, fast, pebble = (result.get(k) for k in (f"sac/{env_id}/sb3", f"sac/{env_id}/fast", f"pebble/{env_id}"))
            if isinstance(sb3, float) and isinstance(fast, float):
                result[f"sac/{env_id}/fast_over_sb3"] = round(fast / sb3, 3)
            if isinstance(sb3, float) and isinstance(pebble, dict) and "steps_per_s" in pebble:
                result[f"pebble/{env_id}/over_sb3"] = round(pebble["steps_per_s"] / sb3, 3)
    measure("relabel_1m_s" if not quick else "relabel_s", lambda: relabel_seconds(args.device, sizes["relabel_rows"]))

    from pbrl.experiments.bench.reward_ensemble_speed import update_seconds

    measure("reward_update_s", lambda: {"float32": update_seconds(args.device, None, 3 if quick else 10),
                                        "bf16": update_seconds(args.device, "bfloat16", 3 if quick else 10)})
    if cuda:
        measure("reward_graph_inference", lambda: reward_graph_inference(args.device))
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    result["failed"] = [k for k, v in result.items() if isinstance(v, dict) and "error" in v]
    result["complete"] = True
    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
