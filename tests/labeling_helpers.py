"""Builders shared by the labeling tests: a store of real HalfCheetah segments, queued for people."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import envs
from pbrl.labeling.assignments import LabelQueue
from pbrl.segments import Provenance, SegmentBatch, Segments, SegmentTruth
from pbrl.store import PreferenceStore

ENV_ID = "gym:HalfCheetah-v5"


def rollout_segments(n: int, length: int, seed: int = 0, env_id: str = ENV_ID) -> SegmentBatch:
    """``n`` segments of ``length`` steps from one random-action episode (with simulator states)."""
    env = envs.make(env_id, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    steps = {"obs": [], "actions": [], "next_obs": [], "rewards": [], "states": []}
    for _ in range(n * length):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        steps["states"].append(envs.get_sim_state(env))
        next_obs, _, _, _, info = env.step(action)
        for key, value in (("obs", obs), ("actions", action), ("next_obs", next_obs), ("rewards", info["true_reward"])):
            steps[key].append(value)
        obs = next_obs
    env.close()
    shaped = {k: np.asarray(v).reshape(n, length, *np.asarray(v).shape[1:]) for k, v in steps.items()}
    return SegmentBatch(
        Segments(shaped["obs"].astype(np.float32), shaped["actions"], shaped["next_obs"].astype(np.float32)),
        SegmentTruth(shaped["rewards"].astype(np.float64), np.zeros((n, length))),
        Provenance(env_id, np.zeros(n, dtype=np.int64), np.arange(n) * length, shaped["states"]),
    )


def queued_store(path: Path, pairs: int, length: int = 10, needed: int = 1, seed: int = 0) -> tuple[PreferenceStore, np.ndarray]:
    """A store at ``path`` with ``pairs`` queries of real segments, queued for ``needed`` annotators each."""
    store = PreferenceStore(path)
    batch = rollout_segments(2 * pairs, length, seed)
    ids = store.add_segments(batch)
    query_ids = store.add_queries(ids[:pairs], ids[pairs:], round_index=0, teacher="human")
    LabelQueue(store).enqueue(query_ids, needed)
    return store, query_ids


def stateless_store(path: Path | str, pairs: int, needed: int = 1) -> tuple[PreferenceStore, np.ndarray]:
    """A store of ``pairs`` queued queries over fake segments without simulator states (nothing to render)."""
    store = PreferenceStore(path)
    rng = np.random.default_rng(0)
    n, length = 2 * pairs, 5
    batch = SegmentBatch(
        Segments(*(rng.normal(size=(n, length, 3)).astype(np.float32) for _ in range(3))),
        SegmentTruth(rng.normal(size=(n, length)), np.zeros((n, length))),
        Provenance("test", np.zeros(n, dtype=np.int64), np.arange(n) * length),
    )
    ids = store.add_segments(batch)
    query_ids = store.add_queries(ids[:pairs], ids[pairs:], round_index=0, teacher="human")
    LabelQueue(store).enqueue(query_ids, needed)
    return store, query_ids
