"""Wall time of the PEBBLE loop against plain stable-baselines3 SAC on the true reward.

Same env, steps, SAC hyperparameters, device and torch threads, measured in one run:

* ``sb3-sac``      — SB3 SAC, nothing else (the reference);
* ``pbrl-sac``     — SAC through pbrl's trainer on the true reward (wrapper + transition
  log + logging: the loop's fixed cost);
* ``pbrl-pebble``  — the full PEBBLE loop: state-entropy pre-training, feedback rounds,
  reward-ensemble training, per-step learned reward, buffer relabeling, checkpoints.

Both wall time and process CPU time are reported; with one torch thread they agree on an
idle machine, and the CPU-time ratio stays honest when other processes share the cores.

Usage::

    python -m pbrl.experiments.bench.loop_overhead --steps 10000 [--reward-hidden 64 64 64] [--device cpu]

Prints a table and writes ``experiments/bench/results/loop_overhead.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from pbrl import envs
from pbrl.experiments.config import TrainConfig, apply_overrides, from_dict
from pbrl.experiments.train import Trainer


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds, result) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def plain_sac(env_id: str, steps: int, seed: int, device: str) -> tuple[float, float, None]:
    venv = DummyVecEnv([lambda: envs.make(env_id, seed=seed)])
    model = SAC("MlpPolicy", venv, learning_starts=1000, batch_size=256, ent_coef="auto_0.1",
                policy_kwargs={"net_arch": [256, 256]}, buffer_size=steps, seed=seed, device=device, verbose=0)
    wall, cpu, _ = timed(lambda: model.learn(steps))
    return wall, cpu, None


def pbrl_run(env_id: str, method: str, steps: int, seed: int, device: str, hidden: list[int], run_dir: Path) -> tuple[float, float, dict]:
    overrides = [
        f"env={env_id}", f"method={method}", f"steps={steps}", f"seed={seed}", f"run_dir={run_dir}",
        "eval_episodes=0", "progress=false", f"sac.device={device}", f"reward.device={device}",
        f"reward.hidden_sizes={hidden}", "reward.max_epochs=30",
        "feedback.first_query_step=3000", "feedback.interval=2000", "feedback.per_round=50", f"feedback.budget={steps}",
        f"feedback.log_capacity={steps}",
    ]
    trainer = Trainer(from_dict(TrainConfig, apply_overrides({}, overrides)), run_dir)
    return timed(trainer.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gym:HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reward-hidden", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--out", default="experiments/bench/results/loop_overhead.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        reference = plain_sac(args.env, args.steps, args.seed, args.device)
        rows = [("sb3-sac (reference)", *reference)]
        for method in ("sac", "pebble"):
            rows.append((f"pbrl-{method}", *pbrl_run(args.env, method, args.steps, args.seed, args.device,
                                                     args.reward_hidden, Path(tmp) / method)))

    lines = [
        f"# Loop overhead: {args.env}, {args.steps} steps, device {args.device}, 1 torch thread",
        "",
        f"Reward ensemble hidden sizes {args.reward_hidden}; PEBBLE schedule: first query at 3000 steps, "
        "50 queries every 2000 steps.",
        "",
        "| run | wall s | wall ratio | CPU s | CPU ratio vs SB3 SAC | labels | reward corr. |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ref_wall, ref_cpu = reference[0], reference[1]
    for name, wall, cpu, summary in rows:
        labels = f"{summary.get('teacher/labeled', 0):.0f}" if summary else "—"
        corr = summary.get("reward/true_correlation") if summary else None
        lines.append(f"| {name} | {wall:.1f} | {wall / ref_wall:.2f}× | {cpu:.1f} | {cpu / ref_cpu:.2f}× | {labels} | "
                     f"{'—' if corr is None else f'{corr:.2f}'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
