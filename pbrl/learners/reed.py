"""REED: dynamics-aware rewards (Metcalf et al., "Sample-Efficient Preference-based
Reinforcement Learning with Dynamics Aware Rewards", CoRL 2023; reference code apple/ml-reed).

Each ensemble member encodes a state-action pair as

    z^{sa} = f_trunk([f_s(s), f_a(a)])       (f_s: d→20, f_a: a→10, LeakyReLU; trunk 3×256)

and two heads sit on it. The reward head is PEBBLE's: ``r̂(s, a) = tanh(w·z^{sa} + b)``,
trained with the Bradley–Terry loss on preference labels. The self-future-consistency
(SFC) head learns ``z^{sa}`` from unlabeled replay transitions ``(s, a, s')``, SimSiam
style: predict the next state's projected embedding and compare with a stop-gradient
target,

    p = h(g(W_ns z^{sa})),   z' = sg[g(f_s(s'))],
    L_SFC = −Σ_e (1/B) Σ_b cos(p_b, z'_b),

with the projector ``g`` (linear, 20→256) and the predictor ``h`` (256→32→256 with batch
norm and ReLU). As in REED's training loop the two objectives alternate: before every
reward update (the loop's :meth:`observe` hook) the SFC objective runs ``learner.sfc_epochs``
passes over the transition log (80% train / 20% held out, minibatches of 128, one
independent order per member), then the BT objective trains the reward head together
with the encoder (fine-tuned, REED's default) or the head alone (``learner.freeze=true``).
(On MetaWorld REED runs the SFC objective only before every 4th update: ``learner.sfc_interval``.)

REED's defaults: embeddings 20/10, trunk 3×256 (``learner.hidden_sizes``), comparison
width 256, SFC optimiser SGD with learning rate 3e-4, one SFC epoch per update, reward
learning rate 3e-4, 100 pairs per minibatch and 50 epochs per update (see
``experiments/configs/reed_*.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
from pbrl.nets import BatchedLinear, mlp
from pbrl.segments import PreferenceDataset
from pbrl.transitions import TransitionView


@dataclass(frozen=True)
class REEDConfig:
    """REED's encoder and self-future-consistency objective (learner.type=reed, beside the Bradley–Terry ensemble's knobs)."""

    state_embed: int = 20
    """Width of the state embedding f_s(s)."""
    action_embed: int = 10
    """Width of the action embedding f_a(a)."""
    comparison_dim: int = 256
    """Width of the projected embeddings the SFC objective compares."""
    sfc_optimizer: str = "sgd"
    """Optimiser of the SFC objective: 'sgd' (REED) or 'adam'."""
    sfc_lr: float = 3e-4
    """Learning rate of the SFC objective."""
    sfc_batch: int = 128
    """Transitions per SFC minibatch."""
    sfc_epochs: int = 1
    """Passes over the transition log before every reward update."""
    sfc_interval: int = 1
    """Run the SFC objective before every sfc_interval-th reward update (REED: 1; 4 on MetaWorld)."""
    sfc_holdout: float = 0.2
    """Share of the log held out to report the SFC loss on unseen transitions."""
    freeze: bool = False
    """Train only the reward head on preferences (the encoder learns from the SFC objective alone)."""

    def __post_init__(self) -> None:
        if self.sfc_optimizer not in ("sgd", "adam"):
            raise ValueError(f"learner.sfc_optimizer must be 'sgd' or 'adam', got {self.sfc_optimizer!r}")
        if min(self.state_embed, self.action_embed, self.comparison_dim, self.sfc_batch, self.sfc_interval) < 1 or self.sfc_epochs < 0:
            raise ValueError("learner.state_embed, action_embed, comparison_dim, sfc_batch and sfc_interval must be ≥ 1, learner.sfc_epochs ≥ 0")
        if not 0.0 <= self.sfc_holdout < 1.0:
            raise ValueError(f"learner.sfc_holdout must be in [0, 1), got {self.sfc_holdout}")


class EnsembleBatchNorm(nn.Module):
    """Batch norm with separate statistics per member, on ``[E, N, C]``."""

    def __init__(self, members: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(members * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e, n, c = x.shape
        return self.norm(x.transpose(0, 1).reshape(n, e * c)).reshape(n, e, c).transpose(0, 1)


class REEDNetwork(nn.Module):
    """``E`` state-action encoders with a reward head and an SFC head, batched over members."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...], config: REEDConfig) -> None:
        super().__init__()
        self.members, self.obs_dim = members, obs_dim
        leaky = {"activation_name": "leaky_relu", "output_activation": "leaky_relu", "members": members}  # slope 0.01 after every layer
        self.state_encoder = mlp(obs_dim, config.state_embed, **leaky)
        self.action_encoder = mlp(act_dim, config.action_embed, **leaky)
        sizes = [config.state_embed + config.action_embed, *hidden_sizes]
        self.trunk = mlp(sizes[0], sizes[-1], sizes[1:-1], **leaky) if hidden_sizes else nn.Sequential()
        self.reward_head = mlp(sizes[-1], 1, output_activation="tanh", members=members)
        width, narrow = config.comparison_dim, config.comparison_dim // 8 if config.comparison_dim > 16 else config.comparison_dim
        self.next_state = BatchedLinear(members, sizes[-1], config.state_embed)
        self.projector = BatchedLinear(members, config.state_embed, width)
        self.predictor = nn.Sequential(
            BatchedLinear(members, width, narrow), EnsembleBatchNorm(members, narrow), nn.ReLU(), BatchedLinear(members, narrow, width)
        )

    def _members(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.members, -1, -1) if x.dim() == 2 else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z^{sa}`` of ``[E, N, obs+act]`` (or shared ``[N, obs+act]``) inputs → ``[E, N, hidden]``."""
        x = self._members(x)
        return self.trunk(torch.cat([self.state_encoder(x[..., : self.obs_dim]), self.action_encoder(x[..., self.obs_dim :])], dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step rewards ``[E, N, 1]``."""
        return self.reward_head(self.encode(x))

    def sfc_loss(self, x: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``L_SFC`` summed over members: ``x`` [E, N, obs+act], ``next_obs`` [E, N, obs] (or shared [N, …])."""
        x, next_obs = self._members(x), self._members(next_obs)
        predicted = self.predictor(self.projector(self.next_state(self.encode(x))))
        with torch.no_grad():
            target = self.projector(self.state_encoder(next_obs))
        return -F.cosine_similarity(predicted, target, dim=-1).mean(dim=1).sum()

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [*self.state_encoder.parameters(), *self.action_encoder.parameters(), *self.trunk.parameters()]


class REED(BTEnsemble):
    """The PEBBLE ensemble on a dynamics-aware state-action encoder."""

    def __init__(
        self, obs_dim: int, act_dim: int, reward: BTEnsembleConfig = BTEnsembleConfig(),
        config: REEDConfig = REEDConfig(), seed: int = 0,
    ) -> None:
        self.reed = config
        super().__init__(obs_dim, act_dim, reward, seed)
        trained = self.net.reward_head.parameters() if config.freeze else [*self.net.encoder_parameters(), *self.net.reward_head.parameters()]
        self.optimizer = torch.optim.Adam(trained, lr=reward.lr)
        sfc = [p for name, p in self.net.named_parameters() if not name.startswith("reward_head")]
        self.sfc_optimizer = (torch.optim.SGD if config.sfc_optimizer == "sgd" else torch.optim.Adam)(sfc, lr=config.sfc_lr)
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    def _make_net(self) -> nn.Module:
        return REEDNetwork(self.config.ensemble_size, self.obs_dim, self.act_dim, self.config.hidden_sizes, self.reed)

    # ---------------------------------------------------------------- the SFC objective
    def observe(self, view: TransitionView) -> dict[str, float]:
        """``learner.sfc_epochs`` passes of the SFC objective over the log; reports train and held-out loss."""
        cfg = self.reed
        if cfg.sfc_epochs == 0 or view.size == 0 or self.updates % cfg.sfc_interval:
            return {}
        segments = view.transitions()
        x = torch.as_tensor(np.concatenate([segments.obs[:, 0], segments.actions[:, 0]], axis=1), device=self.device)
        next_obs = torch.as_tensor(segments.next_obs[:, 0], device=self.device)
        order = torch.as_tensor(self.rng.permutation(len(x)), device=self.device)
        held = order[: int(len(x) * cfg.sfc_holdout)]
        train = order[len(held) :]
        e, losses = self.config.ensemble_size, []
        self.net.train()
        for _ in range(cfg.sfc_epochs):
            orders = torch.stack([train[torch.as_tensor(self.rng.permutation(len(train)), device=self.device)] for _ in range(e)])
            for start in range(0, len(train) - 1, cfg.sfc_batch):
                index = orders[:, start : start + cfg.sfc_batch]
                if index.shape[1] < 2:  # batch norm needs two samples
                    break
                loss = self.net.sfc_loss(x[index], next_obs[index])
                self.sfc_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.sfc_optimizer.step()
                losses.append(loss.item() / e)
        metrics = {"sfc_train_loss": float(np.mean(losses))} if losses else {}
        if len(held) > 1:
            metrics["sfc_heldout_loss"] = self.sfc_eval_loss(x[held], next_obs[held])
        return metrics

    @torch.no_grad()
    def sfc_eval_loss(self, x: torch.Tensor, next_obs: torch.Tensor) -> float:
        """Mean ``−cos(p, z')`` per member on transitions (batch norm in evaluation mode)."""
        self.net.eval()
        try:
            return self.net.sfc_loss(x, next_obs).item() / self.config.ensemble_size
        finally:
            self.net.train()

    # ---------------------------------------------------------------- reward learning
    def update(self, data: PreferenceDataset, weights: np.ndarray | None = None) -> dict[str, float]:
        """BT on the reward head (and on the encoder unless frozen)."""
        with self.frozen(self.net.encoder_parameters() if self.reed.freeze else []):
            metrics = super().update(data, weights)
        self.updates += 1
        return metrics

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "sfc_optimizer": self.sfc_optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.sfc_optimizer.load_state_dict(state["sfc_optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.updates = int(state["updates"])
