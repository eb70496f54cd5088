"""Contrastive Preference Learning (Hejna et al., ICLR 2024, "Contrastive Preference Learning:
Learning from Human Feedback without RL"; reference code jhejna/cpl).

Under the regret preference model with a maximum-entropy optimal policy, the optimal
advantage is ``A*(s, a) = α log π*(a|s)``, so the preference likelihood can be written on
the policy directly — no reward, no value function, no RL:

    A(σ) = Σ_t γ^t α log π(a_t|s_t)
    L_CPL = − y log σ(A(σ_L) − λ A(σ_R)) − (1 − y) log σ(A(σ_R) − λ A(σ_L))

with ``y = P[σ_L ≻ σ_R]`` and the *conservative bias* ``λ ∈ (0, 1]`` scaling the
dispreferred segment (λ < 1 keeps the policy close to the data; λ = 1 is the plain
Bradley–Terry likelihood). Behaviour cloning ``L_BC = −E log π(a|s)`` on the same
segments pre-trains the policy for ``bc_steps``, and can stay on as a regulariser
(``bc_coeff``). Defaults are jhejna/cpl's state-based MetaWorld settings; their code sums
the segment undiscounted (γ = 1), which is our default too.

:class:`BehaviourCloning` is the baseline of the paper (and of pbrl's tests and bench): the
same policy trained by ``L_BC`` alone, on all segments or on the preferred ones only
(the paper's "SFT").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pbrl.learners.policies import GaussianPolicy, PairBatch, PolicyLearner, sample_pairs
from pbrl.nets import INITS
from pbrl.segments import PreferenceDataset, Segments

BC_DATA = ("all", "preferred")


@dataclass(frozen=True)
class CPLConfig:
    """CPL (defaults: jhejna/cpl, configs/mw_state_*/cpl.yaml)."""

    alpha: float = 0.1
    """Temperature α of the implied advantage α log π."""
    bias: float = 0.5
    """Conservative bias λ ∈ (0, 1] on the dispreferred segment (1 = plain Bradley–Terry)."""
    discount: float = 1.0
    """γ of Σ_t γ^t α log π (the reference code sums undiscounted)."""
    bc_steps: int = 200_000
    """Gradient steps of behaviour-cloning pre-training before the CPL loss starts."""
    bc_coeff: float = 0.0
    """Weight of the BC regulariser added to the CPL loss after pre-training."""
    bc_data: str = "all"
    """Segments the BC loss uses: 'all' or 'preferred' (the winner of each pair; ties count both)."""
    lr: float = 1e-4
    """Adam learning rate."""
    warmup_steps: int = 10_000
    """Linear learning-rate warm-up of the fresh optimiser that starts the CPL phase."""
    batch_size: int = 96
    """Pairs per minibatch."""
    window: int | None = None
    """Cut each segment to a random window of this many steps (None = whole segments)."""
    hidden_sizes: tuple[int, ...] = (512, 512)
    """Hidden widths of the policy MLP."""
    dropout: float = 0.25
    """Dropout after each hidden layer of the policy."""
    pairing: str = "fixed"
    """'fixed': the dataset's labeled pairs. 'rank' (the reference's MetaWorld configs, dataset_kwargs.mode: rank): each batch pairs every drawn segment with a uniformly random other one, labeled from per-segment scores (½ on ties); needs set_ranked(), which the offline runner calls with every training segment scored by its true return (dense comparisons)."""
    init: str = "orthogonal"
    """Policy weight init: 'orthogonal' (gain 1, zero bias: the reference's ortho_init, research/networks/mlp.py weight_init L13–22) or 'torch' (PyTorch's default, pbrl's former)."""
    steps_per_update: int = 1_000
    """Gradient steps per update() call (offline: per evaluation interval; online: per feedback round)."""
    device: str = "cpu"
    """Torch device."""

    def __post_init__(self) -> None:
        if not 0.0 < self.bias <= 1.0:
            raise ValueError(f"learner.bias (λ) must be in (0, 1], got {self.bias}")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"learner.discount must be in (0, 1], got {self.discount}")
        if self.alpha <= 0:
            raise ValueError(f"learner.alpha must be > 0, got {self.alpha}")
        if self.init not in INITS:
            raise ValueError(f"learner.init must be one of {INITS}, got {self.init!r}")
        if self.pairing not in ("fixed", "rank"):
            raise ValueError(f"learner.pairing must be 'fixed' or 'rank', got {self.pairing!r}")
        if self.bc_data not in BC_DATA:
            raise ValueError(f"learner.bc_data={self.bc_data!r} is unknown; choose one of {list(BC_DATA)}")
        if self.batch_size < 1 or self.steps_per_update < 1 or self.bc_steps < 0 or self.warmup_steps < 0:
            raise ValueError("learner.batch_size and learner.steps_per_update must be ≥ 1, bc_steps and warmup_steps ≥ 0")


def segment_advantage(log_probs: torch.Tensor, alpha: float, discount: float) -> torch.Tensor:
    """``A(σ) = Σ_t γ^t α log π(a_t|s_t)`` from per-step log-probabilities ``[..., T]``."""
    weights = discount ** torch.arange(log_probs.shape[-1], dtype=log_probs.dtype, device=log_probs.device)
    return alpha * (log_probs * weights).sum(dim=-1)


def cpl_loss(
    log_probs_left: torch.Tensor, log_probs_right: torch.Tensor, labels: torch.Tensor,
    alpha: float, bias: float, discount: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CPL loss over pairs and the (unbiased) accuracy of its ranking.

    ``log_probs_*`` are ``[B, T]`` per-step ``log π(a_t|s_t)``, ``labels`` ``[B]`` = P[left ≻ right]:

        L = y · softplus(−(A_L − λ A_R)) + (1 − y) · softplus(−(A_R − λ A_L))

    (``softplus(−x) = −log σ(x)``, stable for any logit).
    """
    a_left = segment_advantage(log_probs_left, alpha, discount)
    a_right = segment_advantage(log_probs_right, alpha, discount)
    loss = labels * F.softplus(-(a_left - bias * a_right)) + (1 - labels) * F.softplus(-(a_right - bias * a_left))
    with torch.no_grad():
        decided = labels != 0.5
        correct = ((a_left > a_right) == (labels > 0.5)) & decided
        accuracy = correct.float().sum() / decided.float().sum().clamp(min=1)
    return loss.mean(), accuracy


def rank_pairs(segments: Segments, scores: np.ndarray, count: int, rng: np.random.Generator) -> PreferenceDataset:
    """CPL's "rank" mode (jhejna/cpl ``research/datasets/feedback_buffer.py`` L96, L128–130): ``count``
    segments drawn uniformly, each compared with a uniformly random one, ``y = 1`` if its score is higher,
    ½ on ties."""
    first, second = rng.integers(0, len(scores), size=count), rng.integers(0, len(scores), size=count)
    labels = (scores[first] > scores[second]) + 0.5 * (scores[first] == scores[second])
    return PreferenceDataset(segments[first], segments[second], labels.astype(np.float32))


def bc_loss(log_probs: torch.Tensor, batch: PairBatch, data: str) -> torch.Tensor:
    """``−E log π(a|s)`` over both segments of each pair (``data='all'``) or the preferred one."""
    if data == "all":
        return -log_probs.mean()
    weights = torch.stack([(batch.labels >= 0.5).float(), (batch.labels <= 0.5).float()])  # [2, B]
    per_segment = log_probs.mean(dim=-1)  # [2, B]
    return -(weights * per_segment).sum() / weights.sum().clamp(min=1)


class CPL(PolicyLearner):
    """The CPL policy learner: BC pre-training, then the contrastive loss (+ optional BC term)."""

    config: CPLConfig

    def __init__(self, obs_dim: int, act_dim: int, config: CPLConfig = CPLConfig(), seed: int = 0) -> None:
        super().__init__(obs_dim, act_dim, config, seed)
        self._make_optimizer(warmup=0)
        self.ranked: tuple[Segments, np.ndarray] | None = None

    def set_ranked(self, segments: Segments, scores: np.ndarray) -> None:
        """Segments and their scores ``[K]`` that ``pairing='rank'`` re-pairs every batch."""
        if len(segments.obs) != len(scores) or len(scores) < 2:
            raise ValueError(f"set_ranked needs one score per segment and ≥ 2 segments, got {len(segments.obs)} and {len(scores)}")
        self.ranked = (segments, np.asarray(scores, dtype=np.float64))

    def build_networks(self, obs_dim: int, act_dim: int) -> None:
        cfg = self.config
        self.policy = GaussianPolicy(obs_dim, act_dim, cfg.hidden_sizes, cfg.dropout, init=cfg.init).to(self.device)

    def _make_optimizer(self, warmup: int) -> None:
        self._warmup = warmup
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config.lr)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            # the reference's linear_warmup (research/utils/schedules.py L15–19): LambdaLR's k starts at 0, so lr 0 on the first step
            self.optimizer, lambda k: min(1.0, k / warmup) if warmup > 0 else 1.0
        )

    def _log_probs(self, batch: PairBatch) -> torch.Tensor:
        return self.policy.log_prob(batch.obs, batch.actions)  # [2, B, T]

    def train_step(self, data: PreferenceDataset) -> dict[str, float]:
        cfg = self.config
        if self.updates == cfg.bc_steps and cfg.bc_steps > 0:  # pre-training ends: fresh optimiser with warm-up
            self._make_optimizer(cfg.warmup_steps)
        if cfg.pairing == "rank":
            if self.ranked is None:
                raise ValueError("learner.pairing=rank needs per-segment scores (CPL.set_ranked; the offline runner sets "
                                 "them from the dataset's true segment returns)")
            batch = sample_pairs(rank_pairs(*self.ranked, cfg.batch_size, self.rng), cfg.batch_size, cfg.window, self.rng, self.device, draw=False)
        else:
            batch = sample_pairs(data, cfg.batch_size, cfg.window, self.rng, self.device)
        log_probs = self._log_probs(batch)
        imitation = bc_loss(log_probs, batch, cfg.bc_data)
        metrics = {"bc_loss": imitation.item()}
        if self.updates < cfg.bc_steps:
            loss = imitation
        else:
            contrastive, accuracy = cpl_loss(log_probs[0], log_probs[1], batch.labels, cfg.alpha, cfg.bias, cfg.discount)
            loss = contrastive + cfg.bc_coeff * imitation
            metrics.update(cpl_loss=contrastive.item(), train_accuracy=accuracy.item())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return metrics

    @torch.no_grad()
    def preference_probability(self, left: Segments, right: Segments) -> np.ndarray:
        """``σ(A(σ_L) − A(σ_R))`` with the policy's implied advantages."""
        self.policy.eval()
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        adv = [
            segment_advantage(self.policy.log_prob(as_t(s.obs), as_t(s.actions)), self.config.alpha, self.config.discount)
            for s in (left, right)
        ]
        return torch.sigmoid(adv[0] - adv[1]).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "updates": self.updates, "warmup": self._warmup,
            **self.rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.updates = int(state["updates"])
        self._make_optimizer(int(state["warmup"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.load_rng_state(state)


class BehaviourCloning(CPL):
    """The behaviour-cloning baseline: :class:`CPL`'s policy trained by ``L_BC`` alone
    (``config.bc_data``: 'all' segments, or 'preferred' = the paper's SFT)."""

    def train_step(self, data: PreferenceDataset) -> dict[str, float]:
        batch = sample_pairs(data, self.config.batch_size, self.config.window, self.rng, self.device)
        loss = bc_loss(self._log_probs(batch), batch, self.config.bc_data)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"bc_loss": loss.item()}
