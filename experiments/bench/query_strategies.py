"""Query strategies compared offline: label efficiency of the reward model, and selection time.

1. **Data, once.** HalfCheetah-v5 (200-step episodes) driven by a mix of behaviours — half
   the episodes uniform-random actions, half open-loop sinusoidal gaits with random
   amplitude, frequency and phase per joint (+ noise) — so segment returns range from
   running backwards to running forwards. Logged into a :class:`TransitionLog`.
2. **Label efficiency.** For every strategy and seed: a fresh BT ensemble, an in-memory
   preference store and the oracle :class:`SyntheticTeacher`; the real
   :class:`FeedbackLoop` runs rounds on the fixed log (no agent) until the label budget
   is spent. After every round: the learner's accuracy on a fixed held-out set of
   oracle-labeled pairs drawn uniformly from the log (ties excluded), and the Pearson
   correlation of learned and true per-step reward over the whole log.
3. **Selection time.** For pools of 10³–10⁴ candidate pairs (n = pool / pool_multiplier
   queries per round, B-Pref's geometry) and 10⁵ pairs with n = 100, and a learner
   trained on the seed-0 uniform labels:
   the ensemble's ``pair_probabilities`` on the pool (the learner's cost, which every
   ensemble-based strategy pays once per round) and each strategy's own time given them;
   k-center with its default exact distances and with the opt-in 128-d projection.

Usage::

    python -m pbrl.experiments.bench.query_strategies [--seeds 3] [--budget 150] [--per-round 15] [--pools 1000 10000] [--large-pool 100000]

Writes ``experiments/bench/results/query_strategies.{md,png}``. QPA is measured here
as a query rule only (its "recent" is the last 10 logged episodes of a fixed behaviour
mix); its gains in the paper come from aligning queries with a *changing* policy plus
hybrid replay, which an offline log cannot show.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pbrl import envs
from pbrl.feedback import FeedbackConfig, FeedbackLoop
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.metrics import pearson
from pbrl.query import QueryConfig, QueryContext, make_strategy, select_queries
from pbrl.rollout import Rollout, SineGait
from pbrl.segments import CandidatePairs, SegmentBatch
from pbrl.store import PreferenceStore
from pbrl.teachers.synthetic import SyntheticTeacher
from pbrl.transitions import TransitionLog

STRATEGIES = ["uniform", "disagreement", "entropy", "predictive-entropy", "bald", "kcenter", "kcenter-disagreement", "kcenter-entropy",
              "qpa"]
RESULTS = Path(__file__).parent / "results"
SCORING = "ensemble scoring (pair_probabilities)"
USES_SCORES = {"disagreement", "entropy", "predictive-entropy", "bald", "kcenter-disagreement", "kcenter-entropy"}
PROJECTED = "kcenter, kcenter_projection=128"
TIMED = {**{name: (name, QueryConfig()) for name in STRATEGIES}, PROJECTED: ("kcenter", QueryConfig(kcenter_projection=128))}


def collect(env_id: str, episodes: int, episode_length: int, seed: int) -> TransitionLog:
    env = envs.make(env_id, seed=seed, max_episode_steps=episode_length)
    rng = np.random.default_rng(seed)
    shape = env.action_space.shape
    log = TransitionLog(episodes * episode_length, 1, env_id)
    rollout = Rollout(env, log, sim_states=False)
    for episode in range(episodes):
        gait = episode % 2 == 1
        amp, freq, phase = rng.uniform(0.3, 1.0, shape), rng.uniform(0.05, 0.5, shape), rng.uniform(0, 2 * np.pi, shape)
        policy = SineGait(amp, freq, phase, 0.2, rng) if gait else lambda obs: rng.uniform(-1.0, 1.0, shape)
        rollout.run(policy, episodes=1, seed=seed + episode)
    return log


def heldout_pairs(log: TransitionLog, count: int, length: int, rng: np.random.Generator) -> tuple[SegmentBatch, SegmentBatch, np.ndarray]:
    left, right = log.sample_segments(count, length, rng), log.sample_segments(count, length, rng)
    r_left, r_right = left.truth.returns, right.truth.returns
    keep = r_left != r_right
    return left[keep], right[keep], (r_left[keep] > r_right[keep]).astype(np.float64)


def learner_config(args: argparse.Namespace) -> BTEnsembleConfig:
    return BTEnsembleConfig(ensemble_size=3, hidden_sizes=tuple(args.reward_hidden), max_epochs=args.max_epochs)


def run_one(strategy: str, seed: int, log: TransitionLog, test, all_steps, args) -> tuple[list[dict], FeedbackLoop]:
    obs_dim, act_dim = log.arrays["obs"].shape[-1], log.arrays["actions"].shape[-1]
    torch.manual_seed(seed)
    learner = BTEnsemble(obs_dim, act_dim, learner_config(args), seed=seed)
    feedback = FeedbackConfig(budget=args.budget, per_round=args.per_round, first_query_step=0, interval=1,
                              segment_length=args.segment_length, log_capacity=log.capacity)
    loop = FeedbackLoop(feedback, QueryConfig(strategy=strategy), learner, SyntheticTeacher(), PreferenceStore(":memory:"),
                        log, episode_length=args.episode_length, rng=np.random.default_rng(1000 + seed))
    left, right, labels = test
    obs, actions, next_obs, rewards = all_steps
    curve = []
    while loop.asked < args.budget:
        metrics = loop.run_round(log.total_steps, recent_returns=[]).metrics
        p_left = learner.preference_probability(left.segments, right.segments)
        curve.append({
            "labels": loop.store.counts().labeled,
            "accuracy": float(((p_left > 0.5) == (labels == 1.0)).mean()),
            "correlation": pearson(learner.reward(obs, actions, next_obs), rewards),
            "selection_seconds": metrics["query/selection_seconds"],
        })
    return curve, loop


def timing_columns(pools: list[int], large_pool: int | None, extra_n: int) -> list[tuple[int, int]]:
    """(pool, n) settings: n = pool / pool_multiplier, plus a realistic small n on a large pool."""
    columns = [(size, size // QueryConfig().pool_multiplier) for size in pools]
    if large_pool:
        columns.append((large_pool, extra_n))
    return columns


def time_selection(log: TransitionLog, learner: BTEnsemble, labeled, columns: list[tuple[int, int]], args) -> dict:
    rng = np.random.default_rng(0)
    timings: dict = {}
    for size in sorted({size for size, _ in columns}):
        left, right = log.sample_segments(size, args.segment_length, rng), log.sample_segments(size, args.segment_length, rng)
        candidates = CandidatePairs(left.segments, right.segments, np.minimum(left.provenance.env_step, right.provenance.env_step))
        del left, right
        started = time.perf_counter()
        probs = learner.pair_probabilities(candidates.left, candidates.right)
        scoring = time.perf_counter() - started
        learner.pair_probabilities = lambda left, right: probs  # strategies' own time: scores precomputed
        try:
            for n in [n for pool, n in columns if pool == size]:
                timings[(SCORING, size, n)] = scoring
                for name, (strategy, config) in TIMED.items():
                    context = QueryContext(config, round_index=1, step=log.total_steps, episode_length=args.episode_length,
                                           labeled=labeled)
                    best = float("inf")
                    for _ in range(3 if size * n <= 10**7 else 1):  # best of 3 where cheap (first calls warm torch up)
                        started = time.perf_counter()
                        select_queries(strategy, make_strategy(strategy), candidates, learner, n, np.random.default_rng(1), context)
                        best = min(best, time.perf_counter() - started)
                    timings[(name, size, n)] = best
                    print(f"  pool {size:>6}  n {n:>5}  {name:<22} {timings[(name, size, n)]:.3f} s", flush=True)
        finally:
            del learner.pair_probabilities
        del candidates
    return timings


def summarise(curves: dict, timings: dict, columns: list[tuple[int, int]], args, data_note: str) -> str:
    checkpoints = sorted({row["labels"] for runs in curves.values() for curve in runs for row in curve})
    mid = checkpoints[len(checkpoints) // 2 - 1]
    final = checkpoints[-1]

    def at(name: str, labels: int, key: str) -> str:
        values = [next(r[key] for r in curve if r["labels"] == labels) for curve in curves[name]]
        return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    lines = [
        "# Query strategies: label efficiency and selection time",
        "",
        f"Task: {data_note}. Reward model: BT ensemble, 3 members, hidden {tuple(args.reward_hidden)}, up to "
        f"{args.max_epochs} epochs per round; oracle teacher; {args.segment_length}-step segments; "
        f"{args.per_round} queries per round, budget {args.budget}, pool multiplier 10; seeds {args.seeds} "
        "(mean ± std). Held-out accuracy: oracle-labeled pairs drawn uniformly from the log. Correlation: "
        "Pearson of learned vs true per-step reward over every logged step.",
        "",
        f"| strategy | accuracy @ {mid} labels | accuracy @ {final} | reward corr. @ {mid} | reward corr. @ {final} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in curves:
        lines.append(f"| {name} | {at(name, mid, 'accuracy')} | {at(name, final, 'accuracy')} | "
                     f"{at(name, mid, 'correlation')} | {at(name, final, 'correlation')} |")
    lines += [
        "",
        "Selection time per round, seconds (one CPU thread; n queries from a pool of P). First row: the BT "
        "ensemble's `pair_probabilities` on the pool — the learner's cost, paid once per round by every strategy "
        "marked *; the other rows are each strategy's own time given those scores (k-center: exact distances, "
        "the default, as B-Pref; the labeled pairs as initial centres; the opt-in 128-d random projection on its "
        "own row). Best of 3 calls where P·n ≤ 10⁷, else one call. "
        "Per-round total = own time (+ scoring if *). Shared 2-core machine: expect ±30 % noise.",
        "",
        "| strategy | " + " | ".join(f"P={p:,}, n={n:,}" for p, n in columns) + " |",
        "| --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for name in [SCORING, *TIMED]:
        mark = " *" if name in USES_SCORES else ""
        lines.append(f"| {name}{mark} | " + " | ".join(f"{timings[(name, p, n)]:.3f}" for p, n in columns) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: dict, timings: dict, pools: list[int], path: Path) -> None:
    """Learning curves (mean ± std over seeds) and selection time vs pool size (n = pool / 10)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name, runs in curves.items():
        labels = [r["labels"] for r in runs[0]]
        for ax, key in zip(axes[:2], ("accuracy", "correlation")):
            values = np.array([[r[key] for r in curve] for curve in runs])
            mean, std = values.mean(axis=0), values.std(axis=0)
            ax.plot(labels, mean, label=name, marker="o", markersize=3)
            ax.fill_between(labels, mean - std, mean + std, alpha=0.15)
        axes[2].plot(pools, [timings[(name, p, p // 10)] for p in pools], label=name, marker="o")
    axes[2].plot(pools, [timings[(PROJECTED, p, p // 10)] for p in pools], "k:", marker="o", label=PROJECTED)
    axes[2].plot(pools, [timings[(SCORING, p, p // 10)] for p in pools], "k--", label="ensemble scoring (learner)")
    axes[0].set(xlabel="labels", ylabel="held-out preference accuracy", title="Reward-model accuracy")
    axes[1].set(xlabel="labels", ylabel="Pearson r (learned vs true reward)", title="Reward correlation")
    axes[2].set(xlabel="candidate pool size", ylabel="seconds per round (strategy's own)", title="Selection time, n = pool/10 (CPU, 1 thread)",
                xscale="log", yscale="log")
    axes[2].axhline(1.0, color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="gym:HalfCheetah-v5")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--episode-length", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--per-round", type=int, default=15)
    parser.add_argument("--segment-length", type=int, default=50)
    parser.add_argument("--reward-hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--heldout", type=int, default=500)
    parser.add_argument("--pools", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--large-pool", type=int, default=100_000, help="also time n = --extra-n on a pool this large (0: no)")
    parser.add_argument("--extra-n", type=int, default=100)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()

    log = collect(args.env, args.episodes, args.episode_length, seed=0)
    returns = log.arrays["true_rewards"][: log.size, 0]
    data_note = (f"{args.env}, {log.size:,} logged steps ({args.episodes} episodes × {args.episode_length}; half random "
                 f"actions, half random sinusoidal gaits; per-step reward {returns.min():.2f} … {returns.max():.2f})")
    print(data_note, f"[{time.perf_counter() - started:.0f} s]", flush=True)
    test = heldout_pairs(log, args.heldout, args.segment_length, np.random.default_rng(12345))
    a = log.arrays
    all_steps = (a["obs"][: log.size, 0], a["actions"][: log.size, 0], a["next_obs"][: log.size, 0], returns)

    curves: dict = {}
    reference = None
    for name in args.strategies:
        curves[name] = []
        for seed in range(args.seeds):
            curve, loop = run_one(name, seed, log, test, all_steps, args)
            curves[name].append(curve)
            if seed == 0 and name == "uniform":
                reference = loop
            print(f"{name:<22} seed {seed}: accuracy {curve[-1]['accuracy']:.3f}  corr {curve[-1]['correlation']:.3f}  "
                  f"[{time.perf_counter() - started:.0f} s]", flush=True)

    labeled, _ = reference.store.dataset()
    columns = timing_columns(sorted(args.pools), args.large_pool, args.extra_n)
    timings = time_selection(log, reference.learner, labeled, columns, args)
    args.out.mkdir(parents=True, exist_ok=True)
    table = summarise(curves, timings, columns, args, data_note)
    (args.out / "query_strategies.md").write_text(table)
    plot(curves, timings, sorted(args.pools), args.out / "query_strategies.png")
    print(table)
    print(f"wrote {args.out / 'query_strategies.md'} and .png in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
