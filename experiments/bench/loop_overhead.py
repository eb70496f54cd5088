"""Time of the PEBBLE loop against plain stable-baselines3 SAC on the true reward.

Same env, steps, SAC hyperparameters, device and torch threads, measured in one run:

* ``sb3-sac``          — SB3 SAC, nothing else (the reference);
* ``pbrl-sac``         — SB3 SAC through pbrl's Runner on the true reward (wrapper +
  transition log + logging: the loop's fixed cost);
* ``pbrl-pebble``      — the full PEBBLE loop with SB3's SAC (``agent.impl=sb3``):
  state-entropy pre-training, feedback rounds, reward-ensemble training, per-step learned
  reward, buffer relabeling, checkpoints;
* ``pbrl-pebble-fast`` — the same loop with FastSAC (``agent.impl=fast``).

Both wall time and process CPU time are reported; with one torch thread they agree on an
idle machine, and the CPU-time ratio stays honest when other processes share the cores.
The PEBBLE schedule scales with ``--steps``: the first query at ``max(steps/4, 1100)``,
then 3 more rounds of 50 queries.

Usage::

    python -m pbrl.experiments.bench.loop_overhead --steps 10000 [--reward-hidden 256 256 256] [--device cpu]

Prints a table and writes ``<name>.md`` under ``--out-dir`` (``--name``, default ``loop_overhead``).
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
from pbrl.experiments.bench.markdown import write_markdown
from pbrl.experiments.config import parse_config
from pbrl.experiments.runner import Runner

RUNS = ("pbrl-sac", "pbrl-pebble", "pbrl-pebble-fast")


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds, result) of ``fn()``; CUDA work is synchronised."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def plain_sac(env_id: str, steps: int, seed: int, device: str) -> tuple[float, float, None]:
    venv = DummyVecEnv([lambda: envs.make(env_id, seed=seed)])
    model = SAC("MlpPolicy", venv, learning_starts=1000, batch_size=256, ent_coef="auto_0.1",
                policy_kwargs={"net_arch": [256, 256]}, buffer_size=steps, seed=seed, device=device, verbose=0)
    wall, cpu, _ = timed(lambda: model.learn(steps))
    return wall, cpu, None


def pebble_overrides(steps: int, device: str, hidden: list[int] | tuple[int, ...]) -> list[str]:
    """PEBBLE's learner and feedback keys for a run of ``steps`` (reward net ``hidden``, ``max_epochs`` 30)."""
    first = max(steps // 4, 1100)
    return [
        f"learner.device={device}", f"learner.hidden_sizes=[{','.join(map(str, hidden))}]", "learner.max_epochs=30",
        f"feedback.first_query_step={first}", f"feedback.interval={max((steps - first) // 3, 1)}",
        "feedback.per_round=50", f"feedback.budget={steps}", f"feedback.log_capacity={steps}",
    ]


def pbrl_run(env_id: str, run: str, steps: int, seed: int, device: str, hidden: list[int], run_dir: Path,
             bf16: bool = False) -> tuple[float, float, dict]:
    """(wall s, CPU s, summary) of one run through the Runner: ``run`` is one of :data:`RUNS`.

    ``bf16``: the opt-in bf16 paths on the ``*-fast`` run — ``agent.precision=bfloat16``
    (FastSAC) and ``learner.train_precision=bfloat16`` (the reward ensemble's training passes).
    """
    method = "sac" if run == "pbrl-sac" else "pebble"
    overrides = [
        f"env={env_id}", f"method={method}", f"steps={steps}", f"seed={seed}", f"run_dir={run_dir}",
        "eval_episodes=0", "progress=false", f"agent.device={device}", "agent.learning_starts=1000",
        f"agent.impl={'fast' if run.endswith('fast') else 'sb3'}",
        *(pebble_overrides(steps, device, hidden) if method == "pebble" else []),
        *(["agent.precision=bfloat16", "learner.train_precision=bfloat16"] if bf16 and run.endswith("fast") else []),
    ]
    return timed(Runner(parse_config({}, overrides), run_dir).train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gym:HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reward-hidden", type=int, nargs="+", default=[256, 256, 256])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    parser.add_argument("--bf16", action="store_true", help="opt-in bf16 paths on the pbrl-pebble-fast run")
    parser.add_argument("--out-dir", default="experiments/bench/results")
    parser.add_argument("--name", default="loop_overhead", help="stem of the .md written")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        reference = plain_sac(args.env, args.steps, args.seed, args.device)
        rows = [("sb3-sac (reference)", *reference)]
        for run in args.runs:
            name = f"{run} (bf16)" if args.bf16 and run.endswith("fast") else run
            rows.append((name, *pbrl_run(args.env, run, args.steps, args.seed, args.device, args.reward_hidden,
                                         Path(tmp) / run, args.bf16)))

    first = max(args.steps // 4, 1100)
    lines = [
        f"# Loop overhead: {args.env}, {args.steps} steps, device {args.device}, 1 torch thread",
        "",
        f"Command: `python -m pbrl.experiments.bench.loop_overhead --steps {args.steps} --device {args.device} "
        f"--reward-hidden {' '.join(map(str, args.reward_hidden))} --runs {' '.join(args.runs)}{' --bf16' if args.bf16 else ''}`. Reward ensemble hidden sizes {args.reward_hidden}; "
        f"PEBBLE schedule: first query at {first} steps, then 50 queries every {max((args.steps - first) // 3, 1)} steps; "
        "SAC learning starts at 1000 steps. A ratio < 1 is faster than plain SB3 SAC on the true reward.",
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
    write_markdown(lines, args.out_dir, args.name)


if __name__ == "__main__":
    main()
