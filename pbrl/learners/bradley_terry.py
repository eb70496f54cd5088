"""The PEBBLE reward model: an ensemble of r̂(s, a) fit with the Bradley–Terry model.

Each member predicts a per-step reward ``r̂_e(s, a) ∈ (−1, 1)`` (3×256 MLP, LeakyReLU,
tanh output — B-Pref's ``gen_net``). A segment's predicted return is the sum over its
steps and the preference probability is the Bradley–Terry / Boltzmann model

    P_e[σ¹ ≻ σ²] = exp Σ_t r̂_e(s¹_t, a¹_t) / (exp Σ_t r̂_e(s¹_t, a¹_t) + exp Σ_t r̂_e(s²_t, a²_t)),

trained with the cross-entropy against labels y = P[σ¹ ≻ σ²] ∈ {0, ½, 1} (½ as a soft
target, B-Pref's ``train_soft_reward``):

    L_e = −E[ y log P_e[σ¹ ≻ σ²] + (1 − y) log P_e[σ² ≻ σ¹] ],   L = Σ_e L_e.

As in B-Pref, each member walks the data in its own random order (bootstrap-free
diversity), one "epoch" is a pass over all labels in minibatches of 128, a round runs
up to ``max_epochs`` epochs and stops early once the mean training accuracy exceeds 97%
(½ labels count as correct iff ``R̂¹ ≥ R̂²``, as B-Pref counts them). ``label_margin`` is
B-Pref's label smoothing; ``augment="qpa"`` QPA's 20 temporal crops per pair.
The agent's reward is the ensemble mean ``r̂(s, a) = (1/E) Σ_e r̂_e(s, a)``.

Steps in the absorbing state after a true termination (:attr:`Segments.absorbing` ``z_t``,
``feedback.absorbing``) have reward 0 by definition, not by prediction:
``R̂_e(σ) = Σ_t (1 − z_t) r̂_e(s_t, a_t)`` everywhere a segment is scored — training, pair
probabilities, query scores — so every learner built on this ensemble (regret/Â, Hindsight
PRIOR, REED) inherits it.

**Extending it.** Variants subclass :class:`BTEnsemble` and override hooks; per-update state
flows through arguments, never through attributes set around ``super().update``:

* :meth:`BTEnsemble._make_net` — the architecture, ``[E, N, obs+act] → [E, N, 1]`` (REED's encoder).
* :meth:`BTEnsemble.update_context` — computed once per :meth:`~BTEnsemble.update`, before the
  epochs, from the labeled data (Hindsight PRIOR's step importances, SURF's unlabeled pool);
  it is handed to the two hooks below.
* :meth:`BTEnsemble.extra_loss` — an additional per-member term of each minibatch,
  ``L_e = (1/b) Σ_i w_i ℓ_e,i + extra_e`` (Hindsight PRIOR's ``λ L_prior``).
* ``update(data, weights=w)`` — per-pair weights ``w_i ≥ 0`` of the Bradley–Terry term
  (``None``: all 1; a subclass passes them from its own ``update``, e.g. confidences or trust).
* :meth:`BTEnsemble._batch_loss` — the whole minibatch loss, for variants that change how a
  segment's return is formed (SURF's temporal crops); it receives the context too.
* :meth:`BTEnsemble.frozen` — a context manager that keeps parameters out of a fit (REED's
  frozen encoder): ``with self.frozen(params): metrics = super().update(data)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from pbrl.augment import QPA_CROPS, qpa_crops
from pbrl.learners.base import RewardLearner
from pbrl.learners.ensemble import EnsembleMLP
from pbrl.segments import PreferenceDataset, Segments


def bradley_terry_loss(return_left: torch.Tensor, return_right: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-pair BT cross-entropy ``−[y log σ(R¹−R²) + (1−y) log σ(R²−R¹)]`` (same shape as inputs)."""
    return F.binary_cross_entropy_with_logits(return_left - return_right, labels, reduction="none")


def smoothed_labels(labels: torch.Tensor, margin: float) -> torch.Tensor:
    """B-Pref's label smoothing (``train_soft_reward``, BPref ``reward_model.py`` L699–704): the chosen
    side's target ``1 − m``, the other's ``m``; ½ labels stay ½."""
    if margin == 0.0:
        return labels
    return torch.where(labels == 0.5, labels, labels * (1.0 - 2.0 * margin) + margin)


def training_correct(
    r_left: torch.Tensor, r_right: torch.Tensor, labels: torch.Tensor, exclude_equal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct predictions and labels counted, for the early-stop accuracy.

    B-Pref (``train_soft_reward`` L699–711) predicts σ¹ iff ``R̂¹ ≥ R̂²`` (``torch.max`` takes the
    first index on ties) and turns a ½ label into "σ¹", so a ½ label is correct iff ``R̂¹ ≥ R̂²``.
    ``exclude_equal``: ½ labels are neither correct nor counted. Returns ``[..., k·b]`` of crops
    (``augment="qpa"``) are scored against the labels ``[..., b]`` repeated crop-major, QPA's
    ``labels.repeat(20)`` (``train_reward_iter`` L723–727, L748–751).
    """
    if r_left.shape[-1] != labels.shape[-1]:
        labels = labels.repeat(*([1] * (labels.dim() - 1)), r_left.shape[-1] // labels.shape[-1])
    says_left = r_left >= r_right
    hard = labels != 0.5
    correct = torch.where(hard, says_left.float() == labels, says_left)
    if exclude_equal:
        return (correct & hard).sum(), hard.sum()
    return correct.sum(), torch.tensor(float(labels.numel()), device=labels.device)


class SegmentTensors(NamedTuple):
    """One side of the labeled pairs on the learner's device."""

    x: torch.Tensor
    """Step inputs ``[N, T, obs+act]``."""
    live: torch.Tensor
    """``1 − z_t``, ``[N, T]`` floats: 0 on absorbing steps, whose reward is 0."""


@dataclass(frozen=True)
class BTEnsembleConfig:
    """Bradley–Terry reward ensemble (defaults: B-Pref / PEBBLE)."""

    ensemble_size: int = 3
    """Number of members E."""
    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of each member."""
    lr: float = 3e-4
    """Adam learning rate (B-Pref reward_lr)."""
    batch_size: int = 128
    """Pairs per minibatch (B-Pref train_batch_size)."""
    max_epochs: int = 200
    """Passes over all labels per round (B-Pref reward_update)."""
    stop_accuracy: float = 0.97
    """Stop a round early once mean training accuracy exceeds this."""
    label_margin: float = 0.0
    """Label smoothing m (B-Pref label_margin, config/train_PEBBLE.yaml L22): the chosen side's target is 1 − m, the other's m; ½ labels stay ½. In [0, ½)."""
    accuracy_excludes_equal: bool = False
    """False (B-Pref's train_soft_reward L707–711): a ½ label counts as correct iff R̂¹ ≥ R̂². True: the early-stop accuracy is over decided labels only, so it reflects what the labels can teach."""
    augment: str = "none"
    """'none', or 'qpa': QPA's data augmentation, every pair trained as 20 temporal crops of S−15…S−5 steps with its label (huxiao09/QPA reward_model.py train_reward_iter; pbrl.augment.qpa_crops)."""
    schedule: str = "epochs"
    """How a round is trained. 'epochs' (B-Pref/PEBBLE, reward_model.py train_reward): up to max_epochs passes over all labels, stop when an epoch's accuracy > stop_accuracy. 'iterations' (QPA's DMC runs, huxiao09/QPA train_QPA.py L143–144 and reward_model.py train_reward_iter L697–766): ⌈iterations_per_label · labels / batch_size⌉ minibatches, each member walking its own order and reshuffling when it is used up, stop once the round's running accuracy ≥ iterations_stop_accuracy."""
    iterations_per_label: int = 2000
    """schedule='iterations': minibatches per round = ⌈iterations_per_label · labels / batch_size⌉ (QPA's reward_update = 2000, run_QPA.sh; train_QPA.py L143–144)."""
    iterations_stop_accuracy: float = 0.98
    """schedule='iterations': stop a round once the accuracy over all its minibatches so far (crops included) reaches this (QPA reward_model.py L761: ≥ 0.98; its MetaWorld branch keeps the epochs and > 0.97, train_QPA.py L136–141)."""
    train_precision: str = "float32"
    """'float32', or 'bfloat16' (opt-in, changes the numbers): training forwards' matrix products in bf16 under autocast (EnsembleMLP.train_autocast); parameters, Adam and inference stay float32."""
    device: str = "cpu"
    """Torch device of the reward model ('cpu', 'cuda', 'auto')."""

    def __post_init__(self) -> None:
        if self.ensemble_size < 1:
            raise ValueError(f"learner.ensemble_size must be ≥ 1, got {self.ensemble_size}")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError("learner.batch_size and learner.max_epochs must be ≥ 1")
        if not 0.0 <= self.label_margin < 0.5:
            raise ValueError(f"learner.label_margin must be in [0, 0.5), got {self.label_margin}")
        if self.augment not in ("none", "qpa"):
            raise ValueError(f"learner.augment must be 'none' or 'qpa', got {self.augment!r}")
        if self.schedule not in ("epochs", "iterations"):
            raise ValueError(f"learner.schedule must be 'epochs' (B-Pref/PEBBLE) or 'iterations' (QPA's DMC runs), got {self.schedule!r}")
        if self.iterations_per_label < 1:
            raise ValueError(f"learner.iterations_per_label must be ≥ 1 (QPA: 2000), got {self.iterations_per_label}")
        if not 0.0 < self.iterations_stop_accuracy <= 1.0:
            raise ValueError(f"learner.iterations_stop_accuracy must be in (0, 1] (QPA: 0.98), got {self.iterations_stop_accuracy}")
        if self.train_precision not in ("float32", "bfloat16"):
            raise ValueError(f"learner.train_precision must be 'float32' or 'bfloat16', got {self.train_precision!r}")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class BTEnsemble(RewardLearner):
    """PEBBLE's Bradley–Terry reward ensemble over state-action inputs."""

    def __init__(self, obs_dim: int, act_dim: int, config: BTEnsembleConfig = BTEnsembleConfig(), seed: int = 0) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = self._make_net().to(self.device)
        if config.train_precision == "bfloat16":
            if not isinstance(self.net, EnsembleMLP):
                raise ValueError(f"learner.train_precision='bfloat16' needs an EnsembleMLP reward net, {type(self).__name__} has {type(self.net).__name__}")
            self.net.train_autocast = "bfloat16"
        self.crop_rng = np.random.default_rng(seed)
        """Draws of QPA's crops (``augment='qpa'``)."""
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)

    def _make_net(self) -> torch.nn.Module:
        """The batched ensemble ``[E, N, obs+act] → [E, N, 1]`` (subclasses change the architecture)."""
        return EnsembleMLP(self.config.ensemble_size, self.obs_dim + self.act_dim, self.config.hidden_sizes)

    # ---------------------------------------------------------------- evaluation
    def _inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs, actions], dim=-1)

    @torch.no_grad()
    def reward_tensor(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return self._member_rewards(self._inputs(obs, actions)).mean(dim=0)

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Mean reward of a numpy batch; r̂(s, a) ignores ``next_obs``. This is the per-env-step hot path."""
        n = len(obs)
        x = np.concatenate([np.asarray(obs, np.float32).reshape(n, self.obs_dim), np.asarray(actions, np.float32).reshape(n, self.act_dim)], axis=1)
        with torch.inference_mode():
            return self._member_rewards(torch.from_numpy(x).to(self.device)).mean(dim=0).cpu().numpy()

    def _segment_tensor(self, segments: Segments) -> torch.Tensor:
        x = np.concatenate([segments.obs, segments.actions], axis=-1)
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)  # [B, T, d]

    def _live(self, segments: Segments) -> torch.Tensor:
        """``1 − z_t`` ``[B, T]``: 0 on the absorbing steps after a termination."""
        return torch.as_tensor(~segments.absorbing, dtype=torch.float32, device=self.device)

    def _labeled(self, segments: Segments) -> SegmentTensors:
        return SegmentTensors(self._segment_tensor(segments), self._live(segments))

    @torch.no_grad()
    def member_segment_returns(self, segments: Segments) -> torch.Tensor:
        """``R̂_e(σ) = Σ_t (1 − z_t) r̂_e(s_t, a_t)``, ``[E, B]``."""
        if segments.step_ids is not None:
            return self._indexed_returns([segments])[0]
        x = self._segment_tensor(segments)
        b, t, d = x.shape
        return (self._member_rewards(x.reshape(b * t, d)).reshape(-1, b, t) * self._live(segments)).sum(dim=-1)

    def pair_probabilities(self, left: Segments, right: Segments) -> np.ndarray:
        """Scores both sides in one pass when steps are identified, so shared transitions are computed once."""
        if left.step_ids is None or right.step_ids is None:
            return super().pair_probabilities(left, right)
        with torch.no_grad():
            r_left, r_right = self._indexed_returns([left, right])
            return torch.sigmoid(r_left - r_right).cpu().numpy()

    def _indexed_returns(self, parts: list[Segments]) -> list[torch.Tensor]:
        """Segment returns ``[E, B_i]`` for each part, scoring every distinct ``step_id`` once."""
        sizes = [p.step_ids.size for p in parts]
        offsets = np.cumsum([0, *sizes])
        _, first, inverse = np.unique(np.concatenate([p.step_ids.ravel() for p in parts]), return_index=True, return_inverse=True)
        owner = np.searchsorted(offsets, first, side="right") - 1
        x = np.empty((len(first), self.obs_dim + self.act_dim), dtype=np.float32)
        for i, part in enumerate(parts):
            mine = owner == i
            rows = first[mine] - offsets[i]
            x[mine, : self.obs_dim] = part.obs.reshape(-1, self.obs_dim)[rows]
            x[mine, self.obs_dim :] = part.actions.reshape(-1, self.act_dim)[rows]
        rewards = self._member_rewards(torch.as_tensor(x, device=self.device))  # [E, unique]
        out = []
        for i, part in enumerate(parts):
            index = torch.as_tensor(inverse[offsets[i] : offsets[i + 1]].reshape(part.step_ids.shape), device=self.device)
            out.append((rewards[:, index] * self._live(part)).sum(dim=-1))
        return out

    def _member_rewards(self, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """Every member's per-step reward of flat inputs ``[N, d]`` → ``[E, N]`` (bounded memory)."""
        if len(x) == 0:
            return torch.zeros(self.config.ensemble_size, 0, device=self.device)
        return torch.cat([self.net(x[i : i + chunk]).squeeze(-1) for i in range(0, len(x), chunk)], dim=1)

    # ---------------------------------------------------------------- training
    def _member_step_rewards(self, side: SegmentTensors, index: torch.Tensor) -> torch.Tensor:
        """Per-step rewards ``(1 − z_t) r̂_e(s_t, a_t)`` of member-specific minibatches: ``index`` [E, b] → [E, b, T]."""
        e, b = index.shape
        t, d = side.x.shape[1:]
        return self.net(side.x[index].reshape(e, b * t, d)).reshape(e, b, t) * side.live[index]

    def update_context(self, data: PreferenceDataset) -> Any:
        """Hook: whatever :meth:`extra_loss` and :meth:`_batch_loss` need, computed once per update (default None)."""
        return None

    def extra_loss(
        self, steps_left: torch.Tensor, steps_right: torch.Tensor, index: torch.Tensor, context: Any
    ) -> torch.Tensor | None:
        """Hook: an additional per-member loss ``[E]`` of a minibatch (default None: Bradley–Terry alone).

        ``steps_left``/``steps_right`` are the per-step rewards ``(1 − z_t) r̂_e`` ``[E, b, T]``
        (with gradient), ``index`` ``[E, b]`` the pairs each member drew, ``context`` what
        :meth:`update_context` returned.
        """
        return None

    @contextmanager
    def frozen(self, parameters: Iterable[torch.nn.Parameter]) -> Iterator[None]:
        """Keep ``parameters`` out of the fits inside the block (no gradient); restored afterwards, even on error."""
        frozen = [p for p in parameters if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _batch_loss(
        self, left: SegmentTensors, right: SegmentTensors, index: torch.Tensor, labels: torch.Tensor,
        context: Any = None, weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Summed-over-members minibatch loss ``Σ_e [(1/b) Σ_i w_i ℓ_e,i + extra_e]`` and the returns of both
        sides that the Bradley–Terry term scored, for the accuracy: ``[E, b]``, or ``[E, 20·b]`` crops with
        ``augment='qpa'`` (QPA counts its accuracy on them). ``weights``: this minibatch's pair weights ``[E, b]`` (None: all 1)."""
        steps_left, steps_right = self._member_step_rewards(left, index), self._member_step_rewards(right, index)
        r_left, r_right = steps_left.sum(dim=-1), steps_right.sum(dim=-1)
        targets = smoothed_labels(labels, self.config.label_margin)
        if self.config.augment == "qpa":
            r_left, r_right, targets = qpa_crops(steps_left, steps_right, targets, self.crop_rng)
            per_pair = bradley_terry_loss(r_left, r_right, targets)
            weights = None if weights is None else weights.repeat(1, QPA_CROPS)
        else:
            per_pair = bradley_terry_loss(r_left, r_right, targets)
        loss = (per_pair if weights is None else per_pair * weights).mean(dim=1)
        extra = self.extra_loss(steps_left, steps_right, index, context)
        return (loss if extra is None else loss + extra).sum(), r_left, r_right

    def _member_orders(self, n: int) -> torch.Tensor:
        """A random order of the ``n`` labels for each member, ``[E, n]`` (B-Pref's per-member ``np.random.permutation``)."""
        return torch.stack([torch.randperm(n, generator=self.generator) for _ in range(self.config.ensemble_size)]).to(self.device)

    def _train_step(
        self, left: SegmentTensors, right: SegmentTensors, index: torch.Tensor, labels: torch.Tensor,
        context: Any, pair_weights: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One Adam step on the minibatch ``index`` ``[E, b]``: the loss × b, correct and counted (detached)."""
        y = labels[index]
        w = None if pair_weights is None else pair_weights[index]
        loss, r_left, r_right = self._batch_loss(left, right, index, y, context, w)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            correct, counted = training_correct(r_left, r_right, y, self.config.accuracy_excludes_equal)
        return loss.detach() * index.shape[1], correct, counted

    def update(self, data: PreferenceDataset, weights: np.ndarray | None = None) -> dict[str, float]:
        """Fit every member to all labels in ``learner.schedule`` (B-Pref's epochs, or QPA's iterations); ``weights``: per-pair ``w_i ≥ 0``, ``[N]``."""
        cfg = self.config
        context = self.update_context(data)
        left, right = self._labeled(data.left), self._labeled(data.right)
        labels = torch.as_tensor(data.labels, dtype=torch.float32, device=self.device)
        n = len(labels)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float32)
            if weights.shape != (n,) or not (np.isfinite(weights).all() and (weights >= 0).all()):
                raise ValueError(f"BTEnsemble.update: weights must be {n} finite values ≥ 0 (one per pair), got shape {weights.shape}")
        pair_weights = None if weights is None else torch.as_tensor(weights, device=self.device)
        if cfg.schedule == "iterations":
            return self._fit_iterations(left, right, labels, context, pair_weights)
        accuracy, loss_value, epochs = 0.0, float("nan"), 0
        for epochs in range(1, cfg.max_epochs + 1):
            order = self._member_orders(n)
            correct = torch.zeros((), device=self.device)
            decided = torch.zeros((), device=self.device)
            total_loss = torch.zeros((), device=self.device)
            for start in range(0, n, cfg.batch_size):
                loss, c, d = self._train_step(left, right, order[:, start : start + cfg.batch_size], labels, context, pair_weights)
                correct += c
                decided += d
                total_loss += loss
            accuracy = (correct / decided.clamp(min=1)).item()
            loss_value = (total_loss / n).item()
            if accuracy > cfg.stop_accuracy:
                break
        return {"train_accuracy": accuracy, "train_loss": loss_value, "epochs": float(epochs), "labels": float(n)}

    def _fit_iterations(
        self, left: SegmentTensors, right: SegmentTensors, labels: torch.Tensor, context: Any, pair_weights: torch.Tensor | None,
    ) -> dict[str, float]:
        """QPA's ``train_reward_iter`` (huxiao09/QPA reward_model.py L697–766, called at train_QPA.py L143–144):
        ``⌈iterations_per_label · N / b⌉`` Adam steps, each on the next ≤ b labels of every member's order; all
        orders are redrawn once a minibatch reaches the end; stop once the round's running accuracy ≥
        ``iterations_stop_accuracy``."""
        cfg = self.config
        n, b = len(labels), cfg.batch_size
        iterations = -(-cfg.iterations_per_label * n // b)  # int(np.ceil(reward_update * labeled_feedback / train_batch_size))
        order, start = self._member_orders(n), 0
        correct = counted = total_loss = 0.0  # Python floats: exact counts past float32's 2²⁴ (20 crops × 128 × many steps)
        accuracy, done, pairs = 0.0, 0, 0
        for done in range(1, iterations + 1):
            index = order[:, start : start + b]
            loss, c, d = self._train_step(left, right, index, labels, context, pair_weights)
            step_loss, step_correct, step_counted = torch.stack([loss, c.to(loss.dtype), d.to(loss.dtype)]).tolist()  # one sync
            correct, counted, total_loss, pairs = correct + step_correct, counted + step_counted, total_loss + step_loss, pairs + index.shape[1]
            start += b
            if start >= n:  # last_index == max_len: new orders (L756–759)
                order, start = self._member_orders(n), 0
            accuracy = correct / max(counted, 1.0)  # np.mean(ensemble_acc / total), crops included
            if accuracy >= cfg.iterations_stop_accuracy:  # L761, after the step
                break
        loss_value = total_loss / pairs if pairs else float("nan")
        return {"train_accuracy": accuracy, "train_loss": loss_value, "epochs": pairs / max(n, 1), "iterations": float(done), "labels": float(n)}

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "crop_rng": self.crop_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if "crop_rng" in state:  # checkpoints written before QPA's crops lack it
            self.crop_rng.bit_generator.state = state["crop_rng"]
