"""The one action scaling and the one env → transition-log loop (pbrl.rollout)."""

import gymnasium as gym
import numpy as np
import pytest

from pbrl import envs
from pbrl.rollout import ActionScale, Rollout, SineGait
from pbrl.transitions import TransitionLog


def test_action_scale_maps_the_unit_box_onto_the_env_box_and_back():
    scale = ActionScale(gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)))
    np.testing.assert_allclose(scale.to_env(np.array([[-1.0, -1.0], [0.0, 0.5], [1.0, 1.0]])), [[-2, 0], [0, 7.5], [2, 10]])
    np.testing.assert_allclose(scale.to_env(np.array([5.0, -5.0])), [2.0, 0.0])  # clipped to the box
    unit = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    np.testing.assert_allclose(scale.to_unit(scale.to_env(unit)), unit, atol=1e-6)
    with pytest.raises(ValueError, match="bounded Box"):
        ActionScale(gym.spaces.Box(-np.inf, np.inf, (2,)))


def test_rollout_logs_what_info_says_and_counts_whole_episodes():
    env = envs.make("gym:Hopper-v5", seed=0, max_episode_steps=30)
    log = TransitionLog(500, env_id="gym:Hopper-v5")
    rng = np.random.default_rng(0)
    rollout = Rollout(env, log)
    result = rollout.run(lambda obs: rng.uniform(-1.5, 1.5, 3), episodes=4, seed=10)

    assert len(result.returns) == 4 and result.steps == sum(result.lengths) == log.size
    episodes = log.episodes()
    assert [len(e["obs"]) for e in episodes] == result.lengths
    np.testing.assert_allclose([e["rewards"].sum() for e in episodes], result.returns, rtol=1e-5)
    assert np.abs(log.arrays["actions"]).max() <= 1.0  # logged as applied: clipped to the unit box
    for episode, length in zip(episodes, result.lengths):
        assert episode["terminated"][-1] != episode["truncated"][-1] and not episode["terminated"][:-1].any()
        assert episode["terminated"][-1] or length == 30  # a fall terminates, else the time limit truncates
        np.testing.assert_array_equal(episode["obs"][1:], episode["next_obs"][:-1])
    # replaying episode 0's actions from the same reset seed reproduces its rewards and simulator states
    replay = envs.make("gym:Hopper-v5", seed=0, max_episode_steps=30)
    replay.reset(seed=10)
    scale = ActionScale(replay.action_space)
    for action, reward, state in zip(episodes[0]["actions"], episodes[0]["rewards"], episodes[0]["sim_states"]):
        _, _, _, _, info = replay.step(scale.to_env(action))
        assert info["true_reward"] == pytest.approx(reward, rel=1e-6)
        np.testing.assert_array_equal(info["sim_state"], state)


def test_rollout_steps_continue_across_episode_ends_and_refuse_a_half_episode_restart():
    env = envs.make("gym:HalfCheetah-v5", seed=0, max_episode_steps=20)
    log = TransitionLog(100)
    rollout = Rollout(env, log)
    rng = np.random.default_rng(0)
    gait = SineGait(0.5, rng.uniform(0.1, 0.5, 6), np.zeros(6), 0.1, rng)
    result = rollout.run(gait, steps=50)
    assert result.steps == 50 and result.lengths == [20, 20] and log.size == 50
    assert len(log.episodes()) == 2  # the running third episode is not whole yet
    assert len(np.unique(log.arrays["episode"][:50, 0])) == 3
    with pytest.raises(ValueError, match="finish the running one"):
        rollout.run(gait, episodes=1)
    with pytest.raises(ValueError, match="exactly one"):
        rollout.run(gait)
    rollout.run(gait, steps=10)
    with pytest.raises(RuntimeError, match="current_obs"):
        rollout.step(np.zeros(6))
