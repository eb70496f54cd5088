"""Reward-free methods — ``method=cpl``, ``ipl``, and the baselines ``piql`` (reward model + IQL)
and ``bc`` — in pbrl's run layout.

* **Offline** (``reward_free.dataset=<file from pbrl collect>``): the learner trains on the
  dataset's labeled pairs; ``steps`` and ``eval_interval`` count *gradient steps*. A
  ``reward_free.holdout`` share of the pairs is never trained on and gives the held-out
  preference accuracy. IPL also gets every transition of the dataset's episodes as
  unlabeled replay (used when ``ipl.replay_batch_size > 0``).
* **Online** (no dataset): a plain loop — no stable-baselines3 agent. The policy's mean
  action plus Gaussian noise (``reward_free.action_noise``) collects; before the first
  feedback round, when the policy is untrained, actions are uniform. The usual
  :class:`~pbrl.feedback.FeedbackLoop` asks the teacher on its schedule (``feedback.*``),
  stores every label, and updates the learner (``cpl/ipl.steps_per_update`` gradient
  steps) on all labels so far; with ``reward_free.update_interval`` the learner also
  updates every that many env steps between rounds. IPL's unlabeled replay is the
  transition log. Query strategies must work without a reward model (``uniform``, ``qpa``).

Both write ``config.yaml``, ``metrics.jsonl`` (``eval/``, ``reward/`` = learner scalars,
``teacher/``, ``time/``), ``curves.png`` and ``checkpoint/`` (``learner.pt`` = weights,
optimisers, RNG streams and update counter; ``state.json``; online also the transition log),
replaced atomically at every evaluation (the last step is one) and, online, after every
feedback round; online runs also ``preferences.sqlite`` (every label, durable as it arrives).

``pbrl resume RUN_DIR`` (:class:`RewardFreeTrainer` with ``resume=True``) continues from the
checkpoint: offline from the learner's gradient step — same minibatches, same RNG streams,
so the same final weights as an uninterrupted run — online from the env step, with the
envs reset (a fresh episode in the log), the feedback schedule, its generator and the
recent returns where they were, and any label that arrived after the checkpoint learned at
once. Rows of ``metrics.jsonl`` after the checkpoint's step are dropped, as those steps run again.
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pbrl import envs
from pbrl.agents.evaluation import Evaluator
from pbrl.experiments.builders import EnvSpec, build_teacher
from pbrl.experiments.checkpoint import atomic_checkpoint, checkpoint_state
from pbrl.experiments.config import REWARD_FREE_METHODS, ConfigError, TrainConfig, save_yaml
from pbrl.experiments.plots import plot_runs
from pbrl.datasets import OfflinePreferenceData
from pbrl.feedback import FeedbackLoop
from pbrl.learners.bradley_terry import BTEnsemble
from pbrl.learners.cpl import CPL, BehaviourCloning
from pbrl.learners.ipl import IPL, Replay
from pbrl.learners.piql import PreferenceIQL
from pbrl.learners.policies import PolicyLearner
from pbrl.metrics import preference_accuracy
from pbrl.run_log import MetricsLog
from pbrl.store import PreferenceStore
from pbrl.transitions import TransitionLog


def make_policy_learner(config: TrainConfig, obs_dim: int, act_dim: int) -> PolicyLearner:
    """CPL, IPL, P-IQL (the ``reward`` section's BT ensemble + IQL with the ``ipl`` settings), or the
    behaviour-cloning baseline (the ``cpl`` section's policy and optimiser)."""
    if config.method == "cpl":
        return CPL(obs_dim, act_dim, config.cpl, config.seed)
    if config.method == "ipl":
        return IPL(obs_dim, act_dim, config.ipl, config.seed)
    if config.method == "piql":
        return PreferenceIQL(obs_dim, act_dim, BTEnsemble(obs_dim, act_dim, config.reward, config.seed), config.ipl, config.seed)
    if config.method == "bc":
        return BehaviourCloning(obs_dim, act_dim, config.cpl, config.seed)
    raise ConfigError(f"method={config.method!r} is not reward-free; choose one of {list(REWARD_FREE_METHODS)}")


class PolicyAgent:
    """A policy learner behind stable-baselines3's ``predict`` (for :class:`~agents.evaluation.Evaluator`):
    the mean action, mapped from [−1, 1] to the env's action box."""

    def __init__(self, learner: PolicyLearner, space: gym.spaces.Box) -> None:
        self.learner, self.low, self.high = learner, space.low, space.high

    def to_env(self, unit: np.ndarray) -> np.ndarray:
        return (self.low + (np.clip(unit, -1.0, 1.0) + 1.0) * (self.high - self.low) / 2.0).astype(np.float32)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.to_env(self.learner.act(obs)), None


class RewardFreeTrainer:
    """Offline or online training of a reward-free learner; ``train()`` returns the last scalars.

    With ``resume=True`` it continues the run in ``run_dir`` from its last checkpoint (from the
    start when there is none)."""

    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool = False) -> None:
        if config.method not in REWARD_FREE_METHODS:
            raise ConfigError(f"RewardFreeTrainer runs {list(REWARD_FREE_METHODS)}, not method={config.method!r}")
        self.config, self.run_dir = config, Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.torch_threads)
        self.env = envs.make(config.env, seed=config.seed, max_episode_steps=config.max_episode_steps)
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        self.learner = make_policy_learner(config, obs_dim, act_dim)
        self.agent = PolicyAgent(self.learner, self.env.action_space)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.checkpoint = self.run_dir / "checkpoint"
        self.resumed = checkpoint_state(self.run_dir) if resume else None  # the checkpoint's state.json
        if self.resumed is not None:
            self.learner.load_state_dict(torch.load(self.checkpoint / "learner.pt", weights_only=False))
        if resume:
            self.metrics.truncate(self.resumed["num_timesteps"] if self.resumed else -1)
        self.evaluator = None
        if config.eval_episodes > 0:
            eval_env = envs.make(config.env, seed=config.seed + 10_000, max_episode_steps=config.max_episode_steps)
            self.evaluator = Evaluator(eval_env, config.eval_episodes, seed=config.seed + 10_000)
        self.last: dict[str, float] = {}
        save_yaml(config, self.run_dir / "config.yaml")

    def _log(self, step: int, metrics: dict[str, float], evaluate: bool) -> None:
        if evaluate and self.evaluator is not None:
            metrics.update(self.evaluator.evaluate(self.agent))
        self.metrics.write(step, metrics)
        self.last.update(metrics)

    def train(self) -> dict[str, float]:
        started = time.perf_counter()
        steps = self.train_offline() if self.config.reward_free.dataset else self.train_online()
        plot_runs([self.run_dir], self.run_dir / "curves.png")
        return {**self.last, "time/wall_seconds": time.perf_counter() - started, "steps": float(steps)}

    def save_checkpoint(self, step: int, log: TransitionLog | None = None, **state: Any) -> None:
        """The learner, ``step`` and ``state`` (online: the loop's) and the transition log, swapped in atomically."""
        with atomic_checkpoint(self.run_dir) as tmp:
            torch.save(self.learner.state_dict(), tmp / "learner.pt")
            if log is not None:
                log.save(tmp / "transitions.npz")
            (tmp / "state.json").write_text(json.dumps({"num_timesteps": step, **state}))

    # ------------------------------------------------------------------ offline
    def train_offline(self) -> int:
        cfg = self.config
        data = OfflinePreferenceData.load(cfg.reward_free.dataset)
        if data.env_id != cfg.env:
            raise ConfigError(f"dataset {cfg.reward_free.dataset} was collected on {data.env_id}, but env={cfg.env}")
        pairs = data.preferences()
        order = np.random.default_rng(cfg.seed).permutation(len(pairs))
        held = int(round(cfg.reward_free.holdout * len(pairs)))
        train, heldout = pairs[np.sort(order[held:])], pairs[np.sort(order[:held])]
        if isinstance(self.learner, IPL):
            episodes = data.episodes
            self.learner.set_replay(Replay(episodes.obs, episodes.actions, episodes.next_obs, episodes.terminated))
        if self.resumed is None:
            self._log(0, {"teacher/labeled": float(len(train))}, evaluate=True)
        while self.learner.updates < cfg.steps:
            started = time.perf_counter()
            scalars = {f"reward/{k}": v for k, v in self.learner.update(train).items()}
            scalars["time/learner_update_seconds"] = time.perf_counter() - started
            if held:
                p_left = self.learner.preference_probability(heldout.left, heldout.right)
                scalars["reward/heldout_accuracy"] = preference_accuracy(p_left, heldout.labels)
            step = self.learner.updates
            due = step % cfg.eval_interval < self.learner.steps_per_update or step >= cfg.steps
            self._log(step, {**scalars, "teacher/labeled": float(len(train))}, evaluate=due)
            if due:
                self.save_checkpoint(step)
        return self.learner.updates

    # ------------------------------------------------------------------ online
    def train_online(self) -> int:
        cfg, env = self.config, self.env
        spec = EnvSpec(cfg.env, env.observation_space.shape[0], env.action_space.shape[0], envs.episode_limit(env))
        resumed = self.resumed
        log = (
            TransitionLog.load(self.checkpoint / "transitions.npz", cfg.env)
            if resumed
            else TransitionLog(cfg.feedback.log_capacity, 1, cfg.env)
        )
        store = PreferenceStore(self.run_dir / "preferences.sqlite")
        rng = np.random.default_rng(cfg.seed)  # the loop's generator, checkpointed with it; also draws the actions
        loop = FeedbackLoop(cfg.feedback, cfg.query, self.learner, build_teacher(cfg, spec), store, log, spec.episode_length, rng)
        returns: deque[float] = deque(resumed["episode_returns"] if resumed else (), maxlen=100)
        successes: deque[float] = deque(resumed["episode_successes"] if resumed else (), maxlen=100)
        start = 0
        if resumed:
            start = resumed["num_timesteps"]
            caught_up = loop.resume(resumed["loop"], resumed["trained_labels"])
            if caught_up:
                self._log(start, caught_up, evaluate=False)
            log.mark_episode_boundary()  # the env restarts below: the interrupted episode ends here
        obs, _ = env.reset(seed=cfg.seed + start)
        episode_return, episode_success, tick, tick_step = 0.0, 0.0, time.perf_counter(), start
        for step in range(start + 1, cfg.steps + 1):
            if loop.trained:
                unit = np.clip(self.learner.act(obs) + cfg.reward_free.action_noise * rng.standard_normal(spec.act_dim), -1, 1)
            else:
                unit = rng.uniform(-1.0, 1.0, spec.act_dim)
            next_obs, _, terminated, truncated, info = env.step(self.agent.to_env(unit))
            done = terminated or truncated
            log.add(obs[None], unit[None], next_obs[None], np.array([info["true_reward"]]), np.array([info["success"]]),
                    np.array([done]), sim_states=info["sim_state"][None], terminals=np.array([terminated]))
            episode_return += info["true_reward"]
            episode_success = max(episode_success, info["success"])
            obs = next_obs
            if done:
                returns.append(episode_return)
                successes.append(episode_success)
                obs, _ = env.reset()
                episode_return, episode_success = 0.0, 0.0
            scalars: dict[str, float] = {}
            round_done = False
            if loop.due(step):
                result = loop.run_round(step, list(returns))
                scalars.update(result.metrics)
                round_done = not result.postponed
            elif loop.trained and cfg.reward_free.update_interval and step % cfg.reward_free.update_interval == 0:
                self.learner.observe(log.view())  # fresh unlabeled experience (IPL's replay), as before a round
                scalars.update({f"reward/{k}": v for k, v in self.learner.update(store.dataset()[0]).items()})
            evaluate = step % cfg.eval_interval == 0 or step == cfg.steps
            if scalars or evaluate or step % cfg.log_interval == 0:
                if returns:
                    scalars.update({"train/true_episode_return": float(np.mean(list(returns)[-10:])),
                                    "train/success_rate": float(np.mean(list(successes)[-10:]))})
                now = time.perf_counter()
                scalars["time/env_steps_per_second"] = (step - tick_step) / max(now - tick, 1e-9)
                tick, tick_step = now, step
                self._log(step, scalars, evaluate=evaluate and loop.trained)
            if round_done or evaluate:
                self.save_checkpoint(
                    step, log, loop=loop.state_dict(), trained_labels=store.counts().labeled,
                    episode_returns=list(returns), episode_successes=list(successes),
                )
        store.close()
        return cfg.steps
