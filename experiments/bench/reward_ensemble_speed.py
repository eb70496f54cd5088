"""Reward-ensemble update time and accuracy: float32 with torch's products (before), with oneDNN's
(``pbrl.cpu_linear``, the default on CPU), and bf16 autocast (opt-in).

PEBBLE's ensemble (3 members × 3×256, HalfCheetah sizes: obs 17, act 6), one minibatch of
128 pairs × 50 steps (one Adam step of the Bradley–Terry loss through
``BTEnsemble.update``), one torch thread; median process-CPU seconds over ``--repeats``.
Then held-out label accuracy of each variant
trained on the same synthetic preferences (a fixed random nonlinear reward of (s, a),
hard labels by true segment return), per seed.

Usage::

    python -m pbrl.experiments.bench.reward_ensemble_speed [--device cpu] [--seeds 0 1] [--labels 500]

Writes ``reward_ensemble_speed.md`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pbrl import cpu_linear
from pbrl.experiments.bench.markdown import write_markdown
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.segments import PreferenceDataset, Segments

OBS, ACT, T = 17, 6, 50


def synthetic_pairs(n: int, rng: np.random.Generator, reward_weights: tuple[np.ndarray, np.ndarray]) -> PreferenceDataset:
    """``n`` random segment pairs labeled by the return of ``r(s, a) = tanh(s W₁) w₂ − 0.1‖a‖²``."""
    w1, w2 = reward_weights

    def side() -> tuple[Segments, np.ndarray]:
        obs = rng.normal(size=(n, T, OBS)).astype(np.float32)
        act = rng.uniform(-1, 1, (n, T, ACT)).astype(np.float32)
        ret = (np.tanh(obs @ w1) @ w2 - 0.1 * (act**2).sum(-1)).sum(-1)
        return Segments(obs, act, obs), ret

    (left, r_left), (right, r_right) = side(), side()
    return PreferenceDataset(left, right, (r_left > r_right).astype(np.float32))


VARIANTS = {"float32, torch products (before)": ("aten", None), "float32, oneDNN products (default)": ("auto", None),
            "bf16 autocast (opt-in)": ("auto", "bfloat16")}
"""name → (``pbrl.cpu_linear`` backend, ``train_autocast``)."""


def update_seconds(device: str, autocast: str | None, repeats: int) -> float:
    """Median process-CPU seconds (CUDA: wall, synchronised) of one 128-pair minibatch update."""
    rng = np.random.default_rng(0)
    data = synthetic_pairs(128, rng, (rng.normal(size=(OBS, 32)), rng.normal(size=32)))
    learner = BTEnsemble(OBS, ACT, BTEnsembleConfig(max_epochs=1, stop_accuracy=2.0, device=device), seed=0)
    learner.net.train_autocast = autocast
    learner.update(data)  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter() if device.startswith("cuda") else time.process_time()
        learner.update(data)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() if device.startswith("cuda") else time.process_time()) - start)
    return float(np.median(times))


def heldout_accuracy(device: str, autocast: str | None, seed: int, labels: int, epochs: int) -> float:
    rng = np.random.default_rng(seed)
    weights = (rng.normal(size=(OBS, 32)) / np.sqrt(OBS), rng.normal(size=32) / np.sqrt(32))
    train, test = synthetic_pairs(labels, rng, weights), synthetic_pairs(2000, rng, weights)
    learner = BTEnsemble(OBS, ACT, BTEnsembleConfig(max_epochs=epochs, device=device), seed=seed)
    learner.net.train_autocast = autocast
    learner.update(train)
    predicted = learner.preference_probability(test.left, test.right) > 0.5
    return float((predicted == (test.labels > 0.5)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out-dir", default="experiments/bench/results")
    args = parser.parse_args()
    torch.set_num_threads(1)

    seconds, accuracy = {}, {}
    for name, (backend, autocast) in VARIANTS.items():
        cpu_linear.set_backend(backend)
        seconds[name] = update_seconds(args.device, autocast, args.repeats)
        accuracy[name] = [heldout_accuracy(args.device, autocast, s, args.labels, args.epochs) for s in args.seeds]
    base = seconds[next(iter(VARIANTS))]
    clock = "wall s (synchronised)" if args.device.startswith("cuda") else "CPU s"
    lines = [
        f"# Reward-ensemble update: 3 × 3×256, 128 pairs × 50 steps, device {args.device}, 1 torch thread",
        "",
        f"Command: `python -m pbrl.experiments.bench.reward_ensemble_speed --device {args.device} --seeds "
        f"{' '.join(map(str, args.seeds))} --labels {args.labels} --epochs {args.epochs}`. Speed-ups against float32 "
        f"with torch's (MKL's) products; oneDNN's apply on CPU only. Update time: median of {args.repeats}. Accuracy: "
        f"{args.labels} synthetic labels, up to {args.epochs} epochs, 2000 held-out pairs, per seed {args.seeds}.",
        "",
        f"| variant | {clock} per minibatch | speed-up | held-out accuracy per seed |",
        "| --- | ---: | ---: | --- |",
    ]
    for name in VARIANTS:
        lines.append(f"| {name} | {seconds[name]:.3f} | {base / seconds[name]:.2f}× | "
                     f"{', '.join(f'{a:.3f}' for a in accuracy[name])} |")
    write_markdown(lines, args.out_dir, f"reward_ensemble_speed{'' if args.device == 'cpu' else '_' + args.device.split(':')[0]}")


if __name__ == "__main__":
    main()
