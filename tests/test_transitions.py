"""Segment sampling from the transition log."""

import numpy as np
import pytest

from pbrl.transitions import NotEnoughDataError, TransitionLog
from tests.helpers import filled_log


def test_segments_never_cross_episodes():
    log = filled_log(steps=300, episode_length=30, n_envs=2)
    batch = log.sample_segments(500, 10, np.random.default_rng(0))
    assert batch.segments.obs.shape == (500, 10, 3)
    # steps within an episode are consecutive: start + 10 ≤ 30
    assert (batch.provenance.start + 10 <= 30).all()
    # sim states recorded the global row; consecutive within a segment
    assert (np.diff(batch.provenance.sim_states[:, :, 0], axis=1) == 1).all()
    # true reward is obs[:, 0] by construction
    np.testing.assert_array_equal(batch.truth.rewards, batch.segments.obs[:, :, 0])


def test_window_keeps_only_recent_segments():
    log = filled_log(steps=300, episode_length=100)
    batch = log.sample_segments(200, 10, np.random.default_rng(0), window=50)
    assert batch.provenance.env_step.min() >= 250


def test_ring_buffer_wraps_and_keeps_order():
    log = TransitionLog(capacity=50, n_envs=1)
    for t in range(120):
        log.add(np.full((1, 1), t), np.zeros((1, 1)), np.full((1, 1), t + 1), [t], [0], [False])
    starts, _ = log.valid_starts(5)
    batch = log.gather(starts, np.zeros_like(starts), 5)
    assert batch.segments.obs.min() >= 70  # only the last 50 steps survive
    assert (np.diff(batch.segments.obs[:, :, 0], axis=1) == 1).all()  # no wrap-around splice


def _reachable(root, seen=None):
    """Every object reachable from ``root`` through attributes, slots, containers and array bases."""
    seen = {} if seen is None else seen
    if id(root) in seen or isinstance(root, (str, bytes, int, float, bool, type(None), type)):
        return seen
    seen[id(root)] = root
    children = list(getattr(root, "__dict__", {}).values())
    children += [getattr(root, name) for name in getattr(type(root), "__slots__", ()) if hasattr(root, name)]
    if isinstance(root, dict):
        children += list(root.values())
    if isinstance(root, (list, tuple, set)):
        children += list(root)
    if isinstance(root, np.ndarray) and root.base is not None:
        children.append(root.base)
    for child in children:
        _reachable(child, seen)
    return seen


def test_a_learner_cannot_reach_true_rewards_or_successes_through_the_view():
    log = filled_log(steps=120, episode_length=30, n_envs=2)
    view = log.view()
    objects = _reachable(view).values()
    assert not any(o is log or o is log.arrays for o in objects)
    arrays = [o for o in objects if isinstance(o, np.ndarray)]
    for secret in ("true_rewards", "successes", "step", "env_step"):
        assert not any(np.shares_memory(a, log.arrays[secret]) for a in arrays), secret
    assert {name for name in ("obs", "actions", "next_obs", "terminals", "episode", "sim_states")
            if any(np.shares_memory(a, log.arrays[name]) for a in arrays)} == set(view.ARRAYS)  # no copies
    for name in view.ARRAYS:
        with pytest.raises(ValueError, match="read-only"):
            getattr(view, name)[0] = 0
    with pytest.raises(AttributeError):
        view.obs = log.arrays["true_rewards"]  # frozen
    # what it samples is what the log samples, without the truth
    segments = view.sample_segments(50, 10, np.random.default_rng(3))
    batch = log.sample_segments(50, 10, np.random.default_rng(3))
    for name in ("obs", "actions", "next_obs", "step_ids", "terminals"):
        np.testing.assert_array_equal(getattr(segments, name), getattr(batch.segments, name))
    steps, _ = log.recent(log.size * log.n_envs)
    np.testing.assert_array_equal(view.transitions().obs, steps.obs)
    assert TransitionLog(10).view().size == 0


def test_too_short_episodes_give_a_clear_error():
    log = filled_log(steps=100, episode_length=5)
    with pytest.raises(NotEnoughDataError, match="segment_length"):
        log.sample_segments(4, 10, np.random.default_rng(0))


def test_save_load_round_trip(tmp_path):
    log = filled_log(steps=120, episode_length=40, n_envs=2)
    log.save(tmp_path / "log.npz")
    loaded = TransitionLog.load(tmp_path / "log.npz")
    a = log.sample_segments(20, 8, np.random.default_rng(5))
    b = loaded.sample_segments(20, 8, np.random.default_rng(5))
    np.testing.assert_array_equal(a.segments.obs, b.segments.obs)
    assert loaded.total_steps == log.total_steps


def test_loop_postpones_a_round_when_episodes_are_shorter_than_a_segment(make_loop, store):
    loop = make_loop(filled_log(steps=200, episode_length=5), budget=10, per_round=5, interval=100, segment_length=10)
    with pytest.warns(UserWarning, match="postponed"):
        result = loop.run_round(step=200, recent_returns=[])
    assert result.postponed and result.metrics == {"teacher/postponed_rounds": 1.0} and len(result.labels) == 0
    assert store.counts().asked == 0 and loop.next_round_step == 210 and loop.round_index == 0


def test_episodes_are_the_whole_ones_left_in_the_ring():
    log = filled_log(steps=40, episode_length=10)  # capacity 40: episodes 0..3, all whole
    assert [len(e["obs"]) for e in log.episodes()] == [10] * 4
    small = TransitionLog(capacity=25)
    for t in range(43):  # rows keep steps 18..42: episode 1 lost its start, episode 4 is still running
        small.add(np.full((1, 1), t), np.zeros((1, 1)), np.full((1, 1), t + 1), [t], [0], [(t + 1) % 10 == 0],
                  terminals=[t == 29])
    episodes = small.episodes()
    assert [e["obs"][:, 0].tolist() for e in episodes] == [list(range(20, 30)), list(range(30, 40))]
    assert episodes[0]["terminated"][-1] and not episodes[0]["truncated"][-1]
    assert episodes[1]["truncated"][-1] and not episodes[1]["terminated"].any()
    np.testing.assert_array_equal(episodes[1]["rewards"], np.arange(30, 40))
