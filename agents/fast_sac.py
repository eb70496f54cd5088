"""FastSAC: stable-baselines3's SAC with one fused update per gradient step.

A subclass of SB3's :class:`~stable_baselines3.SAC` that replaces ``train()`` (and, for
acting, two methods of its policy: ``set_training_mode`` and the actor's ``forward``, same
modes and actions) — the policy, actor, critics, optimizers, logger keys, ``save``/``load``,
``predict`` and the callbacks are SB3's own, so everything built around SB3 SAC (PEBBLE's relabel and critic
reset, checkpoints, evaluation) works unchanged. One gradient step computes, with the
same maths as ``SAC.train`` (Haarnoja et al., 2018; SB3's choices kept):

* actor sample for ``s`` and ``s'``: ``u = μ(s) + σ(s)·ε``, ``a = tanh u``,
  ``log π(a|s) = Σ_i [log N(u_i; μ_i, σ_i) − log(1 − a_i² + 10⁻⁶)]``, ``log σ`` clamped to
  ``[−20, 2]`` (SB3) or, with ``log_std_bounds=(lo, hi)``, B-Pref's ``lo + ½ (hi − lo)(tanh x + 1)``;
* temperature: ``L_α = −log α · (log π(a|s) + H̄)`` with ``H̄ = −dim(A)`` (α used below is
  the value *before* this step, as in SB3), at ``learning_rate`` or its own ``alpha_lr``;
* critic: ``y = r + γ (1 − d) (min_j Q̄_j(s', a') − α log π(a'|s'))``,
  ``L_Q = ½ Σ_j mean (Q_j(s, a) − y)²``;
* actor, through the *updated* critics: ``L_π = mean(α log π(a|s) − min_j Q_j(s, a))``;
* Polyak ``Q̄ ← (1 − τ) Q̄ + τ Q`` whenever ``gradient_step % target_update_interval == 0``,
  ``gradient_step`` counted from 0 in each ``train()`` call (SB3) or, with
  ``target_update_clock="global"``, over the run (B-Pref's ``step % critic_target_update_frequency``).

What makes it fast (none of it changes the numbers beyond float rounding):

* **float32 products through oneDNN on CPU** (:mod:`pbrl.cpu_linear`, each critic on its
  own): on AMD CPUs MKL's float32 product runs its AVX2 path, oneDNN's AVX-512, twice the
  multiply-adds per second; elsewhere (CUDA, bf16, ``PBRL_CPU_LINEAR=aten``) the **twin
  critic is one batched network**: the ``n_critics`` Q-networks' layers are stacked,
  ``W ∈ R^{n×in×out}``, and evaluated with one ``baddbmm`` per layer (:func:`stacked_layers`);
  either way gradients land in SB3's own ``nn.Linear`` parameters and the critic stays SB3's
  ``ContinuousCritic``;
* **no wasted gradients**: the actor loss reads the critics through detached weights, so
  backward computes no critic weight gradients that SB3 would compute and then discard;
* **no host sync inside a step**: losses stay on the device until the end of ``train()``;
  the actor's Gaussian noise is drawn eagerly (SB3's draw order) and passed in, so the
  update is a pure function of (batch, noise) that ``torch.compile`` can fuse and CUDA
  graphs can replay;
* **fused optimizers**: Adam with ``fused=True`` on CPU, ``capturable=True`` on CUDA
  (FastSAC owns these two keys of ``policy_kwargs["optimizer_kwargs"]`` and sets them for
  the model's device, also after ``load``; PEBBLE's critic reset, which rebuilds the
  critic optimizer from the critic's kwargs, keeps them);
* **execution** (:attr:`FastSAC.execution`): ``"eager"``, ``"compile"``
  (``torch.compile`` of the update) or ``"graph"`` (CUDA only: the whole update captured
  once in a CUDA graph with static input buffers and replayed; re-captured when an
  optimizer or its state is replaced — a critic reset, ``load``, ``set_parameters``).
  ``"auto"``: ``"graph"`` on CUDA, ``"eager"`` on CPU (measured on one CPU thread, see
  ``docs/speed.md``).

Two B-Pref settings SB3's SAC cannot express (both off by default, so FastSAC stays SB3's maths):

* ``alpha_lr``: α's own Adam learning rate (B-Pref ``config/agent/sac.yaml`` L13, ``alpha_lr: 1e-4``;
  ``agent/sac.py`` L80–83), kept at every ``train()`` call where SB3 resets every optimiser's lr
  from the one schedule, and across ``save``/``load`` and PEBBLE's critic reset;
* ``log_std_bounds=(lo, hi)``: the actor's ``log σ = lo + ½ (hi − lo)(tanh x + 1)`` (B-Pref
  ``agent/actor.py`` L72–75; ``[−5, 2]`` in ``config/agent/sac.yaml`` L40) in place of SB3's
  clamp, in the update *and* when acting: FastSAC's ``MlpPolicy`` is :class:`FastSACPolicy`, whose
  actor (:class:`SquashedLogStdActor`) gives ``predict``, collection and evaluation the same
  distribution; the bounds are a policy kwarg, so they are saved and loaded with the model.

Differences from SB3 are listed in ``docs/speed.md``. Only ``MlpPolicy`` with Box
observations and ``use_sde=False`` is supported (PEBBLE's setting); anything else is refused.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor, SACPolicy
from torch import nn
from torch.distributions.utils import _standard_normal

from pbrl import cpu_linear
from pbrl.agents.device_replay import DeviceReplayBuffer
from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.agents.sac import make_sac

EXECUTIONS = ("auto", "eager", "compile", "graph")
_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))
_TANH_EPS = 1e-6  # SB3's SquashedDiagGaussianDistribution.epsilon


def stacked_layers(networks: nn.ModuleList, detach: bool = False) -> list[tuple[torch.Tensor, torch.Tensor] | nn.Module]:
    """The layers of ``n`` identically shaped MLPs as one batched MLP.

    Each ``nn.Linear`` position becomes ``(W, b)`` with ``W = stack_j W_jᵀ`` ``[n, in, out]``
    and ``b`` ``[n, 1, out]``; activations are shared modules. ``detach``: no gradient to
    the members' weights (the actor loss needs ∂Q/∂a only).
    """
    layers: list[tuple[torch.Tensor, torch.Tensor] | nn.Module] = []
    for position in zip(*networks):
        first = position[0]
        if isinstance(first, nn.Linear):
            weight = torch.stack([m.weight.detach() if detach else m.weight for m in position]).transpose(1, 2)
            bias = torch.stack([m.bias.detach() if detach else m.bias for m in position]).unsqueeze(1)
            layers.append((weight, bias))
        else:
            layers.append(first)
    return layers


def batched_q(layers: list, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``Q_j([s, a])`` for every member ``j`` at once: ``[B, ·]`` inputs → ``[n, B, 1]``."""
    x = torch.cat([obs.float(), actions], dim=1)  # SB3 preprocess_obs: Box observations as float32
    n = layers[0][0].shape[0]
    x = x.unsqueeze(0).expand(n, -1, -1)
    for layer in layers:
        x = torch.baddbmm(layer[1], x, layer[0]) if isinstance(layer, tuple) else layer(x)
    return x.float()  # float32 out also under bf16 autocast


def mlp_forward(net: nn.Sequential, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
    """An SB3 MLP (``nn.Linear`` and activation layers) with its linear layers through
    :func:`pbrl.cpu_linear.linear` (oneDNN on CPU where faster); ``detach``: no gradient to its weights."""
    for layer in net:
        if isinstance(layer, nn.Linear):
            weight, bias = (layer.weight.detach(), layer.bias.detach()) if detach else (layer.weight, layer.bias)
            x = cpu_linear.linear(x, weight, bias)
        else:
            x = layer(x)
    return x


def q_values(networks: nn.ModuleList, obs: torch.Tensor, actions: torch.Tensor, detach: bool = False,
             stacked: bool = True) -> torch.Tensor:
    """``Q_j([s, a])`` of every member, ``[n, B, 1]``: one batched network (:func:`stacked_layers`,
    ``stacked``) or each member on its own through :func:`mlp_forward` (the oneDNN path on CPU)."""
    if stacked:
        return batched_q(stacked_layers(networks, detach), obs, actions)
    x = torch.cat([obs.float(), actions], dim=1)
    return torch.stack([mlp_forward(net, x, detach) for net in networks])


def squash_log_std(raw: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """B-Pref's log-std (``agent/actor.py`` L72–75): ``log σ = lo + ½ (hi − lo)(tanh x + 1)`` ∈ ``[lo, hi]``."""
    log_std = torch.tanh(raw)
    log_std_min, log_std_max = bounds
    return log_std_min + 0.5 * (log_std_max - log_std_min) * (log_std + 1)


def bounded_log_std(raw: torch.Tensor, bounds: tuple[float, float] | None) -> torch.Tensor:
    """The actor's ``log σ`` from its raw output: SB3's clamp to ``[−20, 2]`` (``bounds=None``), else :func:`squash_log_std`."""
    return torch.clamp(raw, LOG_STD_MIN, LOG_STD_MAX) if bounds is None else squash_log_std(raw, bounds)


def _check_bounds(bounds: Any) -> tuple[float, float] | None:
    if bounds is None:
        return None
    low, high = (float(b) for b in bounds)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"log_std_bounds must be two finite numbers (min, max) with min < max, got {tuple(bounds)}")
    return low, high


class SquashedLogStdActor(Actor):
    """SB3's SAC actor whose ``log σ`` is B-Pref's tanh squashing into ``log_std_bounds`` (None: SB3's clamp).

    Everything that reads the actor's distribution — ``predict`` (hence collection and
    evaluation), ``action_log_prob`` and FastSAC's update — goes through
    :meth:`get_action_dist_params` or :func:`bounded_log_std`, so all see the same ``σ``.
    """

    def __init__(self, *args: Any, log_std_bounds: tuple[float, float] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if log_std_bounds is not None and self.use_sde:
            raise ValueError("log_std_bounds applies to the plain Gaussian actor, not to gSDE (use_sde=True)")
        self.log_std_bounds = _check_bounds(log_std_bounds)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "log_std_bounds": self.log_std_bounds}

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if self.log_std_bounds is None:
            return super().get_action_dist_params(obs)
        latent_pi = self.latent_pi(self.extract_features(obs, self.features_extractor))
        return self.mu(latent_pi), squash_log_std(self.log_std(latent_pi), self.log_std_bounds), {}

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        """The action, as SB3's ``Actor.forward``: ``tanh μ`` (deterministic) or ``tanh(μ + σ ε)`` with
        ``ε`` drawn as ``Normal.rsample`` draws it (the same numbers from the same generator state), without
        building the ``torch.distributions`` object per call (``predict`` runs once per env step)."""
        if self.use_sde:
            return super().forward(obs, deterministic)
        mean, log_std, _ = self.get_action_dist_params(obs)
        if deterministic:
            return torch.tanh(mean)
        return torch.tanh(mean + _standard_normal(mean.shape, dtype=mean.dtype, device=mean.device) * log_std.exp())


class FastSACPolicy(SACPolicy):
    """FastSAC's ``MlpPolicy``: SB3's :class:`~stable_baselines3.sac.policies.SACPolicy` with a
    :class:`SquashedLogStdActor`; ``log_std_bounds=None`` (default) is SB3's policy exactly
    (same modules and parameter names, SB3's clamp). The bounds are a constructor argument,
    so a saved model (its ``policy_kwargs``) restores them."""

    def __init__(self, *args: Any, log_std_bounds: tuple[float, float] | None = None, **kwargs: Any) -> None:
        self.log_std_bounds = _check_bounds(log_std_bounds)  # before SACPolicy.__init__, which builds the actor
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: Any = None) -> SquashedLogStdActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return SquashedLogStdActor(**actor_kwargs, log_std_bounds=self.log_std_bounds).to(self.device)

    def set_training_mode(self, mode: bool) -> None:
        """SB3's — the policy and every module of the actor and the critic to ``mode`` — as one pass
        over a cached list of those modules: SB3 sets the mode about three times per env step
        (collection, ``predict``, ``train``), and ``nn.Module.train``'s recursive walk took ~80 µs here.
        The list is rebuilt when the actor or critic is replaced (PEBBLE's critic reset)."""
        owners = getattr(self, "_mode_owners", None)
        if owners is None or owners[0] is not self.actor or owners[1] is not self.critic:
            self._mode_owners = (self.actor, self.critic)
            self._mode_modules = [*self.actor.modules(), *self.critic.modules()]
        for module in self._mode_modules:
            module.__dict__["training"] = mode  # nn.Module.train's assignment, without __setattr__'s checks
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "log_std_bounds": self.log_std_bounds}


def squashed_gaussian_sample(actor: nn.Module, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SB3's ``actor.action_log_prob`` with the standard-normal noise ``ε`` given: ``(a, log π(a|s))``, ``[B, A]``, ``[B]``.

    ``u = μ + σ ε``, ``a = tanh u``,
    ``log π = Σ_i [−(u_i − μ_i)²/(2σ_i²) − log σ_i − log √(2π)] − Σ_i log(1 − a_i² + 10⁻⁶)``
    (the same expression order as ``torch.distributions.Normal.log_prob`` and SB3); ``log σ``
    is SB3's clamp or the actor's ``log_std_bounds`` squashing (:func:`bounded_log_std`).
    """
    latent = mlp_forward(actor.latent_pi, obs.float())
    mean = cpu_linear.linear(latent, actor.mu.weight, actor.mu.bias).float()  # float32 also under bf16 autocast
    log_std = cpu_linear.linear(latent, actor.log_std.weight, actor.log_std.bias).float()
    log_std = bounded_log_std(log_std, getattr(actor, "log_std_bounds", None))
    std = log_std.exp()  # SB3: ones_like(mean) * exp(log_std), the same values
    gaussian = mean + noise * std
    log_prob = (-((gaussian - mean) ** 2) / (2 * std**2) - std.log() - _LOG_SQRT_2PI).sum(dim=1)
    actions = torch.tanh(gaussian)
    return actions, log_prob - torch.sum(torch.log(1 - actions**2 + _TANH_EPS), dim=1)


class FastSAC(SAC):
    """SB3 SAC whose gradient step is one fused, optionally compiled or graph-captured, update.

    Takes every argument of SB3's ``SAC`` plus ``execution`` (see the module docstring) and
    ``device_replay``: SB3's or pbrl's replay buffer class (or none given) becomes
    :class:`~pbrl.agents.device_replay.DeviceReplayBuffer`, the replay on the agent's device
    (``False``: keep the class given). ``precision="bfloat16"`` (opt-in, changes the
    numbers): the losses' matrix products in bf16 under ``torch.autocast``; parameters,
    optimizer state, the Gaussian log-likelihood and the losses stay float32.
    ``alpha_lr``: the temperature's own constant learning rate (None: the policy's schedule,
    SB3). ``log_std_bounds=(lo, hi)``: B-Pref's squashed log-std (None: SB3's clamp); it
    becomes ``policy_kwargs["log_std_bounds"]`` of :class:`FastSACPolicy` (FastSAC's
    ``"MlpPolicy"``). ``target_update_clock``: ``"per_call"`` (SB3) or ``"global"`` (B-Pref), how
    ``target_update_interval`` counts gradient steps (module docstring).
    """

    policy_aliases: ClassVar[dict[str, type]] = {**SAC.policy_aliases, "MlpPolicy": FastSACPolicy}

    def __init__(self, policy: Any, env: Any, *args: Any, execution: str = "auto", device_replay: bool = True,
                 precision: str = "float32", alpha_lr: float | None = None,
                 log_std_bounds: tuple[float, float] | None = None, target_update_clock: str = "per_call",
                 **kwargs: Any) -> None:
        if execution not in EXECUTIONS:
            raise ValueError(f"FastSAC execution must be one of {EXECUTIONS}, got {execution!r}")
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"FastSAC precision must be 'float32' or 'bfloat16', got {precision!r}")
        if alpha_lr is not None and not alpha_lr > 0:
            raise ValueError(f"FastSAC alpha_lr must be > 0 or None, got {alpha_lr!r}")
        if target_update_clock not in ("per_call", "global"):
            raise ValueError(f"FastSAC target_update_clock must be 'per_call' or 'global', got {target_update_clock!r}")
        self.execution_request = execution
        self.target_update_clock = target_update_clock
        self.precision = precision
        self.alpha_lr = None if alpha_lr is None else float(alpha_lr)
        if log_std_bounds is not None:
            if isinstance(policy, type) and not issubclass(policy, FastSACPolicy):
                raise ValueError(f"FastSAC log_std_bounds needs its MlpPolicy (FastSACPolicy), not {policy.__name__}")
            kwargs["policy_kwargs"] = {**(kwargs.get("policy_kwargs") or {}), "log_std_bounds": _check_bounds(log_std_bounds)}
        if kwargs.get("use_sde", False):
            raise ValueError("FastSAC does not support use_sde=True (gSDE); use stable_baselines3.SAC")
        if device_replay and kwargs.get("replay_buffer_class") in (None, ReplayBuffer, PreferenceReplayBuffer):
            kwargs["replay_buffer_class"] = DeviceReplayBuffer
        super().__init__(policy, env, *args, **kwargs)

    # ----------------------------------------------------------------- set-up
    def _adam_flags(self) -> dict[str, bool]:
        """FastSAC picks Adam's implementation for the device: fused on CPU, capturable (CUDA graphs) on CUDA."""
        cuda = self.device.type == "cuda"
        return {"fused": not cuda, "capturable": cuda}

    def _setup_model(self) -> None:
        # also after load (the saved policy_kwargs may come from another device)
        self.policy_kwargs = {**self.policy_kwargs,
                              "optimizer_kwargs": {**(self.policy_kwargs.get("optimizer_kwargs") or {}), **self._adam_flags()}}
        super()._setup_model()
        if not isinstance(self.actor.features_extractor, FlattenExtractor):
            raise ValueError("FastSAC supports MlpPolicy with Box observations only (FlattenExtractor)")
        for net in (self.actor, self.critic):  # a rebuilt optimizer (PEBBLE's critic reset) gets the same kwargs
            net.optimizer_kwargs = dict(self.policy.optimizer_kwargs)
        if self.ent_coef_optimizer is not None:  # SB3 builds it without the policy's optimizer kwargs
            self.ent_coef_optimizer = torch.optim.Adam([self.log_ent_coef], lr=self._alpha_lr(self.lr_schedule(1)),
                                                       **self.policy.optimizer_kwargs)
        self._drop_compiled()

    def _alpha_lr(self, schedule_lr: float) -> float:
        """The temperature's learning rate: ``alpha_lr`` when set (B-Pref), else the policy's (SB3)."""
        alpha_lr = getattr(self, "alpha_lr", None)  # a model saved before alpha_lr existed has none
        return schedule_lr if alpha_lr is None else alpha_lr

    @property
    def execution(self) -> str:
        """The execution actually used: ``auto`` resolved for this model's device."""
        if self.execution_request == "auto":
            return "graph" if self.device.type == "cuda" else "eager"
        if self.execution_request == "graph" and self.device.type != "cuda":
            raise ValueError("FastSAC execution='graph' needs a CUDA device")
        return self.execution_request

    def _drop_compiled(self) -> None:
        self._compiled = None
        self._graph: _CapturedUpdate | None = None

    def set_parameters(self, *args: Any, **kwargs: Any) -> None:
        super().set_parameters(*args, **kwargs)
        for optimizer in (self.actor.optimizer, self.critic.optimizer, self.ent_coef_optimizer):
            for group in optimizer.param_groups if optimizer is not None else ():
                group.update(self._adam_flags())  # a loaded state dict brings the saving device's flags
        self._drop_compiled()  # optimizer state tensors were replaced

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_compiled", "_graph"]

    # ----------------------------------------------------------------- the update
    def _critic_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor,
        dones: torch.Tensor, discounts: torch.Tensor | float, noise_next: torch.Tensor, ent_coef: torch.Tensor,
    ) -> torch.Tensor:
        """``L_Q = ½ Σ_j mean (Q_j(s, a) − y)²``, ``y = r + γ (1 − d) (min_j Q̄_j(s', a') − α log π(a'|s'))``."""
        with torch.no_grad():
            next_actions, next_log_prob = squashed_gaussian_sample(self.actor, next_obs, noise_next)
            next_q = q_values(self.critic_target.q_networks, next_obs, next_actions, stacked=self._stacked_critics)
            next_q = torch.min(next_q, dim=0).values - ent_coef * next_log_prob.reshape(-1, 1)
            target_q = rewards + (1 - dones) * discounts * next_q
        current_q = q_values(self.critic.q_networks, obs, actions, stacked=self._stacked_critics)
        return 0.5 * ((current_q - target_q) ** 2).mean(dim=(1, 2)).sum()

    def _actor_loss(self, obs: torch.Tensor, noise_pi: torch.Tensor, ent_coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``L_π = mean(α log π(a|s) − min_j Q_j(s, a))`` through detached critic weights; also ``log π`` (detached)."""
        actions_pi, log_prob = squashed_gaussian_sample(self.actor, obs, noise_pi)
        log_prob = log_prob.reshape(-1, 1)
        q_pi = q_values(self.critic.q_networks, obs, actions_pi, detach=True, stacked=self._stacked_critics)
        return (ent_coef * log_prob - torch.min(q_pi, dim=0).values).mean(), log_prob.detach()

    def _update(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor,
        dones: torch.Tensor, discounts: torch.Tensor | float, noise_pi: torch.Tensor, noise_next: torch.Tensor,
        polyak: bool,
    ) -> torch.Tensor:
        """One gradient step; returns ``[critic loss, actor loss, α, α loss]`` (device tensor, no sync).

        SB3 steps α, then the critic, then the actor; here the critic goes first, then the
        actor, then α. The numbers are the same: the α of every loss is the value before
        this step in both, and the actor's π(·|s) does not depend on the critic's step.
        Each loss has its own graph and one backward, so each can be compiled alone.
        """
        critic_loss_fn, actor_loss_fn = self._loss_functions()
        ent_coef = torch.exp(self.log_ent_coef.detach()) if self.ent_coef_optimizer is not None else self.ent_coef_tensor

        with self._autocast():
            critic_loss = critic_loss_fn(obs, actions, next_obs, rewards, dones, discounts, noise_next, ent_coef)
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()

        with self._autocast():
            actor_loss, log_prob = actor_loss_fn(obs, noise_pi, ent_coef)
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()

        if self.ent_coef_optimizer is not None:
            # L_α = −log α · (log π(a|s) + H̄), H̄ = target entropy
            ent_coef_loss = -(self.log_ent_coef * (log_prob + float(self.target_entropy))).mean()
            self.ent_coef_optimizer.zero_grad()
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()
        else:
            ent_coef_loss = torch.zeros((), device=obs.device)

        if polyak:  # Q̄ ← (1 − τ) Q̄ + τ Q
            with torch.no_grad():
                target = list(self.critic_target.parameters())
                torch._foreach_mul_(target, 1 - self.tau)
                torch._foreach_add_(target, list(self.critic.parameters()), alpha=self.tau)
        return torch.stack([critic_loss.detach(), actor_loss.detach(), ent_coef.reshape(()), ent_coef_loss.detach()])

    @property
    def _stacked_critics(self) -> bool:
        """Twin critic as one batched network (CUDA, bf16), or each critic through oneDNN (float32 on CPU)."""
        return not (self.precision == "float32" and cpu_linear.onednn_active(self.device))

    def _autocast(self) -> torch.autocast:
        """bf16 matrix products in the two losses when ``precision="bfloat16"`` (opt-in); a no-op otherwise."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")

    def _loss_functions(self):
        """The two losses as they run: eager, or compiled once per model (``execution="compile"``)."""
        if self.execution != "compile":
            return self._critic_loss, self._actor_loss
        if self._compiled is None:
            self._compiled = (torch.compile(self._critic_loss), torch.compile(self._actor_loss))
        return self._compiled

    def _runner(self, learning_rates_constant: bool, batch_size: int):
        """The update as it will run: a Python call of :meth:`_update`, or the replay of its CUDA graph.

        The graph is captured for ``self.batch_size`` and constant learning rates; other
        calls (a changing schedule, another batch size) run the same update uncaptured.
        """
        if self.execution != "graph" or not learning_rates_constant or batch_size != self.batch_size:
            return self._update
        if self._graph is None or not self._graph.valid(self):
            self._graph = _CapturedUpdate(self)
        return self._graph

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        before = [g["lr"] for o in optimizers for g in o.param_groups]
        if getattr(self, "alpha_lr", None) is None:  # SB3: every optimiser at the schedule's lr
            self._update_learning_rate(optimizers)
        else:  # α keeps its own lr (B-Pref alpha_lr); SB3 would reset it from the schedule here
            self._update_learning_rate(optimizers[:2])
            for optimizer in optimizers[2:]:
                for group in optimizer.param_groups:
                    group["lr"] = self.alpha_lr
        constant = before == [g["lr"] for o in optimizers for g in o.param_groups]
        runner = self._runner(constant, batch_size)

        action_shape = (batch_size, int(np.prod(self.action_space.shape)))
        # SB3 counts from 0 in every call; 'global' counts the run's gradient steps (B-Pref's step % interval)
        first = self._n_updates if getattr(self, "target_update_clock", "per_call") == "global" else 0
        stats = []
        for gradient_step in range(first, first + gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            # SB3's draw order: the actor's noise for s first, then for s'
            noise_pi = _standard_normal(action_shape, dtype=torch.float32, device=self.device)
            noise_next = _standard_normal(action_shape, dtype=torch.float32, device=self.device)
            stats.append(runner(data.observations, data.actions, data.next_observations, data.rewards, data.dones,
                                discounts, noise_pi, noise_next, gradient_step % self.target_update_interval == 0))

        self._n_updates += gradient_steps
        critic_loss, actor_loss, ent_coef, ent_coef_loss = torch.stack(stats).mean(dim=0).tolist()  # the one host sync
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", ent_coef)
        self.logger.record("train/actor_loss", actor_loss)
        self.logger.record("train/critic_loss", critic_loss)
        if self.ent_coef_optimizer is not None:
            self.logger.record("train/ent_coef_loss", ent_coef_loss)


class _CapturedUpdate:
    """FastSAC's update captured in a CUDA graph: static input buffers, one replay per step.

    Valid while the optimizers and their state tensors are the ones captured (a critic
    reset or a load replaces them) and the learning rates are the captured ones.
    """

    def __init__(self, model: FastSAC) -> None:
        self.key = self._key(model)
        batch, obs_dim, act_dim = model.batch_size, model.observation_space.shape[0], int(np.prod(model.action_space.shape))
        device = model.device
        new = lambda *shape: torch.randn(*shape, device=device)  # noqa: E731 -- real values, not zeros
        self.inputs = [new(batch, obs_dim), new(batch, act_dim).clamp(-1, 1), new(batch, obs_dim), new(batch, 1),
                       torch.zeros(batch, 1, device=device), torch.full((batch, 1), model.gamma, device=device),
                       new(batch, act_dim), new(batch, act_dim)]
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.model = model
        # warm-up on a side stream (lazy optimizer state, cuBLAS handles), then capture both polyak variants
        snapshot = _snapshot(model)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                model._update(*self.inputs, True)
        torch.cuda.current_stream(device).wait_stream(stream)
        torch.cuda.synchronize(device)
        for polyak in (True, False):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = model._update(*self.inputs, polyak)
            self.graphs[polyak] = (graph, out)
        _restore(model, snapshot)  # warm-up and capture ran real steps: undo them
        self.key = self._key(model)

    @staticmethod
    def _key(model: FastSAC) -> tuple:
        optimizers = [model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer]
        return tuple(
            (id(o), tuple(g["lr"] for g in o.param_groups),
             tuple(t.data_ptr() for s in o.state.values() for t in s.values() if torch.is_tensor(t)))
            for o in optimizers if o is not None
        )

    def valid(self, model: FastSAC) -> bool:
        return model is self.model and self._key(model) == self.key

    def __call__(self, *inputs: Any) -> torch.Tensor:
        *tensors, polyak = inputs
        for static, value in zip(self.inputs, tensors):
            static.copy_(value if torch.is_tensor(value) else torch.as_tensor(value, device=static.device).expand_as(static))
        graph, out = self.graphs[polyak]
        graph.replay()
        return out.clone()


def _snapshot(model: FastSAC) -> dict[str, Any]:
    """Copies of every tensor an update mutates (parameters, optimizer state, α)."""
    optimizers = {"actor": model.actor.optimizer, "critic": model.critic.optimizer, "ent": model.ent_coef_optimizer}
    return {
        "params": [p.detach().clone() for p in _mutable_params(model)],
        "state": {name: [{k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()} for s in o.state.values()]
                  for name, o in optimizers.items() if o is not None},
        "had_state": {name: len(o.state) > 0 for name, o in optimizers.items() if o is not None},
    }


def _restore(model: FastSAC, snapshot: dict[str, Any]) -> None:
    """Write the snapshot back in place (captured graphs keep pointing at the same tensors)."""
    with torch.no_grad():
        for p, saved in zip(_mutable_params(model), snapshot["params"]):
            p.copy_(saved)
        optimizers = {"actor": model.actor.optimizer, "critic": model.critic.optimizer, "ent": model.ent_coef_optimizer}
        for name, o in optimizers.items():
            if o is None:
                continue
            if not snapshot["had_state"][name]:  # fresh optimizer: step 0, zero moments
                for s in o.state.values():
                    for v in s.values():
                        if torch.is_tensor(v):
                            v.zero_()
                continue
            for s, saved in zip(o.state.values(), snapshot["state"][name]):
                for k, v in s.items():
                    if torch.is_tensor(v):
                        v.copy_(saved[k])


def _mutable_params(model: FastSAC) -> list[torch.Tensor]:
    params = [*model.actor.parameters(), *model.critic.parameters(), *model.critic_target.parameters()]
    return params + ([model.log_ent_coef] if model.log_ent_coef is not None else [])




def make_fast_sac(env: Any, config: Any, seed: int, algorithm: type[SAC] = SAC) -> FastSAC:
    """``agent.impl=fast``: :func:`pbrl.agents.sac.make_sac` with :class:`FastSAC` (plain SAC only:
    a SAC subclass with its own ``train``, e.g. the greedy-advantage actor, has no fast version)."""
    if algorithm is not SAC:
        raise ValueError(f"agent.impl=fast builds FastSAC in place of SAC; {algorithm.__name__} has no fast version "
                         "(use agent.impl=sb3)")
    return make_sac(env, config, seed, algorithm=FastSAC)  # passes agent.alpha_lr and agent.log_std_bounds
