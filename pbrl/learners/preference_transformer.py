"""The Preference Transformer reward model (Kim et al., "Preference Transformer: Modeling
Human Preferences using Transformers for RL", ICLR 2023; reference code
csmile-1006/PreferenceTransformer in JAX/Flax: ``flaxmodels/gpt2/trajectory_gpt2.py``
``TransRewardModel``, ``JaxPref/PrefTransformer.py``, ``dataset_utils.py``), in torch.

**Tokens.** Step t of a segment gives two tokens, action first:
``[W_a a_t + e(t), W_s s_t + e(t)]`` with a learned timestep embedding ``e`` (t = 1…T
within the segment; 0 marks padding), layer-normalised, through ``L`` GPT-2 blocks
(pre-norm, causal self-attention with masked bias −10⁴, ReLU MLP of width 4D, dropout 0.1)
and a final layer norm. The output at each *state* token is ``x_t``.

**Preference attention.** One linear map gives ``q_t, k_t ∈ R^P`` and a scalar ``v_t``;
the segment's score is the mean over steps of the attention-weighted values

    z_t = Σ_j softmax_j(q_t · k_j) v_j,     R̂(σ) = (1/T) Σ_t z_t

(bidirectional over the segment, unscaled: the reference divides by √(dim v) = 1), and the
preference is Bradley–Terry on the scores, ``P[σ¹ ≻ σ²] = σ(R̂(σ¹) − R̂(σ²))``, trained with
the cross-entropy ``L = −y log P − (1 − y) log(1 − P)``. The per-step reward is ``v_t``.

**Reward of a step** (``reward_from_preference_transformer``, ``label_mode='last'``): the
model reads the ``context`` (25) steps up to and including t of the trajectory, left-padded
and masked at the start of an episode, and ``r̂_t`` is ``v`` at the last token
(:meth:`PreferenceTransformer.trajectory_rewards`). A flat batch of transitions carries no
history, so :meth:`reward_tensor` — what SAC's relabeling and P-IQL call — reads each
transition as a one-step window (t = 1): a named approximation, exact only for context 1.

Defaults are the README's PT command (``embd_dim 256, n_layer 1, n_head 4, batch_size 256``)
and ``PrefTransformer.get_default_config`` (AdamW, lr 1e-4, ``pref_attn_embd_dim 256``,
dropout 0.1; learning rate warmed up over the first 10 % of the steps from lr to 10·lr,
then cosine-decayed back to lr). The reference's ``use_weighted_sum`` flag defaults to
False (an MLP head, score = mean of per-step rewards); the paper's model — and pbrl's
default — is the preference attention (``preference_attention=False`` gives the MLP head).
The reference trains for ``n_epochs = 10000`` on a fixed dataset; ``epochs`` here is per
``update`` (online: every round, the schedule restarting each time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pbrl.learners.base import RewardLearner
from pbrl.learners.bradley_terry import resolve_device
from pbrl.learners.preference_transformer_net import PreferenceTransformerNet
from pbrl.segments import PreferenceDataset, Segments


@dataclass(frozen=True)
class PreferenceTransformerConfig:
    """The Preference Transformer reward model (learner=pt)."""

    embed_dim: int = 256
    """Token width D (README ``--transformer.embd_dim 256``)."""
    layers: int = 1
    """GPT-2 blocks (README ``--transformer.n_layer 1``)."""
    heads: int = 4
    """Attention heads (README ``--transformer.n_head 4``)."""
    preference_dim: int = 256
    """Width P of the preference attention's queries and keys (``pref_attn_embd_dim``)."""
    preference_attention: bool = True
    """Score = mean of the attention-weighted values (the paper); False: mean of an MLP head's per-step rewards."""
    dropout: float = 0.1
    """Dropout of embeddings, attention weights and residual branches (GPT-2's 0.1)."""
    max_episode_steps: int = 1000
    """Size of the timestep embedding table (t = 0…max_episode_steps)."""
    context: int = 25
    """Steps the reward of a step reads in :meth:`PreferenceTransformer.trajectory_rewards` (``--seq_len 25``)."""
    lr: float = 1e-4
    """Base learning rate of AdamW (``trans_lr``); the schedule peaks at 10× this."""
    weight_decay: float = 1e-4
    """AdamW's decoupled weight decay (optax.adamw's default)."""
    warmup_fraction: float = 0.1
    """Share of an update's steps spent warming the learning rate up (``0.1 · total_steps``)."""
    batch_size: int = 256
    """Pairs per minibatch (README ``--batch_size 256``)."""
    epochs: int = 100
    """Passes over all labels per update (the reference: 10000 on a fixed offline dataset)."""
    device: str = "cpu"
    """Torch device ('cpu', 'cuda', 'auto')."""

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"pt.embed_dim {self.embed_dim} must be divisible by pt.heads {self.heads}")
        if min(self.layers, self.heads, self.preference_dim, self.context, self.batch_size, self.epochs, self.max_episode_steps) < 1:
            raise ValueError("pt sizes, context, batch_size and epochs must be ≥ 1")
        if not 0.0 <= self.warmup_fraction < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("pt.warmup_fraction and pt.dropout must be in [0, 1)")


def warmup_cosine(step: int, warmup: int, total: int, base: float) -> float:
    """optax.warmup_cosine_decay_schedule(init=base, peak=10·base, warmup, decay_steps=total, end=base) at ``step``."""
    peak = 10.0 * base
    if step < warmup:
        return base + (peak - base) * step / warmup
    progress = min(step - warmup, total - warmup) / max(total - warmup, 1)
    return base + (peak - base) * 0.5 * (1.0 + math.cos(math.pi * progress))


class PreferenceTransformer(RewardLearner):
    """A single Preference Transformer as a reward learner (E = 1 member; see the module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, config: PreferenceTransformerConfig = PreferenceTransformerConfig(), seed: int = 0) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = PreferenceTransformerNet(obs_dim, act_dim, config).to(self.device)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    # ---------------------------------------------------------------- scoring
    def _tensors(self, segments: Segments) -> tuple[torch.Tensor, ...]:
        as_t = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=self.device)  # noqa: E731
        live = as_t(~segments.absorbing)
        timesteps = torch.arange(1, segments.length + 1, device=self.device).expand(len(segments), -1)
        return as_t(segments.obs), as_t(segments.actions), timesteps * live.long(), live

    def scores(self, obs: torch.Tensor, actions: torch.Tensor, timesteps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``R̂(σ)`` ``[B]``: the mean over unmasked steps of z_t (or of the MLP head's rewards)."""
        weighted, _ = self.net(obs, actions, timesteps, mask)
        return (weighted * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    @torch.no_grad()
    def member_segment_returns(self, segments: Segments) -> torch.Tensor:
        """The scores ``R̂(σ)`` as ``[1, B]`` (one member), in eval mode."""
        self.net.eval()
        return self.scores(*self._tensors(segments))[None]

    @torch.no_grad()
    def reward_tensor(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``v`` of each transition read as a one-step window (t = 1), ``[N]`` — see the module docstring."""
        self.net.eval()
        ones = torch.ones(len(obs), 1, device=self.device)
        out = [self.net(obs[i : i + 4096, None], actions[i : i + 4096, None], ones[i : i + 4096].long(), ones[i : i + 4096])[1] for i in range(0, len(obs), 4096)]
        return torch.cat(out)[:, 0] if out else torch.zeros(0, device=self.device)

    @torch.no_grad()
    def trajectory_rewards(self, obs: np.ndarray, actions: np.ndarray, batch: int = 256) -> np.ndarray:
        """The reference's relabeling of one trajectory ``[T, ·] → [T]``: r̂_t = v at the last of the
        ``context`` steps ending at t (left-padded with zeros, timestep 0 and mask 0 before the start)."""
        self.net.eval()
        length, L = len(obs), self.config.context
        pad = lambda a: np.concatenate([np.zeros((L - 1, a.shape[1]), np.float32), np.asarray(a, np.float32)])  # noqa: E731
        windows = np.arange(length)[:, None] + np.arange(L)[None]  # rows of the padded arrays
        padding = np.maximum(0, L - 1 - np.arange(length))[:, None]  # steps before the episode's start
        position = np.arange(L)[None]
        timesteps = np.where(position >= padding, position - padding + 1, 0)  # 0…0, 1…t+1  or  1…L
        o, a = pad(obs)[windows], pad(actions)[windows]
        as_t = lambda x, dtype=torch.float32: torch.as_tensor(x, dtype=dtype, device=self.device)  # noqa: E731
        out = []
        for i in range(0, length, batch):
            ts = as_t(timesteps[i : i + batch], torch.long)
            out.append(self.net(as_t(o[i : i + batch]), as_t(a[i : i + batch]), ts, (ts > 0).float())[1][:, -1])
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)

    def segment_features(self, segments: Segments) -> np.ndarray:
        return segments.obs.reshape(len(segments), -1)

    # ---------------------------------------------------------------- training
    def update(self, data: PreferenceDataset) -> dict[str, float]:
        """``epochs`` passes of the cross-entropy over all labels, minibatches in a fresh random order each epoch."""
        cfg = self.config
        left, right = self._tensors(data.left), self._tensors(data.right)
        labels = torch.as_tensor(data.labels, dtype=torch.float32, device=self.device)
        n = len(labels)
        interval = n // cfg.batch_size + 1  # the reference's steps per epoch, for its schedule
        total = cfg.epochs * interval
        warmup = int(total * cfg.warmup_fraction)
        step, loss_value, correct, decided = 0, float("nan"), 0.0, 0.0
        self.net.train()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))  # dropout masks follow the learner's seed
            for _ in range(cfg.epochs):
                step, correct, decided, loss_value = self._epoch(left, right, labels, step, warmup, total)
        return {"train_accuracy": correct / max(decided, 1.0), "train_loss": loss_value, "epochs": float(cfg.epochs), "labels": float(n)}

    def _epoch(
        self, left: tuple[torch.Tensor, ...], right: tuple[torch.Tensor, ...], labels: torch.Tensor, step: int, warmup: int, total: int
    ) -> tuple[int, float, float, float]:
        """One pass in a fresh random order; returns the step counter, correct and decided counts and the mean loss."""
        cfg, n = self.config, len(labels)
        order = torch.randperm(n, generator=self.generator).to(self.device)
        correct = decided = total_loss = 0.0
        for start in range(0, n, cfg.batch_size):
            index = order[start : start + cfg.batch_size]
            for group in self.optimizer.param_groups:
                group["lr"] = warmup_cosine(step, warmup, total, cfg.lr)
            r_left = self.scores(*(x[index] for x in left))
            r_right = self.scores(*(x[index] for x in right))
            y = labels[index]
            loss = F.binary_cross_entropy_with_logits(r_left - r_right, y)  # = softmax CE over [R̂¹, R̂²]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            step += 1
            with torch.no_grad():
                hard = y != 0.5
                correct += (((r_left > r_right).float() == y) & hard).sum().item()
                decided += hard.sum().item()
                total_loss += loss.item() * len(index)
        return step, correct, decided, total_loss / n

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


class EpisodeRewards(RewardLearner):
    """A Preference Transformer whose reward on a fixed set of episodes is the reference's: after
    every update each step's reward is recomputed from its ``context``-step window
    (:meth:`PreferenceTransformer.trajectory_rewards`, as ``reward_from_preference_transformer``
    relabels a dataset before IQL) and served by looking the transition up; a transition from
    outside the episodes gets the one-step read. Give it to P-IQL with the dataset's episodes."""

    def __init__(self, model: PreferenceTransformer, episodes: Any) -> None:
        """``episodes``: steps of whole episodes back to back (``obs``, ``actions``, ``start``, ``length``;
        :class:`pbrl.datasets.offline.Episodes`)."""
        self.model, self.episodes = model, episodes
        self.device = model.device
        rows = np.concatenate([np.asarray(episodes.obs, np.float32), np.asarray(episodes.actions, np.float32)], axis=1)
        self._index = {row.tobytes(): i for i, row in enumerate(rows)}
        self._rewards: np.ndarray | None = None

    def _relabel(self) -> None:
        ep = self.episodes
        self._rewards = np.concatenate([
            self.model.trajectory_rewards(ep.obs[s : s + n], ep.actions[s : s + n]) for s, n in zip(ep.start, ep.length)
        ])

    def update(self, data: PreferenceDataset) -> dict[str, float]:
        metrics = self.model.update(data)
        self._relabel()
        return metrics

    @torch.no_grad()
    def reward_tensor(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        if self._rewards is None:
            self._relabel()
        rows = torch.cat([obs, actions], dim=1).float().cpu().numpy()
        found = np.array([self._index.get(row.tobytes(), -1) for row in rows], dtype=np.int64)
        out = self.model.reward_tensor(obs, actions, next_obs).cpu().numpy() if (found < 0).any() else np.zeros(len(rows), np.float32)
        out[found >= 0] = self._rewards[found[found >= 0]]
        return torch.as_tensor(out, device=self.device)

    def member_segment_returns(self, segments: Segments) -> torch.Tensor:
        return self.model.member_segment_returns(segments)

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self._rewards = None


__all__ = ["EpisodeRewards", "PreferenceTransformer", "PreferenceTransformerConfig", "warmup_cosine"]
