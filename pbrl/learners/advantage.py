"""Learning the optimal advantage from regret preferences (Knox et al., "Models of human
preference for learning reward functions", TMLR 2024, and "Learning Optimal Advantage from
Preferences and Mistaking it for Reward", AAAI 2024).

Under the regret preference model a person prefers the segment with the smaller regret,
i.e. the larger summed optimal advantage. An ensemble of networks ``Â_e(s, a)`` (linear
output: advantages are unbounded, unlike PEBBLE's tanh rewards) is fit with that model's
likelihood,

    P_e[σ¹ ≻ σ²] = σ(Σ_t (1 − z¹_t) Â_e(s¹_t, a¹_t) − Σ_t (1 − z²_t) Â_e(s²_t, a²_t)),
    L = −Σ_e E[ y log P_e[σ¹ ≻ σ²] + (1 − y) log P_e[σ² ≻ σ¹] ],

trained exactly like the PEBBLE ensemble (same epochs, minibatches, early stop); ``z_t = 1``
marks steps in the absorbing state after a termination (:attr:`Segments.absorbing`), where
A* = 0 by definition. ``Â → Â + c`` shifts the logit by ``c (n¹ − n²)``, ``n`` a segment's
steps before the absorbing state: when every segment has all its steps there (segments
never run past an episode's end) the likelihood cannot see ``c``, and Â is learned only up
to a constant (and, with deterministic labels, up to a positive scale).

How the agent uses Â (``learner.mode``):

* ``greedy`` — the second paper's recommendation: act greedily on Â. A dedicated actor
  (``pbrl.agents.advantage_policy.GreedyAdvantageSAC``, agent.type=sac) maximises
  ``Â(s, π(s)) + α H(π(·|s))`` through :meth:`AdvantageLearner.differentiable_advantage`:
  no critic, no bootstrapping, no discount. The constant is irrelevant to an argmax.
* ``reward`` — Â mistaken for a reward and optimised with γ > 0, for comparison. The
  pitfall the paper describes: the unidentified constant ``c`` becomes a per-step bonus or
  penalty, so with termination the agent learns to prolong or to end episodes. Two fixes
  pin ``c``, either is enough (both may be on):

  - ``feedback.absorbing=true`` — the paper's: segments run past a true termination into
    the absorbing state, where A* = 0 (its steps count 0 in the sum above), so segments
    have different numbers of non-absorbing steps and the labels fix ``c`` ≈ 0. It needs
    terminations in the sampled data; on an env that never terminates there is no
    constant to pin.
  - ``learner.anchor=true`` (default) — pbrl's, from the identity ``max_a A*(s, a) = 0``:
    the reward is ``Â(s, a) − Â(s, μ(s))``, where the anchor actor ``μ`` (trained on logged
    states after each update) maximises Â. It works without terminations in the data.

  With neither, building the learner warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
from pbrl.learners.ensemble import EnsembleMLP
from pbrl.nets import mlp
from pbrl.segments import PreferenceDataset
from pbrl.transitions import TransitionView

MODES = ("greedy", "reward")


@dataclass(frozen=True)
class AdvantageConfig:
    """The optimal-advantage learner's own knobs (learner.type=advantage, beside the Bradley–Terry ensemble's)."""

    mode: str = "greedy"
    """'greedy' (the paper's recommendation; agent.type=sac): a dedicated actor maximises Â(s, π(s)) + αH, no critic; 'reward': Â used as SAC's or PPO's reward with γ > 0."""
    anchor: bool = True
    """mode=reward: pin Â's free constant by subtracting Â(s, μ(s)), so max_a Â(s, a) = 0 as for A* (pbrl's fix; feedback.absorbing=true is the paper's, either suffices)."""
    anchor_steps: int = 200
    """Gradient steps of the anchor actor μ per round (mode=reward with anchor)."""
    anchor_batch: int = 256
    """Logged states per anchor-actor step."""
    anchor_lr: float = 3e-4
    """Adam learning rate of the anchor actor."""
    anchor_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the anchor actor."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"learner.mode={self.mode!r} is unknown; choose one of {list(MODES)}")
        if self.anchor_steps < 0 or self.anchor_batch < 1:
            raise ValueError("learner.anchor_steps must be ≥ 0 and learner.anchor_batch ≥ 1")


class AdvantageLearner(BTEnsemble):
    """An ensemble ``Â_e(s, a)`` fit with the regret preference model; the agent either ascends
    it directly (mode=greedy, :meth:`differentiable_advantage`) or takes it as a reward
    (mode=reward, :meth:`reward_tensor`, anchored by the actor μ)."""

    def __init__(
        self, obs_dim: int, act_dim: int, reward: BTEnsembleConfig = BTEnsembleConfig(),
        config: AdvantageConfig = AdvantageConfig(), seed: int = 0,
    ) -> None:
        self.advantage_config = config
        super().__init__(obs_dim, act_dim, reward, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            self.actor = mlp(obs_dim, act_dim, config.anchor_hidden, output_activation="tanh").to(self.device)  # actions in [−1, 1]
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.anchor_lr)
        self.rng = np.random.default_rng(seed)
        self.anchor_states: torch.Tensor | None = None  # logged states μ trains on (set by observe)

    def _make_net(self) -> nn.Module:
        return EnsembleMLP(self.config.ensemble_size, self.obs_dim + self.act_dim, self.config.hidden_sizes, output_activation=None)

    @property
    def anchored(self) -> bool:
        return self.advantage_config.mode == "reward" and self.advantage_config.anchor

    # ---------------------------------------------------------------- Â and the agent's reward
    @torch.no_grad()
    def advantage_tensor(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Ensemble-mean ``Â(s, a)``, ``[N]``."""
        return self._member_rewards(self._inputs(obs, actions)).mean(dim=0)

    def differentiable_advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Ensemble-mean ``Â(s, a)``, ``[N]``, differentiable in ``actions`` but not in Â's own
        parameters (read detached), so an actor can ascend Â without training it."""
        frozen = {name: param.detach() for name, param in self.net.named_parameters()}
        return functional_call(self.net, frozen, (self._inputs(obs, actions),)).squeeze(-1).mean(dim=0)

    @torch.no_grad()
    def reward_tensor(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``Â(s, a)``, minus ``Â(s, μ(s))`` when anchored (mode=reward with the fix)."""
        advantage = self.advantage_tensor(obs, actions)
        return advantage - self.advantage_tensor(obs, self.actor(obs)) if self.anchored else advantage

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        if not self.anchored:
            return super().reward(obs, actions, next_obs)
        as_t = lambda a, d: torch.as_tensor(np.asarray(a, np.float32).reshape(len(obs), d), device=self.device)  # noqa: E731
        return self.reward_tensor(as_t(obs, self.obs_dim), as_t(actions, self.act_dim), None).cpu().numpy()

    # ---------------------------------------------------------------- training
    def observe(self, view: TransitionView) -> dict[str, float]:
        """Keep the logged states the anchor actor trains on (only when the fix is in use)."""
        if self.anchored and view.size > 0:
            self.anchor_states = torch.as_tensor(view.transitions().obs[:, 0], device=self.device)
        return {}

    def update(self, data: PreferenceDataset, weights: np.ndarray | None = None) -> dict[str, float]:
        """Fit Â to the labels, then (anchored) fit μ(s) = argmax_a Â(s, a) on logged states:
        ``L_μ = −E_s[(1/E) Σ_e Â_e(s, μ(s))]`` with Â frozen."""
        metrics = super().update(data, weights)
        cfg, states = self.advantage_config, self.anchor_states
        if not self.anchored or states is None or cfg.anchor_steps == 0:
            return metrics
        for _ in range(cfg.anchor_steps):
            batch = states[torch.as_tensor(self.rng.integers(0, len(states), cfg.anchor_batch), device=self.device)]
            loss = -self.differentiable_advantage(batch, self.actor(batch)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.actor_optimizer.step()
        return {**metrics, "anchor_advantage": -loss.item()}

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "actor": self.actor.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.actor.load_state_dict(state["actor"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.rng.bit_generator.state = state["rng"]
