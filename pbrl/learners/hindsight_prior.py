"""Hindsight PRIOR (Verma & Metcalf, "Hindsight PRIORs for Reward Learning from Human
Preferences", ICLR 2024, arXiv 2404.08828; reference code apple/ml-rlhf-hindsight-prior, not
retrievable here).

PEBBLE's Bradley–Terry ensemble plus a credit-assignment prior. A causal transformer world
model (:mod:`pbrl.learners.world_model`), trained on the agent's recent segments to predict
next states, gives every step of a segment an importance ``α_t`` (the last token's attention to
the step's state and action tokens, ``Σ_t α_t = 1``). Each member's per-step rewards are pulled
toward that share of the segment's *predicted* return — the paper's "auxiliary predicted return
redistribution objective" (Abstract: the method "uses a world model to approximate state
importance within a trajectory and then guides rewards to be proportional to state
importance"):

    R̂_e(σ) = Σ_t r̂_e(s_t, a_t),   r_target,t = α_t · sg[R̂_e(σ)],
    L_prior = Σ_e (1 / (B T)) Σ_{σ,t} (r̂_e(s_t, a_t) − r_target,t)²,
    L = L_BT + λ L_prior,

over both segments of every pair in the minibatch (``sg`` = stop-gradient, pbrl's choice:
the prior moves the per-step rewards, not the return the preferences fix; ``stop_gradient=
False`` gives WiseRL's undetached form). ``L_prior = 0`` exactly when the rewards are already
proportional to the importances. The world model is refreshed from the transition log before
every ``learner.world_interval``-th reward update (the loop's :meth:`observe` hook), then
frozen while the rewards train; importances are computed once per update for every labeled
segment. A segment that runs into the absorbing state after a termination
(``feedback.absorbing``) takes the importances of its steps up to the terminal one (the
attention of that step's last token), 0 on the absorbing steps, whose reward is 0.

What is pinned and what is not (see ``docs/fidelity.md``): the paper's body (its Eq. 3–4,
Section 5.3's λ ablation, its appendix) could not be read here — the stored copies hold only
its abstract and introduction. The predicted (not true) return being redistributed is the
Abstract's; the two-token α comes from the ICLR 2024 reviews and WiseRL's restatement; λ,
the world model's size and schedule, the squared error and the stop-gradient are pbrl's
unconfirmed choices. The reward ensemble's knobs are PEBBLE's (the ``learner`` section's
Bradley–Terry keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
from pbrl.learners.world_model import TOKEN_LAYOUTS, WorldModel
from pbrl.segments import PreferenceDataset, Segments
from pbrl.transitions import TransitionView


def prior_loss(step_rewards: torch.Tensor, importance: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    """``L_prior`` per member: ``step_rewards`` [E, B, T], ``importance`` [B, T] (or per member [E, B, T]) → [E].

    The target is ``α_t`` times the segment's predicted return ``Σ_t r̂_t`` (detached unless
    ``stop_gradient=False``); the loss is the mean squared error over segments and steps."""
    predicted_return = step_rewards.sum(dim=-1, keepdim=True)
    target = importance * (predicted_return.detach() if stop_gradient else predicted_return)
    return (step_rewards - target).pow(2).mean(dim=(1, 2))


@dataclass(frozen=True)
class HindsightPriorConfig:
    """Hindsight PRIOR's prior and world model (learner.type=hprior, beside the Bradley–Terry ensemble's knobs)."""

    weight: float = 1.0
    """λ, the weight of the predicted-return-redistribution loss. Unconfirmed: the paper's value
    (its Section 5.3 ablates it; an ICLR 2024 reviewer reports that a large coefficient collapses
    the policy) was not read; WiseRL's class default is 1, its configs use 1000."""
    world_tokens: str = "state_action"
    """World-model token layout: "state_action" (a state and an action token per step, α_t adds
    the two — the paper's α as the ICLR 2024 reviews and WiseRL state it) or "step" (one token per
    step: pbrl's previous default, kept to resume runs made with it)."""
    stop_gradient: bool = True
    """Detach the predicted return in the redistribution target (pbrl's choice, unconfirmed:
    the paper's Eq. 4 was not read); false gives WiseRL's form, whose target carries gradient."""
    world_dim: int = 64
    """Width of the world model's tokens (unconfirmed: the paper's size was not read; WiseRL: 256)."""
    world_layers: int = 2
    """Transformer blocks of the world model (unconfirmed; WiseRL: 3)."""
    world_heads: int = 4
    """Attention heads per block, averaged in α (unconfirmed; WiseRL: 1)."""
    world_lr: float = 1e-4
    """Adam learning rate of the world model (unconfirmed)."""
    world_steps: int = 200
    """World-model gradient steps per refresh (unconfirmed; WiseRL pre-trains 10,000 steps once, offline)."""
    world_batch: int = 32
    """Logged segments per world-model step (unconfirmed)."""
    world_interval: int = 1
    """Refresh the world model before every world_interval-th reward update (1 = every feedback round; unconfirmed)."""

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"learner.weight must be ≥ 0, got {self.weight}")
        if min(self.world_dim, self.world_layers, self.world_heads, self.world_batch, self.world_interval) < 1 or self.world_steps < 0:
            raise ValueError("learner.world_* sizes and world_interval must be ≥ 1, world_steps ≥ 0")
        if self.world_tokens not in TOKEN_LAYOUTS:
            raise ValueError(f"learner.world_tokens must be one of {TOKEN_LAYOUTS}, got {self.world_tokens!r}")


class HindsightPrior(BTEnsemble):
    """The PEBBLE ensemble trained with ``L_BT + λ L_prior`` (importances from a world model)."""

    def __init__(
        self, obs_dim: int, act_dim: int, segment_length: int, reward: BTEnsembleConfig = BTEnsembleConfig(),
        config: HindsightPriorConfig = HindsightPriorConfig(), seed: int = 0,
    ) -> None:
        super().__init__(obs_dim, act_dim, reward, seed)
        self.prior, self.segment_length = config, segment_length
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            self.world = WorldModel(
                obs_dim, act_dim, segment_length, config.world_dim, config.world_layers, config.world_heads, config.world_tokens
            ).to(self.device)
        self.world_optimizer = torch.optim.Adam(self.world.parameters(), lr=config.world_lr)
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    # ---------------------------------------------------------------- the world model
    def observe(self, view: TransitionView) -> dict[str, float]:
        """Refresh the world model on logged segments (every ``world_interval``-th update)."""
        cfg = self.prior
        if self.updates % cfg.world_interval or cfg.world_steps == 0 or len(view.valid_starts(self.segment_length)[0]) == 0:
            return {}
        for _ in range(cfg.world_steps):
            batch = view.sample_segments(cfg.world_batch, self.segment_length, self.rng)
            tensors = [torch.as_tensor(a, device=self.device) for a in (batch.obs, batch.actions, batch.next_obs)]
            loss = self.world.loss(*tensors)
            self.world_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.world_optimizer.step()
        return {"world_model_loss": loss.item()}

    def importance(self, segments: Segments) -> torch.Tensor:
        """Per-step importance ``α`` [B, T] of each segment (sums to 1 over its steps before the absorbing state)."""
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        last = torch.as_tensor((~segments.absorbing).sum(axis=1) - 1, device=self.device)
        return torch.cat([
            self.world.importance(as_t(segments.obs[i : i + 1024]), as_t(segments.actions[i : i + 1024]), last[i : i + 1024])
            for i in range(0, len(segments), 1024)
        ])

    # ---------------------------------------------------------------- training
    def update(self, data: PreferenceDataset, weights: np.ndarray | None = None) -> dict[str, float]:
        metrics = super().update(data, weights)
        self.updates += 1
        return metrics

    def update_context(self, data: PreferenceDataset) -> tuple[torch.Tensor, torch.Tensor]:
        """The importances ``α`` [N, T] of both sides of every labeled pair (the world model is frozen meanwhile)."""
        return self.importance(data.left), self.importance(data.right)

    def extra_loss(
        self, steps_left: torch.Tensor, steps_right: torch.Tensor, index: torch.Tensor, context: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """``λ L_prior`` per member, over both segments of the minibatch's pairs."""
        alpha_left, alpha_right = context
        sg = self.prior.stop_gradient
        both = prior_loss(steps_left, alpha_left[index], sg) + prior_loss(steps_right, alpha_right[index], sg)
        return self.prior.weight * (0.5 * both)

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "world": self.world.state_dict(),
            "world_optimizer": self.world_optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        saved = "state_action" if "embed_state.weight" in state["world"] else "step"
        if saved != self.world.tokens:
            raise ValueError(f"this checkpoint's world model has learner.world_tokens={saved}; set it to resume (now {self.world.tokens})")
        self.world.load_state_dict(state["world"])
        self.world_optimizer.load_state_dict(state["world_optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.updates = int(state["updates"])
