"""RIME: robust reward learning from noisy preferences (Cheng et al., "RIME: Robust
Preference-based Reinforcement Learning with Noisy Preferences", ICML 2024; reference code
CJReinforce/RIME_ICML2024, ``reward_model_RIME.py``, ``train_RIME.py``, ``utils.py``).

PEBBLE's Bradley–Terry ensemble trained, epoch by epoch, only on the labels it trusts:

* **Filter.** Before every epoch, each labeled pair's loss under the ensemble-mean
  probability, ``ℓ = −y log p̄ − (1 − y) log(1 − p̄)`` with ``p̄ = (1/E) Σ_e σ(R̂_e¹ − R̂_e²)``,
  is compared with the lower bound of the KL divergence between the predicted and the
  labeled distribution,

      trusted  ⇔  ℓ < −ln ρ + α ρ + min(β_t · s², 3),

  with ρ and s² a running maximum and variance of the trusted pairs' ℓ (``RunningMeanStd``
  in 'fixed' mode: max and mean move by a step of 0.1 towards each epoch's, the variance
  is the pooled variance), α = ``learner.threshold_alpha`` and the decaying weight
  ``β_t = max(β_min, β_init − (β_init − β_min) t / k)``, t counting epochs.
* **Flips.** Pairs with ``ℓ > −ln τ`` (``learner.flip_tau``) are trained on with the opposite
  label for this epoch. The epoch trains on the trusted pairs followed by the flipped ones
  (a pair in both is seen twice, flipped both times — as in the reference).
* **Warm start.** Before its first labels, the ensemble regresses (MSE) on the
  pre-training reward, the particle-based state entropy ``H(s) = ‖s − s^{k-NN}‖`` (k = 5)
  normalised to [−1, 1], so the filter starts from a reward that already orders states
  sensibly. The reference interleaves 5 Adam steps per pre-training env step with the
  pre-training; pbrl runs ``learner.warm_start_ratio`` × (logged transitions) steps on the
  first :meth:`observe`, with the kNN distances and their normalisation computed over the
  whole log (the reference's running mean has a typo — ``mean + delta + n/N`` for
  ``mean + delta · n/N`` — so pbrl uses the plain statistics it intends).
* The reward learning rate warms up linearly from 0 over ``learner.warmup_epochs`` epochs
  (transformers' ``get_constant_schedule_with_warmup``, set at the first update), and a
  round stops early once the training accuracy exceeds ``learner.stop_accuracy`` (0.98 in
  RIME's configs) after at least ``learner.min_epochs`` epochs.

Defaults are ``run_parallel.sh``'s RIME command on DMC (α = 0.5, β_init = 3, β_min = 1,
least_reward_update = 15, reward_update = 50) and ``train_RIME.py`` (k = 60, τ = 0.001;
MetaWorld: k = 600, least_reward_update = 5). The warm-up length is
``⌊⅓ · max_feedback / reward_batch · least_reward_update + ½⌋`` = 50 for walker's 1000 labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pbrl.knn import knn_distance
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig, SegmentTensors, training_correct
from pbrl.segments import PreferenceDataset
from pbrl.transitions import TransitionView


@dataclass(frozen=True)
class RIMEConfig:
    """RIME's label filter, flips and warm start (learner.type=rime); the ensemble's keys share its learner section."""

    threshold_alpha: float = 0.5
    """α in the lower bound ``−ln ρ + α ρ`` (``threshold_alpha``)."""
    beta_init: float = 3.0
    """β_init, the initial weight of the variance term (``threshold_beta_init``)."""
    beta_min: float = 1.0
    """β_min, its floor (``threshold_beta_min``)."""
    beta_decay_epochs: int = 60
    """k: β falls linearly from β_init to β_min over k epochs (60 on DMC, 600 on MetaWorld)."""
    max_uncertainty: float = 3.0
    """Cap on the variance term ``β_t s²`` (hard-coded 3.0 in the reference)."""
    flip_tau: float = 0.001
    """τ: a pair whose loss exceeds −ln τ is trained with its label flipped."""
    stats_lr: float = 0.1
    """Step of the running max and mean of the trusted losses (RunningMeanStd lr)."""
    min_epochs: int = 15
    """Epochs before a round may stop early (``least_reward_update``: 15 DMC, 5 MetaWorld)."""
    warmup_epochs: int = 50
    """Epochs of linear learning-rate warm-up from 0, counted from the first update."""
    warm_start_ratio: float = 5.0
    """Adam steps on the pre-training reward per logged transition before the first labels (0 = no warm start)."""
    warm_start_batch: int = 1024
    """Transitions per warm-start step (SAC's batch in the reference)."""
    warm_start_k: int = 5
    """k of the k-NN state entropy (``topK``)."""

    def __post_init__(self) -> None:
        if not 0 < self.flip_tau < 1:
            raise ValueError(f"learner.flip_tau must be in (0, 1), got {self.flip_tau}")
        if self.beta_min > self.beta_init or self.beta_decay_epochs < 1:
            raise ValueError("rime needs beta_min ≤ beta_init and beta_decay_epochs ≥ 1")
        if self.warm_start_ratio < 0 or self.warm_start_batch < 1 or self.warm_start_k < 1 or self.min_epochs < 0 or self.warmup_epochs < 0:
            raise ValueError("rime warm-start sizes must be ≥ 1, ratios and epoch counts ≥ 0")


class LossStatistics:
    """RIME's ``RunningMeanStd(mode='fixed', lr)`` over trusted losses: mean and max step by
    ``lr`` towards each batch's, the variance is pooled with the count (starts: mean 0, var 1, max 0)."""

    def __init__(self, lr: float = 0.1) -> None:
        self.lr, self.mean, self.var, self.max, self.count = lr, 0.0, 1.0, 0.0, 0

    def update(self, values: np.ndarray) -> None:
        batch_mean, batch_var, batch_count = float(np.mean(values)), float(np.var(values)), len(values)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        m_2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean, self.max = self.mean + delta * self.lr, self.max + (float(np.max(values)) - self.max) * self.lr
        self.var, self.count = m_2 / total, total

    def state(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "max": self.max, "count": self.count}

    def load(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.max, self.count = state["mean"], state["var"], state["max"], int(state["count"])


def trusted_and_flipped(
    loss: torch.Tensor, stats: LossStatistics, beta: float, alpha: float, max_uncertainty: float, flip_tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks ``ℓ < −ln(ρ + 1e-8) + α ρ + min(β s², cap)`` and ``ℓ > −ln τ`` of per-pair losses ``[N]``."""
    bound = -np.log(stats.max + 1e-8) + alpha * stats.max
    return loss < bound + min(beta * stats.var, max_uncertainty), loss > -np.log(flip_tau)


class RIME(BTEnsemble):
    """PEBBLE's ensemble trained on trusted and flipped labels (module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, config: BTEnsembleConfig = BTEnsembleConfig(), rime: RIMEConfig = RIMEConfig(), seed: int = 0) -> None:
        if config.schedule != "epochs":
            raise ValueError(f"learner.schedule={config.schedule!r}: RIME trains in epochs with its own sample selection (no QPA iteration schedule); set learner.schedule=epochs")
        super().__init__(obs_dim, act_dim, config, seed)
        self.rime = rime
        self.stats = LossStatistics(rime.stats_lr)
        self.epochs_done = 0  # t of β_t (the reference's update_step)
        self.warm_started = False
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None

    def beta(self) -> float:
        """``β_t = max(β_min, β_init − (β_init − β_min) t / k)``."""
        cfg = self.rime
        return max(cfg.beta_min, cfg.beta_init - (cfg.beta_init - cfg.beta_min) / cfg.beta_decay_epochs * self.epochs_done)

    # ---------------------------------------------------------------- warm start
    def observe(self, view: TransitionView) -> dict[str, float]:
        """Before the first labels: fit the ensemble to the normalised k-NN state entropy of the log."""
        cfg = self.rime
        if self.warm_started or self.scheduler is not None or cfg.warm_start_ratio == 0 or view.size * view.n_envs <= cfg.warm_start_k:
            return {}
        self.warm_started = True
        segments = view.transitions()
        obs = torch.as_tensor(segments.obs[:, 0], dtype=torch.float32, device=self.device)
        x = torch.cat([obs, torch.as_tensor(segments.actions[:, 0], dtype=torch.float32, device=self.device)], dim=1)
        entropy = knn_distance(obs, obs, cfg.warm_start_k)
        target = (entropy - entropy.mean()) / entropy.std().clamp(min=1e-8)
        target = target / target.abs().max().clamp(min=1e-8)  # the extreme entropies at ±1, like tanh's range
        steps = int(cfg.warm_start_ratio * len(x))
        loss = torch.zeros(())
        for _ in range(steps):
            index = torch.randint(len(x), (cfg.warm_start_batch,), generator=self.generator).to(self.device)
            loss = F.mse_loss(self.net(x[index]).squeeze(-1), target[index].expand(self.config.ensemble_size, -1), reduction="none").mean(dim=1).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return {"rime_warm_start_steps": float(steps), "rime_warm_start_loss": loss.item()}

    # ---------------------------------------------------------------- training
    @torch.no_grad()
    def _pair_losses(self, left: SegmentTensors, right: SegmentTensors, labels: torch.Tensor) -> torch.Tensor:
        """``ℓ = −y log p̄ − (1 − y) log(1 − p̄)`` with the ensemble-mean ``p̄``, ``[N]``."""
        def returns(side: SegmentTensors) -> torch.Tensor:
            n, t, d = side.x.shape
            return (self._member_rewards(side.x.reshape(n * t, d)).reshape(-1, n, t) * side.live).sum(dim=-1)

        p_left = torch.sigmoid(returns(left) - returns(right)).mean(dim=0)
        return -(labels * torch.log(p_left) + (1 - labels) * torch.log(1 - p_left))

    def update(self, data: PreferenceDataset) -> dict[str, float]:
        cfg = self.config
        if self.scheduler is None:  # the reference's set_lr_schedule at the first reward update
            self.scheduler = self._warmup_schedule()
        left, right = self._labeled(data.left), self._labeled(data.right)
        labels = torch.as_tensor(data.labels, dtype=torch.float32, device=self.device)
        accuracy, loss_value, trusted, flipped = 0.0, float("nan"), 0, 0
        epoch = 0
        for epoch in range(cfg.max_epochs):
            pair_loss = self._pair_losses(left, right, labels)
            trust, flip = trusted_and_flipped(pair_loss, self.stats, self.beta(), self.rime.threshold_alpha, self.rime.max_uncertainty, self.rime.flip_tau)
            if trust.any():
                self.stats.update(pair_loss[trust].cpu().numpy())
            train_labels = torch.where(flip, 1.0 - labels, labels)
            chosen = torch.cat([torch.nonzero(trust).squeeze(1), torch.nonzero(flip).squeeze(1)])
            trusted, flipped = int(trust.sum()), int(flip.sum())
            accuracy, loss_value = self._epoch(left, right, train_labels, chosen)
            self.scheduler.step()
            self.epochs_done += 1
            if accuracy > cfg.stop_accuracy and epoch > self.rime.min_epochs:
                break
        return {
            "train_accuracy": accuracy, "train_loss": loss_value, "epochs": float(epoch + 1), "labels": float(len(labels)),
            "rime_trusted": trusted / max(len(labels), 1), "rime_flipped": flipped / max(len(labels), 1), "rime_beta": self.beta(),
        }

    def _epoch(self, left: SegmentTensors, right: SegmentTensors, labels: torch.Tensor, chosen: torch.Tensor) -> tuple[float, float]:
        """One pass over the ``chosen`` pairs (each member in its own order); accuracy and mean loss."""
        n = len(chosen)
        if n == 0:
            return 0.0, float("nan")
        order = torch.stack([chosen[torch.randperm(n, generator=self.generator).to(self.device)] for _ in range(self.config.ensemble_size)])
        correct = decided = total = 0.0
        for start in range(0, n, self.config.batch_size):
            index = order[:, start : start + self.config.batch_size]
            y = labels[index]
            loss, r_left, r_right = self._batch_loss(left, right, index, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                c, d = training_correct(r_left, r_right, y, self.config.accuracy_excludes_equal)
                correct += c.item()
                decided += d.item()
                total += loss.item() * index.shape[1]
        return correct / max(decided, 1.0), total / n

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(), "stats": self.stats.state(), "epochs_done": self.epochs_done, "warm_started": self.warm_started,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats.load(state["stats"])
        self.epochs_done, self.warm_started = int(state["epochs_done"]), bool(state["warm_started"])
        if state["scheduler"] is not None:
            self.scheduler = self._warmup_schedule()
            self.scheduler.load_state_dict(state["scheduler"])

    def _warmup_schedule(self) -> torch.optim.lr_scheduler.LambdaLR:
        """lr · min(1, epoch / warmup_epochs): transformers' ``get_constant_schedule_with_warmup``."""
        warmup = self.rime.warmup_epochs
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: min(1.0, step / warmup) if warmup else 1.0)


__all__ = ["RIME", "RIMEConfig", "LossStatistics", "trusted_and_flipped"]
