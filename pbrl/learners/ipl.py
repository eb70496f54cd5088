"""Inverse Preference Learning (Hejna & Sadigh, NeurIPS 2023, "Inverse Preference Learning:
Preference-based RL without a Reward Function"; reference code jhejna/inverse-preference-learning,
``IPL_IQL``).

No reward network: the Q-function itself defines the reward through the inverse Bellman
operator, the *implicit reward*

    r_Q(s, a) = Q(s, a) − γ (1 − d) V(s'),

where ``d = 1`` when the episode truly terminated after the step (an absorbing state: the
Hopper fell) and 0 otherwise (a time-limit truncation still bootstraps ``V(s')``);

and Q is fit so that the segments' implicit returns explain the preferences, with a χ²
regulariser that keeps the implicit reward small (and so the Q-function bounded):

    L_Q = − E[ y log σ(Σ_t r_Q(σ_L) − Σ_t r_Q(σ_R)) + (1 − y) log σ(Σ_t r_Q(σ_R) − Σ_t r_Q(σ_L)) ]
          + λ_χ² E[ r_Q(s, a)² ]

(one term per critic of the twin ensemble; Σ_t over each segment's steps). The value and
the policy follow IQL:

    L_V = E[ |τ − 1(u < 0)| u² ],  u = min_i Q̄_i(s, a) − V(s)       (expectile τ)
    L_π = − E[ min(exp((min_i Q̄_i(s, a) − V(s)) / β), 100) · log π(a|s) ]   (advantage-weighted)

with Q̄ a Polyak-averaged target critic. ``V(s')`` in ``r_Q`` carries no gradient and, with
``target_clipping``, is clamped to ±1 / (λ_χ² (1 − γ)), the bound the regulariser implies.
Unlabeled transitions (the agent's replay online, via :meth:`IPL.observe`, or a dataset's
episodes offline, via :meth:`IPL.set_replay`) join the χ², value and policy terms with
weight ``replay_weight``. ``d`` comes from :attr:`Segments.terminals` for labeled segments
and from the replay's termination flags (data that never recorded them counts as ``d = 0``,
exact for MetaWorld and HalfCheetah, which only truncate).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pbrl.learners.policies import GaussianPolicy, PairBatch, PolicyLearner, sample_pairs
from pbrl.nets import INITS, mlp
from pbrl.segments import PreferenceDataset, Segments
from pbrl.transitions import TransitionView


@dataclass(frozen=True)
class IPLConfig:
    """IPL with IQL policy extraction (defaults: jhejna/inverse-preference-learning ``configs/metaworld/ipl_iql.yaml``,
    one coherent set; the gym-locomotion set is ``experiments/configs/ipl_gym.yaml``)."""

    discount: float = 0.99
    """γ of the implicit reward Q(s,a) − γ V(s')."""
    chi2: float = 3.0
    """λ_χ²: weight of the χ² regulariser E[r_Q²] on the implicit reward (MetaWorld chi2_coeff 3; gym locomotion 0.5)."""
    expectile: float = 0.75
    """Expectile τ of the value function V (IQL; MetaWorld 0.75, gym locomotion 0.7)."""
    beta: float = 1 / 3
    """Temperature β of the advantage weights exp(A / β) (IQL's inverse temperature 3)."""
    clip_weight: float = 100.0
    """Upper clip of the advantage weights."""
    polyak: float = 0.005
    """Polyak rate ρ of the target critic, Q̄ ← (1 − ρ) Q̄ + ρ Q (the reference's ``tau``; not the expectile τ)."""
    target_clipping: bool = False
    """Clamp V(s') to ±1 / (λ_χ² (1 − γ)) inside the implicit reward (MetaWorld False, gym locomotion True)."""
    lr: float = 3e-4
    """Adam learning rate of actor, critics and value."""
    batch_size: int = 16
    """Labeled pairs per minibatch (MetaWorld 16, gym locomotion 8)."""
    window: int | None = 16
    """Cut each segment to a random window of this many steps (None = whole segments; the reference's subsample_size: MetaWorld 16 of 25, gym locomotion 64 of 100)."""
    replay_batch_size: int = 0
    """Unlabeled transitions per minibatch when replay data is available (0 = labeled segments only)."""
    replay_weight: float = 0.5
    """Weight of the replay part of the χ², value and policy losses (the rest: the labeled segments)."""
    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    """Hidden widths of actor, critics and value MLPs (MetaWorld 3×256, gym locomotion 2×256)."""
    init: str = "orthogonal"
    """Weight init of actor, critics and value: 'orthogonal' (gain 1, zero bias: the reference's ortho_init) or 'torch' (PyTorch's default, pbrl's former)."""
    steps_per_update: int = 1_000
    """Gradient steps per update() call."""
    device: str = "cpu"
    """Torch device."""

    def __post_init__(self) -> None:
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"learner.discount must be in (0, 1), got {self.discount}")
        if not 0.0 < self.polyak <= 1.0:
            raise ValueError(f"learner.polyak must be in (0, 1], got {self.polyak}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"learner.expectile must be in (0, 1), got {self.expectile}")
        if self.chi2 <= 0 or self.beta <= 0:
            raise ValueError("learner.chi2 and learner.beta must be > 0")
        if self.init not in INITS:
            raise ValueError(f"learner.init must be one of {INITS}, got {self.init!r}")
        if not 0.0 <= self.replay_weight <= 1.0:
            raise ValueError(f"learner.replay_weight must be in [0, 1], got {self.replay_weight}")
        if self.batch_size < 1 or self.steps_per_update < 1 or self.replay_batch_size < 0:
            raise ValueError("learner.batch_size and learner.steps_per_update must be ≥ 1, replay_batch_size ≥ 0")


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """``|τ − 1(u < 0)| u²`` elementwise, for ``u = target − prediction``."""
    return torch.abs(expectile - (diff < 0).float()) * diff.square()


def ipl_critic_loss(
    q: torch.Tensor, next_v: torch.Tensor, labels: torch.Tensor, discount: float, chi2: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Preference and χ² losses of the implicit reward, and the implicit rewards themselves.

    ``q`` is ``[E, 2, B, T]`` (critics × left/right × pairs × steps), ``next_v`` ``[2, B, T]`` the
    bootstrapped value ``(1 − d) V(s')`` (zero after a true termination; no gradient),
    ``labels`` ``[B]`` = P[left ≻ right]. Returns the mean BCE of ``Σ_t r_Q(σ_L) − Σ_t r_Q(σ_R)``
    against the labels (over critics and pairs), ``λ_χ² E[r_Q²]``, and ``r_Q = q − γ next_v``.
    """
    reward = q - discount * next_v
    returns = reward.sum(dim=-1)  # [E, 2, B]
    logits = returns[:, 0] - returns[:, 1]
    preference = F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits))
    return preference, chi2 * reward.square().mean(), reward


class Replay:
    """Unlabeled transitions ``(s, a, s', d)`` to sample from (views of the caller's arrays, no copy);
    ``terminals`` ``[N]`` bool is ``d`` (``None``: no transition terminates)."""

    def __init__(
        self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, terminals: np.ndarray | None = None
    ) -> None:
        self.obs, self.actions, self.next_obs = obs, actions, next_obs
        self.terminals = np.zeros(len(obs), bool) if terminals is None else terminals

    @classmethod
    def from_view(cls, view: TransitionView) -> "Replay":
        """Every transition in a transition log's learner view (no copy)."""
        flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
        return cls(flat(view.obs), flat(view.actions), flat(view.next_obs), view.terminals.reshape(-1))

    def sample(self, count: int, rng: np.random.Generator, device: torch.device) -> tuple[torch.Tensor, ...]:
        """``count`` transitions drawn uniformly: ``(obs, actions, next_obs, terminals)`` as float tensors."""
        index = rng.integers(0, len(self.obs), size=count)
        arrays = (self.obs, self.actions, self.next_obs, self.terminals)
        return tuple(torch.as_tensor(a[index], dtype=torch.float32, device=device) for a in arrays)


class Critic(nn.Module):
    """An ensemble of ``E`` Q-networks; ``forward`` returns ``[E, ...]``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int = 2, init: str = "torch") -> None:
        super().__init__()
        self.members = nn.ModuleList(mlp(obs_dim + act_dim, 1, hidden, init=init) for _ in range(members))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, actions], dim=-1)
        return torch.stack([m(x).squeeze(-1) for m in self.members])


class IPL(PolicyLearner):
    """IPL-IQL: implicit-reward critic, expectile value, advantage-weighted policy."""

    config: IPLConfig

    def __init__(self, obs_dim: int, act_dim: int, config: IPLConfig = IPLConfig(), seed: int = 0) -> None:
        super().__init__(obs_dim, act_dim, config, seed)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.optimizers = {
            name: torch.optim.Adam(module.parameters(), lr=config.lr)
            for name, module in (("actor", self.policy), ("critic", self.critic), ("value", self.value))
        }
        self.replay: Replay | None = None

    def build_networks(self, obs_dim: int, act_dim: int) -> None:
        hidden = self.config.hidden_sizes
        init = self.config.init
        self.policy = GaussianPolicy(obs_dim, act_dim, hidden, learn_std=True, init=init).to(self.device)
        self.critic = Critic(obs_dim, act_dim, hidden, init=init).to(self.device)
        self.value = mlp(obs_dim, 1, hidden, init=init).to(self.device)

    def set_replay(self, replay: Replay | None) -> None:
        """Unlabeled transitions for the χ², value and policy losses (used when replay_batch_size > 0)."""
        self.replay = replay

    def observe(self, view: TransitionView) -> dict[str, float]:
        if view.size > 0:
            self.set_replay(Replay.from_view(view))
        return {}

    def _mix(self, per_item: torch.Tensor, labeled: int) -> torch.Tensor:
        """Mean over labeled items and replay items, weighted ``1 − w`` and ``w`` when there is replay."""
        if per_item.shape[-1] == labeled:
            return per_item.mean()
        w = self.config.replay_weight
        return (1 - w) * per_item[..., :labeled].mean() + w * per_item[..., labeled:].mean()

    def train_step(self, data: PreferenceDataset) -> dict[str, float]:
        cfg = self.config
        batch = sample_pairs(data, cfg.batch_size, cfg.window, self.rng, self.device)
        obs, actions, next_obs = (x.reshape(-1, x.shape[-1]) for x in (batch.obs, batch.actions, batch.next_obs))
        terminals = batch.terminals.reshape(-1)
        labeled = obs.shape[0]
        if self.replay is not None and cfg.replay_batch_size > 0:
            replay = self.replay.sample(cfg.replay_batch_size, self.rng, self.device)
            obs, actions, next_obs, terminals = (
                torch.cat([x, r]) for x, r in zip((obs, actions, next_obs, terminals), replay)
            )

        with torch.no_grad():
            target_q = self.target(obs, actions).min(dim=0).values
        value_loss = self._mix(expectile_loss(target_q - self.value(obs).squeeze(-1), cfg.expectile), labeled)
        self._step("value", value_loss)

        with torch.no_grad():  # (1 − d) V(s'): nothing to bootstrap past a true termination
            next_v = (1.0 - terminals) * self.value(next_obs).squeeze(-1)
        critic_loss, metrics = self.critic_loss(self.critic(obs, actions), next_v, batch, (obs, actions, next_obs), labeled)
        self._step("critic", critic_loss)

        with torch.no_grad():
            advantage = target_q - self.value(obs).squeeze(-1)
            weights = torch.exp(advantage / cfg.beta).clamp(max=cfg.clip_weight)
        actor_loss = self._mix(-weights * self.policy.log_prob(obs, actions), labeled)
        self._step("actor", actor_loss)

        with torch.no_grad():
            for p, p_target in zip(self.critic.parameters(), self.target.parameters()):
                p_target.lerp_(p, cfg.polyak)
        return {**metrics, "value_loss": value_loss.item(), "actor_loss": actor_loss.item()}

    def critic_loss(
        self, q: torch.Tensor, next_v: torch.Tensor, batch: PairBatch, transitions: tuple[torch.Tensor, ...], labeled: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """IPL's critic objective: preference likelihood of the implicit reward plus its χ² regulariser.

        ``q`` is ``[E, N]``, ``next_v`` ``[N]`` the bootstrapped value ``(1 − d) V(s')`` and
        ``transitions`` = ``(obs, actions, next_obs)`` ``[N, ·]``, over the batch's flattened
        labeled steps (the first ``labeled``) followed by replay transitions.
        """
        cfg = self.config
        if cfg.target_clipping:
            limit = 1.0 / (cfg.chi2 * (1.0 - cfg.discount))
            next_v = next_v.clamp(-limit, limit)
        shape = batch.actions.shape[:3]  # [2, B, T]
        preference, chi2_loss, reward = ipl_critic_loss(
            q[:, :labeled].reshape(q.shape[0], *shape), next_v[:labeled].reshape(shape), batch.labels, cfg.discount, cfg.chi2
        )
        if q.shape[1] > labeled:  # replay transitions join the regulariser
            replay_chi2 = cfg.chi2 * (q[:, labeled:] - cfg.discount * next_v[labeled:]).square().mean()
            chi2_loss = (1 - cfg.replay_weight) * chi2_loss + cfg.replay_weight * replay_chi2
        with torch.no_grad():
            returns = reward.sum(dim=-1).mean(dim=0)
            decided = batch.labels != 0.5
            correct = ((returns[0] > returns[1]) == (batch.labels > 0.5)) & decided
            accuracy = correct.float().sum() / decided.sum().clamp(min=1)
        metrics = {"preference_loss": preference.item(), "chi2_loss": chi2_loss.item(),
                   "implicit_reward": reward.mean().item(), "train_accuracy": accuracy.item()}
        return preference + chi2_loss, metrics

    def _step(self, name: str, loss: torch.Tensor) -> None:
        self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers[name].step()

    @torch.no_grad()
    def implicit_reward(self, segments: Segments) -> torch.Tensor:
        """Critic-mean ``r_Q(s_t, a_t) = Q(s_t, a_t) − γ (1 − d_t) V(s_{t+1})`` of every step, ``[B, T]``."""
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        next_v = (1.0 - as_t(segments.terminal_mask)) * self.value(as_t(segments.next_obs)).squeeze(-1)
        if self.config.target_clipping:
            limit = 1.0 / (self.config.chi2 * (1.0 - self.config.discount))
            next_v = next_v.clamp(-limit, limit)
        return (self.critic(as_t(segments.obs), as_t(segments.actions)) - self.config.discount * next_v).mean(dim=0)

    def preference_probability(self, left: Segments, right: Segments) -> np.ndarray:
        """``σ(Σ_t r_Q(σ_L) − Σ_t r_Q(σ_R))``."""
        diff = self.implicit_reward(left).sum(dim=1) - self.implicit_reward(right).sum(dim=1)
        return torch.sigmoid(diff).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        modules = {"policy": self.policy, "critic": self.critic, "target": self.target, "value": self.value}
        state: dict[str, Any] = {name: m.state_dict() for name, m in modules.items()}
        state["optimizers"] = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        state.update(updates=self.updates, **self.rng_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("policy", "critic", "target", "value"):
            getattr(self, name).load_state_dict(state[name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.updates = int(state["updates"])
        self.load_rng_state(state)
