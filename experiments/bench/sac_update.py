"""One SAC gradient step on one CPU thread: SB3's ``SAC.train`` against FastSAC's variants, in one process.

HalfCheetah-v5 sizes (obs 17, act 6), SB3's MuJoCo SAC (2×256, batch 256), a replay buffer
filled by 1,000 random steps. Each variant trains ``--steps`` gradient steps per repetition;
the repetitions are interleaved (SB3, FastSAC …, SB3, FastSAC …) so every variant sees the
same machine load, and the table gives each one's median process-CPU milliseconds per
gradient step and its speed-up over SB3:

* ``sb3``                  — stable-baselines3's ``SAC.train``;
* ``fast, torch products`` — FastSAC float32 with ``pbrl.cpu_linear`` off (MKL's products, twin critic stacked);
* ``fast, oneDNN products``— FastSAC float32 as it runs by default on CPU (SB3's maths);
* ``fast, bf16``           — FastSAC ``precision="bfloat16"`` (opt-in, other numbers).

Usage::

    python -m pbrl.experiments.bench.sac_update [--steps 100] [--repeats 5]

Writes ``sac_update.md`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from pbrl import cpu_linear, envs
from pbrl.agents.fast_sac import FastSAC
from pbrl.experiments.bench.markdown import cpu_name, write_markdown

VARIANTS = {  # name → (class, FastSAC kwargs, pbrl.cpu_linear backend)
    "sb3": (SAC, {}, "auto"),
    "fast, torch products": (FastSAC, {}, "aten"),
    "fast, oneDNN products": (FastSAC, {}, "auto"),
    "fast, bf16 (opt-in)": (FastSAC, {"precision": "bfloat16"}, "auto"),
}


def make_model(cls: type, extra: dict, env_id: str) -> SAC:
    venv = DummyVecEnv([lambda: envs.make(env_id, seed=0)])
    model = cls("MlpPolicy", venv, learning_starts=1000, batch_size=256, buffer_size=10_000, ent_coef="auto_0.1",
                policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu", verbose=0, **extra)
    model.learn(1000)  # random actions into the buffer; no update yet
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gym:HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=100, help="gradient steps per repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out-dir", default="experiments/bench/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = {name: make_model(cls, extra, args.env) for name, (cls, extra, _) in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for repeat in range(args.repeats + 1):  # the first repetition warms up and is not counted
        for name, model in models.items():
            cpu_linear.set_backend(VARIANTS[name][2])
            start = time.process_time()
            model.train(gradient_steps=args.steps, batch_size=256)
            if repeat:
                times[name].append((time.process_time() - start) / args.steps * 1e3)
    cpu_linear.set_backend("auto")
    base = statistics.median(times["sb3"])
    lines = [
        f"# One SAC gradient step, one CPU thread: {args.env} sizes, 2×256, batch 256",
        "",
        f"Command: `python -m pbrl.experiments.bench.sac_update --steps {args.steps} --repeats {args.repeats}`; CPU: "
        f"{cpu_name()}, torch {torch.__version__}. Median (and range) of {args.repeats} interleaved repetitions of "
        f"{args.steps} gradient steps, process-CPU ms per step.",
        "",
        "| variant | ms per step (median) | range | speed-up over SB3 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} | {min(values):.2f} – {max(values):.2f} | {base / median:.2f}× |")
    write_markdown(lines, args.out_dir, "sac_update")


if __name__ == "__main__":
    main()
