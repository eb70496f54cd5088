"""Pairs of a collected dataset put in front of people: the plan, and the store the label server serves.

``pbrl label-server --dataset DATA.h5 --out LABELS_DIR`` labels an offline dataset
(:mod:`pbrl.datasets.offline`, what ``pbrl collect`` writes) with the same server, page,
tokens, k-per-pair queue, exactly-once submissions and video cache as a training run: the
chosen pairs' segments — with their simulator states, so the render workers draw them —
and the pairs themselves are written into ``LABELS_DIR/preferences.sqlite`` as segments
and queries, and queued for ``annotators_per_pair`` people each.

**The plan.** ``pairs`` pairs, of which ``round(known_rate · pairs)`` are known-answer
pairs (:mod:`pbrl.labeling.quality`: random pairs whose true-return order is clear), the
rest drawn from a pool of ``pool_multiplier × n`` random pairs of distinct segments by a
query strategy (``uniform``, or any registered strategy given a reward model, e.g.
``disagreement`` with a Bradley–Terry ensemble — :func:`fit_reward_model` fits one on the
dataset's own labels). The two kinds are shuffled together, so the queue order says
nothing either.

**Resume.** The plan (dataset segment ids of every pair and which are known-answer pairs),
the dataset's SHA-256 and the settings are written to the store first, in one transaction;
segments and queries are then added from the plan in steps that each look up what an
earlier, killed attempt already added. Opening the same ``LABELS_DIR`` again therefore
finishes an interrupted setup, serves the same pairs, keeps every label, and refuses
another dataset or other settings. Store segments keep the dataset's episode index and
start step, which map them back to dataset segments (:mod:`pbrl.datasets.human_labels`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from pbrl.database import queries_table, segments_table
from pbrl.datasets.offline import OfflinePreferenceData
from pbrl.labeling.assignments import LabelQueue
from pbrl.labeling.quality import KNOWN_ANSWER, clear_pairs
from pbrl.learners.base import PreferenceLearner
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
from pbrl.query import QueryConfig, QueryContext, available, make_strategy, select_queries
from pbrl.segments import CandidatePairs
from pbrl.store import PreferenceStore

META_KEY = "offline_labeling"
"""Store meta key of the dataset, its SHA-256, the settings and the plan."""
HUMAN = "human"
"""``queries.teacher`` of a pair served for its own sake (known-answer pairs: :data:`~pbrl.labeling.quality.KNOWN_ANSWER`)."""


@dataclass(frozen=True)
class OfflineLabelingConfig:
    """Which pairs of a dataset people label, and how many answers each wants."""

    pairs: int = 200
    """Pairs served, known-answer pairs included."""
    annotators_per_pair: int = 3
    """k: different annotators answering each pair (3 lets a majority or Dawid–Skene settle disagreements)."""
    known_rate: float = 0.1
    """Fraction of the pairs that are known-answer pairs (quality control)."""
    known_margin: float = 1.0
    """A known-answer pair's true returns differ by at least this many standard deviations of segment returns."""
    strategy: str = "uniform"
    """Query strategy choosing the other pairs (anything but uniform needs a reward model)."""
    pool_multiplier: int = 10
    """A strategy other than uniform ranks pool_multiplier × n random candidate pairs."""
    seed: int = 0
    """Seed of the plan."""

    def __post_init__(self) -> None:
        checks = (
            ("pairs", "--pairs", self.pairs >= 1, "≥ 1"),
            ("annotators_per_pair", "--annotators-per-pair", self.annotators_per_pair >= 1, "≥ 1"),
            ("known_rate", "--known-rate", 0.0 <= self.known_rate < 1.0, "in [0, 1)"),
            ("known_margin", "--known-margin", self.known_margin > 0.0, "> 0"),
            ("pool_multiplier", "--pool-multiplier", self.pool_multiplier >= 1, "≥ 1"),
        )
        for name, flag, ok, domain in checks:
            if not ok:
                raise ValueError(f"{name} ({flag}) must be {domain}, got {getattr(self, name)!r}")
        if self.strategy not in available():
            raise ValueError(f"strategy (--strategy) {self.strategy!r} is unknown; choose one of {', '.join(available())}")


@dataclass(frozen=True)
class Plan:
    """Pairs of dataset segment ids, in queue order; ``known[i]``: pair ``i`` is a known-answer pair."""

    left: np.ndarray
    right: np.ndarray
    known: np.ndarray


def _random_pairs(segments: int, count: int, rng: np.random.Generator, taken: set[tuple[int, int]]) -> np.ndarray:
    """Up to ``count`` distinct unordered pairs of different segments not in ``taken``, in random orientation."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for _ in range(20):
        if len(found) >= count:
            break
        a, b = rng.integers(0, segments, size=(2, 2 * count))
        for x, y in zip(a.tolist(), b.tolist()):
            key = (min(x, y), max(x, y))
            if x != y and key not in taken and key not in found and len(found) < count:
                found[key] = (x, y)
    return np.array(list(found.values()), dtype=np.int64).reshape(-1, 2)


def plan_pairs(data: OfflinePreferenceData, config: OfflineLabelingConfig,
               learner: PreferenceLearner | None = None) -> Plan:
    """The pairs to serve (see the module docstring); ``learner`` is the reward model a strategy other
    than ``uniform`` ranks candidates with."""
    rng = np.random.default_rng(config.seed)
    segments = len(data.segment_episode)
    n_known = int(round(config.known_rate * config.pairs))
    n_chosen = config.pairs - n_known
    pool_size = n_chosen if config.strategy == "uniform" else n_chosen * config.pool_multiplier
    pool = _random_pairs(segments, pool_size, rng, set())
    if len(pool) < n_chosen:
        raise ValueError(f"pairs (--pairs): the dataset's {segments} segments make only {len(pool)} distinct pairs, "
                         f"{n_chosen} asked")
    if config.strategy != "uniform":
        if learner is None:
            raise ValueError(f"strategy (--strategy) {config.strategy!r} ranks pairs with a reward model; pass one, "
                             "or use --strategy uniform")
        candidates = lambda ids: data.segment_batch(ids, sim_states=False).segments  # noqa: E731
        pairs = CandidatePairs(candidates(pool[:, 0]), candidates(pool[:, 1]), np.zeros(len(pool)))
        chosen = select_queries(config.strategy, make_strategy(config.strategy), pairs, learner, n_chosen, rng,
                                QueryContext(QueryConfig(strategy=config.strategy)))
        pool = pool[chosen]
    known = np.empty((0, 2), np.int64)
    if n_known:
        returns = data.segment_batch(np.arange(segments), sim_states=False).truth.returns
        taken = {(min(x, y), max(x, y)) for x, y in pool.tolist()}
        candidates = _random_pairs(segments, 50 * n_known, rng, taken)
        known = candidates[clear_pairs(returns, candidates[:, 0], candidates[:, 1], config.known_margin)][:n_known]
        if len(known) < n_known:
            raise ValueError(f"known_rate (--known-rate): only {len(known)} pairs of the dataset have a clear true-return "
                             f"order (margin {config.known_margin} std), {n_known} asked; lower --known-rate or "
                             "--known-margin")
    order = rng.permutation(config.pairs)
    both = np.concatenate([pool, known])[order]
    return Plan(both[:, 0], both[:, 1], (np.arange(config.pairs) >= n_chosen)[order])


def fit_reward_model(data: OfflinePreferenceData, seed: int = 0,
                     config: BTEnsembleConfig = BTEnsembleConfig()) -> BTEnsemble:
    """A Bradley–Terry ensemble fitted on the dataset's own labels (synthetic or regret, from ``pbrl collect``):
    the reward model ``pbrl label-server --dataset … --strategy NAME`` ranks pairs with, so that people are
    asked where a model of the cheap labels is unsure."""
    labels = data.preferences()
    if len(labels) == 0:
        raise ValueError("strategy (--strategy): the dataset has no labels to fit a reward model on; use --strategy uniform")
    model = BTEnsemble(labels.left.obs.shape[-1], labels.left.actions.shape[-1], config, seed=seed)
    model.update(labels)
    return model


def dataset_digest(path: str | Path) -> str:
    """SHA-256 of the dataset file (a labels folder serves one dataset, bit for bit)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded(store: PreferenceStore) -> dict[str, Any] | None:
    """What :func:`open_labels` recorded in ``store`` (dataset, digest, settings, plan), or ``None``."""
    value = store.get_meta(META_KEY)
    return None if value is None else json.loads(value)


def open_labels(dataset: str | Path, out_dir: str | Path, config: OfflineLabelingConfig = OfflineLabelingConfig(),
                learner: PreferenceLearner | None = None) -> tuple[PreferenceStore, OfflinePreferenceData, np.ndarray]:
    """The store of ``out_dir`` (``preferences.sqlite``) serving ``dataset``'s planned pairs, queued;
    returns it, the dataset and the query ids in plan order. Idempotent: see "Resume" above."""
    data = OfflinePreferenceData.load(dataset)
    if data.episodes.sim_states is None:
        raise ValueError(f"{dataset} holds no simulator states (/episodes/sim_states): its segments cannot be shown; "
                         "collect it again with pbrl collect")
    store = PreferenceStore(Path(out_dir) / "preferences.sqlite")
    digest, settings = dataset_digest(dataset), asdict(config)
    state = recorded(store)
    if state is None:
        plan = plan_pairs(data, config, learner)
        state = {"dataset": str(Path(dataset).resolve()), "sha256": digest, "env_id": data.env_id, "settings": settings,
                 "plan": {"left": plan.left.tolist(), "right": plan.right.tolist(), "known": plan.known.tolist()}}
        store.set_meta(META_KEY, json.dumps(state))
    elif state["sha256"] != digest:
        raise ValueError(f"{out_dir} labels another dataset ({state['dataset']}, SHA-256 {state['sha256'][:12]}…); "
                         "give that file, or a new --out folder")
    else:
        for name, value in settings.items():
            if state["settings"].get(name) != value:
                raise ValueError(f"{name}: {out_dir} was set up with {state['settings'][name]!r}, not {value!r}; "
                                 "leave it as it was, or use a new --out folder")
    plan = state["plan"]
    query_ids = _add_plan(store, data, np.array(plan["left"], np.int64), np.array(plan["right"], np.int64),
                          np.array(plan["known"], bool))
    LabelQueue(store).enqueue(query_ids, config.annotators_per_pair)
    return store, data, query_ids


def store_segment_ids(store: PreferenceStore, data: OfflinePreferenceData, ids: np.ndarray) -> np.ndarray:
    """Store ids of dataset segments ``ids``, adding those not yet in the store (with simulator states)."""
    s = segments_table.c
    where = {(int(e), int(t)): int(i) for i, e, t in store.read(select(s.id, s.episode, s.start))}
    keys = [(int(data.segment_episode[i]), int(data.segment_start[i])) for i in ids]
    missing = sorted({k for k in keys if k not in where})
    if missing:
        first = {}
        for dataset_id, key in enumerate(zip(data.segment_episode.tolist(), data.segment_start.tolist())):
            first.setdefault(key, dataset_id)
        added = store.add_segments(data.segment_batch(np.array([first[k] for k in missing], np.int64)))
        where.update(zip(missing, added.tolist()))
    return np.array([where[k] for k in keys], np.int64)


def _add_plan(store: PreferenceStore, data: OfflinePreferenceData, left: np.ndarray, right: np.ndarray,
              known: np.ndarray) -> np.ndarray:
    """Query ids of the planned pairs, adding the missing ones in plan order (one transaction per run of one kind)."""
    left_ids, right_ids = store_segment_ids(store, data, left), store_segment_ids(store, data, right)
    q = queries_table.c
    existing = {(int(a), int(b)): int(i) for i, a, b in store.read(select(q.id, q.left_id, q.right_id))}
    ids = np.array([existing.get((int(a), int(b)), -1) for a, b in zip(left_ids, right_ids)], np.int64)
    start = 0
    while start < len(ids):
        if ids[start] >= 0:
            start += 1
            continue
        end = start
        while end < len(ids) and ids[end] < 0 and known[end] == known[start]:
            end += 1
        ids[start:end] = store.add_queries(left_ids[start:end], right_ids[start:end], round_index=0,
                                           teacher=KNOWN_ANSWER if known[start] else HUMAN)
        start = end
    return ids
