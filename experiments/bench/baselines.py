"""Bench: the field's baselines on the same data — RIME vs PEBBLE under noisy teachers, SURF vs
PEBBLE with few labels, P-IQL with a Bradley–Terry vs a Preference Transformer reward, and PEBBLE vs +SURF vs +RUNE online.

    python -m pbrl.experiments.bench.baselines                          # every part
    python -m pbrl.experiments.bench.baselines --parts noisy few        # some of them

* ``noisy`` — HalfCheetah transitions (random actions and gaits, the query bench's
  :func:`~pbrl.experiments.bench.query_strategies.collect`); per seed one set of uniformly drawn
  pairs, labeled by B-Pref's mistake teacher at ε = 0.1, 0.2, 0.3 (the same labels for every
  learner), fed in rounds; held-out accuracy against the *true* preference and correlation of
  the per-step reward with the true reward. Learners: PEBBLE's BT ensemble, RIME, and RIME
  without its warm start.
* ``few`` — the same transitions, oracle labels, 50 → 200 labels in rounds of 50 on the same
  segments: PEBBLE (B-Pref's early stop at 97 % training accuracy), PEBBLE without the early
  stop (the same epochs SURF runs), and SURF (unlabeled pairs from the log).
* ``offline`` — a MetaWorld dataset from ``pbrl collect`` (``make_metaworld_datasets``' recipe):
  P-IQL with PEBBLE's BT reward vs with the Preference Transformer, the PT's reward of a
  transition either the reference's 25-step window over its episode (``pt``) or pbrl's flat
  one-step read (``pt-flat``); held-out accuracy on the dataset's labels, success and return
  of the policy.
* ``online`` — in the training loop, driving SAC through the Runner on HalfCheetah: PEBBLE,
  PEBBLE with SURF's learner, PEBBLE with RUNE's bonus (``agent.rune``); same steps, same
  schedule and budget, same seeds (a tiny scale: ``--online-steps``, default 5,000 env steps).

Each part writes ``results/baselines_<part>.json``; ``results/baselines.md`` and ``.png`` are
made from the parts present. Every run uses one torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pbrl.experiments.bench.query_strategies import collect, heldout_pairs
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
from pbrl.learners.rime import RIME, RIMEConfig
from pbrl.learners.surf import SURF, SURFConfig
from pbrl.metrics import pearson, preference_accuracy
from pbrl.segments import PreferenceDataset
from pbrl.teachers.synthetic import SyntheticTeacher, SyntheticTeacherConfig
from pbrl.transitions import TransitionLog

RESULTS = Path(__file__).parent / "results"
ENV = "gym:HalfCheetah-v5"


# ---------------------------------------------------------------- shared data
def cheetah(args: argparse.Namespace) -> tuple[TransitionLog, np.ndarray]:
    log = collect(ENV, args.episodes, args.episode_length, seed=0)
    steps, true_rewards = log.recent(log.size)
    return log, true_rewards


def rounds(learner, log: TransitionLog, left, right, labels: np.ndarray, per_round: int, test, steps, true_rewards) -> list[dict]:
    """Feed the labels in rounds (observe, update); held-out accuracy after each, correlation too."""
    curve = []
    for end in range(per_round, len(labels) + 1, per_round):
        started = time.perf_counter()
        learner.observe(log.view())
        metrics = learner.update(PreferenceDataset(left[:end], right[:end], labels[:end]))
        seconds = time.perf_counter() - started
        learned = learner.reward(steps.obs[:, 0], steps.actions[:, 0], steps.next_obs[:, 0])
        curve.append({
            "labels": end, "seconds": seconds,
            "accuracy": preference_accuracy(learner.preference_probability(test[0].segments, test[1].segments), test[2]),
            "correlation": pearson(learned, true_rewards),
            **{k: v for k, v in metrics.items() if k.startswith(("rime_", "surf_", "epochs"))},
        })
    return curve


# ---------------------------------------------------------------- noisy teachers: PEBBLE vs RIME
def noisy(args: argparse.Namespace) -> dict:
    log, true_rewards = cheetah(args)
    steps, _ = log.recent(log.size)
    obs_dim, act_dim = steps.obs.shape[-1], steps.actions.shape[-1]
    reward = BTEnsembleConfig(hidden_sizes=tuple(args.reward_hidden), max_epochs=args.max_epochs)
    rime = RIMEConfig(warm_start_ratio=args.warm_start_ratio,
                      warmup_epochs=int(1 / 3 * args.labels / args.per_round * RIMEConfig().min_epochs + 0.5))
    results: dict = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        left, right = log.sample_segments(args.labels, args.segment_length, rng), log.sample_segments(args.labels, args.segment_length, rng)
        truth = SyntheticTeacher().label(left, right, rng)
        test = heldout_pairs(log, args.heldout, args.segment_length, rng)
        warm = RIME(obs_dim, act_dim, replace(reward, stop_accuracy=0.98), rime, seed)
        started = time.perf_counter()
        warm.observe(log.view())
        warm_seconds = time.perf_counter() - started
        for eps in args.eps:
            labels = SyntheticTeacher(SyntheticTeacherConfig("mistake", eps_mistake=eps)).label(left, right, np.random.default_rng([seed, int(eps * 100)]))
            wrong = float(np.mean(labels != truth))
            learners = {
                "pebble": BTEnsemble(obs_dim, act_dim, reward, seed),
                "rime": RIME(obs_dim, act_dim, replace(reward, stop_accuracy=0.98), rime, seed),
                "rime-no-warm": RIME(obs_dim, act_dim, replace(reward, stop_accuracy=0.98), replace(rime, warm_start_ratio=0.0), seed),
            }
            learners["rime"].load_state_dict(warm.state_dict())  # the warm start, computed once per seed
            for name, learner in learners.items():
                curve = rounds(learner, log, left.segments, right.segments, labels, args.per_round, test, steps, true_rewards)
                if name == "rime":
                    curve[0]["seconds"] += warm_seconds
                results.setdefault(f"{eps}", {}).setdefault(name, []).append({"curve": curve, "wrong_labels": wrong})
                last = curve[-1]
                print(f"noisy ε={eps} seed {seed} {name:12s} acc {last['accuracy']:.3f} corr {last['correlation']:.3f} "
                      f"(wrong labels {wrong:.2f})", flush=True)
    return {"warm_start_steps": int(args.warm_start_ratio * log.size), "results": results}


# ---------------------------------------------------------------- few labels: PEBBLE vs SURF
def few(args: argparse.Namespace) -> dict:
    log, true_rewards = cheetah(args)
    steps, _ = log.recent(log.size)
    obs_dim, act_dim = steps.obs.shape[-1], steps.actions.shape[-1]
    reward = BTEnsembleConfig(hidden_sizes=tuple(args.reward_hidden), max_epochs=args.max_epochs)
    results: dict = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        count = max(args.few_labels)
        left, right = log.sample_segments(count, args.segment_length, rng), log.sample_segments(count, args.segment_length, rng)
        labels = SyntheticTeacher().label(left, right, rng)
        test = heldout_pairs(log, args.heldout, args.segment_length, rng)
        learners = {
            "pebble": BTEnsemble(obs_dim, act_dim, reward, seed),
            "pebble-no-stop": BTEnsemble(obs_dim, act_dim, replace(reward, stop_accuracy=1.0), seed),
            "surf": SURF(obs_dim, act_dim, replace(reward, stop_accuracy=1.0), SURFConfig(), seed),
        }
        for name, learner in learners.items():
            curve = rounds(learner, log, left.segments, right.segments, labels, args.few_per_round, test, steps, true_rewards)
            results.setdefault(name, []).append(curve)
            print(f"few seed {seed} {name:15s} " + " ".join(f"{c['labels']}: {c['accuracy']:.3f}/{c['correlation']:.3f}" for c in curve), flush=True)
    return {"results": results}


# ---------------------------------------------------------------- offline: P-IQL with BT vs PT
def offline(args: argparse.Namespace) -> dict:
    from pbrl import envs
    from pbrl.agents.evaluation import Evaluator, PolicyAgent
    from pbrl.datasets import OfflinePreferenceData
    from pbrl.experiments.make_metaworld_datasets import make_datasets
    from pbrl.learners.ipl import IPLConfig, Replay
    from pbrl.learners.piql import PreferenceIQL
    from pbrl.learners.preference_transformer import EpisodeRewards, PreferenceTransformer, PreferenceTransformerConfig

    path = Path(args.dataset_dir) / f"{args.task}.h5"
    if not path.exists():
        make_datasets((args.task,), Path(args.dataset_dir), jobs=1)
    data = OfflinePreferenceData.load(path)
    pairs = data.preferences()
    episodes = data.episodes
    obs_dim, act_dim = episodes.obs.shape[-1], episodes.actions.shape[-1]
    iql = IPLConfig(hidden_sizes=(128, 128), batch_size=16, window=16, steps_per_update=args.offline_steps)  # piql_metaworld_offline.yaml
    results: dict = {}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(pairs))
        held = len(pairs) // 10
        train, heldout = pairs[np.sort(order[held:])], pairs[np.sort(order[:held])]
        bt = BTEnsemble(obs_dim, act_dim, BTEnsembleConfig(hidden_sizes=(128, 128), max_epochs=args.offline_bt_epochs), seed)
        pt_config = PreferenceTransformerConfig(embed_dim=args.pt_dim, preference_dim=args.pt_dim, epochs=args.pt_epochs)
        pt = PreferenceTransformer(obs_dim, act_dim, pt_config, seed)
        fits = {}
        for name, model in (("bt", bt), ("pt", pt)):  # each reward model fit once; pt and pt-flat share the PT
            started = time.perf_counter()
            fit = model.update(train)
            fits[name] = (time.perf_counter() - started, fit["train_accuracy"])
        rewards = {"bt": (bt, fits["bt"]), "pt": (EpisodeRewards(pt, episodes), fits["pt"]), "pt-flat": (pt, fits["pt"])}
        for name, (reward, (fit_seconds, train_accuracy)) in rewards.items():
            started = time.perf_counter()
            learner = PreferenceIQL(obs_dim, act_dim, reward, iql, seed)
            learner.reward_fit_on = len(train)  # fit above
            learner.set_replay(Replay(episodes.obs, episodes.actions, episodes.next_obs, episodes.terminated))
            learner.update(train)
            iql_seconds = time.perf_counter() - started
            accuracy = preference_accuracy(learner.preference_probability(heldout.left, heldout.right), heldout.labels)
            env = envs.make(data.env_id, seed=seed + 10_000, max_episode_steps=args.offline_episode_steps)
            evaluation = Evaluator(env, args.eval_episodes, seed=seed + 10_000).evaluate(PolicyAgent(learner, env.action_space))
            row = {"accuracy": accuracy, "reward_fit_seconds": fit_seconds, "iql_seconds": iql_seconds,
                   "reward_train_accuracy": train_accuracy, **evaluation}
            results.setdefault(name, []).append(row)
            print(f"offline {args.task} seed {seed} {name:7s} " + " ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    return {"dataset": str(path), "pairs": len(pairs), "env": data.env_id, "results": results}


ONLINE = {"pebble": ["learner.type=bt"], "pebble+surf": ["learner.type=surf"], "pebble+rune": ["learner.type=bt", "agent.rune={}"]}


def online(args: argparse.Namespace) -> dict:
    import tempfile

    from pbrl import Runner
    from pbrl.experiments.config import parse_config

    steps = args.online_steps
    common = [
        f"env={ENV}", f"steps={steps}", f"eval_interval={steps}", f"eval_episodes={args.eval_episodes}", "progress=false",
        "max_episode_steps=1000", "agent.learning_starts=1000", f"feedback.first_query_step={steps // 5}",
        f"feedback.interval={steps // 5}", f"feedback.per_round={args.online_per_round}",
        f"feedback.budget={4 * args.online_per_round}", f"feedback.segment_length={args.segment_length}",
        f"learner.max_epochs={args.max_epochs}", "query.strategy=disagreement",
    ]
    results: dict = {}
    for seed in range(args.seeds):
        for name, extra in ONLINE.items():
            with tempfile.TemporaryDirectory() as run_dir:
                started = time.perf_counter()
                summary = Runner(parse_config({}, [*common, *extra, f"seed={seed}", f"run_dir={run_dir}"]), run_dir).train()
            row = {k: float(v) for k, v in summary.items() if k.startswith(("eval/", "reward/", "train/", "teacher/"))}
            row["wall_seconds"] = time.perf_counter() - started
            results.setdefault(name, []).append(row)
            print(f"online seed {seed} {name:11s} return {row.get('eval/true_return', float('nan')):.1f} "
                  f"wall {row['wall_seconds']:.0f} s", flush=True)
    return {"results": results, "common": common}


# ---------------------------------------------------------------- report
def _mean_std(values: list[float], spec: str = ".3f") -> str:
    values = [v for v in values if v == v]
    if not values:
        return "—"
    return f"{np.mean(values):{spec}} ± {np.std(values):{spec}}"


def report(args: argparse.Namespace) -> str:
    lines = ["# Baselines: RIME, SURF and the Preference Transformer against PEBBLE", ""]
    parts = {part: json.loads(p.read_text()) for part in PARTS if (p := RESULTS / f"baselines_{part}.json").exists()}
    if "noisy" in parts:
        run = parts["noisy"]
        a = run["args"]
        lines += [
            "## Noisy teachers: PEBBLE vs RIME", "",
            f"{ENV}, {a['episodes'] * a['episode_length']:,} logged steps (random actions and gaits). Per seed {a['labels']} uniformly "
            f"drawn pairs of {a['segment_length']}-step segments, labeled by B-Pref's mistake teacher (the same pairs and the same "
            f"labels for every learner at a given ε), {a['per_round']} per round; held-out: {a['heldout']} pairs scored against the "
            f"true preference (ties dropped). Ensembles: 3 × {tuple(a['reward_hidden'])}, up to {a['max_epochs']} epochs per round "
            f"(PEBBLE stops at 97 % training accuracy, RIME at 98 % after ≥ 15 epochs). RIME: DMC defaults (α = 0.5, β 3 → 1 over "
            f"k = 60 epochs, τ = 0.001), warm start {run['warm_start_steps']:,} steps on the log's k-NN state entropy "
            f"(`rime.warm_start_ratio={a['warm_start_ratio']}`; the reference: 5 per pre-training step). Seeds: {a['seeds']} (mean ± std).",
            "", "| ε | wrong labels | learner | held-out acc. (true pref.) | reward corr. | trusted | flipped | s / round |", "|---|---|---|---|---|---|---|---|",
        ]
        for eps, by_learner in run["results"].items():
            for name, seeds in by_learner.items():
                last = [s["curve"][-1] for s in seeds]
                lines.append(
                    f"| {eps} | {np.mean([s['wrong_labels'] for s in seeds]):.2f} | {name} | {_mean_std([c['accuracy'] for c in last])} | "
                    f"{_mean_std([c['correlation'] for c in last])} | {_mean_std([c.get('rime_trusted', float('nan')) for c in last], '.2f')} | "
                    f"{_mean_std([c.get('rime_flipped', float('nan')) for c in last], '.2f')} | "
                    f"{np.mean([c['seconds'] for s in seeds for c in s['curve']]):.1f} |")
        lines += ["", f"Wall time of the part: {run['wall_seconds']:.0f} s.", ""]
    if "few" in parts:
        run = parts["few"]
        a = run["args"]
        names = list(run["results"])
        counts = [c["labels"] for c in run["results"][names[0]][0]]
        lines += [
            "## Few labels: PEBBLE vs SURF", "",
            f"The same log; oracle labels on the same {max(a['few_labels'])} pairs per seed, {a['few_per_round']} per round; "
            f"held-out {a['heldout']} pairs (true preference). SURF: README defaults (τ = 0.99, μ = 4, 10 unlabeled pairs per label, "
            f"w = 5, crop range 5), {a['max_epochs']} epochs per round with no early stop (as the reference); "
            "`pebble-no-stop` runs the same epochs without SURF. Accuracy / correlation, mean ± std over seeds:",
            "", "| learner | " + " | ".join(f"acc. @ {n}" for n in counts) + " | " + " | ".join(f"corr. @ {n}" for n in counts) + " | s / round |",
            "|---|" + "---|" * (2 * len(counts) + 1),
        ]
        for name in names:
            seeds = run["results"][name]
            acc = [_mean_std([s[i]["accuracy"] for s in seeds]) for i in range(len(counts))]
            corr = [_mean_std([s[i]["correlation"] for s in seeds]) for i in range(len(counts))]
            lines.append(f"| {name} | " + " | ".join(acc + corr) + f" | {np.mean([c['seconds'] for s in seeds for c in s]):.1f} |")
        lines += ["", f"Wall time of the part: {run['wall_seconds']:.0f} s.", ""]
    if "offline" in parts:
        run = parts["offline"]
        a = run["args"]
        lines += [
            "## Offline: P-IQL with a BT vs a Preference Transformer reward", "",
            f"{run['env']}, dataset `{run['dataset']}` ({run['pairs']} labeled pairs, make_metaworld_datasets' recipe, regret labels), "
            f"10 % held out. Reward fit once (BT: 3 × (128, 128), ≤ {a['offline_bt_epochs']} epochs, as `piql_metaworld_offline.yaml`; PT: README settings but "
            f"D = P = {a['pt_dim']} (README: 256), 1 layer, 4 heads, batch 256, {a['pt_epochs']} epochs, fit once and shared by `pt` and `pt-flat`), then "
            f"{a['offline_steps']} IQL gradient steps (the yaml's IQL settings). `pt`: each transition's reward from the reference's "
            f"25-step window over its episode; `pt-flat`: the one-step read of `reward_tensor`. Policy evaluated on "
            f"{a['eval_episodes']} episodes. Mean ± std over {a['seeds']} seeds:",
            "", "| reward | held-out acc. | success | return | reward fit s | IQL s |", "|---|---|---|---|---|---|",
        ]
        for name, rows in run["results"].items():
            success = [r.get("eval/success_rate", float("nan")) for r in rows]
            returns = [r.get("eval/true_return", float("nan")) for r in rows]
            lines.append(f"| {name} | {_mean_std([r['accuracy'] for r in rows])} | {_mean_std(success, '.2f')} | {_mean_std(returns, '.0f')} | "
                         f"{np.mean([r['reward_fit_seconds'] for r in rows]):.0f} | {np.mean([r['iql_seconds'] for r in rows]):.0f} |")
        lines += ["", f"Wall time of the part: {run['wall_seconds']:.0f} s.", ""]
    if "online" in parts:
        run = parts["online"]
        a = run["args"]
        lines += [
            "## Online: PEBBLE vs +SURF vs +RUNE driving SAC", "",
            f"{ENV} through the Runner, **{a['online_steps']:,} env steps per run** (the papers: 1M), {a['seeds']} seed(s); "
            f"SAC with pbrl's defaults and 1,000 random steps; the first round at step {a['online_steps'] // 5:,} "
            f"({max(a['online_steps'] // 5 - 1000, 0):,} steps of state-entropy pre-training before it), then "
            f"{a['online_per_round']} oracle labels (disagreement queries) every "
            f"{a['online_steps'] // 5:,} steps, {4 * a['online_per_round']} in all; reward ensembles 3 × (256, 256, 256), ≤ {a['max_epochs']} "
            "epochs per round. `pebble+surf`: learner.type=surf (README defaults); `pebble+rune`: agent.rune={} (β_0 = 0.05, "
            f"ρ = 1e-5). Final evaluation on {a['eval_episodes']} episodes; held-out accuracy on the last round's labels "
            "(before training on them). Mean ± std over seeds (one seed: no spread):",
            "", "| method | eval return | train episode return | held-out acc. | reward corr. | wall s |", "|---|---|---|---|---|---|",
        ]
        for name, rows in run["results"].items():
            col = lambda key, spec=".3f": _mean_std([r.get(key, float("nan")) for r in rows], spec)  # noqa: E731
            lines.append(f"| {name} | {col('eval/true_return', '.0f')} | {col('train/true_episode_return', '.0f')} | "
                         f"{col('reward/heldout_accuracy')} | {col('reward/true_correlation')} | "
                         f"{np.mean([r['wall_seconds'] for r in rows]):.0f} |")
        lines += ["", f"Wall time of the part: {run['wall_seconds']:.0f} s. At this scale a run is a smoke test of the "
                  "three methods in one loop, not a measurement of their difference.", ""]
    return "\n".join(lines)


def plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = {part: json.loads(p.read_text()) for part in ("noisy", "few") if (p := RESULTS / f"baselines_{part}.json").exists()}
    if not parts:
        return
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4), squeeze=False)
    for ax, (part, run) in zip(axes[0], parts.items()):
        if part == "noisy":
            for name in ("pebble", "rime", "rime-no-warm"):
                eps = sorted(run["results"], key=float)
                acc = [[s["curve"][-1]["accuracy"] for s in run["results"][e][name]] for e in eps]
                ax.errorbar([float(e) for e in eps], [np.mean(a) for a in acc], [np.std(a) for a in acc], label=name, marker="o", capsize=3)
            ax.set(xlabel="ε (mistake probability)", ylabel="held-out accuracy (true preference)", title="Noisy teachers")
        else:
            for name, seeds in run["results"].items():
                counts = [c["labels"] for c in seeds[0]]
                acc = np.array([[c["accuracy"] for c in s] for s in seeds])
                ax.errorbar(counts, acc.mean(0), acc.std(0), label=name, marker="o", capsize=3)
            ax.set(xlabel="labels", ylabel="held-out accuracy (true preference)", title="Few labels")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PARTS = {"noisy": noisy, "few": few, "offline": offline, "online": online}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="*", default=list(PARTS), choices=list(PARTS), help="none: only rewrite the report")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--episode-length", type=int, default=200)
    parser.add_argument("--segment-length", type=int, default=50)
    parser.add_argument("--heldout", type=int, default=500)
    parser.add_argument("--reward-hidden", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--labels", type=int, default=400, help="noisy: labels per seed")
    parser.add_argument("--per-round", type=int, default=100, help="noisy: labels per round")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--warm-start-ratio", type=float, default=0.25, help="noisy: RIME warm-start steps per logged step")
    parser.add_argument("--few-labels", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--few-per-round", type=int, default=50)
    parser.add_argument("--task", default="button-press-v3", help="offline: MetaWorld task")
    parser.add_argument("--dataset-dir", default="datasets/metaworld")
    parser.add_argument("--offline-steps", type=int, default=500, help="offline: IQL gradient steps")
    parser.add_argument("--offline-episode-steps", type=int, default=150)
    parser.add_argument("--pt-epochs", type=int, default=10)
    parser.add_argument("--pt-dim", type=int, default=64, help="offline: PT width D and preference width P (README: 256; 64 keeps a CPU run in minutes)")
    parser.add_argument("--offline-bt-epochs", type=int, default=50)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--online-steps", type=int, default=5000, help="online: env steps per run")
    parser.add_argument("--online-per-round", type=int, default=20, help="online: labels per round (4 rounds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    RESULTS.mkdir(exist_ok=True)
    for part in args.parts:
        started = time.perf_counter()
        out = PARTS[part](args)
        out.update(args=vars(args), wall_seconds=time.perf_counter() - started)
        (RESULTS / f"baselines_{part}.json").write_text(json.dumps(out))
    (RESULTS / "baselines.md").write_text(report(args))
    plot(RESULTS / "baselines.png")
    print((RESULTS / "baselines.md").read_text())


if __name__ == "__main__":
    main()
