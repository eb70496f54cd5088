"""Tests for envs/: ids and errors, the info contract, seeding, sim state, re-rendering."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from pbrl import envs

GYM_IDS = ["gym:HalfCheetah-v5", "gym:Hopper-v5", "gym:Walker2d-v5", "gym:Ant-v5", "gym:Humanoid-v5"]
METAWORLD_IDS = ["metaworld:door-open-v3", "metaworld:button-press-v3", "metaworld:sweep-into-v3"]
DMC_IDS = ["dmc:walker-walk", "dmc:cheetah-run", "dmc:quadruped-walk"]


def _need_dmc() -> None:
    """DeepMind Control tests need the dmc extra; CI installs it (make test), so there they never skip."""
    if os.environ.get("CI", "").lower() == "true":
        import dm_control  # noqa: F401
        import shimmy  # noqa: F401
    else:
        pytest.importorskip("shimmy", reason="DeepMind Control needs the dmc extra: pip install -e '.[dmc]'")


def _actions(env: gym.Env, n: int, seed: int = 0) -> list[np.ndarray]:
    space = env.action_space
    rng = np.random.default_rng(seed)
    return [rng.uniform(space.low, space.high).astype(space.dtype) for _ in range(n)]


def _rollout(env: gym.Env, actions: list[np.ndarray]) -> list[np.ndarray]:
    return [env.step(action)[0] for action in actions]


@pytest.fixture(scope="module")
def egl() -> None:
    """Skip render tests only where no headless OpenGL context can be made at all."""
    import mujoco

    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody/></mujoco>")
    try:
        mujoco.Renderer(model, 8, 8).close()
    except Exception as err:  # no EGL/Mesa on this machine
        pytest.skip(f"headless rendering unavailable (MUJOCO_GL=egl): {err}")


# ---- ids and errors ---------------------------------------------------------------------


def test_available_ids_cover_all_suites_sorted() -> None:
    ids = envs.available_env_ids()
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    for env_id in GYM_IDS + METAWORLD_IDS + DMC_IDS + ["gym:Reacher-v5", "gym:Swimmer-v5"]:
        assert env_id in ids
    assert sum(i.startswith("metaworld:") for i in ids) == 50
    assert all(envs.suite_of(i) == i.partition(":")[0] for i in ids)


def test_unknown_id_lists_valid_ids_grouped_by_suite() -> None:
    with pytest.raises(envs.UnknownEnvError) as err:
        envs.make("gym:HalfCheeta-v5")
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert "Did you mean 'gym:HalfCheetah-v5'" in message
    for valid in ["gym:Hopper-v5", "metaworld:door-open-v3", "dmc:walker-walk"]:
        assert valid in message
    assert "'<suite>:<name>'" in message
    assert "gym (" in message and "metaworld (50)" in message and "dmc (" in message


@pytest.mark.parametrize(
    ("bad_id", "hint"),
    [
        ("HalfCheetah-v5", "has no suite prefix"),
        ("mujoco:Hopper-v5", "unknown suite 'mujoco'"),
        ("metaworld:door-open-v2", "Unknown env id"),
    ],
)
def test_malformed_ids_say_how_to_fix(bad_id: str, hint: str) -> None:
    with pytest.raises(envs.UnknownEnvError, match=hint) as err:
        envs.suite_of(bad_id)
    assert "'<suite>:<name>'" in str(err.value)


def test_missing_prefix_suggests_the_prefixed_id() -> None:
    with pytest.raises(envs.UnknownEnvError, match="Did you mean 'gym:HalfCheetah-v5'"):
        envs.make("HalfCheetah-v5")


def test_dmc_without_shimmy_says_which_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shimmy", None)  # makes `import shimmy` fail
    with pytest.raises(ImportError, match=r"pip install 'pbrl\[dmc\]'"):
        envs.make("dmc:walker-walk")
    assert "dmc:walker-walk" in envs.available_env_ids()


def test_dmc_task_list_matches_dm_control() -> None:
    _need_dmc()
    from dm_control import suite
    expected = {f"dmc:{domain}-{task}" for domain, task in suite.ALL_TASKS}
    assert {i for i in envs.available_env_ids() if i.startswith("dmc:")} == expected


# ---- the step/reset contract ------------------------------------------------------------


def _check_contract(env_id: str) -> gym.Env:
    env = envs.make(env_id, seed=0)
    assert envs.suite_of(env_id) in ("gym", "metaworld", "dmc")
    obs, info = env.reset()
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
    assert env.observation_space.dtype == np.float32
    np.testing.assert_array_equal(info["sim_state"], envs.get_sim_state(env))
    for action in _actions(env, 3):
        state_before = envs.get_sim_state(env)
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs.dtype == np.float32
        assert isinstance(reward, float) and reward == info["true_reward"]
        assert isinstance(info["success"], float) and info["success"] in (0.0, 1.0)
        assert info["sim_state"].dtype == np.float64
        np.testing.assert_array_equal(info["sim_state"], state_before)
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
    return env


@pytest.mark.parametrize("env_id", GYM_IDS + ["gym:Reacher-v5"])
def test_gym_contract(env_id: str) -> None:
    env = _check_contract(env_id)
    assert envs.episode_limit(env) == (50 if "Reacher" in env_id else 1000)


@pytest.mark.parametrize("env_id", METAWORLD_IDS)
def test_metaworld_contract(env_id: str) -> None:
    env = _check_contract(env_id)
    assert envs.episode_limit(env) == 500


@pytest.mark.parametrize("env_id", DMC_IDS)
def test_dmc_contract(env_id: str) -> None:
    _need_dmc()
    env = _check_contract(env_id)
    assert envs.episode_limit(env) == 1000
    assert env.observation_space.shape[0] > 1  # the dict observation was flattened


@pytest.mark.parametrize("env_id", ["gym:HalfCheetah-v5", "metaworld:reach-v3", "dmc:cheetah-run"])
def test_time_limit_truncates(env_id: str) -> None:
    if env_id.startswith("dmc:"):
        _need_dmc()
    env = envs.make(env_id, seed=0, max_episode_steps=7)
    assert envs.episode_limit(env) == 7
    env.reset()
    flags = [env.step(a)[2:4] for a in _actions(env, 7)]
    assert flags[-1] == (False, True)
    assert all(flag == (False, False) for flag in flags[:-1])


def test_metaworld_limit_beyond_its_default() -> None:
    env = envs.make("metaworld:reach-v3", seed=0, max_episode_steps=520)
    env.reset()
    truncated = [env.step(a)[3] for a in _actions(env, 520)]
    assert not any(truncated[:-1]) and truncated[-1]


@pytest.mark.filterwarnings("ignore:Constant:UserWarning")  # from MetaWorld's scripted policy
def test_metaworld_reports_success() -> None:
    """MetaWorld's scripted policy solves reach; its success flag comes through as 1.0."""
    from metaworld.policies import SawyerReachV3Policy

    env = envs.make("metaworld:reach-v3", seed=0)
    obs, _ = env.reset()
    policy, successes = SawyerReachV3Policy(), []
    for _ in range(100):
        obs, _, _, _, info = env.step(policy.get_action(obs))
        successes.append(info["success"])
    assert 1.0 in successes and set(successes) <= {0.0, 1.0}


# ---- seeding ----------------------------------------------------------------------------


def _first_observations(env_id: str, seed: int, n: int = 10) -> np.ndarray:
    env = envs.make(env_id, seed=seed)
    obs, _ = env.reset(seed=seed)
    return np.stack([obs] + _rollout(env, _actions(env, n - 1)))


@pytest.mark.parametrize("env_id", ["gym:Hopper-v5", "metaworld:door-open-v3", "dmc:walker-walk"])
def test_same_seed_same_observations(env_id: str) -> None:
    if env_id.startswith("dmc:"):
        _need_dmc()
    first = _first_observations(env_id, seed=3)
    np.testing.assert_array_equal(first, _first_observations(env_id, seed=3))
    assert not np.array_equal(first, _first_observations(env_id, seed=4))


def test_make_seed_applies_to_first_reset() -> None:
    a, b = envs.make("gym:Hopper-v5", seed=5), envs.make("gym:Hopper-v5", seed=5)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


def test_metaworld_goal_changes_between_resets() -> None:
    env = envs.make("metaworld:reach-v3", seed=0)
    goals = {tuple(env.reset()[0][-3:]) for _ in range(5)}
    assert len(goals) > 1


# ---- sim state --------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["gym:Hopper-v5", "gym:HalfCheetah-v5", "metaworld:door-open-v3", "dmc:walker-walk"])
def test_sim_state_round_trip_replays_trajectory(env_id: str) -> None:
    if env_id.startswith("dmc:"):
        _need_dmc()
    env = envs.make(env_id, seed=0)
    env.reset()
    _rollout(env, _actions(env, 15, seed=1))
    saved = envs.get_sim_state(env)
    actions = _actions(env, 20, seed=2)
    original = _rollout(env, actions)
    envs.set_sim_state(env, saved)
    np.testing.assert_array_equal(envs.get_sim_state(env), saved)
    np.testing.assert_array_equal(np.stack(_rollout(env, actions)), np.stack(original))


def test_set_sim_state_rejects_a_state_from_another_env() -> None:
    hopper, cheetah = envs.make("gym:Hopper-v5", seed=0), envs.make("gym:HalfCheetah-v5", seed=0)
    hopper.reset(), cheetah.reset()
    with pytest.raises(ValueError, match="same id"):
        envs.set_sim_state(hopper, envs.get_sim_state(cheetah))


# ---- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["gym:HalfCheetah-v5", "metaworld:door-open-v3"])
def test_render_states_frames_and_no_side_effects(egl: None, env_id: str) -> None:
    env = envs.make(env_id, seed=0)
    _, info = env.reset()
    states = [info["sim_state"]]
    for action in _actions(env, 30):
        states.append(env.step(action)[4]["sim_state"])
    frames = envs.render_states(env, np.stack([states[0], states[-1]]), width=64, height=48)
    assert frames.shape == (2, 48, 64, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])
    assert frames.std() > 5  # a picture, not a blank buffer

    # Rendering between steps leaves the trajectory exactly as it would have been.
    saved = envs.get_sim_state(env)
    actions = _actions(env, 10, seed=7)
    expected = _rollout(env, actions)
    envs.set_sim_state(env, saved)
    envs.render_states(env, np.stack(states[:3]), width=64, height=48)
    np.testing.assert_array_equal(envs.get_sim_state(env), saved)
    np.testing.assert_array_equal(np.stack(_rollout(env, actions)), np.stack(expected))
    env.close()


def test_render_shows_the_goal_of_the_episode_it_was_saved_in(egl: None) -> None:
    """MetaWorld moves its goal per episode; a state from an earlier episode keeps its goal."""
    env = envs.make("metaworld:reach-v3", seed=0)
    _, info = env.reset()
    first = envs.render_states(env, info["sim_state"][None], width=96, height=96)
    goal = env.unwrapped._target_pos.copy()
    while np.allclose(env.unwrapped._target_pos, goal):
        env.reset()
    np.testing.assert_array_equal(envs.render_states(env, info["sim_state"][None], 96, 96), first)


@pytest.mark.parametrize("env_id", ["gym:HalfCheetah-v5", "metaworld:reach-v3", "dmc:reacher-easy"])
def test_states_render_the_same_in_another_env_of_the_same_id(egl: None, env_id: str) -> None:
    """So a labeling worker can render stored segments with an env of its own."""
    if env_id.startswith("dmc:"):
        _need_dmc()
    env = envs.make(env_id, seed=0)
    for _ in range(3):
        env.reset()
    state = [env.step(a)[4]["sim_state"] for a in _actions(env, 10)][-1][None]
    other = envs.make(env_id, seed=1)
    np.testing.assert_array_equal(
        envs.render_states(other, state, 48, 48), envs.render_states(env, state, 48, 48)
    )


def test_render_camera_choice_and_errors(egl: None) -> None:
    env = envs.make("gym:Hopper-v5", seed=0)
    state = env.reset()[1]["sim_state"][None]
    track = envs.render_states(env, state, 32, 32)
    np.testing.assert_array_equal(envs.render_states(env, state, 32, 32, camera="track"), track)
    assert not np.array_equal(envs.render_states(env, state, 32, 32, camera=-1), track)
    with pytest.raises(ValueError, match="cameras are"):
        envs.render_states(env, state, camera="nope")
    with pytest.raises(ValueError, match=r"\[T, S\]"):
        envs.render_states(env, state[0])


@pytest.mark.parametrize("env_id", ["dmc:walker-walk", "dmc:quadruped-walk"])
def test_dmc_render(egl: None, env_id: str) -> None:
    _need_dmc()
    env = envs.make(env_id, seed=0)
    _, info = env.reset()
    later = [env.step(a)[4]["sim_state"] for a in _actions(env, 20)][-1]
    frames = envs.render_states(env, np.stack([info["sim_state"], later]), 64, 64)
    assert frames.shape == (2, 64, 64, 3) and not np.array_equal(frames[0], frames[1])


# ---- a broken MuJoCo install --------------------------------------------------------------


def test_broken_mujoco_install_prints_the_repair_command_not_a_traceback(tmp_path) -> None:
    """An environment moved across MuJoCo 4's package split fails on `import mujoco`: pbrl says how to repair it."""
    fake = tmp_path / "mujoco"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ImportError(\"The 'mujoco' package is installed, but its core bindings ('mujoco-core') are missing "
        "or corrupted (for example, after uninstalling a previous monolithic 'mujoco' package). Repair your "
        "environment with:\\n  pip install --force-reinstall --no-deps mujoco mujoco-core mujoco-studio\")\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", "from pbrl import envs"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "mujoco-core" in result.stderr
    assert f"{sys.executable} -m pip uninstall -y mujoco mujoco-core mujoco-studio && {sys.executable} -m pip " \
           "install 'mujoco==" in result.stderr
