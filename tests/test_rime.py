"""RIME against its reference (CJReinforce/RIME_ICML2024): the running loss statistics
(``utils.RunningMeanStd``, mode 'fixed'), the trust filter, the flips and β's decay
(``reward_model_RIME.RIMERewardModel.train_reward`` / ``get_threshold_beta``) restated on
small inputs; the warm start and a round on noisy labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pbrl.learners.bradley_terry import BTEnsembleConfig
from pbrl.knn import knn_distance
from pbrl.learners.rime import RIME, LossStatistics, RIMEConfig
from pbrl.segments import PreferenceDataset
from tests.helpers import filled_log


class ReferenceRunningMeanStd:
    """``utils.RunningMeanStd`` of the reference, verbatim in its arithmetic."""

    def __init__(self, mean=0, std=1.0, epsilon=np.finfo(np.float32).eps.item(), mode="common", lr=0.1):
        self.mean, self.var = mean, std
        self.max = mean
        self.count = 0
        self.eps = epsilon
        self.lr = lr
        self.mode = mode

    def update(self, data_array) -> None:
        batch_mean, batch_var = np.mean(data_array, axis=0), np.var(data_array, axis=0)
        batch_count = len(data_array)
        delta = batch_mean - self.mean
        total_count = self.count + batch_count
        if self.mode == "common":
            new_mean = self.mean + delta * batch_count / total_count
            new_max = self.max + (np.max(data_array) - self.max) / total_count
        else:
            new_mean = self.mean + delta * self.lr
            new_max = self.max + (np.max(data_array) - self.max) * self.lr
        m_a = self.var * self.count
        m_b = batch_var * batch_count
        m_2 = m_a + m_b + delta**2 * self.count * batch_count / total_count
        new_var = m_2 / total_count
        self.mean, self.var = new_mean, new_var
        self.count = total_count
        self.max = new_max


def reference_filter(p_hat_all: torch.Tensor, buffer_label: np.ndarray, KL_div: ReferenceRunningMeanStd, beta: float,
                     threshold_alpha: float, flipping_tau: float):
    """The filter block of ``train_reward`` (hard labels; class 1 = seg2 preferred)."""
    predict_label = p_hat_all.mean(0)
    target_label = torch.zeros_like(predict_label).scatter(1, torch.from_numpy(buffer_label.flatten()).long().unsqueeze(1), 1)
    kl = (-target_label * torch.log(predict_label)).sum(1)
    x = KL_div.max
    baseline = -np.log(x + 1e-8) + threshold_alpha * x
    uncertainty = min(beta * KL_div.var, 3.0)
    trust = kl < baseline + uncertainty
    flip = kl > -np.log(flipping_tau)
    KL_div.update(kl[trust].numpy())
    return trust, flip


def reference_beta(update_step: int, k: int, beta_init: float = 3.0, beta_min: float = 1.0) -> float:
    """``get_threshold_beta``."""
    return max(beta_min, -(beta_init - beta_min) / k * update_step + beta_init)


def test_loss_statistics_match_reference() -> None:
    rng = np.random.default_rng(0)
    ours, theirs = LossStatistics(0.1), ReferenceRunningMeanStd(mode="fixed", lr=0.1)
    for size in (5, 40, 1, 17):
        values = rng.exponential(size=size)
        ours.update(values)
        theirs.update(values)
        assert (ours.mean, ours.var, ours.max, ours.count) == pytest.approx((theirs.mean, theirs.var, theirs.max, theirs.count), rel=1e-12)


def test_beta_decays_like_reference() -> None:
    learner = RIME(3, 2, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,)), RIMEConfig(beta_decay_epochs=60))
    for step in (0, 1, 30, 59, 60, 200):
        learner.epochs_done = step
        assert learner.beta() == pytest.approx(reference_beta(step, 60))


def _pairs(n: int = 120, flip: float = 0.3, seed: int = 0):
    log = filled_log(800, episode_length=100)
    rng = np.random.default_rng(seed)
    left, right = (log.sample_segments(n, 10, rng) for _ in range(2))
    truth = (left.truth.returns > right.truth.returns).astype(np.float64)
    noisy = np.where(rng.random(n) < flip, 1.0 - truth, truth)
    return log, left.segments, right.segments, truth, noisy


def test_filter_and_flips_match_reference_over_epochs() -> None:
    """Three epochs of a round: our masks equal the reference's on the same model (p̂ by softmax per member)."""
    _, left, right, _, noisy = _pairs()
    cfg = RIMEConfig(beta_decay_epochs=4, flip_tau=0.4, warm_start_ratio=0, warmup_epochs=2)
    learner = RIME(3, 2, BTEnsembleConfig(ensemble_size=3, hidden_sizes=(32,), max_epochs=1, lr=3e-3), cfg, seed=0)
    reference_stats = ReferenceRunningMeanStd(mode="fixed", lr=0.1)
    seen_trust = seen_flip = 0
    for epoch in range(6):
        with torch.no_grad():
            r1, r2 = learner.member_segment_returns(left), learner.member_segment_returns(right)  # [E, N]
            p_hat_all = F.softmax(torch.stack([r1, r2], dim=-1), dim=-1)  # (de, N, 2)
        trust, flip = reference_filter(p_hat_all, (1 - noisy).astype(np.int64), reference_stats, reference_beta(epoch, 4), 0.5, 0.4)
        metrics = learner.update(PreferenceDataset(left, right, noisy))
        assert metrics["rime_trusted"] == pytest.approx(trust.float().mean().item())
        assert metrics["rime_flipped"] == pytest.approx(flip.float().mean().item())
        assert (learner.stats.max, learner.stats.var) == pytest.approx((reference_stats.max, reference_stats.var), rel=1e-4)
        seen_trust += int(0 < trust.sum() < len(trust))
        seen_flip += int(flip.sum() > 0)
    assert seen_trust > 0 and seen_flip > 0  # the filter excluded and the flips included someone


def test_warm_start_fits_the_normalised_state_entropy() -> None:
    log = filled_log(300, episode_length=100)
    learner = RIME(3, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(64, 64), lr=1e-3), RIMEConfig(warm_start_ratio=2.0, warm_start_batch=128), seed=0)
    segments, _ = log.recent(300)
    obs = torch.as_tensor(segments.obs[:, 0])
    dists = torch.cdist(obs, obs)
    knn = torch.sort(dists, dim=1).values[:, 5]  # the 5th neighbour besides the point itself
    torch.testing.assert_close(knn_distance(obs, obs, 5, max_elements=64 * 300), knn)
    metrics = learner.observe(log.view())
    assert metrics["rime_warm_start_steps"] == 600
    learned = learner.reward(segments.obs[:, 0], segments.actions[:, 0], segments.next_obs[:, 0])
    assert np.corrcoef(learned, knn.numpy())[0, 1] > 0.5
    assert learner.observe(log.view()) == {}  # once


def test_rime_round_on_noisy_labels_and_checkpoint() -> None:
    _, left, right, truth, noisy = _pairs(flip=0.3)
    learner = RIME(3, 2, BTEnsembleConfig(ensemble_size=3, hidden_sizes=(32, 32), max_epochs=40, lr=1e-3, stop_accuracy=0.98),
                   RIMEConfig(warm_start_ratio=0, warmup_epochs=5, min_epochs=5), seed=0)
    metrics = learner.update(PreferenceDataset(left, right, noisy))
    assert 0 < metrics["rime_trusted"] < 1
    restored = RIME(3, 2, BTEnsembleConfig(ensemble_size=3, hidden_sizes=(32, 32)), RIMEConfig(), seed=5)
    restored.load_state_dict(learner.state_dict())
    assert restored.epochs_done == learner.epochs_done and restored.scheduler.last_epoch == learner.scheduler.last_epoch
    np.testing.assert_array_equal(restored.preference_probability(left, right), learner.preference_probability(left, right))


def test_rime_refuses_the_qpa_iteration_schedule() -> None:
    """RIME has its own epoch loop: ``learner.schedule=iterations`` is refused, not ignored."""
    with pytest.raises(ValueError, match="learner.schedule"):
        RIME(3, 2, BTEnsembleConfig(schedule="iterations"))
