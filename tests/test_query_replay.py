"""QPA's hybrid experience replay: batch composition and how the config switches it on."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from pbrl.agents.config import SACConfig
from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.experiments.config import parse_config


def numbered_buffer(rows: int, size: int, n_envs: int = 1) -> PreferenceReplayBuffer:
    """A buffer whose observation is the row's insertion number (so a sample says how old it is)."""
    obs_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    act_space = spaces.Box(-1, 1, (1,), np.float32)
    buffer = PreferenceReplayBuffer(size, obs_space, act_space, device="cpu", n_envs=n_envs)
    for t in range(rows):
        obs = np.full((n_envs, 1), t, np.float32)
        buffer.add(obs, obs, np.zeros((n_envs, 1)), np.zeros(n_envs), np.zeros(n_envs, bool), [{}] * n_envs)
    return buffer


@pytest.mark.parametrize("rows, size", [(5_000, 10_000), (25_000, 10_000)])  # partly filled, and wrapped around
def test_hybrid_batches_take_exactly_their_share_from_the_recent_window(rows, size):
    np.random.seed(0)
    buffer = numbered_buffer(rows, size)
    buffer.configure_hybrid_replay(0.5, window=1_000)
    newest, oldest_kept = rows - 1, rows - min(rows, size)
    recent_hits, uniform_hits = 0, 0
    for _ in range(20):
        ages = newest - buffer.sample(256).observations[:, 0].numpy()
        assert ((ages >= 0) & (ages <= newest - oldest_kept)).all()  # only rows the buffer still holds
        recent, uniform = ages[128:], ages[:128]  # the recent share comes last
        assert (recent < 1_000).all()
        recent_hits += len(recent)
        uniform_hits += (uniform < 1_000).sum()
    assert recent_hits == 20 * 128
    # the uniform half lands in the window only at the window's share of the buffer (1000 / held rows)
    share = 1_000 / min(rows, size)
    assert uniform_hits / (20 * 128) == pytest.approx(share, abs=0.05)


@pytest.mark.parametrize("fraction, recent", [(0.25, 64), (0.1, 26), (1.0, 256)])
def test_the_recent_share_is_round_fraction_times_batch(fraction, recent):
    np.random.seed(1)
    buffer = numbered_buffer(3_000, 5_000)
    buffer.configure_hybrid_replay(fraction, window=100)
    ages = 2_999 - buffer.sample(256).observations[:, 0].numpy()
    assert (ages[256 - recent :] < 100).all()
    if recent < 256:
        assert (ages[: 256 - recent] >= 100).mean() > 0.9  # the rest is spread over the whole buffer


def test_off_by_default_and_a_window_larger_than_the_buffer_is_the_whole_buffer():
    np.random.seed(2)
    buffer = numbered_buffer(300, 1_000)
    assert buffer.recent_fraction == 0.0
    ages = 299 - buffer.sample(512).observations[:, 0].numpy()
    assert ages.max() > 250 and ages.min() < 50
    buffer.configure_hybrid_replay(0.5, window=10_000)
    ages = 299 - buffer.sample(512).observations[:, 0].numpy()
    assert ((ages >= 0) & (ages < 300)).all()
    with pytest.raises(ValueError, match="fraction"):
        buffer.configure_hybrid_replay(1.5, 100)
    with pytest.raises(ValueError, match="window"):
        buffer.configure_hybrid_replay(0.5, 0)


def test_qpa_switches_hybrid_replay_on_unless_set_explicitly():
    parse = lambda *items: parse_config({}, list(items))  # noqa: E731
    assert parse("query.strategy=qpa").agent.recent_fraction == 0.5
    assert parse("query.strategy=disagreement").agent.recent_fraction == 0.0
    assert parse("query.strategy=qpa", "agent.recent_fraction=0.3").agent.recent_fraction == 0.3
    assert parse("query.strategy=qpa", "agent.recent_fraction=0").agent.recent_fraction == 0.0
    assert parse("agent.recent_fraction=0.5").agent.recent_fraction == 0.5
    with pytest.raises(ValueError, match="recent_fraction"):
        SACConfig(recent_fraction=2.0)
    with pytest.raises(ValueError, match="recent_window"):
        SACConfig(recent_window=0)
