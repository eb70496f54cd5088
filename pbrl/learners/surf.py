"""SURF: semi-supervised reward learning with temporal cropping (Park et al., "SURF:
Semi-supervised Reward Learning with Data Augmentation for Feedback-efficient
Preference-based Reinforcement Learning", ICLR 2022; reference code alinlab/SURF,
``reward_model_semi_dataaug.py`` and ``train_PEBBLE_semi_dataaug.py``).

PEBBLE's Bradley–Terry ensemble with two additions, both in every minibatch of every member:

* **Pseudo-labels.** Unlabeled pairs (σ¹, σ²) drawn uniformly from the transition log are
  labeled by the member itself where it is confident: on the segments' centres (the steps
  ``[w, S − w)`` of S stored steps),
  ``p = softmax(R̂(σ¹_c), R̂(σ²_c))``, ``ŷ = argmax p``, kept iff ``max p ≥ τ``; their loss is
  ``λ_u · mean_u [1{max p_u ≥ τ} · CE(cropped logits_u, ŷ_u)]`` (mean over all μ·b unlabeled
  pairs, masked or not — the reference's FixMatch form).
* **Temporal cropping.** Every return, labeled and unlabeled alike, is summed over a random
  window: length ``L ~ U{T − c, …, T + c}`` (``T = S − 2w`` the centre length, c the crop
  range, one L per pair), start ``U{0, …, S − L}`` drawn independently for each side.

So the member's minibatch loss is ``L_BT(cropped) + λ_u L_u``. The unlabeled pool grows by
``learner.pool_ratio`` pairs per new label at each update (the reference draws
``mb_size · inv_label_ratio`` after every query round); each minibatch of b labeled pairs
meets ``μ · b`` unlabeled ones, walked in a per-member random order like the labels.

Defaults are the reference README's published commands (``threshold_u=0.99 mu=4
inv_label_ratio=10``, MetaWorld) and ``config/train_PEBBLE_semi_dataaug.yaml``
(``lambda_u=1, dataaug_window=5, crop_range=5``).

One difference from the reference: there the teacher labels only the centre of a segment
sampled ``2w`` steps longer, so the crop can reach past what the teacher saw. pbrl's teacher
labels the whole stored segment, so the crop stays inside it (the same masks, drawn on the
S stored steps) — set ``feedback.segment_length`` to the reference's ``segment + 2w`` (60)
to match its input sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pbrl.augment import crop_masks
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig, SegmentTensors, bradley_terry_loss, smoothed_labels
from pbrl.segments import PreferenceDataset, Segments
from pbrl.transitions import TransitionView


@dataclass(frozen=True)
class SURFConfig:
    """SURF's pseudo-labeling and cropping (learner.type=surf); the ensemble's keys share its learner section."""

    threshold: float = 0.99
    """Confidence τ a member needs to pseudo-label an unlabeled pair (README ``threshold_u=0.99``)."""
    unlabeled_ratio: int = 4
    """μ: unlabeled pairs per labeled pair in a minibatch (README ``mu=4``)."""
    unlabeled_weight: float = 1.0
    """λ_u, the weight of the pseudo-label loss (``lambda_u=1``)."""
    pool_ratio: int = 10
    """Unlabeled pairs added to the pool per new label (README ``inv_label_ratio=10``; 100 on DMC walker)."""
    pool_capacity: int = 20_000
    """Most unlabeled pairs kept (oldest dropped first; the reference's ring holds 5e5 but never fills at its budgets)."""
    window: int = 5
    """w: steps at each end of a stored segment outside its centre (``dataaug_window=5``)."""
    crop_range: int = 5
    """c: crop lengths range over ``T − c … T + c`` with ``T = S − 2w`` (``crop_range=5``); c = w = 0 turns cropping off."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold <= 1.0:
            raise ValueError(f"learner.threshold must be in [0.5, 1], got {self.threshold}")
        if self.unlabeled_ratio < 0 or self.pool_ratio < 0 or self.pool_capacity < 1:
            raise ValueError("learner.unlabeled_ratio and learner.pool_ratio must be ≥ 0, learner.pool_capacity ≥ 1")
        if self.window < 0 or not 0 <= self.crop_range <= 2 * self.window:
            raise ValueError(f"surf needs window ≥ 0 and 0 ≤ crop_range ≤ 2·window (crops fit the segment), got {self.window}, {self.crop_range}")


def pseudo_labels(return_left: torch.Tensor, return_right: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudo-labels ``ŷ = P[σ¹ ≻ σ²] ∈ {0, 1}`` and the confidence mask ``max p ≥ τ`` (any shape).

    ``p = softmax(R̂¹, R̂²)``; ŷ = 1 where σ¹ is the argmax (ties go to σ¹, as ``torch.max`` does).
    """
    p_left = torch.sigmoid(return_left - return_right)
    confident = torch.maximum(p_left, 1.0 - p_left) >= threshold
    return (return_left >= return_right).float(), confident.float()


@dataclass
class UnlabeledWalk:
    """One update's unlabeled pool on the device, each member's walk through it and its pseudo-label counts."""

    left: SegmentTensors
    """σ¹ of the unlabeled pairs."""
    right: SegmentTensors
    """σ² of the unlabeled pairs."""
    order: torch.Tensor | None = None
    """Each member's order over the pool ``[E, U]`` (drawn when first needed, redrawn when used up)."""
    cursor: int = 0
    """Next position in ``order``."""
    confident: float = 0.0
    """Unlabeled pairs pseudo-labeled so far (mask = 1)."""
    seen: float = 0.0
    """Unlabeled pairs drawn so far."""


class SURF(BTEnsemble):
    """PEBBLE's ensemble trained with SURF's pseudo-labels and temporal cropping (module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, config: BTEnsembleConfig = BTEnsembleConfig(), surf: SURFConfig = SURFConfig(), seed: int = 0) -> None:
        if config.augment != "none":
            raise ValueError(f"learner.augment={config.augment!r}: SURF crops segments its own way (window, crop_range); leave augment='none'")
        super().__init__(obs_dim, act_dim, config, seed)
        self.surf = surf
        self.rng = np.random.default_rng(seed)
        self.pool: tuple[Segments, Segments] | None = None
        self.labels_seen = 0
        self.last_walk: UnlabeledWalk | None = None
        """The last update's walk (its pseudo-label counts are reported as ``surf_pseudo_ratio``)."""
        self._view: TransitionView | None = None

    def observe(self, view: TransitionView) -> dict[str, float]:
        """Keep the round's view of the log to draw the new unlabeled pairs from at the next update."""
        self._view = view
        return {}

    def add_unlabeled(self, left: Segments, right: Segments) -> None:
        """Append unlabeled pairs to the pool (the newest ``learner.pool_capacity`` are kept)."""
        f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731  (what the network reads; half a float64 log's memory)
        left, right = (Segments(f32(s.obs), f32(s.actions), f32(s.next_obs), None, s.terminals) for s in (left, right))  # log ids go stale
        if self.pool is not None:
            left, right = Segments.concatenate([self.pool[0], left]), Segments.concatenate([self.pool[1], right])
        keep = slice(max(0, len(left) - self.surf.pool_capacity), None)
        self.pool = (left[keep], right[keep])

    def _draw_unlabeled(self, count: int, length: int) -> None:
        view, self._view = self._view, None  # one round's view: drawn from once
        if count <= 0 or view is None or len(view.valid_starts(length)[0]) == 0:
            return
        left, right = (view.sample_segments(count, length, self.rng) for _ in range(2))
        self.add_unlabeled(left, right)

    def update_context(self, data: PreferenceDataset) -> UnlabeledWalk | None:
        """Grow the pool by ``pool_ratio`` pairs per new label; the walk this update's minibatches draw from."""
        length = data.left.length
        self._draw_unlabeled(self.surf.pool_ratio * (len(data) - self.labels_seen), length)
        self.labels_seen = len(data)
        self.last_walk = None
        if self.pool is not None and self.surf.unlabeled_ratio > 0 and self.pool[0].length == length:
            self.last_walk = UnlabeledWalk(self._labeled(self.pool[0]), self._labeled(self.pool[1]))
        return self.last_walk

    def update(self, data: PreferenceDataset, weights: np.ndarray | None = None) -> dict[str, float]:
        metrics = super().update(data, weights)
        walk, pool = self.last_walk, 0 if self.pool is None else len(self.pool[0])
        ratio = 0.0 if walk is None else walk.confident / max(walk.seen, 1.0)
        return {**metrics, "surf_pool": float(pool), "surf_pseudo_ratio": ratio}

    def _crop(self, shape: tuple[int, int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        masks = crop_masks(shape, length, self.surf.window, self.surf.crop_range, self.rng)
        return tuple(torch.as_tensor(m, device=self.device) for m in masks)  # type: ignore[return-value]

    def _unlabeled_index(self, walk: UnlabeledWalk, count: int) -> torch.Tensor:
        """The next ``count`` pool indices of each member's own order ``[E, count]`` (reshuffled when used up)."""
        size = len(walk.left.x)
        if walk.order is None or walk.cursor >= size:
            walk.order = torch.stack([torch.randperm(size, generator=self.generator) for _ in range(self.config.ensemble_size)]).to(self.device)
            walk.cursor = 0
        index = walk.order[:, walk.cursor : walk.cursor + count]
        walk.cursor += count
        return index

    def _batch_loss(
        self, left: SegmentTensors, right: SegmentTensors, index: torch.Tensor, labels: torch.Tensor,
        context: UnlabeledWalk | None = None, weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``Σ_e [(1/b) Σ_i w_i L_BT,i(cropped R̂¹, cropped R̂²) + λ_u L_u]``; the cropped labeled returns go back for accuracy."""
        length = left.x.shape[1]
        mask_left, mask_right = self._crop(tuple(index.shape), length)
        r_left = (self._member_step_rewards(left, index) * mask_left).sum(dim=-1)
        r_right = (self._member_step_rewards(right, index) * mask_right).sum(dim=-1)
        per_pair = bradley_terry_loss(r_left, r_right, smoothed_labels(labels, self.config.label_margin))  # semi_train_soft_reward's targets
        loss = (per_pair if weights is None else per_pair * weights).mean(dim=1).sum()
        if context is not None:
            loss = loss + self.surf.unlabeled_weight * self._unlabeled_loss(context, index.shape[1] * self.surf.unlabeled_ratio)
        return loss, r_left, r_right

    def _unlabeled_loss(self, walk: UnlabeledWalk, count: int) -> torch.Tensor:
        """``Σ_e mean_u [1{max p ≥ τ} CE(cropped logits, ŷ)]`` with ŷ from each member's centre returns."""
        index = self._unlabeled_index(walk, count)
        steps_left, steps_right = self._member_step_rewards(walk.left, index), self._member_step_rewards(walk.right, index)
        w = self.surf.window
        centre = slice(w, steps_left.shape[-1] - w)
        with torch.no_grad():
            target, confident = pseudo_labels(steps_left[..., centre].sum(-1), steps_right[..., centre].sum(-1), self.surf.threshold)
        walk.confident += confident.sum().item()
        walk.seen += confident.numel()
        mask_left, mask_right = self._crop(tuple(index.shape), steps_left.shape[-1])
        per_pair = bradley_terry_loss((steps_left * mask_left).sum(-1), (steps_right * mask_right).sum(-1), target)
        return (per_pair * confident).mean(dim=1).sum()

    def state_dict(self) -> dict[str, Any]:
        pool = None if self.pool is None else [
            {"obs": s.obs, "actions": s.actions, "next_obs": s.next_obs, "terminals": s.terminals} for s in self.pool
        ]
        return {**super().state_dict(), "rng": self.rng.bit_generator.state, "labels_seen": self.labels_seen, "pool": pool}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rng.bit_generator.state = state["rng"]
        self.labels_seen = int(state["labels_seen"])
        pool = state["pool"]
        self.pool = None if pool is None else tuple(Segments(**side) for side in pool)  # type: ignore[assignment]


__all__ = ["SURF", "SURFConfig", "UnlabeledWalk", "pseudo_labels"]
