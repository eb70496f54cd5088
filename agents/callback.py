"""The feedback loop as a stable-baselines3 callback.

Off-policy (SAC): rounds run in ``on_step``, which SB3 calls before it stores the step's
transition — so the freshly stored row is relabeled on the following step. On-policy
(PPO): rounds run in ``on_rollout_start``, so a rollout is never collected under two
reward functions. Also: deterministic evaluation on a schedule, a progress bar, logging
to SB3's logger (tensorboard + CSV) and ``metrics.jsonl``, and a checkpoint after every
round.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from pbrl.agents.evaluation import Evaluator
from pbrl.agents.preference_env import PreferenceVecEnv
from pbrl.feedback import FeedbackLoop
from pbrl.learners.base import PreferenceLearner
from pbrl.run_log import MetricsLog


class FeedbackHooks(Protocol):
    def after_round(self, learner: PreferenceLearner) -> None: ...
    def fix_latest(self, learner: PreferenceLearner) -> None: ...


class PreferenceCallback(BaseCallback):
    """Drives feedback rounds, evaluation, logging and checkpoints from inside ``model.learn``."""

    def __init__(
        self,
        loop: FeedbackLoop | None,
        pref_env: PreferenceVecEnv,
        hooks: FeedbackHooks,
        metrics: MetricsLog,
        total_steps: int,
        on_policy: bool,
        evaluator: Evaluator | None = None,
        eval_interval: int = 10_000,
        log_interval: int = 1_000,
        checkpoint: Callable[[], None] | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        self.loop, self.pref_env, self.hooks, self.metrics = loop, pref_env, hooks, metrics
        self.total_steps, self.on_policy = total_steps, on_policy
        self.evaluator, self.eval_interval, self.log_interval = evaluator, eval_interval, log_interval
        self.checkpoint = checkpoint
        self.progress = progress
        self.last: dict[str, float] = {}
        self._bar: tqdm | None = None
        self._stale_row = False
        self._clock = (0, 0.0)
        self._last_eval_step = -1

    # --------------------------------------------------------------- SB3 hooks
    def _on_training_start(self) -> None:
        self._clock = (self.num_timesteps, time.perf_counter())
        self._next_eval = (self.num_timesteps // self.eval_interval + 1) * self.eval_interval
        self._next_log = (self.num_timesteps // self.log_interval + 1) * self.log_interval
        if self.progress:
            interactive = sys.stderr.isatty()
            self._bar = tqdm(
                total=self.total_steps, initial=self.num_timesteps, unit="step", dynamic_ncols=True, desc="pbrl",
                mininterval=0.2 if interactive else 15.0,
            )

    def _on_rollout_start(self) -> None:
        if self.on_policy:
            self._maybe_feedback()

    def _on_step(self) -> bool:
        if self._stale_row and self.loop is not None:
            self.hooks.fix_latest(self.loop.learner)
            self._stale_row = False
        if not self.on_policy:
            self._maybe_feedback()
        step = self.num_timesteps
        if self.evaluator is not None and step >= self._next_eval:
            self._next_eval += self.eval_interval
            self._evaluate()
        if step >= self._next_log:
            self._next_log += self.log_interval
            self._record(self._training_scalars())
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
        return True

    def _on_training_end(self) -> None:
        if self.evaluator is not None and self._last_eval_step != self.num_timesteps:
            self._evaluate()
        self._record(self._training_scalars())
        if self._bar is not None:
            self._bar.close()

    # --------------------------------------------------------------- the work
    def _evaluate(self) -> None:
        self._last_eval_step = self.num_timesteps
        self._record(self.evaluator.evaluate(self.model))

    def _maybe_feedback(self) -> None:
        step = self.num_timesteps
        if self.loop is None or not self.loop.due(step):
            return
        result = self.loop.run_round(step, list(self.pref_env.episode_returns))
        metrics = result.metrics
        if result.postponed:
            self._record(metrics)
            return
        started = time.perf_counter()
        self.hooks.after_round(self.loop.learner)
        metrics["time/agent_after_round_seconds"] = time.perf_counter() - started
        self._stale_row = not self.on_policy
        self._record(metrics)
        if self.checkpoint is not None:
            self.checkpoint()

    def _training_scalars(self) -> dict[str, float]:
        env = self.pref_env
        steps, then = self._clock
        now, scalars = time.perf_counter(), {}
        if self.num_timesteps > steps:
            scalars["time/env_steps_per_second"] = (self.num_timesteps - steps) / max(now - then, 1e-9)
            self._clock = (self.num_timesteps, now)
        if env.episode_returns:
            scalars["train/true_episode_return"] = float(np.mean(list(env.episode_returns)[-10:]))
            scalars["train/learned_episode_return"] = float(np.mean(list(env.episode_learned_returns)[-10:]))
            scalars["train/success_rate"] = float(np.mean(list(env.episode_successes)[-10:]))
        if self.loop is not None:
            counts = self.loop.store.counts()
            scalars["teacher/asked"], scalars["teacher/labeled"] = float(counts.asked), float(counts.labeled)
        return scalars

    def _record(self, scalars: dict[str, float]) -> None:
        step = self.num_timesteps
        self.last.update(scalars)
        for key, value in scalars.items():
            self.logger.record(key, value)
        self.logger.dump(step)
        self.metrics.write(step, scalars)
        if self._bar is not None:
            shown = {
                "ret": self.last.get("eval/true_return", self.last.get("train/true_episode_return")),
                "labels": self.last.get("teacher/labeled"),
                "acc": self.last.get("reward/heldout_accuracy"),
                "corr": self.last.get("reward/true_correlation"),
            }
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if v is not None}, refresh=False)
