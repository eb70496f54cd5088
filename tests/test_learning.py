"""Learning test: the PEBBLE reward ensemble learns HalfCheetah's reward from a few hundred labels."""

import numpy as np

from pbrl import envs
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.metrics import pearson, preference_accuracy
from pbrl.rollout import Rollout, SineGait
from pbrl.segments import PreferenceDataset
from pbrl.teachers import SyntheticTeacher
from pbrl.transitions import TransitionLog


def collect_halfcheetah(episodes: int = 12, length: int = 500, seed: int = 0) -> TransitionLog:
    """Open-loop sinusoidal gaits of random frequency/phase/amplitude plus noise: varied speeds, both directions."""
    env = envs.make("gym:HalfCheetah-v5", seed=seed, max_episode_steps=length)
    rng = np.random.default_rng(seed)
    log = TransitionLog(capacity=episodes * length, env_id="gym:HalfCheetah-v5")
    rollout = Rollout(env, log, sim_states=False)
    for _ in range(episodes):
        reset_seed = int(rng.integers(1 << 30))
        omega, phase = rng.uniform(0.05, 0.6, 6), rng.uniform(0, 2 * np.pi, 6)
        amplitude, noise = rng.uniform(0.2, 1.0), rng.uniform(0.0, 0.8)
        rollout.run(SineGait(amplitude, omega, phase, noise, rng), episodes=1, seed=reset_seed)
    return log


def test_ensemble_learns_halfcheetah_reward_from_synthetic_labels():
    log = collect_halfcheetah()
    rng = np.random.default_rng(1)
    teacher = SyntheticTeacher()

    def labeled(n):
        left, right = log.sample_segments(n, 50, rng), log.sample_segments(n, 50, rng)
        return PreferenceDataset(left.segments, right.segments, teacher.label(left, right, rng)), left.truth

    (train, _), (heldout, heldout_truth) = labeled(300), labeled(500)
    learner = BTEnsemble(17, 6, BTEnsembleConfig(hidden_sizes=(64, 64, 64), max_epochs=60), seed=0)
    learner.update(train)

    accuracy = preference_accuracy(learner.preference_probability(heldout.left, heldout.right), heldout.labels)
    steps, true_rewards = log.recent(log.size)
    correlation = pearson(learner.reward(steps.obs[:, 0], steps.actions[:, 0], steps.next_obs[:, 0]), true_rewards)
    predicted_returns = learner.member_segment_returns(heldout.left).mean(0).numpy()
    segment_correlation = pearson(predicted_returns, heldout_truth.rewards.sum(1))
    assert accuracy >= 0.8, accuracy
    assert correlation > 0.3, correlation  # per step: noisy, BT identifies reward only up to a shift
    assert segment_correlation > 0.8, segment_correlation
