"""The run, inside ``model.learn``, as small stable-baselines3 callbacks composed in a ``CallbackList``.

* :class:`FeedbackCallback` — feedback rounds. Off-policy (SAC) in ``on_step``, which SB3
  calls before it stores the step's transition (so the freshly stored row is relabeled on
  the following step); on-policy (PPO) in ``on_rollout_start``, so a rollout is never
  collected under two reward functions. After every completed round its child callback
  fires (SB3's ``EventCallback`` pattern): the :class:`CheckpointCallback`.
* :class:`PeriodicCheckpoint` — a checkpoint every ``interval`` env steps besides the rounds' (where
  the feedback callback checkpoints: ``on_step`` off-policy, ``on_rollout_start`` on-policy).
* :class:`EvaluationCallback` — deterministic evaluation episodes on a schedule and at the end.
* :class:`LoggingCallback` — training scalars (true episode returns, labels, env steps/s).
* :class:`ProgressCallback` — a progress bar with the latest return, labels and accuracy.

Every callback hands its scalars to one ``record(step, scalars)`` function (the runner's:
SB3's logger, ``metrics.jsonl`` and the run's latest values).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EventCallback
from tqdm.auto import tqdm

from pbrl.agents.base import FeedbackHooks
from pbrl.agents.evaluation import Evaluator
from pbrl.agents.preference_env import PreferenceVecEnv
from pbrl.feedback import FeedbackLoop
from pbrl.store import PreferenceStore

Record = Callable[[int, dict[str, float]], None]
"""Where scalars go: ``record(step, {"namespace/key": value})``."""


class FeedbackCallback(EventCallback):
    """Runs the loop's feedback rounds on its schedule; ``callback_after_round`` fires after each completed one."""

    def __init__(self, loop: FeedbackLoop, pref_env: PreferenceVecEnv, hooks: FeedbackHooks, record: Record,
                 on_policy: bool, callback_after_round: BaseCallback | None = None) -> None:
        super().__init__(callback_after_round)
        self.loop, self.pref_env, self.hooks, self.record, self.on_policy = loop, pref_env, hooks, record, on_policy
        self._stale_row = False

    def _on_rollout_start(self) -> None:
        if self.on_policy:
            self._maybe_round()

    def _on_step(self) -> bool:
        if self._stale_row:
            self.hooks.fix_latest(self.loop.learner)
            self._stale_row = False
        if not self.on_policy:
            self._maybe_round()
        return True

    def _maybe_round(self) -> None:
        step = self.num_timesteps
        if not self.loop.due(step):
            return
        result = self.loop.run_round(step, list(self.pref_env.episode_returns))
        if result.postponed:
            self.record(step, result.metrics)
            return
        started = time.perf_counter()
        self.hooks.after_round(self.loop.learner)
        metrics = {**result.metrics, "time/agent_after_round_seconds": time.perf_counter() - started}
        self._stale_row = not self.on_policy
        self.record(step, metrics)
        self._on_event()


class CheckpointCallback(BaseCallback):
    """Saves the run (``save(num_timesteps)``) each time it is called — as the child of :class:`FeedbackCallback`: after every round."""

    def __init__(self, save: Callable[[int], None]) -> None:
        super().__init__()
        self.save = save

    def _on_step(self) -> bool:
        self.save(self.num_timesteps)
        return True


class PeriodicCheckpoint(BaseCallback):
    """Saves the run every ``interval`` env steps, at the point of the step where rounds checkpoint (after
    :class:`FeedbackCallback` in the list): ``on_step`` off-policy, ``on_rollout_start`` on-policy, where the
    rollout buffer is empty. A step whose checkpoint is already written (``last_saved()``: a feedback round's,
    at this same point of the step) is not written twice."""

    def __init__(self, save: Callable[[int], None], interval: int, on_policy: bool,
                 last_saved: Callable[[], int | None] = lambda: None) -> None:
        super().__init__()
        self.save, self.interval, self.on_policy, self.last_saved = save, interval, on_policy, last_saved

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.interval + 1) * self.interval

    def _maybe_save(self) -> None:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.interval + 1) * self.interval
            if self.last_saved() != self.num_timesteps:
                self.save(self.num_timesteps)

    def _on_rollout_start(self) -> None:
        if self.on_policy:
            self._maybe_save()

    def _on_step(self) -> bool:
        if not self.on_policy:
            self._maybe_save()
        return True


class EvaluationCallback(BaseCallback):
    """Deterministic evaluation every ``interval`` env steps and once more at the end (unless just done)."""

    def __init__(self, evaluator: Evaluator, interval: int, record: Record) -> None:
        super().__init__()
        self.evaluator, self.interval, self.record = evaluator, interval, record
        self._last_step = -1

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.interval + 1) * self.interval

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.interval
            self._evaluate()
        return True

    def _on_training_end(self) -> None:
        if self._last_step != self.num_timesteps:
            self._evaluate()

    def _evaluate(self) -> None:
        self._last_step = self.num_timesteps
        self.record(self.num_timesteps, self.evaluator.evaluate(self.model))


class LoggingCallback(BaseCallback):
    """Training scalars every ``interval`` env steps and at the end: true and learned episode returns,
    success rate, queries asked and labeled, env steps per second."""

    def __init__(self, pref_env: PreferenceVecEnv, store: PreferenceStore | None, interval: int, record: Record) -> None:
        super().__init__()
        self.pref_env, self.store, self.interval, self.record = pref_env, store, interval, record
        self._clock = (0, 0.0)
        self._logged = -1

    def _on_training_start(self) -> None:
        self._clock = (self.num_timesteps, time.perf_counter())
        self._next = (self.num_timesteps // self.interval + 1) * self.interval

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.interval
            self._record()
        return True

    def _on_training_end(self) -> None:
        if self._logged != self.num_timesteps:  # not twice at a last step on the schedule
            self._record()

    def _record(self) -> None:
        self._logged = self.num_timesteps
        self.record(self.num_timesteps, self._scalars())

    def _scalars(self) -> dict[str, float]:
        env = self.pref_env
        steps, then = self._clock
        now, scalars = time.perf_counter(), {}
        if self.num_timesteps > steps:
            scalars["time/env_steps_per_second"] = (self.num_timesteps - steps) / max(now - then, 1e-9)
            self._clock = (self.num_timesteps, now)
        if env.episode_returns:
            scalars["train/true_episode_return"] = float(np.mean(list(env.episode_returns)[-10:]))
            scalars["train/success_rate"] = float(np.mean(list(env.episode_successes)[-10:]))
        if env.episode_learned_returns:  # empty after a resume until an episode ends: the old model's returns are not restored
            scalars["train/learned_episode_return"] = float(np.mean(list(env.episode_learned_returns)[-10:]))
        if self.store is not None:
            counts = self.store.counts()
            scalars["teacher/asked"], scalars["teacher/labeled"] = float(counts.asked), float(counts.labeled)
        return scalars


class ProgressCallback(BaseCallback):
    """A tqdm bar to ``total`` env steps showing the latest return, labels, held-out accuracy and reward correlation (from ``latest``)."""

    def __init__(self, total: int, latest: dict[str, float]) -> None:
        super().__init__()
        self.total, self.latest = total, latest
        self._bar: tqdm | None = None

    def _on_training_start(self) -> None:
        interactive = sys.stderr.isatty()
        self._bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", dynamic_ncols=True, desc="pbrl",
                         mininterval=0.2 if interactive else 15.0)

    def _on_step(self) -> bool:
        last = self.latest
        shown = {
            "ret": last.get("eval/true_return", last.get("train/true_episode_return")),
            "labels": last.get("teacher/labeled"),
            "acc": last.get("reward/heldout_accuracy"),
            "corr": last.get("reward/true_correlation"),
        }
        self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if v is not None}, refresh=False)
        self._bar.update(self.num_timesteps - self._bar.n)
        return True

    def _on_training_end(self) -> None:
        self._bar.close()
