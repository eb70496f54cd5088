"""One :class:`Runner` for every method: set-up, evaluation, metrics, checkpoints, resume and
plots written once; the method-specific part is a small engine per family.

* :class:`SB3Engine` — a stable-baselines3 agent (``agent.type`` sac/ppo) on a learned reward
  (``learner.type`` bt, advantage, hprior, reed) or on the true reward (``learner: null``);
  the feedback round, evaluation, logging, checkpoint and progress bar are callbacks in
  ``model.learn`` (:mod:`pbrl.agents.callback`).
* :class:`OfflineEngine` — a reward-free learner (cpl, ipl, piql, piql-pt, bc) on a dataset's labeled
  pairs (``reward_free.dataset``); ``steps`` and ``eval_interval`` count gradient steps and a
  ``reward_free.holdout`` share of the pairs gives the held-out preference accuracy.
* :class:`OnlineEngine` — a reward-free learner in a plain loop (no SB3 agent): its policy's mean
  action plus Gaussian noise collects (:class:`~pbrl.rollout.Rollout`; uniform actions until the
  first round), the :class:`~pbrl.feedback.FeedbackLoop` asks and learns on its schedule, and with
  ``reward_free.update_interval`` the learner also updates between rounds.

A run directory::

    config.yaml          the resolved configuration (only the sections the run uses)
    preferences.sqlite   every segment, query and label (durable the moment it exists)
    metrics.jsonl        every logged scalar
    curves.png           learning curves (pbrl plot)
    logs/                SB3 runs: tensorboard events and progress.csv
    checkpoint/          state.json (num_timesteps + the engine's state), learner.pt, and per engine
                         agent.zip, replay.pkl / vecnormalize*.pkl + state_entropy.npz (PPO), transitions.npz, manifest.json (size and
                         SHA-256 of each) — swapped in atomically after every feedback round, at evaluations
                         (reward-free) and at the end; state.json records the store's identity
    checkpoint.prev/     the checkpoint before it, kept until the next swap is complete

``Runner(config, run_dir, resume=True)`` continues from the last undamaged checkpoint (or from step 0
when there is none, every label kept): SB3 runs and online runs from the env step (online with fresh
episodes), offline runs from the gradient step (same minibatches and RNG streams: the final weights of
an uninterrupted run); a round a kill interrupted is replayed when it comes due, its stored queries
answered rather than asked again (:mod:`pbrl.feedback`); a store that is not the checkpoint's is refused
unless ``force`` (:func:`~pbrl.experiments.checkpoint.check_store`); rows of ``metrics.jsonl`` after the
checkpoint's step are dropped, as those steps run again.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.utils import set_random_seed

from pbrl import envs
from pbrl.agents.callback import (
    CheckpointCallback, EvaluationCallback, FeedbackCallback, LoggingCallback, PeriodicCheckpoint, ProgressCallback,
)
from pbrl.agents.evaluation import Evaluator, PolicyAgent, Predictor
from pbrl.agents.preference_env import PreferenceVecEnv
from pbrl.agents.vec_env import make_vec_env
from pbrl.datasets import OfflinePreferenceData
from pbrl.experiments.checkpoint import atomic_checkpoint, check_store, latest_checkpoint, store_identity
from pbrl.experiments.config import ConfigError, TrainConfig, budget_warnings, save_yaml
from pbrl.experiments.plots import plot_runs
from pbrl.feedback import FeedbackConfig, FeedbackLoop
from pbrl.learners.base import PreferenceLearner
from pbrl.learners.cpl import CPL
from pbrl.learners.ipl import IPL, Replay
from pbrl.learners.piql import PreferenceIQL
from pbrl.learners.preference_transformer import EpisodeRewards, PreferenceTransformer
from pbrl.metrics import preference_accuracy
from pbrl.query.qpa import hybrid_replay_window
from pbrl.registry import AGENTS, LEARNERS, TEACHERS, BuildContext
from pbrl.rollout import Rollout
from pbrl.run_log import MetricsLog
from pbrl.store import PreferenceStore
from pbrl.transitions import TransitionLog


def default_run_dir(config: TrainConfig) -> Path:
    name = config.env.replace(":", "-").replace("/", "-")
    return Path("runs") / f"{name}-{config.method}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


class Runner:
    """Train (or resume) the run ``config`` describes; ``train()`` returns the last scalars."""

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None, resume: bool = False,
                 force: bool = False) -> None:
        self.config = config
        self.run_dir = Path(run_dir or config.run_dir or default_run_dir(config))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.torch_threads)
        set_random_seed(config.seed)
        self.force = force  # resume with a store that is not the checkpoint's (pbrl resume --force)
        found = latest_checkpoint(self.run_dir) if resume else None
        self.checkpoint_dir: Path | None = found[0] if found else None  # the checkpoint to resume from (None: a fresh start)
        self.resumed = found[1] if found else None  # its state.json
        self.last_checkpoint_step: int | None = None  # the step of the checkpoint this process wrote last
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        if resume:  # the steps after the checkpoint run again (all of them when there is none)
            self.metrics.truncate(self.resumed["num_timesteps"] if self.resumed else -1)
        self.last: dict[str, float] = {}
        self.logger: Logger | None = None  # SB3 runs: tensorboard + CSV besides metrics.jsonl
        family = OfflineEngine if config.offline else OnlineEngine if config.reward_free_learner else SB3Engine
        self.engine = family(self)
        self.evaluator = None
        if config.eval_episodes > 0:
            eval_env = envs.make(config.env, seed=config.seed + 10_000, max_episode_steps=config.max_episode_steps)
            self.evaluator = Evaluator(eval_env, config.eval_episodes, seed=config.seed + 10_000)
        save_yaml(config, self.run_dir / "config.yaml")

    # ------------------------------------------------------------------ what engines share
    @property
    def learner(self) -> PreferenceLearner | None:
        return self.engine.learner

    @property
    def loop(self) -> FeedbackLoop | None:
        return getattr(self.engine, "loop", None)

    @property
    def store(self) -> PreferenceStore | None:
        return getattr(self.engine, "store", None)

    @property
    def model(self) -> Any:
        """The stable-baselines3 model (SB3 runs; None for reward-free runs)."""
        return getattr(self.engine, "model", None)

    def context(self, env: gym.Env) -> BuildContext:
        """What factories need to know about the run and its env."""
        cfg = self.config
        return BuildContext(
            cfg.env, env.observation_space.shape[0], env.action_space.shape[0], envs.episode_limit(env), cfg.seed,
            (cfg.feedback or FeedbackConfig()).segment_length, cfg.feedback.budget if cfg.feedback else None,
            hybrid_replay_window(cfg.query, envs.episode_limit(env)) if cfg.query is not None else None,
        )

    def build_learner(self, ctx: BuildContext) -> PreferenceLearner | None:
        """The configured learner (None: true reward), its weights and state restored when resuming. A fresh
        run that cannot use its label budget is warned here, at its start (:func:`budget_warnings`)."""
        if self.config.learner is None:
            return None
        if self.resumed is None:
            for line in budget_warnings(self.config, ctx.episode_length):
                warnings.warn(line, stacklevel=2)
        learner = LEARNERS.get(self.config.learner_type).factory(self.config.learner, ctx)
        if self.checkpoint_dir is not None:
            learner.load_state_dict(torch.load(self.checkpoint_dir / "learner.pt", weights_only=False))
        return learner

    def record(self, step: int, scalars: dict[str, float], evaluate: Predictor | None = None) -> None:
        """Log ``scalars`` at ``step`` (with an evaluation of ``evaluate``'s policy first, when given)."""
        if evaluate is not None and self.evaluator is not None:
            scalars = {**scalars, **self.evaluator.evaluate(evaluate)}
        self.last.update(scalars)
        if self.logger is not None:
            for key, value in scalars.items():
                self.logger.record(key, value)
            self.logger.dump(step)
        self.metrics.write(step, scalars)

    def save_checkpoint(self, step: int) -> None:
        """Write a complete checkpoint next to the old one, then swap (a kill never leaves half of one)."""
        with atomic_checkpoint(self.run_dir) as tmp:
            state = self.engine.save(tmp)
            if self.learner is not None:
                torch.save(self.learner.state_dict(), tmp / "learner.pt")
            if self.store is not None:
                state["store"] = store_identity(self.store)  # resume recognises its own store by it
            (tmp / "state.json").write_text(json.dumps({"num_timesteps": int(step), **state}))
        self.last_checkpoint_step = int(step)

    # ------------------------------------------------------------------ the run
    def train(self) -> dict[str, float]:
        started = time.perf_counter()
        steps = self.engine.run()
        self.save_checkpoint(steps)
        self.engine.close()
        plot_runs([self.run_dir], self.run_dir / "curves.png")
        return {**self.last, "time/wall_seconds": time.perf_counter() - started, "steps": float(steps)}


class Feedback:
    """The transition log, preference store and feedback loop of a run that asks labels (SB3 and online engines)."""

    def __init__(self, runner: Runner, learner: PreferenceLearner | None, ctx: BuildContext, n_envs: int) -> None:
        cfg, checkpoint = runner.config, runner.checkpoint_dir
        capacity = (cfg.feedback or FeedbackConfig()).log_capacity
        self.log = TransitionLog.load(checkpoint / "transitions.npz", cfg.env) if checkpoint else TransitionLog(capacity, n_envs, cfg.env)
        self.store = check_store(runner.run_dir, (runner.resumed or {}).get("store"), runner.force)
        self.loop = None
        if learner is not None:
            teacher = TEACHERS.get(cfg.teacher_type).factory(cfg.teacher, ctx)
            rng = np.random.default_rng(cfg.seed)  # the loop's generator, checkpointed with it
            self.loop = FeedbackLoop(cfg.feedback, cfg.query, learner, teacher, self.store, self.log, ctx.episode_length, rng)

    def resume(self, runner: Runner) -> dict[str, float]:
        """Continue the loop from the checkpoint; the scalars of learning labels that arrived after it ({} if none)."""
        state = runner.resumed
        if self.loop is None or state is None:
            return {}
        caught_up = self.loop.resume(state["loop"], state["trained_labels"])
        if caught_up:
            runner.record(state["num_timesteps"], caught_up)
        return caught_up

    def save(self, folder: Path, returns: list[float], successes: list[float]) -> dict[str, Any]:
        self.log.save(folder / "transitions.npz")
        return {
            "loop": self.loop.state_dict() if self.loop else None,
            "trained_labels": self.store.counts().labeled,
            "episode_returns": list(returns)[-100:],
            "episode_successes": list(successes)[-100:],
        }


class SB3Engine:
    """A stable-baselines3 agent on the learned (or true) reward, driven by composed callbacks."""

    def __init__(self, runner: Runner) -> None:
        cfg, self.runner = runner.config, runner
        n_envs = getattr(cfg.agent, "n_envs", 1)  # an agent section's n_envs (PPO) sets the parallel envs
        make = lambda seed: lambda: envs.make(cfg.env, seed=seed, max_episode_steps=cfg.max_episode_steps)  # noqa: E731
        probe = make(cfg.seed)()  # the shapes and time limit, read in-process (a SubprocVecEnv has no .envs)
        ctx = runner.context(probe)
        probe.close()
        venv = make_vec_env([make(cfg.seed + i) for i in range(n_envs)])
        self.learner = runner.build_learner(ctx)
        self.feedback = Feedback(runner, self.learner, ctx, n_envs)
        self.loop, self.store, self.log = self.feedback.loop, self.feedback.store, self.feedback.log
        self.agent = AGENTS.get(cfg.agent_type).factory(cfg.agent, ctx)
        checkpoint = runner.checkpoint_dir
        observe = getattr(self.agent, "wrap_observations", None)  # PPO's VecNormalize(obs): r̂ and the log see what the policy sees
        self.pref_env = PreferenceVecEnv(observe(venv, checkpoint) if observe else venv, self.learner, self.log)
        env = self.agent.wrap(self.pref_env, checkpoint)
        self.model = self.agent.load(checkpoint, env, self.learner) if checkpoint else self.agent.build(env, self.learner, cfg.steps)
        self.model.set_logger(configure(str(runner.run_dir / "logs"), ["csv", "tensorboard"]))
        runner.logger = self.model.logger
        self.hooks = self.agent.hooks(self.model)
        if self.loop is not None and hasattr(self.hooks, "asked"):  # QPA: hybrid replay until the budget is spent
            self.hooks.asked = lambda: self.loop.asked
        if runner.resumed is not None:
            self.pref_env.episode_returns.extend(runner.resumed["episode_returns"])
            self.pref_env.episode_successes.extend(runner.resumed["episode_successes"])
            if self.feedback.resume(runner):
                self.hooks.after_round(self.learner)

    def callbacks(self) -> CallbackList:
        cfg, runner = self.runner.config, self.runner
        parts: list[BaseCallback] = []
        if self.loop is not None:
            checkpoint = CheckpointCallback(runner.save_checkpoint)
            parts.append(FeedbackCallback(self.loop, self.pref_env, self.hooks, runner.record, self.agent.on_policy, checkpoint))
        if cfg.checkpoint_interval:
            parts.append(PeriodicCheckpoint(runner.save_checkpoint, cfg.checkpoint_interval, self.agent.on_policy,
                                            last_saved=lambda: runner.last_checkpoint_step))
        if runner.evaluator is not None:
            parts.append(EvaluationCallback(runner.evaluator, cfg.eval_interval, runner.record))
        parts.append(LoggingCallback(self.pref_env, self.store if self.loop else None, cfg.log_interval, runner.record))
        if cfg.progress:
            parts.append(ProgressCallback(cfg.steps, runner.last))
        return CallbackList(parts)

    def run(self) -> int:
        remaining = self.runner.config.steps - self.model.num_timesteps
        if remaining > 0:
            self.model.learn(remaining, callback=self.callbacks(), reset_num_timesteps=self.model.num_timesteps == 0)
        return int(self.model.num_timesteps)

    def save(self, folder: Path) -> dict[str, Any]:
        self.agent.save(self.model, folder)
        return self.feedback.save(folder, self.pref_env.episode_returns, self.pref_env.episode_successes)

    def close(self) -> None:
        return None


class OfflineEngine:
    """A reward-free learner on an offline dataset's labeled pairs; steps are gradient steps."""

    def __init__(self, runner: Runner) -> None:
        cfg, self.runner = runner.config, runner
        self.data = OfflinePreferenceData.load(cfg.reward_free.dataset)
        if self.data.env_id != cfg.env:
            raise ConfigError(f"reward_free.dataset {cfg.reward_free.dataset} was collected on {self.data.env_id}, but env={cfg.env}")
        env = envs.make(cfg.env, seed=cfg.seed, max_episode_steps=cfg.max_episode_steps)
        self.learner = runner.build_learner(runner.context(env))
        if isinstance(self.learner, PreferenceIQL) and isinstance(self.learner.reward, PreferenceTransformer):
            # P-IQL-PT: each dataset step's reward from its context window, as the reference relabels the dataset
            self.learner.reward = EpisodeRewards(self.learner.reward, self.data.episodes)
        self.agent = PolicyAgent(self.learner, env.action_space)

    def run(self) -> int:
        cfg, learner, runner = self.runner.config, self.learner, self.runner
        pairs = self.data.preferences()
        order = np.random.default_rng(cfg.seed).permutation(len(pairs))
        held = int(round(cfg.reward_free.holdout * len(pairs)))
        train, heldout = pairs[np.sort(order[held:])], pairs[np.sort(order[:held])]
        if isinstance(learner, CPL) and learner.config.pairing == "rank":  # CPL's rank mode: training segments, true returns
            labeled = np.flatnonzero(~np.isnan(self.data.labels))[order[:held]]
            ids = np.setdiff1d(np.arange(len(self.data.segment_start)), np.union1d(self.data.left[labeled], self.data.right[labeled]))
            segments = self.data.segment_batch(ids, sim_states=False)
            learner.set_ranked(segments.segments, segments.truth.returns)
        if isinstance(learner, IPL):  # every transition of the dataset's episodes as unlabeled replay
            episodes = self.data.episodes
            learner.set_replay(Replay(episodes.obs, episodes.actions, episodes.next_obs, episodes.terminated))
        if runner.resumed is None:
            runner.record(0, {"teacher/labeled": float(len(train))}, evaluate=self.agent)
        while learner.updates < cfg.steps:
            started = time.perf_counter()
            scalars = {f"policy/{k}": v for k, v in learner.update(train).items()}
            scalars["time/learner_update_seconds"] = time.perf_counter() - started
            if held:
                p_left = learner.preference_probability(heldout.left, heldout.right)
                scalars["policy/heldout_accuracy"] = preference_accuracy(p_left, heldout.labels)
            step = learner.updates
            due = step % cfg.eval_interval < learner.steps_per_update or step >= cfg.steps
            runner.record(step, {**scalars, "teacher/labeled": float(len(train))}, evaluate=self.agent if due else None)
            if due:
                runner.save_checkpoint(step)
        return learner.updates

    def save(self, folder: Path) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


class OnlineEngine:
    """A reward-free learner collecting with its own noisy policy, labels asked by the feedback loop."""

    def __init__(self, runner: Runner) -> None:
        cfg, self.runner = runner.config, runner
        env = envs.make(cfg.env, seed=cfg.seed, max_episode_steps=cfg.max_episode_steps)
        ctx = runner.context(env)
        self.act_dim = ctx.act_dim
        self.learner = runner.build_learner(ctx)
        self.agent = PolicyAgent(self.learner, env.action_space)
        self.feedback = Feedback(runner, self.learner, ctx, n_envs=1)
        self.loop, self.store = self.feedback.loop, self.feedback.store
        self.rollout = Rollout(env, self.feedback.log)
        self.start = 0
        if runner.resumed is not None:
            self.start = runner.resumed["num_timesteps"]
            self.rollout.returns[:] = runner.resumed["episode_returns"]
            self.rollout.successes[:] = runner.resumed["episode_successes"]
            self.feedback.resume(runner)
            self.feedback.log.mark_episode_boundary()  # the env restarts: the interrupted episode ends here
        self.rollout.reset(seed=cfg.seed + self.start)

    def _action(self, obs: np.ndarray) -> np.ndarray:
        """Uniform in the unit box until the first round; then the policy's mean plus Gaussian noise."""
        rng = self.loop.rng  # the loop's generator draws the actions too (checkpointed with it)
        if not self.loop.trained:
            return rng.uniform(-1.0, 1.0, self.act_dim)
        noisy = self.learner.act(obs) + self.runner.config.reward_free.action_noise * rng.standard_normal(self.act_dim)
        return np.clip(noisy, -1.0, 1.0)

    def run(self) -> int:
        cfg, loop, rollout, runner = self.runner.config, self.loop, self.rollout, self.runner
        tick, tick_step = time.perf_counter(), self.start
        for step in range(self.start + 1, cfg.steps + 1):
            rollout.step(self._action(rollout.current_obs()))
            scalars: dict[str, float] = {}
            round_done = False
            if loop.due(step):
                result = loop.run_round(step, rollout.returns)
                scalars.update(result.metrics)
                round_done = not result.postponed
            elif loop.trained and cfg.reward_free.update_interval and step % cfg.reward_free.update_interval == 0:
                scalars.update(loop.learn())  # fresh unlabeled experience observed, every label so far learned
            evaluate = step % cfg.eval_interval == 0 or step == cfg.steps
            if scalars or evaluate or step % cfg.log_interval == 0:
                if rollout.returns:
                    scalars["train/true_episode_return"] = float(np.mean(rollout.returns[-10:]))
                    scalars["train/success_rate"] = float(np.mean(rollout.successes[-10:]))
                now = time.perf_counter()
                scalars["time/env_steps_per_second"] = (step - tick_step) / max(now - tick, 1e-9)
                tick, tick_step = now, step
                runner.record(step, scalars, evaluate=self.agent if evaluate and loop.trained else None)
            if round_done or evaluate:
                runner.save_checkpoint(step)
        return cfg.steps

    def save(self, folder: Path) -> dict[str, Any]:
        return self.feedback.save(folder, self.rollout.returns, self.rollout.successes)

    def close(self) -> None:
        self.store.close()
