"""One feedback round, and the schedule that says when rounds happen.

A round (B-Pref's ``learn_reward``): draw a pool of candidate pairs from recent
transitions, let the query strategy pick ``n``, persist the chosen segments and queries,
have the teacher answer them and commit the labels (a :class:`~pbrl.teachers.base.Teacher`
labels at once and the loop stores its labels; a :class:`~pbrl.teachers.base.QueuedTeacher`'s
people answer on the labeling page, whose server stores each answer as it arrives), measure the learner's
accuracy on those new labels *before* it trains on them (a genuinely held-out accuracy),
then update the learner on every label so far.

The schedule (B-Pref's ``num_seed_steps + num_unsup_steps``, ``num_interact``,
``max_feedback``): the first round at ``first_query_step``, then one every ``interval``
env steps until ``budget`` queries have been *asked* — skipped queries count against the
budget, as in B-Pref; how many got a label is logged separately.

Rounds are numbered, and a round whose queries are already in the store (a run killed during it,
before or after its checkpoint) is *replayed* when it comes due, not asked again: its pending queries
are answered, its answered ones read back, and the learner trained — so a resume from any kill point
asks each query once, charges the budget once and adds no round.

This module knows nothing of stable-baselines3; agents drive it through :meth:`due` and
:meth:`run_round`, which returns a :class:`RoundResult`.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.metrics import pearson, preference_accuracy
from pbrl.query import QueryConfig, QueryContext, make_strategy, select_queries
from pbrl.segments import CandidatePairs, SegmentBatch
from pbrl.store import PreferenceStore
from pbrl.teachers.base import QueuedTeacher, Teacher
from pbrl.transitions import TransitionLog


@dataclass(frozen=True)
class FeedbackConfig:
    """When to ask, how much, and about what."""

    budget: int = 1000
    """Total queries to ask over the run (skips count; B-Pref max_feedback)."""
    per_round: int = 100
    """Queries per round (B-Pref reward_batch)."""
    first_query_step: int = 10_000
    """Env step of the first round (B-Pref num_seed_steps + num_unsup_steps)."""
    interval: int = 5_000
    """Env steps between rounds (B-Pref num_interact)."""
    segment_length: int = 50
    """Steps per segment."""
    absorbing: bool = False
    """Segments may run past a true termination into the absorbing state, where reward and A* are 0 (Knox et al. 2024's fix for Â used as a reward; reward-based learners only)."""
    log_capacity: int = 100_000
    """Recent steps per env kept for sampling segments (B-Pref keeps the last 100 episodes)."""
    correlation_samples: int = 10_000
    """Fresh transitions used for the learned-vs-true reward correlation."""
    return_window: int = 10
    """Recent episodes whose mean return calibrates the teacher's skip/equal thresholds."""

    def __post_init__(self) -> None:
        for name in ("budget", "first_query_step"):
            if getattr(self, name) < 0:
                raise ValueError(f"feedback.{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("per_round", "interval", "segment_length", "log_capacity", "return_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"feedback.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.segment_length > self.log_capacity:
            raise ValueError("feedback.segment_length cannot exceed feedback.log_capacity")


@dataclass(frozen=True)
class RoundResult:
    """What one call of :meth:`FeedbackLoop.run_round` did."""

    metrics: dict[str, float]
    """Namespaced scalars for logging (``teacher/``, ``query/``, ``reward/``, ``time/``)."""
    postponed: bool
    """True when no whole segment existed yet: nothing was asked or learned, the round retries at ``next_round_step``."""
    round_index: int
    """Index of the round that ran (the store's ``round`` column); the index it will retry under when postponed."""
    labels: np.ndarray
    """This round's answers in query order (1 = left, 0 = right, ½ = equal, NaN = skipped); empty when postponed."""


class FeedbackLoop:
    """Runs feedback rounds against a transition log, a teacher, a store and a learner."""

    def __init__(
        self,
        config: FeedbackConfig,
        query: QueryConfig,
        learner: PreferenceLearner,
        teacher: Teacher | QueuedTeacher,
        store: PreferenceStore,
        log: TransitionLog,
        episode_length: int,
        rng: np.random.Generator,
    ) -> None:
        self.config, self.query = config, query
        self.learner, self.teacher, self.store, self.log = learner, teacher, store, log
        self.episode_length = episode_length
        self.rng = rng
        self.strategy = make_strategy(query.strategy)
        self.round_index = 0  # rounds already in the store are replayed when due (see the module docstring)
        self.stored_rounds = store.last_round() + 1  # rounds asked before this process (only this loop asks more)
        self.next_round_step = config.first_query_step
        self.trained = False

    # ----------------------------------------------------------------- schedule
    @property
    def asked(self) -> int:
        return self.store.counts().asked

    def due(self, step: int) -> bool:
        """Whether a round runs at ``step``: its time has come and budget is left, or the round was
        already asked before a kill (then it is replayed, whatever the budget)."""
        return step >= self.next_round_step and (self.asked < self.config.budget or self._stored_round())

    def _stored_round(self) -> bool:
        """Whether the round due next was asked before a kill (read once: no query per env step)."""
        return self.round_index < self.stored_rounds

    def _mean_segment_return(self, recent_returns: list[float]) -> float:
        if not recent_returns:
            return 0.0
        return float(np.mean(recent_returns[-self.config.return_window :])) * self.config.segment_length / self.episode_length

    # ----------------------------------------------------------------- the round
    def run_round(self, step: int, recent_returns: list[float]) -> RoundResult:
        """Ask, label, persist and learn (or postpone when no whole segment exists yet)."""
        cfg, started = self.config, time.perf_counter()
        n = min(cfg.per_round, cfg.budget - self.asked)
        if isinstance(self.teacher, Teacher):
            self.teacher.calibrate(self._mean_segment_return(recent_returns), self.round_index)
        if self._stored_round():
            return self._finish(step, started, *self._replay(), select_time=0.0)

        first = self.round_index == 0 and self.query.first_round_uniform
        strategy, name = (make_strategy("uniform"), "uniform") if first else (self.strategy, self.query.strategy)
        pool = n * self.query.pool_multiplier if strategy.wants_pool else n
        window = self.strategy.candidate_window(self.query, self.episode_length)  # the configured strategy's window, also in round 0
        if len(self.log.valid_starts(cfg.segment_length, window, cfg.absorbing)[0]) == 0:
            # Early episodes can all end before segment_length (e.g. a falling Hopper): try again soon.
            self.next_round_step = step + max(1, cfg.interval // 10)
            warnings.warn(
                f"feedback round postponed at step {step}: no whole {cfg.segment_length}-step segment in the recent "
                f"episodes yet; retrying at step {self.next_round_step} (lower feedback.segment_length if this persists)",
                stacklevel=2,
            )
            return RoundResult({"teacher/postponed_rounds": 1.0}, True, self.round_index, np.empty(0))
        left = self.log.sample_segments(pool, cfg.segment_length, self.rng, window, cfg.absorbing)
        right = self.log.sample_segments(pool, cfg.segment_length, self.rng, window, cfg.absorbing)
        candidates = CandidatePairs(left.segments, right.segments, np.minimum(left.provenance.env_step, right.provenance.env_step))
        context = QueryContext(
            self.query, round_index=self.round_index, step=step, episode_length=self.episode_length,
            labeled=lambda: self.store.dataset()[0] if self.store.counts().labeled else None,
        )
        select_started = time.perf_counter()
        chosen = select_queries(name, strategy, candidates, self.learner, n, self.rng, context)
        select_time = time.perf_counter() - select_started
        left, right = left[chosen], right[chosen]

        left = left.with_ids(self.store.add_segments(left))
        right = right.with_ids(self.store.add_segments(right))
        query_ids = self.store.add_queries(left.ids, right.ids, self.round_index, self.teacher.name)
        labels = self._answers(query_ids, left, right)
        return self._finish(step, started, left, right, labels, select_time)

    def _replay(self) -> tuple[SegmentBatch, SegmentBatch, np.ndarray]:
        """The stored queries of this round (asked before a kill): pending ones answered now, answered ones
        read back. Returns both sides and the round's labels in query order."""
        rows = self.store.round_queries(self.round_index)
        query_ids, left_ids, right_ids = (np.asarray(c) for c in zip(*rows))
        left, right = self.store.segment_batch(left_ids), self.store.segment_batch(right_ids)
        pending = np.isin(query_ids, [q for q, _, _ in self.store.pending_queries()])
        print(f"pbrl: round {self.round_index} was asked before the run stopped: {int(pending.sum())} of its "
              f"{len(query_ids)} queries answered now, the rest read from the store (none asked again)",
              file=sys.stderr, flush=True)
        if isinstance(self.teacher, QueuedTeacher):
            return left, right, self.teacher.ask(query_ids, self.store)  # queued once; people's answers so far count
        if pending.any():
            at = np.flatnonzero(pending)
            self._answers(query_ids[at], left[at], right[at])
        return left, right, self.store.query_labels(query_ids)

    def _finish(self, step: int, started: float, left: SegmentBatch, right: SegmentBatch, labels: np.ndarray,
                select_time: float) -> RoundResult:
        """Held-out accuracy on the round's labels, learning on every label so far, the schedule advanced."""
        cfg = self.config
        metrics: dict[str, float] = {
            "teacher/asked": float(self.asked),
            "teacher/labeled": float(self.store.counts().labeled),
            "teacher/skipped_this_round": float(np.isnan(labels).sum()),
            "teacher/equal_this_round": float((labels == 0.5).sum()),
            "query/selection_seconds": select_time,
        }
        answered = ~np.isnan(labels)
        if self.trained and answered.any():
            p_left = self.learner.preference_probability(left.segments[answered], right.segments[answered])
            metrics[f"{self.namespace}/heldout_accuracy"] = preference_accuracy(p_left, labels[answered])
        metrics.update(self.learn())
        metrics["time/round_seconds"] = time.perf_counter() - started
        result = RoundResult(metrics, False, self.round_index, labels)
        self.round_index += 1
        self.next_round_step = step + cfg.interval
        return result

    @property
    def namespace(self) -> str:
        """Where the learner's scalars are logged: ``reward/`` for reward learners, ``policy/`` for
        reward-free ones (CPL, IPL, P-IQL, BC: their losses are a policy's, not a reward's)."""
        return "reward" if isinstance(self.learner, RewardLearner) else "policy"

    def learn(self) -> dict[str, float]:
        """Let the learner observe the transition log, then update it on every non-skipped label in the store."""
        if self.store.counts().labeled == 0:
            return {}
        data, _ = self.store.dataset()
        started = time.perf_counter()
        scalars = self.learner.observe(self.log.view())  # unlabeled experience first (world models, encoders); no true reward
        scalars.update(self.learner.update(data))
        result = {f"{self.namespace}/{k}": v for k, v in scalars.items()}
        result["time/learner_update_seconds"] = time.perf_counter() - started
        self.trained = True
        result.update(self.reward_quality())
        return result

    def reward_quality(self, pairs: int = 500) -> dict[str, float]:
        """Evaluation only (never trained on, not counted in the budget):

        * ``reward/true_correlation`` — Pearson correlation of learned and true per-step
          reward on the freshest transitions;
        * ``reward/fresh_pair_accuracy`` — how often the learner ranks uniformly drawn
          recent segment pairs as their true returns do (the query strategy's picks are
          the hard pairs by design, so held-out accuracy on them understates quality).
        """
        if not isinstance(self.learner, RewardLearner) or self.log.size == 0:
            return {}
        segments, true_rewards = self.log.recent(self.config.correlation_samples)
        learned = self.learner.reward(segments.obs[:, 0], segments.actions[:, 0], segments.next_obs[:, 0])
        metrics = {"reward/true_correlation": pearson(learned, true_rewards)}
        rng = np.random.default_rng(self.round_index)  # separate from the run's generator: metrics never shift the run
        cfg = self.config
        left = self.log.sample_segments(pairs, cfg.segment_length, rng, self.query.window, cfg.absorbing)
        right = self.log.sample_segments(pairs, cfg.segment_length, rng, self.query.window, cfg.absorbing)
        truth = np.where(left.truth.returns > right.truth.returns, 1.0, np.where(left.truth.returns < right.truth.returns, 0.0, 0.5))
        p_left = self.learner.preference_probability(left.segments, right.segments)
        metrics["reward/fresh_pair_accuracy"] = preference_accuracy(p_left, truth)
        return metrics

    def _answers(self, query_ids: np.ndarray, left: SegmentBatch, right: SegmentBatch) -> np.ndarray:
        """The teacher's labels of persisted queries, committed to the store (see the module docstring)."""
        if isinstance(self.teacher, QueuedTeacher):
            return self.teacher.ask(query_ids, self.store)
        labels = self.teacher.label(left, right, self.rng)
        self.store.add_labels(query_ids, labels, self.teacher.name)
        return labels

    # ----------------------------------------------------------------- resume
    def resume(self, state: dict[str, Any], trained_labels: int) -> dict[str, float]:
        """Continue from a checkpoint: restore the schedule (a round the kill interrupted is replayed when
        due, see the module docstring) and update the learner if rounds before it hold labels it has not
        trained on (``trained_labels`` = the store's labeled count when the checkpoint was written; e.g.
        people's late answers). Returns that update's scalars ({} when there was nothing new)."""
        self.load_state_dict(state)
        if self.store.counts(before_round=self.round_index).labeled > trained_labels:
            return self.learn()
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "round_index": self.round_index,
            "next_round_step": self.next_round_step,
            "trained": self.trained,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round_index = int(state["round_index"])
        self.next_round_step = int(state["next_round_step"])
        self.trained = bool(state["trained"])
        self.rng.bit_generator.state = state["rng"]
