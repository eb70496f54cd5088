"""Every query strategy inside the real loop, for a few rounds with a tiny budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pbrl import Runner
from pbrl.experiments.config import parse_config
from pbrl.feedback import FeedbackConfig, FeedbackLoop
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.query import InvalidSelectionError, QueryConfig, QueryStrategy, available, registry
from pbrl.store import PreferenceStore
from pbrl.teachers.synthetic import SyntheticTeacher
from tests.helpers import filled_log

BUILTINS = ["uniform", "disagreement", "entropy", "bald", "kcenter", "kcenter-disagreement", "kcenter-entropy", "qpa"]

TINY = [
    "env=gym:HalfCheetah-v5", "max_episode_steps=100", "steps=600", "eval_interval=100000", "eval_episodes=0",
    "progress=false", "agent.learning_starts=500", "agent.reset_update=5", "agent.batch_size=32", "agent.hidden_sizes=[16,16]",
    "feedback.first_query_step=300", "feedback.interval=100", "feedback.per_round=4", "feedback.budget=12",
    "feedback.segment_length=10", "feedback.log_capacity=1000", "learner.hidden_sizes=[16,16]", "learner.max_epochs=3",
]


def tiny_run(tmp_path, strategy: str, *extra: str) -> Runner:
    config = parse_config({}, [*TINY, f"run_dir={tmp_path}", f"query.strategy={strategy}", *extra])
    trainer = Runner(config, tmp_path)
    trainer.train()
    return trainer


def check_labeled_run(tmp_path, rounds: int = 3, per_round: int = 4) -> list[dict]:
    store = PreferenceStore(tmp_path / "preferences.sqlite")
    counts = store.counts()
    assert counts.asked == counts.labeled == rounds * per_round  # the oracle answers every query
    data, _ = store.dataset()
    assert len(data) == rounds * per_round and set(np.unique(data.labels)) <= {0.0, 0.5, 1.0}
    assert store.last_round() == rounds - 1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    selection = [r["query/selection_seconds"] for r in rows if "query/selection_seconds" in r]
    assert len(selection) == rounds and all(0 <= s < 5 for s in selection)
    assert any("reward/heldout_accuracy" in r for r in rows)  # rounds after the first are scored before training
    store.close()
    return rows


@pytest.mark.parametrize("strategy", BUILTINS)
def test_every_builtin_strategy_runs_in_the_training_loop(tmp_path, strategy):
    trainer = tiny_run(tmp_path, strategy)
    check_labeled_run(tmp_path)
    assert trainer.loop.strategy is not None and trainer.config.query.strategy == strategy


def test_qpa_run_samples_sac_batches_with_hybrid_replay_until_the_budget_is_spent(tmp_path):
    """QPA (train_QPA.py L258–262): hybrid replay from the query window while feedback is left, then uniform."""
    trainer = tiny_run(tmp_path / "open", "qpa", "feedback.budget=100", "query.qpa_episodes=3")
    buffer = trainer.model.replay_buffer
    assert buffer.recent_fraction == 0.5 and buffer.recent_window == 3 * 100  # qpa_episodes × episode length
    trainer = tiny_run(tmp_path / "spent", "qpa")  # budget 12 spent in three rounds
    assert trainer.model.replay_buffer.recent_fraction == 0.0


# ----------------------------------------------------------------------------- the loop, without an agent
def loop_for(strategy: str, store: PreferenceStore, steps: int = 3000, **query) -> FeedbackLoop:
    log = filled_log(steps=steps, episode_length=100)
    learner = BTEnsemble(3, 2, BTEnsembleConfig(hidden_sizes=(16, 16), max_epochs=3), seed=0)
    feedback = FeedbackConfig(budget=12, per_round=4, first_query_step=0, interval=1, segment_length=20)
    return FeedbackLoop(feedback, QueryConfig(strategy=strategy, **query), learner, SyntheticTeacher(), store, log,
                        episode_length=100, rng=np.random.default_rng(0))


def test_qpa_queries_only_segments_of_the_last_n_episodes_in_every_round():
    store = PreferenceStore(":memory:")
    loop = loop_for("qpa", store, steps=3000, qpa_episodes=2)  # episodes 0..29 of 100 steps; N = 2
    for round_index in range(3):
        loop.run_round(step=3000, recent_returns=[1.0])
    ids = np.array([row[2:4] for row in store.label_rows()]).ravel()
    episodes = store.segment_batch(ids).provenance.episode
    assert len(episodes) == 24 and set(episodes) <= {28, 29}
    # the same loop with disagreement draws from the whole log
    other = PreferenceStore(":memory:")
    loop = loop_for("disagreement", other, steps=3000)
    for round_index in range(3):
        loop.run_round(step=3000, recent_returns=[1.0])
    ids = np.array([row[2:4] for row in other.label_rows()]).ravel()
    assert len(set(other.segment_batch(ids).provenance.episode)) > 5


def test_strategies_see_the_pairs_labeled_so_far(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    seen = []

    class Spy(QueryStrategy):
        def select(self, candidates, learner, n, rng, context=None):
            seen.append((context.round_index, None if context.labeled is None else len(context.labeled), context.step))
            return np.arange(n)

    registry.register("spy", Spy)
    loop = loop_for("spy", PreferenceStore(":memory:"))
    loop.query = QueryConfig(strategy="spy", first_round_uniform=False)
    for step in (100, 200, 300):
        loop.run_round(step=step, recent_returns=[1.0])
    assert seen == [(0, None, 100), (1, 4, 200), (2, 8, 300)]


def test_a_strategy_returning_bad_indices_stops_the_round_with_its_name(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class OutOfRange(QueryStrategy):
        def select(self, candidates, learner, n, rng):
            return np.arange(n) + len(candidates)

    registry.register("out-of-range", OutOfRange)
    store = PreferenceStore(":memory:")
    loop = loop_for("out-of-range", store)
    loop.query = QueryConfig(strategy="out-of-range", first_round_uniform=False)
    with pytest.raises(InvalidSelectionError, match=r"query strategy 'out-of-range' returned indices outside \[0, 40\)"):
        loop.run_round(step=100, recent_returns=[1.0])
    assert store.counts().asked == 0  # nothing was asked


def test_every_registered_builtin_is_covered_here():
    assert set(BUILTINS) <= set(available())
