"""The regret teacher and the optimal-advantage learner on a chain MDP whose A* is exact,
and the SAC expert's advantage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pbrl.segments import Provenance, SegmentBatch, Segments, SegmentTruth
from pbrl.teachers import RegretTeacher, SyntheticTeacher, SyntheticTeacherConfig

# ----------------------------------------------------------------------------- the chain MDP
# States 0…5 on a line, actions left/right (continuous a[0] < 0 is left), deterministic,
# clamped at the ends; reward 1 for being in state 5, γ = 0.9. A* = Q* − V* by value iteration.
N_STATES, GAMMA = 6, 0.9


def step(s: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.clip(s + np.where(right, 1, -1), 0, N_STATES - 1)


def reward(s: np.ndarray) -> np.ndarray:
    return (s == N_STATES - 1).astype(np.float64)


def optimal_advantage_table() -> np.ndarray:
    """``A*[s, a]`` for a ∈ {left, right}."""
    v = np.zeros(N_STATES)
    s = np.arange(N_STATES)
    for _ in range(500):
        q = np.stack([reward(s) + GAMMA * v[step(s, np.full(N_STATES, r))] for r in (False, True)], axis=1)
        v = q.max(axis=1)
    return q - v[:, None]


A_STAR = optimal_advantage_table()


def chain_advantage(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The exact A*(s, a) as the teacher's callable: obs one-hot [N, 6], actions [N, 1]."""
    return A_STAR[obs.argmax(axis=1), (actions[:, 0] > 0).astype(int)]


def chain_segments(starts: np.ndarray, moves: np.ndarray) -> SegmentBatch:
    """Segments from start states ``[B]`` and right/left moves ``[B, T]`` (bool)."""
    b, t = moves.shape
    states = np.zeros((b, t + 1), dtype=int)
    states[:, 0] = starts
    for i in range(t):
        states[:, i + 1] = step(states[:, i], moves[:, i])
    eye = np.eye(N_STATES, dtype=np.float32)
    actions = np.where(moves, 0.5, -0.5).astype(np.float32)[..., None]
    segments = Segments(eye[states[:, :-1]], actions, eye[states[:, 1:]])
    truth = SegmentTruth(reward(states[:, :-1]), np.zeros((b, t)))
    return SegmentBatch(segments, truth, Provenance("chain", np.zeros(b, int), np.zeros(b, int)))


def random_chain_pairs(n: int, t: int = 3, seed: int = 0) -> tuple[SegmentBatch, SegmentBatch]:
    rng = np.random.default_rng(seed)
    make = lambda: chain_segments(rng.integers(0, N_STATES, n), rng.random((n, t)) < 0.5)  # noqa: E731
    return make(), make()


# ----------------------------------------------------------------------------- the teacher
def test_chain_advantage_is_optimal_advantage():
    assert np.allclose(A_STAR.max(axis=1), 0) and (A_STAR[:, 1] == 0).all()  # right is optimal everywhere
    assert A_STAR[0, 0] < 0 and A_STAR[N_STATES - 1, 0] < 0


def test_regret_labels_follow_regret_not_partial_return():
    # Crafted: an optimal segment far from the reward (return 0, regret 0) against a lucky
    # one that starts on the reward and walks away (return 1, regret > 0).
    optimal = chain_segments(np.array([0]), np.array([[True, True]]))
    lucky = chain_segments(np.array([N_STATES - 1]), np.array([[False, False]]))
    rng = np.random.default_rng(0)
    assert RegretTeacher(chain_advantage).label(optimal, lucky, rng)[0] == 1.0
    assert SyntheticTeacher().label(optimal, lucky, rng)[0] == 0.0

    left, right = random_chain_pairs(400)
    labels = RegretTeacher(chain_advantage).label(left, right, rng)
    regret_left = chain_advantage(left.segments.obs.reshape(-1, N_STATES), left.segments.actions.reshape(-1, 1)).reshape(400, -1).sum(1)
    regret_right = chain_advantage(right.segments.obs.reshape(-1, N_STATES), right.segments.actions.reshape(-1, 1)).reshape(400, -1).sum(1)
    np.testing.assert_array_equal(labels, (regret_left >= regret_right).astype(float))
    partial = SyntheticTeacher().label(left, right, rng)
    disagree = labels != partial
    assert disagree.sum() >= 20  # the two models really differ on this data …
    decided = regret_left[disagree] != regret_right[disagree]
    assert (labels[disagree][decided] == (regret_left > regret_right)[disagree][decided]).all()  # … and regret wins


def test_boltzmann_regret_probability():
    # Σ A*(optimal) − Σ A*(lucky) = −(A*[5, left] + A*[4, left]) =: Δ; P[optimal ≻ lucky] = σ(β Δ)
    n, beta = 20000, 1.0
    optimal = chain_segments(np.zeros(n, int), np.ones((n, 2), bool))
    lucky = chain_segments(np.full(n, N_STATES - 1), np.zeros((n, 2), bool))
    delta = -(A_STAR[5, 0] + A_STAR[4, 0])
    labels = RegretTeacher(chain_advantage, SyntheticTeacherConfig(beta=beta)).label(optimal, lucky, np.random.default_rng(1))
    assert abs(labels.mean() - 1 / (1 + math.exp(-beta * delta))) < 0.01


def test_mistake_equal_and_skip_knobs():
    optimal = chain_segments(np.array([0, 0]), np.array([[True, True], [True, True]]))
    lucky = chain_segments(np.array([N_STATES - 1, 0]), np.array([[False, False], [True, True]]))  # 2nd pair: identical
    rng = np.random.default_rng(0)
    flipped = RegretTeacher(chain_advantage, SyntheticTeacherConfig(eps_mistake=1.0)).label(optimal, lucky, rng)
    np.testing.assert_array_equal(flipped, [0.0, 0.0])  # a certain mistake flips both answers (tie → left → flipped)
    equal = RegretTeacher(chain_advantage, SyntheticTeacherConfig(eps_equal=0.1))
    equal.calibrate(mean_segment_return=1.0)  # threshold 0.1: regrets equal on the 2nd pair only
    np.testing.assert_array_equal(equal.label(optimal, lucky, rng), [1.0, 0.5])
    skip = RegretTeacher(chain_advantage, SyntheticTeacherConfig(eps_skip=0.5))
    skip.calibrate(mean_segment_return=1.0)  # skip when both partial returns ≤ 0.5: the 2nd pair (0 and 0)
    labels = skip.label(optimal, lucky, rng)
    assert labels[0] == 1.0 and np.isnan(labels[1])


def test_advantage_with_the_wrong_shape_is_refused():
    left, right = random_chain_pairs(3)
    with pytest.raises(ValueError, match="advantage callable returned shape"):
        RegretTeacher(lambda o, a: np.zeros((len(o), 1))).label(left, right, np.random.default_rng(0))


# ----------------------------------------------------------------------------- the SAC expert
@pytest.fixture(scope="module")
def tiny_sac():
    from stable_baselines3 import SAC

    return SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")


def test_sac_advantage_is_q_minus_policy_mean(tiny_sac):
    import torch

    from pbrl.agents.expert import sac_advantage

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(5, 3)).astype(np.float32)
    a1, a2 = rng.uniform(-1, 1, (5, 1)).astype(np.float32), rng.uniform(-1, 1, (5, 1)).astype(np.float32)
    advantage = sac_advantage(tiny_sac, samples=256)
    q = lambda a, o=obs: torch.min(*tiny_sac.critic(torch.as_tensor(o), torch.as_tensor(a))).squeeze(1).detach().numpy()  # noqa: E731
    # The baseline E_π Q(s, ·) cancels in differences: A(s, a₁) − A(s, a₂) = Q(s, a₁) − Q(s, a₂) (twin min).
    np.testing.assert_allclose(advantage(obs, a1) - advantage(obs, a2), q(a1) - q(a2), atol=1e-5)
    np.testing.assert_array_equal(advantage(obs, a1), advantage(obs, a1))  # reproducible noise
    # Under the policy the advantage averages to zero (up to Monte-Carlo error).
    many = np.repeat(obs, 400, axis=0)
    with torch.no_grad():
        sampled = tiny_sac.actor.action_log_prob(torch.as_tensor(many))[0].numpy()
    mean_adv = advantage(many, sampled).reshape(5, 400).mean(axis=1)
    spread = q(sampled, many).reshape(5, 400).std(axis=1)
    assert (np.abs(mean_adv) < 0.25 * spread + 1e-6).all()


def test_builder_makes_a_regret_teacher_from_a_saved_expert(tiny_sac, tmp_path):
    from pbrl.experiments.config import ConfigError, parse_config
    from pbrl.registry import TEACHERS, BuildContext

    tiny_sac.save(tmp_path / "agent.zip")
    ctx = BuildContext("gym:Pendulum-v1", 3, 1, 200)
    build_teacher = lambda config: TEACHERS.get(config.teacher_type).factory(config.teacher, ctx)  # noqa: E731
    teacher = build_teacher(parse_config({}, ["teacher.type=regret", f"teacher.expert={tmp_path / 'agent.zip'}"]))
    assert isinstance(teacher, RegretTeacher) and teacher.name == "regret:oracle"
    rng = np.random.default_rng(0)
    batch = lambda: SegmentBatch(  # noqa: E731
        Segments(rng.normal(size=(4, 5, 3)).astype(np.float32), rng.uniform(-1, 1, (4, 5, 1)).astype(np.float32),
                 rng.normal(size=(4, 5, 3)).astype(np.float32)),
        SegmentTruth(np.zeros((4, 5)), np.zeros((4, 5))), Provenance("p", np.zeros(4, int), np.zeros(4, int)),
    )
    labels = teacher.label(batch(), batch(), rng)
    assert set(np.unique(labels)) <= {0.0, 1.0} and len(labels) == 4
    with pytest.raises(ConfigError, match="teacher.expert"):
        build_teacher(parse_config({"teacher": {"type": "regret"}}))


# ----------------------------------------------------------------------------- the optimal-advantage learner
def _chain_grid() -> tuple[np.ndarray, np.ndarray]:
    """Every (state, left/right) of the chain: obs [12, 6], actions [12, 1]."""
    obs = np.repeat(np.eye(N_STATES, dtype=np.float32), 2, axis=0)
    return obs, np.tile(np.array([[-0.5], [0.5]], np.float32), (N_STATES, 1))


def _fit(labels_beta: float, n: int, mode: str = "greedy", log=None):
    from pbrl.learners import AdvantageConfig, AdvantageLearner, BTEnsembleConfig
    from pbrl.segments import PreferenceDataset

    left, right = random_chain_pairs(n, seed=1)
    labels = RegretTeacher(chain_advantage, SyntheticTeacherConfig(beta=labels_beta)).label(left, right, np.random.default_rng(2))
    reward = BTEnsembleConfig(ensemble_size=2, hidden_sizes=(32, 32), lr=3e-3, max_epochs=100, stop_accuracy=1.01)
    learner = AdvantageLearner(N_STATES, 1, reward, AdvantageConfig(mode=mode, anchor_steps=300), seed=0)
    if log is not None:
        learner.observe(log.view())
    learner.update(PreferenceDataset(left.segments, right.segments, labels))
    return learner, left, right


def test_advantage_learner_recovers_a_star_up_to_a_constant():
    import torch

    # Boltzmann (β = 1) labels fix the scale, so Â = A* + c: the only invariance left.
    learner, left, right = _fit(1.0, 2000)
    obs, actions = _chain_grid()
    a_hat = learner.advantage_tensor(torch.as_tensor(obs), torch.as_tensor(actions)).numpy().reshape(N_STATES, 2)
    shift = (a_hat - A_STAR).mean()
    assert np.abs(a_hat - A_STAR - shift).max() < 0.35  # A* spans [−1.7, 0]
    assert (a_hat.argmax(axis=1) == 1).all()  # greedy on Â is optimal everywhere
    # The learner's pair probability is the regret model: σ(Σ Â¹ − Σ Â²), member by member.
    p = learner.pair_probabilities(left.segments[:5], right.segments[:5])
    sums = lambda s: learner._member_rewards(learner._segment_tensor(s).reshape(-1, N_STATES + 1)).reshape(2, 5, -1).sum(-1)  # noqa: E731
    with torch.no_grad():
        np.testing.assert_allclose(p, torch.sigmoid(sums(left.segments[:5]) - sums(right.segments[:5])).numpy(), rtol=1e-5)


def test_deterministic_labels_recover_a_star_up_to_scale_and_constant():
    import torch

    learner, _, _ = _fit(math.inf, 600)
    obs, actions = _chain_grid()
    a_hat = learner.advantage_tensor(torch.as_tensor(obs), torch.as_tensor(actions)).numpy()
    assert np.corrcoef(a_hat, A_STAR.ravel())[0, 1] > 0.98
    assert (a_hat.reshape(N_STATES, 2).argmax(axis=1) == 1).all()


def test_anchored_reward_pins_the_constant_at_the_greedy_action():
    import torch

    from pbrl.transitions import TransitionLog

    log = TransitionLog(64, 1, "chain")
    eye = np.eye(N_STATES, dtype=np.float32)
    for t in range(64):
        s = t % N_STATES
        log.add(eye[s][None], np.array([[0.5]], np.float32), eye[min(s + 1, 5)][None], np.zeros(1), np.zeros(1), np.zeros(1, bool))
    learner, _, _ = _fit(1.0, 1000, mode="reward", log=log)
    grid = torch.linspace(-1, 1, 41)
    for s in range(N_STATES):
        obs = torch.as_tensor(np.repeat(eye[s][None], 41, axis=0))
        rewards = learner.reward_tensor(obs, grid[:, None], obs).numpy()
        assert rewards.max() == pytest.approx(0.0, abs=0.05)  # max_a r(s, a) = 0, as for A*
    unanchored = learner.advantage_tensor(torch.as_tensor(eye), torch.full((N_STATES, 1), 0.5)).numpy()
    assert np.abs(unanchored).mean() > 0.2  # without the fix the free constant stays in the reward


def test_greedy_mode_is_a_pebble_agent():
    from pbrl.experiments.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="learner.mode=greedy .* use agent.type=sac, or learner.mode=reward"):
        parse_config({}, ["learner.type=advantage", "agent.type=ppo"])
    assert parse_config({}, ["learner.type=advantage", "agent.gamma=0.5"]).agent_type == "sac"  # the greedy actor bootstraps nothing
    assert parse_config({}, ["learner.type=advantage", "agent.type=ppo", "learner.mode=reward"]).agent_type == "ppo"


def test_advantage_learner_in_the_loop_relabels_and_resumes(tmp_path):
    # Â as SAC's reward with the anchor (greedy mode's agent: tests/test_advantage_policy.py).
    extra = ["learner.mode=reward", "learner.anchor_steps=20", "steps=500", "feedback.budget=10"]
    from pbrl import Runner
    from tests.test_training import tiny

    trainer = Runner(tiny(tmp_path, "learner.type=advantage", "teacher.preset=stoc", *extra), tmp_path)
    trainer.train()
    buffer, learner = trainer.model.replay_buffer, trainer.learner
    n = buffer.filled()
    expected = learner.reward(buffer.observations[:n, 0], buffer.actions[:n, 0], buffer.next_observations[:n, 0])
    np.testing.assert_allclose(buffer.rewards[:n, 0], expected, rtol=1e-4, atol=1e-5)
    again = Runner(tiny(tmp_path, "learner.type=advantage", "teacher.preset=stoc", *extra), tmp_path, resume=True).learner
    np.testing.assert_allclose(again.reward(buffer.observations[:50, 0], buffer.actions[:50, 0], None), expected[:50], rtol=1e-5)
