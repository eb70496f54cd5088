"""Temporal cropping of labeled pairs for reward learning: SURF's masks and QPA's 20 crops per pair.

**Masks** (:func:`crop_masks`; SURF, alinlab/SURF ``reward_model_semi_dataaug.py``
``get_cropping_mask``): for segments of ``S`` stored steps with a centre of ``T = S − 2w``
steps, each pair gets one crop length and two independent starts,

    L ~ U{T − c, …, T + c},   s¹, s² ~ U{0, …, S − L},   mask = 1 on [s, s + L).

**QPA's augmentation** (:func:`qpa_crops`; huxiao09/QPA ``reward_model.py``
``get_cropping_mask`` and ``train_reward_iter``): every labeled pair ``(σ¹, σ², y)`` is
seen as ``data_aug_ratio = 20`` such crops, each with ``L ~ U{S − 15, …, S − 5}`` (35–45
steps for S = 50 — the same masks as SURF's with ``w = c = 5``), all trained on the same
label ``y``:

    R̂¹_k = Σ_t mask¹_k[t] r̂(σ¹_t),   R̂²_k likewise,   loss = mean_k CE([R̂¹_k, R̂²_k], y).

The per-step rewards are computed once on the whole segments and masked, crops are laid
out crop-major (``[20·B]`` = 20 blocks of the B pairs: QPA's ``torch.cat`` of 20 masks,
``r_hat.repeat(20, 1, 1)`` and ``labels.repeat(20)``), and the draws follow QPA's order
(per crop: B lengths, B left starts, B right starts). QPA uses the crops only in
``train_reward_iter`` — its DMC runs; its MetaWorld runs train with ``train_reward``,
which ignores ``data_aug_ratio``.
"""

from __future__ import annotations

import numpy as np
import torch

QPA_CROPS = 20
"""QPA's ``data_aug_ratio`` (``config/train_QPA.yaml``, ``run_QPA.sh``)."""
QPA_WINDOW = 5
QPA_CROP_RANGE = 5
"""QPA's crop lengths ``randint(S − 15, S − 5 + 1)`` are SURF's ``T ± c`` with ``T = S − 2·5``, ``c = 5``."""


def crop_masks(shape: tuple[int, ...], length: int, window: int, crop_range: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Temporal-cropping masks of both sides of ``shape = (..., B)`` pairs of ``length`` (S) steps.

    ``L ~ U{T − c, …, T + c}`` per pair with ``T = S − 2w``; starts ``U{0, …, S − L}`` drawn
    independently for the two sides; mask = 1 on ``[start, start + L)``. Returns two float
    arrays ``[..., B, S]`` (SURF's ``get_cropping_mask``).
    """
    centre = length - 2 * window
    if centre - crop_range < 1:
        raise ValueError(f"segments of {length} steps are too short for a crop window {window} and crop range {crop_range}")
    crop = rng.integers(centre - crop_range, centre + crop_range + 1, size=shape)
    start_left = rng.integers(0, length + 1 - crop)
    start_right = rng.integers(0, length + 1 - crop)
    t = np.arange(length)
    inside = lambda start: ((t >= start[..., None]) & (t < (start + crop)[..., None])).astype(np.float32)  # noqa: E731
    return inside(start_left), inside(start_right)


def qpa_crops(
    step_rewards_left: torch.Tensor,
    step_rewards_right: torch.Tensor,
    labels: torch.Tensor,
    rng: np.random.Generator,
    crops: int = QPA_CROPS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """QPA's augmented minibatch: per-step rewards ``[..., B, S]`` and labels ``[B]`` (or ``[..., B]``) → cropped returns ``[..., crops·B]`` ×2 and labels ``[crops·B]`` (``[..., crops·B]``).

    One set of masks serves every leading index (QPA draws them per member; with its single
    reward net that is the same). Feed the result to the usual Bradley–Terry loss.
    """
    pairs, length = step_rewards_left.shape[-2:]
    drawn = [crop_masks((pairs,), length, QPA_WINDOW, QPA_CROP_RANGE, rng) for _ in range(crops)]
    as_tensor = lambda masks: torch.as_tensor(np.concatenate(masks), device=step_rewards_left.device, dtype=step_rewards_left.dtype)  # noqa: E731
    mask_left, mask_right = as_tensor([m[0] for m in drawn]), as_tensor([m[1] for m in drawn])
    tile = lambda x: x.repeat(*([1] * (x.dim() - 2)), crops, 1)  # noqa: E731  [..., B, S] → [..., crops·B, S], crop-major
    return (tile(step_rewards_left) * mask_left).sum(-1), (tile(step_rewards_right) * mask_right).sum(-1), labels.repeat(*([1] * (labels.dim() - 1)), crops)
