"""SURF against its reference (alinlab/SURF, reward_model_semi_dataaug.py): the cropping masks,
the pseudo-label mask and the whole minibatch loss restated on small inputs; then the
learner on a fake log (pool growth, pseudo-labels used, determinism, checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from pbrl.learners.bradley_terry import BTEnsembleConfig
from pbrl.augment import crop_masks
from pbrl.learners.surf import SURF, SURFConfig, UnlabeledWalk, pseudo_labels
from pbrl.segments import PreferenceDataset
from tests.helpers import filled_log


def reference_cropping_mask(B: int, S: int, original_size_segment: int, crop_range: int, randint) -> tuple[np.ndarray, np.ndarray]:
    """``RewardModelSemiDataAug.get_cropping_mask`` with ``np.random.randint`` passed in."""
    length = randint(original_size_segment - crop_range, original_size_segment + crop_range + 1, size=B)
    start_index_1 = randint(0, S + 1 - length)
    start_index_2 = randint(0, S + 1 - length)
    mask_1 = np.zeros((B, S, 1))
    mask_2 = np.zeros((B, S, 1))
    for b in range(B):
        mask_1[b, start_index_1[b] : start_index_1[b] + length[b]] = 1
        mask_2[b, start_index_2[b] : start_index_2[b] + length[b]] = 1
    return mask_1[..., 0], mask_2[..., 0]


def reference_pseudo_labels(u_r_hat1_noaug: torch.Tensor, u_r_hat2_noaug: torch.Tensor, threshold_u: float):
    """The pseudo-labeling block of ``semi_train_reward`` (returns: [B] mask, [B] class 0 = seg1)."""
    u_r_hat_noaug = torch.cat([u_r_hat1_noaug, u_r_hat2_noaug], axis=-1)
    pred = torch.softmax(u_r_hat_noaug, dim=1)
    pred_max = pred.max(1)
    mask = pred_max[0] >= threshold_u
    return mask, pred_max[1]


@pytest.mark.parametrize("window,crop", [(5, 5), (3, 6), (0, 0)])
def test_crop_masks_match_reference(window: int, crop: int) -> None:
    S, B = 20, 64
    ours = crop_masks((B,), S, window, crop, np.random.default_rng(3))
    theirs = reference_cropping_mask(B, S, S - 2 * window, crop, np.random.default_rng(3).integers)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    lengths = ours[0].sum(1)
    assert lengths.min() >= S - 2 * window - crop and lengths.max() <= S - 2 * window + crop
    assert (ours[0] != ours[1]).any() or crop == 0


def test_pseudo_labels_match_reference() -> None:
    g = torch.Generator().manual_seed(0)
    r1, r2 = torch.randn(200, 1, generator=g) * 4, torch.randn(200, 1, generator=g) * 4
    r2[:5] = r1[:5]  # ties: never confident at τ > ½
    for tau in (0.95, 0.99):
        label, mask = pseudo_labels(r1[:, 0], r2[:, 0], tau)
        ref_mask, ref_class = reference_pseudo_labels(r1, r2, tau)
        torch.testing.assert_close(mask.bool(), ref_mask)
        torch.testing.assert_close(label, 1.0 - ref_class.float())  # pbrl: y = P[σ¹ ≻ σ²]; class 0 = σ¹
        assert 0 < mask.sum() < len(mask)


@pytest.mark.parametrize("label_margin", [0.0, 0.1])
def test_minibatch_loss_matches_reference(label_margin: float) -> None:
    """One member: labeled cropped CE (``semi_train_reward``; with a label margin ``semi_train_soft_reward``'s
    smoothed targets) + λ_u · masked cropped CE on pseudo-labels, restated step by step."""
    torch.manual_seed(0)
    S, w, c, b, mu, lam, tau = 12, 2, 3, 6, 2, 0.7, 0.6
    log = filled_log(400, episode_length=100)
    cfg = SURFConfig(threshold=tau, unlabeled_ratio=mu, unlabeled_weight=lam, window=w, crop_range=c, pool_ratio=5)
    learner = SURF(3, 2, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(16,), max_epochs=1, label_margin=label_margin), cfg, seed=0)
    rng = np.random.default_rng(1)
    left, right = (log.sample_segments(b, S, rng).segments for _ in range(2))
    u_left, u_right = (log.sample_segments(40, S, rng).segments for _ in range(2))
    learner.add_unlabeled(u_left, u_right)
    labels = torch.as_tensor(rng.integers(0, 2, b), dtype=torch.float32)[None]
    walk = UnlabeledWalk(learner._labeled(learner.pool[0]), learner._labeled(learner.pool[1]))
    np_state, torch_state = learner.rng.bit_generator.state, learner.generator.get_state()
    index = torch.arange(b)[None]
    loss, _, _ = learner._batch_loss(learner._labeled(left), learner._labeled(right), index, labels, walk)

    # the reference's computation with the same random draws
    draws = np.random.default_rng()
    draws.bit_generator.state = np_state
    gen = torch.Generator().set_state(torch_state)
    u_idx = torch.randperm(40, generator=gen)[: b * mu].numpy()
    def r_hat_member(seg):  # [B, S, 1], the member's per-step rewards
        x = torch.as_tensor(np.concatenate([seg.obs, seg.actions], -1), dtype=torch.float32)
        return learner.net(x.reshape(-1, x.shape[-1]))[0].reshape(len(seg), S, 1)

    ce = nn.CrossEntropyLoss()
    uce = nn.CrossEntropyLoss(reduction="none")
    ref_labels = (1 - labels[0]).long()  # class 1 = seg2 preferred
    r_hat1, r_hat2 = r_hat_member(left), r_hat_member(right)
    mask_1, mask_2 = (torch.as_tensor(m, dtype=torch.float32)[..., None] for m in reference_cropping_mask(b, S, S - 2 * w, c, draws.integers))
    r_hat = torch.cat([(mask_1 * r_hat1).sum(axis=1), (mask_2 * r_hat2).sum(axis=1)], axis=-1)
    if label_margin > 0:  # semi_train_soft_reward: one-hot · (1 − 2m) + m, softXEnt_loss
        target_onehot = torch.zeros_like(r_hat).scatter(1, ref_labels.unsqueeze(1), 1 - 2 * label_margin) + label_margin
        curr_loss = torch.mean(torch.sum(-target_onehot * torch.log_softmax(r_hat, dim=1), dim=1))
    else:
        curr_loss = ce(r_hat, ref_labels)
    u_r_hat1, u_r_hat2 = r_hat_member(u_left[u_idx]), r_hat_member(u_right[u_idx])
    with torch.no_grad():
        mask, pseudo = reference_pseudo_labels(u_r_hat1[:, w:-w].sum(axis=1), u_r_hat2[:, w:-w].sum(axis=1), tau)
    u_mask_1, u_mask_2 = (torch.as_tensor(m, dtype=torch.float32)[..., None] for m in reference_cropping_mask(b * mu, S, S - 2 * w, c, draws.integers))
    u_r_hat = torch.cat([(u_mask_1 * u_r_hat1).sum(axis=1), (u_mask_2 * u_r_hat2).sum(axis=1)], axis=-1)
    curr_loss = curr_loss + torch.mean(uce(u_r_hat, pseudo) * mask) * lam
    assert 0 < mask.sum() < len(mask)
    torch.testing.assert_close(loss, curr_loss, rtol=1e-5, atol=1e-6)


def _fit(seed: int) -> tuple[SURF, dict]:
    log = filled_log(600, episode_length=100)
    rng = np.random.default_rng(0)
    left, right = (log.sample_segments(40, 12, rng) for _ in range(2))
    labels = (left.truth.returns > right.truth.returns).astype(np.float64)
    cfg = SURFConfig(window=2, crop_range=2, threshold=0.7, pool_ratio=3)
    learner = SURF(3, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(32, 32), max_epochs=30, stop_accuracy=1.0), cfg, seed=seed)
    metrics = {}
    for end in (20, 40):
        learner.observe(log.view())
        metrics = learner.update(PreferenceDataset(left.segments[:end], right.segments[:end], labels[:end]))
    return learner, metrics


def test_surf_learns_with_pseudo_labels_and_is_deterministic() -> None:
    learner, metrics = _fit(0)
    assert metrics["surf_pool"] == 3 * 40
    assert metrics["surf_pseudo_ratio"] > 0
    assert metrics["train_accuracy"] > 0.8
    again, _ = _fit(0)
    x = np.random.default_rng(5).normal(size=(30, 5)).astype(np.float32)
    np.testing.assert_array_equal(learner.reward(x[:, :3], x[:, 3:], x[:, :3]), again.reward(x[:, :3], x[:, 3:], x[:, :3]))
    restored = SURF(3, 2, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(32, 32)), SURFConfig(window=2, crop_range=2), seed=9)
    restored.load_state_dict(learner.state_dict())
    assert len(restored.pool[0]) == 120 and restored.labels_seen == 40
    np.testing.assert_array_equal(learner.reward(x[:, :3], x[:, 3:], x[:, :3]), restored.reward(x[:, :3], x[:, 3:], x[:, :3]))


def test_config_refuses_crops_longer_than_the_segment() -> None:
    with pytest.raises(ValueError, match="crop_range"):
        SURFConfig(window=1, crop_range=3)
