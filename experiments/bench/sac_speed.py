"""Plain stable-baselines3 SAC against FastSAC on the true reward, side by side in one run.

Same env, steps, seeds and hyperparameters (SB3's MuJoCo SAC with B-Pref's initial
temperature: 2×256, batch 256, lr 3e-4, τ 0.005, α auto from 0.1), one torch thread,
runs interleaved per seed (SB3, then FastSAC) so both see the same machine load. For
each run: env steps per wall second, process CPU seconds, and the final deterministic
evaluation return over ``--eval-episodes`` episodes. The report gives the FastSAC/SB3
ratios (steps/s, CPU seconds) and each implementation's mean final return with a 95%
bootstrap interval (resampling seeds, then episodes within each seed; 10,000 draws).

The acceptance run (issue 11) is ≥ 50k steps × 3 seeds — hours on a shared 2-core
machine::

    python -m pbrl.experiments.bench.sac_speed --steps 50000 --seeds 0 1 2

A short run for a quick look (its results say it is short)::

    python -m pbrl.experiments.bench.sac_speed --steps 5000 --seeds 0 1

Each finished run is appended to ``sac_speed.runs.jsonl`` (one ledger per ``--out-dir``)
with its settings, and a later invocation with the same settings reuses it: the acceptance
run can be stopped and continued, one (implementation, seed) run at a time, and an SB3 run
serves every FastSAC variant (``--execution``, ``--precision`` do not touch SB3). ``--fresh``
runs the seeds of ``--impls`` again (the newest row of each run counts), for a measurement
in which SB3 and FastSAC ran side by side on an otherwise idle machine. ``--jobs 2`` runs a seed's SB3 and
FastSAC runs at the same time, one process and one core each (both still see the same
load). Writes ``<name>.md`` and ``<name>.png`` under ``--out-dir`` (``--name``, default
``sac_speed``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from pbrl import cpu_linear, envs
from pbrl.agents.fast_sac import FastSAC

IMPLEMENTATIONS = {"sb3": SAC, "fast": FastSAC}


SETTINGS = ("env", "steps", "device", "execution", "precision", "learning_starts", "eval_episodes")
"""The arguments a finished run is reused under: all of them equal, or it runs again."""
FAST_ONLY_SETTINGS = ("execution", "precision")
"""Settings of FastSAC alone: an SB3 run is reused whatever they were."""


@dataclass
class Run:
    impl: str
    seed: int
    steps: int
    wall_s: float
    cpu_s: float
    returns: list[float]

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s


def sac_kwargs(steps: int, seed: int, device: str, learning_starts: int) -> dict:
    """The hyperparameters both implementations share."""
    return dict(learning_rate=3e-4, buffer_size=steps, learning_starts=learning_starts, batch_size=256, tau=0.005,
                gamma=0.99, ent_coef="auto_0.1", policy_kwargs={"net_arch": [256, 256]}, seed=seed, device=device,
                verbose=0)


def run_one(impl: str, env_id: str, steps: int, seed: int, device: str, learning_starts: int, eval_episodes: int,
            execution: str, precision: str) -> Run:
    torch.set_num_threads(1)  # also in a --jobs worker process
    venv = DummyVecEnv([lambda: envs.make(env_id, seed=seed)])
    extra = {"execution": execution, "precision": precision} if impl == "fast" else {}
    model = IMPLEMENTATIONS[impl]("MlpPolicy", venv, **sac_kwargs(steps, seed, device, learning_starts), **extra)
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    eval_env = DummyVecEnv([lambda: envs.make(env_id, seed=seed + 10_000)])
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True, return_episode_rewards=True)
    return Run(impl, seed, steps, wall, cpu, [float(r) for r in returns])


def _run_job(job: tuple) -> Run:
    return run_one(*job)


def load_runs(ledger: Path, settings: dict) -> list[Run]:
    """The finished runs in ``ledger`` made under ``settings`` (the last one of each impl and seed);
    an SB3 run matches whatever the FastSAC-only settings were."""
    if not ledger.exists():
        return []
    rows = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    fields = Run.__dataclass_fields__

    def matches(row: dict) -> bool:
        keys = [k for k in settings if row["impl"] == "fast" or k not in FAST_ONLY_SETTINGS]
        return all(row.get(key) == settings[key] for key in keys)

    return list({(row["impl"], row["seed"]): Run(**{k: row[k] for k in fields}) for row in rows if matches(row)}.values())


def bootstrap_mean_ci(per_seed: list[list[float]], draws: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds of each seed's mean return, and its 95% two-level bootstrap interval."""
    rng = np.random.default_rng(seed)
    data = [np.asarray(r) for r in per_seed]
    stats = np.empty(draws)
    for i in range(draws):
        seeds = rng.integers(0, len(data), len(data))
        stats[i] = np.mean([rng.choice(data[s], len(data[s])).mean() for s in seeds])
    return float(np.mean([d.mean() for d in data])), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def ci_text(ci: tuple[float, float, float]) -> str:
    return f"{ci[0]:.1f} [{ci[1]:.1f}, {ci[2]:.1f}]"


def products_text(precision: str, device: str) -> str:
    """Which matrix products FastSAC's update ran on (a sentence for the report)."""
    if precision == "bfloat16":
        return "FastSAC's losses' matrix products in bf16 under `torch.autocast` (`precision=bfloat16`, opt-in)."
    if cpu_linear.onednn_active(device):
        return f"FastSAC's float32 products: oneDNN's (`pbrl.cpu_linear` backend `{cpu_linear.backend()}`; SB3: MKL's)."
    return "FastSAC's float32 products: torch's, as SB3's."


def report(runs: list[Run], args: argparse.Namespace, out_dir: Path) -> str:
    by = {impl: [r for r in runs if r.impl == impl] for impl in IMPLEMENTATIONS}
    total = lambda impl, attr: sum(getattr(r, attr) for r in by[impl])  # noqa: E731
    sps = {impl: sum(r.steps for r in by[impl]) / total(impl, "wall_s") for impl in by}
    cis = {impl: bootstrap_mean_ci([r.returns for r in by[impl]]) for impl in by}
    short = args.steps < 50_000 or len(args.seeds) < 3
    lines = [
        f"# SB3 SAC vs FastSAC: {args.env}, {args.steps} steps × seeds {args.seeds}, device {args.device}, 1 torch thread",
        "",
        *(["**SHORT RUN** (the acceptance run is ≥ 50k steps × 3 seeds): speed ratios are meaningful, "
           "returns at this length are not a learning comparison.", ""] if short else []),
        f"Command: `python -m pbrl.experiments.bench.sac_speed --steps {args.steps} --seeds {' '.join(map(str, args.seeds))} "
        f"--device {args.device} --execution {args.execution} --precision {args.precision} --jobs {args.jobs}`; FastSAC execution resolved to "
        f"`{args.resolved_execution}`; learning starts at {args.learning_starts} steps; "
        f"{args.eval_episodes} deterministic evaluation episodes per run.",
        "",
        f"{products_text(args.precision, args.device)} Steps per CPU second is the one-thread speed; wall "
        "steps/s move with what else ran on the machine.",
        "",
        "| impl | seed | steps/s (wall) | CPU s | steps per CPU s | final return (mean of episodes) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(f"| {r.impl} | {r.seed} | {r.steps_per_s:.1f} | {r.cpu_s:.1f} | {r.steps / r.cpu_s:.1f} | "
                     f"{np.mean(r.returns):.1f} |")
    lines += [
        "",
        "| | SB3 SAC | FastSAC | FastSAC / SB3 |",
        "| --- | ---: | ---: | ---: |",
        f"| steps/s (wall, all seeds) | {sps['sb3']:.1f} | {sps['fast']:.1f} | {sps['fast'] / sps['sb3']:.2f}× |",
        f"| CPU seconds (all seeds) | {total('sb3', 'cpu_s'):.1f} | {total('fast', 'cpu_s'):.1f} | "
        f"{total('fast', 'cpu_s') / total('sb3', 'cpu_s'):.2f}× (speed-up {total('sb3', 'cpu_s') / total('fast', 'cpu_s'):.2f}×) |",
        "| final return, mean [95% bootstrap CI] | " + " | ".join(ci_text(cis[i]) for i in IMPLEMENTATIONS) + " | |",
        "",
        f"Intervals overlap: {'yes' if cis['sb3'][1] <= cis['fast'][2] and cis['fast'][1] <= cis['sb3'][2] else 'no'}.",
    ]
    plot(by, sps, cis, args, out_dir / f"{args.name}.png")
    return "\n".join(lines) + "\n"


def plot(by: dict[str, list[Run]], sps: dict[str, float], cis: dict, args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_speed, ax_ret) = plt.subplots(1, 2, figsize=(8, 3.2))
    names = list(by)
    ax_speed.bar(names, [sps[n] for n in names], color=["tab:gray", "tab:blue"])
    ax_speed.set_ylabel("env steps / s (wall)")
    means = [cis[n][0] for n in names]
    errors = [[cis[n][0] - cis[n][1] for n in names], [cis[n][2] - cis[n][0] for n in names]]
    ax_ret.bar(names, means, yerr=errors, capsize=6, color=["tab:gray", "tab:blue"])
    ax_ret.set_ylabel("final return (95% bootstrap CI)")
    fig.suptitle(f"{args.env}, {args.steps} steps × {len(args.seeds)} seeds, {args.device}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gym:HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--execution", default="auto", help="FastSAC execution: auto, eager, compile, graph")
    parser.add_argument("--precision", default="float32", help="FastSAC precision: float32 (SB3's maths) or bfloat16 (opt-in)")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--out-dir", default="experiments/bench/results")
    parser.add_argument("--name", default="sac_speed", help="stem of the .md and .png written")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, one process and one torch thread each")
    parser.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS), choices=list(IMPLEMENTATIONS),
                        help="run only these implementations now (the report needs both in the ledger)")
    parser.add_argument("--fresh", action="store_true",
                        help="run every seed of --impls again (the others are reused), e.g. side by side on an "
                             "otherwise idle machine; the ledger keeps the older rows, the newest of each (impl, seed) counts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ledger = out_dir / "sac_speed.runs.jsonl"
    settings = {key: getattr(args, key) for key in SETTINGS}
    done = {(r.impl, r.seed): r for r in load_runs(ledger, settings) if not (args.fresh and r.impl in args.impls)}
    todo = [(impl, seed) for seed in args.seeds for impl in args.impls if (impl, seed) not in done]
    print(f"{len(done)} of {len(args.seeds) * len(IMPLEMENTATIONS)} runs reused from {ledger}; {len(todo)} to run", flush=True)
    jobs = [(impl, args.env, args.steps, seed, args.device, args.learning_starts, args.eval_episodes, args.execution,
             args.precision) for impl, seed in todo]
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for run in pool.imap_unordered(_run_job, jobs):
            with ledger.open("a") as f:
                f.write(json.dumps({**settings, **asdict(run)}) + "\n")
            done[run.impl, run.seed] = run
            print(f"{run.impl} seed {run.seed}: {run.steps_per_s:.1f} steps/s, {run.cpu_s:.1f} CPU s, "
                  f"return {np.mean(run.returns):.1f}", flush=True)
    missing = [f"{impl} seed {seed}" for seed in args.seeds for impl in IMPLEMENTATIONS if (impl, seed) not in done]
    if missing:
        print(f"no report yet: {', '.join(missing)} not in {ledger} (run them with --impls)")
        return
    runs = [done[impl, seed] for seed in args.seeds for impl in IMPLEMENTATIONS]
    probe = FastSAC("MlpPolicy", DummyVecEnv([lambda: envs.make(args.env, seed=0)]), device=args.device,
                    execution=args.execution, buffer_size=10)
    args.resolved_execution = probe.execution
    text = report(runs, args, out_dir)
    print(text)
    (out_dir / f"{args.name}.md").write_text(text)


if __name__ == "__main__":
    main()
