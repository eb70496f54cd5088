"""True termination flags: recorded by the transition log, carried by segments, the store and offline datasets."""

from dataclasses import replace

import numpy as np
import pytest

from pbrl.segments import Segments
from pbrl.store import PreferenceStore
from pbrl.transitions import TransitionLog


def _log_with_one_termination_and_one_truncation() -> TransitionLog:
    """Env 0 terminates after step 3, env 1 is cut by a time limit after step 3; both run 3 more steps."""
    log = TransitionLog(capacity=20, n_envs=2)
    for t in range(7):
        obs = np.full((2, 1), t, np.float32)
        dones = np.array([t == 3, t == 3])
        log.add(obs, np.zeros((2, 1)), obs + 1, [0, 0], [0, 0], dones, terminals=np.array([t == 3, False]))
    return log


def test_log_flags_a_termination_but_not_a_truncation():
    log = _log_with_one_termination_and_one_truncation()
    assert log.arrays["terminals"][:7].nonzero() == (np.array([3]), np.array([0]))
    batch = log.gather(np.array([0, 0]), np.array([0, 1]), 4)  # steps 0..3 of each env's first episode
    np.testing.assert_array_equal(batch.segments.terminals, [[False, False, False, True], [False] * 4])
    recent, _ = log.recent(8)  # the last 4 rows of both envs, as 1-step segments
    assert recent.terminals[:, 0].tolist() == [True, False] + [False] * 6


def test_a_terminal_step_must_be_done():
    log = TransitionLog(capacity=4)
    with pytest.raises(ValueError, match="terminal"):
        log.add(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), [0], [0], [False], terminals=[True])


def test_terminals_survive_save_and_old_logs_load_without_them(tmp_path):
    log = _log_with_one_termination_and_one_truncation()
    log.save(tmp_path / "log.npz")
    np.testing.assert_array_equal(TransitionLog.load(tmp_path / "log.npz").arrays["terminals"], log.arrays["terminals"])
    old = {name: value for name, value in np.load(tmp_path / "log.npz").items() if name != "terminals"}
    np.savez(tmp_path / "old.npz", **old)
    loaded = TransitionLog.load(tmp_path / "old.npz")
    assert loaded.arrays["terminals"].shape == (20, 2) and not loaded.arrays["terminals"].any()
    assert loaded.sample_segments(3, 2, np.random.default_rng(0)).segments.terminals.sum() == 0


def test_segments_index_and_concatenate_terminals():
    seg = lambda terminals: Segments(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), terminals=terminals)  # noqa: E731
    flagged = seg(np.array([[False, False, True], [False] * 3]))
    assert flagged[:1].terminals.tolist() == [[False, False, True]]
    assert Segments.concatenate([seg(None), seg(None)]).terminals is None
    both = Segments.concatenate([seg(None), flagged])
    assert both.terminals.shape == (4, 3) and both.terminals.sum() == 1 and both.terminals[2, 2]
    assert seg(None).terminal_mask.shape == (2, 3) and not seg(None).terminal_mask.any()
    with pytest.raises(ValueError, match="terminals"):
        seg(np.zeros((2, 4), bool))


def test_store_keeps_terminals_and_reads_segments_stored_without_them(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    log = _log_with_one_termination_and_one_truncation()
    flagged = log.gather(np.array([0, 0]), np.array([0, 1]), 4)
    plain = replace(flagged, segments=replace(flagged.segments, terminals=None))
    ids = np.concatenate([store.add_segments(flagged), store.add_segments(plain)])
    reopened = PreferenceStore(tmp_path / "p.sqlite")  # decodes from the database, not the write cache
    np.testing.assert_array_equal(reopened.segments(ids[:2]).terminals, flagged.segments.terminals)
    assert reopened.segments(ids[2:]).terminals is None  # as a store written before terminals existed
    mixed = reopened.segment_batch(ids).segments.terminals
    np.testing.assert_array_equal(mixed, np.concatenate([flagged.segments.terminals, np.zeros((2, 4), bool)]))
    store.close()
    reopened.close()


def test_offline_segments_take_terminals_from_terminated():
    from tests.test_datasets import fake_dataset

    data = fake_dataset()
    ep = data.episodes
    terminated = ep.terminated.copy()
    terminated[ep.start + ep.length - 1] = True  # every episode ends by termination
    data = replace(data, episodes=replace(ep, terminated=terminated))
    ids = np.arange(len(data.segment_episode))
    segments = data.segment_batch(ids).segments
    ends = data.segment_start + data.segment_length == ep.length[data.segment_episode]
    assert ends.any() and not ends.all()
    np.testing.assert_array_equal(segments.terminals[:, -1], ends)
    assert not segments.terminals[:, :-1].any()
    assert data.preferences().left.terminals is not None


def test_hopper_falls_and_sampled_segments_flag_it():
    """SB3's vec env folds time-limit cuts into ``dones``; only true falls are terminals."""
    from pbrl import envs
    from stable_baselines3.common.vec_env import DummyVecEnv

    from pbrl.agents.preference_env import PreferenceVecEnv

    log = TransitionLog(400, 2, "gym:Hopper-v5")
    make = lambda seed: lambda: envs.make("gym:Hopper-v5", seed=seed, max_episode_steps=30)  # noqa: E731
    venv = PreferenceVecEnv(DummyVecEnv([make(0), make(1)]), None, log)
    venv.reset()
    rng = np.random.default_rng(0)
    fell, cut = np.zeros((200, 2), bool), np.zeros((200, 2), bool)
    for t in range(200):
        _, _, dones, infos = venv.step(rng.uniform(-1, 1, (2, 3)))
        truncated = np.array([info["TimeLimit.truncated"] for info in infos])
        fell[t], cut[t] = dones & ~truncated, dones & truncated
    assert fell.any() and cut.any()  # random actions: some falls, some 30-step time limits
    np.testing.assert_array_equal(log.arrays["terminals"][:200], fell)
    segments = log.sample_segments(300, 5, rng).segments
    assert segments.terminals[:, -1].any() and not segments.terminals[:, :-1].any()


def test_jsonl_label_export_carries_terminals(tmp_path):
    from pbrl.labeling.exchange import export_labels, read_dataset

    store = PreferenceStore(tmp_path / "p.sqlite")
    flagged = _log_with_one_termination_and_one_truncation().gather(np.array([0, 0]), np.array([0, 1]), 4)
    ids = store.add_segments(flagged)
    store.add_labels(store.add_queries(ids[:1], ids[1:], round_index=0, teacher="t"), np.array([1.0]), "t")
    export_labels(store, tmp_path / "labels.jsonl")
    data = read_dataset(tmp_path / "labels.jsonl")
    np.testing.assert_array_equal(data.left.terminals, flagged.segments.terminals[:1])
    np.testing.assert_array_equal(data.right.terminals, flagged.segments.terminals[1:])
    store.close()
