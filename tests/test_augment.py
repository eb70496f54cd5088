"""QPA's reward-learning augmentation restated from huxiao09/QPA ``reward_model.py``.

``get_cropping_mask`` (lines 680–695) and the augmented branch of ``train_reward_iter``
(lines 723–741), with ``np.random.randint`` replaced by the same draws from a seeded
``np.random.Generator`` (``integers`` has randint's half-open bounds).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from pbrl.augment import QPA_CROPS, qpa_crops
from pbrl.learners.bradley_terry import bradley_terry_loss


def qpa_get_cropping_mask(r_hat1: torch.Tensor, w: int, randint) -> tuple[torch.Tensor, torch.Tensor]:
    mask_1_, mask_2_ = [], []
    for i in range(w):
        B, S, _ = r_hat1.shape
        length = randint(S - 15, S - 5 + 1, size=B)
        start_index_1 = randint(0, S + 1 - length)
        start_index_2 = randint(0, S + 1 - length)
        mask_1 = torch.zeros((B, S, 1))
        mask_2 = torch.zeros((B, S, 1))
        for b in range(B):
            mask_1[b, start_index_1[b] : start_index_1[b] + length[b]] = 1
            mask_2[b, start_index_2[b] : start_index_2[b] + length[b]] = 1
        mask_1_.append(mask_1)
        mask_2_.append(mask_2)
    return torch.cat(mask_1_), torch.cat(mask_2_)


def qpa_augmented_logits(r_hat1, r_hat2, labels, data_aug_ratio, randint):
    """``train_reward_iter``'s member step: r_hat ``[B, S, 1]`` per side, labels ``[B]`` (0 = σ¹ preferred)."""
    labels = labels.repeat(data_aug_ratio)
    mask_1, mask_2 = qpa_get_cropping_mask(r_hat1, data_aug_ratio, randint)
    r_hat1 = r_hat1.repeat(data_aug_ratio, 1, 1)
    r_hat2 = r_hat2.repeat(data_aug_ratio, 1, 1)
    r_hat1 = (mask_1 * r_hat1).sum(axis=1)
    r_hat2 = (mask_2 * r_hat2).sum(axis=1)
    return torch.cat([r_hat1, r_hat2], axis=-1), labels


def test_qpa_crops_match_qpas_train_reward_iter():
    g = torch.Generator().manual_seed(0)
    B, S = 7, 50
    r1, r2 = torch.randn(B, S, 1, generator=g), torch.randn(B, S, 1, generator=g)
    classes = torch.randint(0, 2, (B,), generator=g)  # QPA's class index: 0 = σ¹ preferred
    logits, ref_labels = qpa_augmented_logits(r1, r2, classes, QPA_CROPS, np.random.default_rng(5).integers)
    ours_left, ours_right, ours_labels = qpa_crops(r1[..., 0], r2[..., 0], 1.0 - classes.float(), np.random.default_rng(5))
    torch.testing.assert_close(ours_left, logits[:, 0])
    torch.testing.assert_close(ours_right, logits[:, 1])
    torch.testing.assert_close(ours_labels, 1.0 - ref_labels.float())  # pbrl: y = P[σ¹ ≻ σ²]
    # the loss QPA minimises (CrossEntropyLoss over the 20·B crops) is pbrl's Bradley–Terry loss on them
    torch.testing.assert_close(bradley_terry_loss(ours_left, ours_right, ours_labels).mean(), nn.CrossEntropyLoss()(logits, ref_labels))


def test_qpa_crops_keep_35_to_45_steps_and_every_leading_dimension():
    rng = np.random.default_rng(1)
    ones = torch.ones(3, 64, 50)  # [E, B, S] of unit rewards: a crop's return is its length
    left, right, labels = qpa_crops(ones, ones, torch.zeros(64), rng)
    assert left.shape == right.shape == (3, 20 * 64) and labels.shape == (20 * 64,)
    assert left.min() == 35 and left.max() == 45 and (left == right).all()  # one length per pair and crop
    assert len(torch.unique(left[0])) == 11
