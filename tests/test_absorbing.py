"""Segments that run past a true termination into the absorbing state (Knox et al., AAAI 2024):
sampling and padding, every consumer counting absorbing steps as reward 0 / A* = 0, and the
constant of Â that they pin."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pbrl.learners import AdvantageConfig, AdvantageLearner, BTEnsemble, BTEnsembleConfig, HindsightPrior, REED
from pbrl.segments import PreferenceDataset, Provenance, SegmentBatch, Segments, SegmentTruth
from pbrl.store import PreferenceStore
from pbrl.teachers import RegretTeacher, SyntheticTeacherConfig
from pbrl.transitions import TransitionLog

LEAD = 2  # steps of a first, unflagged episode in both envs before the ten below


def hand_made_log(capacity: int) -> TransitionLog:
    """Two envs, ten steps t = 0…9 after a 2-step lead-in episode. Env 0 truly terminates after
    t = 3 and after t = 9 (the newest step); env 1 is cut by a time limit after t = 3.
    obs = t + 100·env, next_obs = obs + ½, action = t + 1, reward 1, success t / 10, sim_state (t, env)."""
    log = TransitionLog(capacity, n_envs=2)
    for t in range(-LEAD, 10):
        obs = np.array([[t], [t + 100]], np.float32)
        dones = np.array([t in (-1, 3, 9), t in (-1, 3)])
        sim = np.array([[t, 0], [t, 1]], np.float64)
        log.add(obs, np.full((2, 1), t + 1.0), obs + 0.5, [1.0, 1.0], [t / 10, t / 10], dones, sim,
                terminals=np.array([t in (3, 9), False]))
    return log


def starts_by_env(log: TransitionLog, absorbing: bool) -> list[set[int]]:
    """First observation t of every valid 4-step segment, per env (content, not ring-buffer rows)."""
    rows, envs = log.valid_starts(4, absorbing=absorbing)
    first = log.arrays["obs"][rows, envs, 0] - 100 * envs
    return [set(first[envs == e].astype(int).tolist()) for e in (0, 1)]


@pytest.mark.parametrize("capacity", [10, 30])  # 10: the ring buffer has wrapped over the lead-in
def test_valid_starts_reach_a_termination_only_with_absorbing(capacity):
    log = hand_made_log(capacity)
    whole = {0, 4, 5, 6}  # t = 0…3 ends the first episode, 4…9 is the second
    assert starts_by_env(log, absorbing=False) == [whole, whole]
    # Env 0's episodes terminate: every start may run on into the absorbing state (the last one
    # past the newest logged step). Env 1's first episode was truncated: nothing added.
    assert starts_by_env(log, absorbing=True) == [set(range(10)), whole]
    # Without absorbing no sampled segment crosses the termination.
    segments = log.sample_segments(400, 4, np.random.default_rng(0)).segments
    assert not segments.absorbing.any() and not segments.terminal_mask[:, :-1].any()


def test_gather_pads_after_the_terminal_step_exactly():
    log = hand_made_log(30)
    rows, envs = log.valid_starts(4, absorbing=True)
    first = log.arrays["obs"][rows, envs, 0]
    pick = [int(np.flatnonzero(first == t)[0]) for t in (2, 8, 100)]  # env 0 from t = 2 and t = 8, env 1 from t = 0 (truncated at 3)
    batch = log.gather(rows[pick], envs[pick], 4)
    seg, truth = batch.segments, batch.truth
    np.testing.assert_array_equal(seg.terminals, [[False, True, False, False], [False, True, False, False], [False] * 4])
    np.testing.assert_array_equal(seg.absorbing, [[False, False, True, True], [False, False, True, True], [False] * 4])
    np.testing.assert_array_equal(seg.obs[..., 0], [[2, 3, 3.5, 3.5], [8, 9, 9.5, 9.5], [100, 101, 102, 103]])
    np.testing.assert_array_equal(seg.next_obs[..., 0], [[2.5, 3.5, 3.5, 3.5], [8.5, 9.5, 9.5, 9.5], [100.5, 101.5, 102.5, 103.5]])
    np.testing.assert_array_equal(seg.actions[..., 0], [[3, 4, 0, 0], [9, 10, 0, 0], [1, 2, 3, 4]])
    np.testing.assert_array_equal(truth.rewards, [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_allclose(truth.successes, [[0.2, 0.3, 0.3, 0.3], [0.8, 0.9, 0.9, 0.9], [0.0, 0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(batch.provenance.sim_states[0, :, 0], [2, 3, 3, 3])  # the last frame held
    # Absorbing steps share one id per termination, disjoint from every logged transition's id.
    ids = seg.step_ids
    assert ids[0, 2] == ids[0, 3] == -1 - ids[0, 1] and ids[1, 2] == -1 - ids[1, 1] and ids[0, 2] != ids[1, 2]
    assert (ids[~seg.absorbing] >= 0).all() and (ids[seg.absorbing] < 0).all()
    # Sampled with absorbing: padding only ever follows env 0's terminations.
    sampled = log.sample_segments(500, 4, np.random.default_rng(1), absorbing=True)
    padded = sampled.segments.absorbing.any(axis=1)
    assert padded.any() and (sampled.segments.obs[padded, 0, 0] < 100).all()
    assert (sampled.truth.rewards == ~sampled.segments.absorbing).all()


def test_absorbing_is_derived_from_terminals():
    seg = lambda terminals: Segments(np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), terminals=terminals)  # noqa: E731
    flagged = seg(np.array([[False, True, False, True], [False, False, False, True]]))
    np.testing.assert_array_equal(flagged.absorbing, [[False, False, True, True], [False] * 4])
    assert flagged.absorbing.shape == (2, 4) and not seg(None).absorbing.any()


def test_padded_segments_round_trip_through_the_store(tmp_path):
    log = hand_made_log(30)
    rows, envs = log.valid_starts(4, absorbing=True)
    batch = log.gather(rows[:3], envs[:3], 4)
    assert batch.segments.absorbing.any()
    store = PreferenceStore(tmp_path / "p.sqlite")
    ids = store.add_segments(batch)
    read = PreferenceStore(tmp_path / "p.sqlite").segment_batch(ids)  # decoded from the database
    np.testing.assert_array_equal(read.segments.absorbing, batch.segments.absorbing)
    np.testing.assert_array_equal(read.segments.obs, batch.segments.obs)
    np.testing.assert_array_equal(read.truth.rewards, batch.truth.rewards)
    np.testing.assert_array_equal(read.provenance.sim_states, batch.provenance.sim_states)
    store.close()


# ----------------------------------------------------------------------------- learners
def padded_pairs(n: int, t: int = 5, seed: int = 0) -> tuple[Segments, Segments, np.ndarray]:
    """Random segments of 3-d obs / 2-d actions, about half terminating early; random labels."""
    rng = np.random.default_rng(seed)
    sides = []
    for _ in range(2):
        terminals = np.zeros((n, t), bool)
        ends = rng.integers(0, 2 * t, n)
        terminals[ends < t, ends[ends < t]] = True
        sides.append(Segments(rng.normal(size=(n, t, 3)).astype(np.float32), rng.uniform(-1, 1, (n, t, 2)).astype(np.float32),
                              rng.normal(size=(n, t, 3)).astype(np.float32), terminals=terminals))
    return sides[0], sides[1], rng.integers(0, 2, n).astype(np.float32)


def scramble_absorbing(segments: Segments, seed: int) -> Segments:
    """The same segments with other (meaningless) inputs on their absorbing steps."""
    rng, z = np.random.default_rng(seed), segments.absorbing
    obs, actions = segments.obs.copy(), segments.actions.copy()
    obs[z], actions[z] = rng.normal(size=obs[z].shape), rng.uniform(-1, 1, actions[z].shape)
    return replace(segments, obs=obs, actions=actions)


def test_bt_segment_return_sums_the_steps_before_the_absorbing_state():
    left, _, _ = padded_pairs(40)
    learner = BTEnsemble(3, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(16,)), seed=0)
    x = torch.as_tensor(np.concatenate([left.obs, left.actions], axis=-1))
    with torch.no_grad():
        steps = learner._member_rewards(x.reshape(-1, 5)).reshape(2, 40, 5)  # [E, B, T]
    expected = (steps * torch.as_tensor(~left.absorbing)).sum(-1)
    assert left.absorbing.any() and not torch.allclose(expected, steps.sum(-1))
    torch.testing.assert_close(learner.member_segment_returns(left), expected)
    ids = np.arange(200).reshape(40, 5)
    indexed = replace(left, step_ids=np.where(left.absorbing, -1 - ids, ids))  # the per-unique-step path
    torch.testing.assert_close(learner.member_segment_returns(indexed), expected)
    np.testing.assert_allclose(learner.pair_probabilities(indexed, indexed[::-1]), learner.pair_probabilities(left, left[::-1]), rtol=1e-6)


LEARNERS = {
    "bt": lambda cfg: BTEnsemble(3, 2, cfg, seed=0),
    "regret": lambda cfg: AdvantageLearner(3, 2, cfg, AdvantageConfig(mode="reward", anchor=False), seed=0),
    "hprior": lambda cfg: HindsightPrior(3, 2, 5, cfg, seed=0),
    "reed": lambda cfg: REED(3, 2, cfg, seed=0),
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_training_never_sees_absorbing_inputs(name):
    """What sits on absorbing steps cannot change a learner: same weights, same probabilities."""
    left, right, labels = padded_pairs(64)
    cfg = BTEnsembleConfig(ensemble_size=2, hidden_sizes=(16,), max_epochs=3)
    learners = []
    for seed in (1, 2):
        learner = LEARNERS[name](cfg)
        learner.update(PreferenceDataset(scramble_absorbing(left, seed), scramble_absorbing(right, seed + 10), labels))
        learners.append(learner)
    for (key, a), b in zip(learners[0].net.state_dict().items(), learners[1].net.state_dict().values()):
        torch.testing.assert_close(a, b, msg=key)
    probe = scramble_absorbing(left, 3)
    np.testing.assert_allclose(learners[0].pair_probabilities(probe, right), learners[1].pair_probabilities(left, right), rtol=1e-5)


def test_hindsight_prior_importance_of_a_padded_segment_is_that_of_its_steps_before_absorbing():
    left, _, _ = padded_pairs(30)
    learner = HindsightPrior(3, 2, 5, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,)), seed=0)
    alpha = learner.importance(left)
    assert (alpha[torch.as_tensor(left.absorbing)] == 0).all()
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(30))
    torch.testing.assert_close(alpha, learner.importance(scramble_absorbing(left, 0)))


# ----------------------------------------------------------------------------- the regret teacher
def batch_of(segments: Segments) -> SegmentBatch:
    b, t = segments.obs.shape[:2]
    return SegmentBatch(segments, SegmentTruth(np.ones((b, t)) * ~segments.absorbing, np.zeros((b, t))),
                        Provenance("crafted", np.zeros(b, int), np.zeros(b, int)))


def test_regret_teacher_counts_a_star_zero_on_absorbing_steps():
    """The expert's callable says −1 everywhere, absorbing state included; the teacher must not believe it there."""
    obs = np.zeros((2, 4, 1), np.float32)
    four_steps = Segments(obs, np.zeros((2, 4, 1)), obs, terminals=np.zeros((2, 4), bool))
    two_then_absorbing = replace(four_steps, terminals=np.array([[False, True, False, False]] * 2))
    teacher = RegretTeacher(lambda o, a: -np.ones(len(o)), SyntheticTeacherConfig())
    np.testing.assert_array_equal(teacher.step_advantages(two_then_absorbing), [[-1, -1, 0, 0]] * 2)
    # Σ A*: −4 against −2, so the right (shorter-lived) segment has less regret; counting the
    # absorbing steps would make a tie, which goes to the left.
    assert teacher.label(batch_of(four_steps), batch_of(two_then_absorbing), np.random.default_rng(0)).tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- the pitfall
# States 0…5 on a line, actions left/right (a[0] > 0 is right), deterministic. Stepping right
# from 4 into 5 pays 10 and terminates; nothing else pays; γ = 0.9; episodes start in 0…4 and
# are cut after 12 steps. A* = Q* − V* by value iteration, A*(s, right) = 0.
N, GAMMA = 6, 0.9


def terminating_chain_a_star() -> np.ndarray:
    v = np.zeros(N)
    s = np.arange(N - 1)
    for _ in range(200):
        right = np.where(s + 1 == N - 1, 10.0, GAMMA * v[s + 1])
        left = GAMMA * v[np.maximum(s - 1, 0)]
        v[:-1] = np.maximum(left, right)
    a_star = np.stack([left, right], axis=1) - v[:-1, None]
    return np.vstack([a_star, [-3.0, -3.0]])  # state 5 is only ever seen as the absorbing state: a wrong value there


A_STAR = terminating_chain_a_star()


def chain_log(steps: int, seed: int) -> TransitionLog:
    rng, eye = np.random.default_rng(seed), np.eye(N, dtype=np.float32)
    log, s, t = TransitionLog(steps, 1, "chain"), rng.integers(0, N - 1), 0
    for _ in range(steps):
        right = rng.random() < 0.6
        s2, t = (min(s + 1, N - 1) if right else max(s - 1, 0)), t + 1
        terminal = s2 == N - 1
        done = terminal or t == 12
        log.add(eye[s][None], np.array([[0.5 if right else -0.5]]), eye[s2][None], [10.0 * terminal], [0.0], [done],
                terminals=[terminal])
        s, t = (rng.integers(0, N - 1), 0) if done else (s2, t)
    return log


def fitted_constant(absorbing: bool) -> tuple[float, AdvantageLearner, Segments, Segments]:
    """Â on regret labels (β = 1) of 4-step chain segments, from a start shifted by +2; returns
    the mean Â of the optimal action (A* = 0 there, so it is Â's constant c)."""
    log, rng = chain_log(3000, seed=0), np.random.default_rng(1)
    left, right = (log.sample_segments(1500, 4, rng, absorbing=absorbing) for _ in range(2))
    teacher = RegretTeacher(lambda o, a: A_STAR[o.argmax(axis=1), (a[:, 0] > 0).astype(int)], SyntheticTeacherConfig(beta=1.0))
    labels = teacher.label(left, right, rng)
    reward = BTEnsembleConfig(ensemble_size=1, hidden_sizes=(32,), lr=3e-3, max_epochs=60, stop_accuracy=1.01)
    learner = AdvantageLearner(N, 1, reward, AdvantageConfig(mode="reward", anchor=False), seed=0)
    with torch.no_grad():
        learner.net.net[-1].bias += 2.0
    learner.update(PreferenceDataset(left.segments, right.segments, labels))
    optimal = learner.advantage_tensor(torch.eye(N)[: N - 1], torch.full((N - 1, 1), 0.5))
    return optimal.mean().item(), learner, left.segments, right.segments


def test_absorbing_steps_pin_the_constant_of_a_hat():
    """The pitfall's cause and the paper's fix: without absorbing steps c stays wherever training
    started; with them the labels pull it to A*'s own constant, 0."""
    c_without, learner, plain, _ = fitted_constant(absorbing=False)
    c_with, _, padded, other = fitted_constant(absorbing=True)
    assert c_without > 1.0
    assert abs(c_with) < 0.25  # A*(s, left) spans [−1.9, −0.66]
    # Exactly why: Â → Â + 1 shifts every segment's sum by its steps before the absorbing state,
    # which cancels between two whole segments and not between segments that end differently.
    shifted = AdvantageLearner(N, 1, learner.config, learner.advantage_config, seed=0)
    shifted.load_state_dict(learner.state_dict())
    with torch.no_grad():
        shifted.net.net[-1].bias += 1.0
    np.testing.assert_allclose(shifted.pair_probabilities(plain[:50], plain[50:100]),
                               learner.pair_probabilities(plain[:50], plain[50:100]), atol=1e-6)
    differ = (~padded.absorbing).sum(1) != (~other.absorbing).sum(1)
    assert differ.any()
    assert not np.allclose(shifted.pair_probabilities(padded[differ], other[differ]), learner.pair_probabilities(padded[differ], other[differ]))


# ----------------------------------------------------------------------------- the loop and the config
def test_loop_asks_about_segments_that_outlive_their_episode(make_loop):
    """Chain episodes last at most 12 steps: 16-step segments exist only with absorbing steps."""
    from pbrl.query import QueryConfig

    def loop(absorbing: bool):
        return make_loop(chain_log(600, seed=0), query=QueryConfig(strategy="disagreement", first_round_uniform=False),
                         store=PreferenceStore(":memory:"), episode_length=12, budget=8, per_round=8, interval=10,
                         segment_length=16, absorbing=absorbing)

    with pytest.warns(UserWarning, match="postponed"):
        assert loop(absorbing=False).run_round(step=600, recent_returns=[]).postponed
    padded = loop(absorbing=True)
    result = padded.run_round(step=600, recent_returns=[])
    metrics = result.metrics
    assert not result.postponed and result.round_index == 0 and len(result.labels) == 8
    assert metrics["teacher/labeled"] == 8 and "reward/fresh_pair_accuracy" in metrics
    data, _ = padded.store.dataset()
    assert data.left.absorbing.any(axis=1).all() and data.right.absorbing.any(axis=1).all()


def test_reward_free_methods_refuse_absorbing_segments():
    from pbrl.experiments.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="feedback.absorbing=false"):
        parse_config({"learner": {"type": "ipl"}, "feedback": {"absorbing": True}})
    assert parse_config({"learner": {"type": "advantage"}, "feedback": {"absorbing": True}}).feedback.absorbing


def test_a_hat_as_reward_with_its_constant_unpinned_warns():
    import warnings

    from pbrl.experiments.config import parse_config

    build = lambda learner, **sections: parse_config({"learner": {"type": "advantage", **learner}, **sections})  # noqa: E731
    with pytest.warns(UserWarning, match="learner.anchor=true or feedback.absorbing=true"):
        build({"mode": "reward", "anchor": False})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build({"mode": "reward", "anchor": False}, feedback={"absorbing": True})
        build({"mode": "reward", "anchor": True})
        build({"mode": "greedy", "anchor": False})


# ----------------------------------------------------------------------------- a person's view
def test_a_padded_hopper_segment_renders_with_its_last_frame_held():
    from pbrl import envs
    from stable_baselines3.common.vec_env import DummyVecEnv

    from pbrl.agents.preference_env import PreferenceVecEnv

    mujoco = pytest.importorskip("mujoco")
    try:
        mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco><worldbody/></mujoco>"), 8, 8).close()
    except Exception as err:  # no EGL/Mesa on this machine
        pytest.skip(f"headless rendering unavailable (MUJOCO_GL=egl): {err}")
    log = TransitionLog(300, 1, "gym:Hopper-v5")
    venv = PreferenceVecEnv(DummyVecEnv([lambda: envs.make("gym:Hopper-v5", seed=0, max_episode_steps=100)]), None, log)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(150):
        venv.step(rng.uniform(-1, 1, (1, 3)))
    assert log.arrays["terminals"].any()  # random actions make it fall
    batch = log.sample_segments(200, 8, rng, absorbing=True)
    i = int(np.flatnonzero(batch.segments.absorbing.sum(1) >= 2)[0])
    z = batch.segments.absorbing[i]
    env = envs.make("gym:Hopper-v5", seed=0)
    env.reset(seed=0)
    frames = envs.render_states(env, batch.provenance.sim_states[i], 32, 32)
    last = int(np.flatnonzero(~z)[-1])  # the terminal step
    assert frames.shape == (8, 32, 32, 3)
    for t in np.flatnonzero(z):
        np.testing.assert_array_equal(frames[t], frames[last])
