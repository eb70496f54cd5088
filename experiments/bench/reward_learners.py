"""Reward learners compared offline on the same labels: BT (PEBBLE), regret/Â, Hindsight PRIOR, REED.

1. **Data, once.** HalfCheetah-v5 (200-step episodes) driven by a mix of random actions and
   random sinusoidal gaits (``query_strategies.collect``), logged into a
   :class:`TransitionLog` — the unlabeled experience the world model and REED's encoder see.
2. **Labels, once per teacher and seed.** Uniformly drawn 50-step segment pairs labeled by
   (a) the oracle partial-return teacher and (b) the regret teacher with a SAC expert's
   advantage (``--expert``, a ``method=sac`` checkpoint). Every learner gets the same pairs
   and labels, in the same rounds.
3. **Per round** (``--per-round`` new labels), each learner does what the feedback loop does
   — ``observe(log)`` then ``update(all labels so far)`` — and is scored on held-out pairs
   labeled by the same teacher (ties excluded): accuracy, and Pearson correlation over
   every logged step of its per-step output with the true reward (oracle teacher) or with
   the expert's advantage (regret teacher). ``update seconds`` = observe + update.

Usage::

    python -m pbrl.experiments.bench.reward_learners --expert runs/expert/checkpoint/agent.zip [--seeds 3] [--labels 200]

Writes ``experiments/bench/results/reward_learners.{md,png,json}`` (the JSON holds every curve).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pbrl.experiments.bench.query_strategies import collect
from pbrl.learners import REED, AdvantageLearner, BTEnsemble, BTEnsembleConfig, HindsightPrior, HindsightPriorConfig, REEDConfig
from pbrl.learners.advantage import AdvantageConfig
from pbrl.metrics import pearson, preference_accuracy
from pbrl.segments import PreferenceDataset, Segments
from pbrl.teachers import RegretTeacher, SyntheticTeacher
from pbrl.transitions import TransitionLog

LEARNERS = ["bt", "regret", "hprior", "reed"]
RESULTS = Path(__file__).parent / "results"


def make_learner(name: str, obs_dim: int, act_dim: int, args: argparse.Namespace, seed: int):
    reward = BTEnsembleConfig(ensemble_size=3, hidden_sizes=tuple(args.reward_hidden), max_epochs=args.max_epochs)
    if name == "bt":
        return BTEnsemble(obs_dim, act_dim, reward, seed)
    if name == "regret":
        return AdvantageLearner(obs_dim, act_dim, reward, AdvantageConfig(mode="greedy"), seed)
    if name == "hprior":
        return HindsightPrior(obs_dim, act_dim, args.segment_length, reward, HindsightPriorConfig(), seed)
    sfc = REEDConfig(sfc_optimizer="adam", sfc_lr=1e-3, sfc_epochs=args.sfc_epochs)
    return REED(obs_dim, act_dim, reward, sfc, seed)


def labeled_pairs(log: TransitionLog, teacher, count: int, args, rng: np.random.Generator):
    """``count`` uniformly drawn pairs with the teacher's labels (ties and skips dropped)."""
    left, right = (log.sample_segments(count, args.segment_length, rng) for _ in range(2))
    labels = teacher.label(left, right, rng)
    keep = (labels == 0.0) | (labels == 1.0)
    return left.segments[keep], right.segments[keep], labels[keep]


def run_seed(teacher_name: str, teacher, target: np.ndarray, log: TransitionLog, steps: Segments, seed: int, args) -> dict:
    rng = np.random.default_rng(seed)
    train = labeled_pairs(log, teacher, args.labels, args, rng)
    test = labeled_pairs(log, teacher, args.heldout, args, rng)
    obs_dim, act_dim = steps.obs.shape[-1], steps.actions.shape[-1]
    curves = {}
    for name in LEARNERS:
        torch.manual_seed(seed)
        learner = make_learner(name, obs_dim, act_dim, args, seed)
        curve = []
        for end in range(args.per_round, len(train[2]) + 1, args.per_round):
            data = PreferenceDataset(train[0][:end], train[1][:end], train[2][:end])
            started = time.perf_counter()
            learner.observe(log.view())
            learner.update(data)
            seconds = time.perf_counter() - started
            learned = learner.reward(steps.obs[:, 0], steps.actions[:, 0], steps.next_obs[:, 0])
            curve.append({
                "labels": end,
                "accuracy": preference_accuracy(learner.preference_probability(test[0], test[1]), test[2]),
                "correlation": pearson(learned, target),
                "seconds": seconds,
            })
        curves[name] = curve
        last = curve[-1]
        print(f"{teacher_name:7s} seed {seed} {name:7s} acc {last['accuracy']:.3f} corr {last['correlation']:.3f} "
              f"update {np.mean([c['seconds'] for c in curve]):.2f}s", flush=True)
    return curves


def summarise(results: dict, args) -> str:
    lines = [
        "# Reward learners on the same labels",
        "",
        f"Task: gym:HalfCheetah-v5, {args.episodes * args.episode_length:,} logged steps (random actions and random gaits). "
        f"{args.labels} uniformly drawn pairs of {args.segment_length}-step segments per teacher and seed (ties dropped), "
        f"{args.per_round} per round; {args.heldout} held-out pairs from the same teacher; seeds {args.seeds} (mean ± std). "
        f"Every learner: 3 members, hidden {tuple(args.reward_hidden)}, up to {args.max_epochs} epochs per round. "
        f"Hindsight PRIOR: λ = 1, world model 64-wide × 2 layers, 200 steps per round. REED: SFC by Adam (lr 1e-3), "
        f"{args.sfc_epochs} epochs over the log per round. Regret/Â: linear-output Â ensemble (its reward is Â). "
        "Correlation: Pearson over every logged step, of the learner's per-step output with the true reward (oracle "
        "teacher) or with the expert's advantage (regret teacher). Update seconds: observe + update per round, one CPU thread "
        "on a shared 2-core machine.",
        "",
    ]
    fmt = lambda v: f"{np.mean(v):.3f} ± {np.std(v):.3f}"  # noqa: E731
    first = next(iter(results.values()))[0][LEARNERS[0]]
    half = len(first) // 2 - 1
    at = lambda i: f"{first[i]['labels']} labels"  # noqa: E731
    lines += [
        f"| teacher | learner | accuracy @ {at(half)} | accuracy @ {at(-1)} | corr. @ {at(half)} | corr. @ {at(-1)} | update s / round |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for teacher, per_seed in results.items():
        for name in LEARNERS:
            curves = [seed_curves[name] for seed_curves in per_seed]
            pick = lambda key, i: [c[i][key] for c in curves]  # noqa: E731
            seconds = [np.mean([r["seconds"] for r in c]) for c in curves]
            lines.append(
                f"| {teacher} | {name} | {fmt(pick('accuracy', half))} | {fmt(pick('accuracy', -1))} | "
                f"{fmt(pick('correlation', half))} | {fmt(pick('correlation', -1))} | {np.mean(seconds):.2f} |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(10, 3.6 * len(results)), squeeze=False)
    for row, (teacher, per_seed) in enumerate(results.items()):
        for col, key in enumerate(("accuracy", "correlation")):
            ax = axes[row, col]
            for name in LEARNERS:
                labels = [r["labels"] for r in per_seed[0][name]]
                values = np.array([[r[key] for r in s[name]] for s in per_seed])
                ax.plot(labels, values.mean(0), marker="o", label=name)
                ax.fill_between(labels, values.mean(0) - values.std(0), values.mean(0) + values.std(0), alpha=0.15)
            ax.set_title(f"{teacher} teacher: held-out {key}" if key == "accuracy" else
                         f"{teacher} teacher: corr. with {'true reward' if teacher == 'oracle' else 'expert advantage'}")
            ax.set_xlabel("labels")
            ax.grid(alpha=0.3)
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expert", help="SAC checkpoint (agent.zip) for the regret teacher; omitted: oracle teacher only")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--heldout", type=int, default=500)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--episode-length", type=int, default=200)
    parser.add_argument("--segment-length", type=int, default=50)
    parser.add_argument("--reward-hidden", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--sfc-epochs", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    log = collect("gym:HalfCheetah-v5", args.episodes, args.episode_length, seed=0)
    steps, true_rewards = log.recent(log.size)
    teachers = {"oracle": (SyntheticTeacher(), true_rewards)}
    if args.expert:
        from pbrl.agents.expert import load_expert, sac_advantage

        advantage = sac_advantage(load_expert(args.expert))
        teachers["regret"] = (RegretTeacher(advantage), advantage(steps.obs[:, 0], steps.actions[:, 0]))
    results = {
        name: [run_seed(name, teacher, target, log, steps, seed, args) for seed in range(args.seeds)]
        for name, (teacher, target) in teachers.items()
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reward_learners.json").write_text(json.dumps({"args": vars(args), "results": results}))
    (RESULTS / "reward_learners.md").write_text(summarise(results, args))
    plot(results, RESULTS / "reward_learners.png")
    print((RESULTS / "reward_learners.md").read_text())


if __name__ == "__main__":
    main()
