"""The Preference Transformer's network in torch (csmile-1006/PreferenceTransformer,
``flaxmodels/gpt2/trajectory_gpt2.py``: ``TransRewardModel``, ``GPT2Model``, ``GPT2Block``,
``GPT2SelfAttention``, ``GPT2MLP``; ``flaxmodels/gpt2/ops.py``: ``attention``).

``forward(obs [B, T, d], actions [B, T, a], timesteps [B, T], mask [B, T])`` returns the
per-step outputs the learner scores with — ``z_t`` (preference attention) or the MLP head's
reward — and the per-step value ``v_t`` (the reward of a step), both ``[B, T]``. Layers are
initialised as Flax initialises them (Dense: LeCun truncated normal, zero bias; Embed:
normal with std 1/√D; LayerNorm ε = 1e-5, GPT-2's).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from pbrl.learners.preference_transformer import PreferenceTransformerConfig

MASKED_BIAS = -1e4
"""GPT-2's fill value for masked attention scores (causal and padding alike)."""


def padding_bias(mask: torch.Tensor) -> torch.Tensor:
    """``ops.get_attention_mask``: ``(1 − m) · −10⁴`` shaped ``[B, 1, 1, T]``, added to the scores."""
    return ((1.0 - mask) * MASKED_BIAS)[:, None, None, :]


class SelfAttention(nn.Module):
    """GPT-2 causal self-attention: scores ``q kᵀ / √(D/H)``, future keys set to −10⁴, padding added."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.attn_dropout, self.resid_dropout = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        weights = (torch.where(causal, scores, torch.full_like(scores, MASKED_BIAS)) + bias).softmax(dim=-1)
        out = (self.attn_dropout(weights) @ v).transpose(1, 2).reshape(b, n, d)
        return self.resid_dropout(self.out(out))


class Block(nn.Module):
    """``x + Attn(LN(x))``, then ``x + MLP(LN(x))`` with MLP = Dense(4D) → ReLU → Dense(D) → dropout."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-5), nn.LayerNorm(dim, eps=1e-5)
        self.attention = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


class PreferenceTransformerNet(nn.Module):
    """Tokens ``[a_t + e(t), s_t + e(t)]`` → LN → GPT-2 blocks → LN → state tokens → preference attention (or MLP head)."""

    def __init__(self, obs_dim: int, act_dim: int, config: "PreferenceTransformerConfig") -> None:
        super().__init__()
        d, self.config = config.embed_dim, config
        self.embed_state, self.embed_action = nn.Linear(obs_dim, d), nn.Linear(act_dim, d)
        self.embed_timestep = nn.Embedding(config.max_episode_steps + 1, d)
        self.embed_norm = nn.LayerNorm(d, eps=1e-5)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(d, eps=1e-5)
        if config.preference_attention:
            self.head = nn.Linear(d, 2 * config.preference_dim + 1)  # q, k, v
        else:
            self.head = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, 1))  # inner_dim = D/2, activation relu
        self._init_like_flax()

    def _init_like_flax(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                std = 1.0 / math.sqrt(module.in_features) / 0.87962566103423978  # lecun_normal's truncated normal
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=1.0 / math.sqrt(module.embedding_dim))

    def hidden(self, obs: torch.Tensor, actions: torch.Tensor, timesteps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The transformer's outputs at the state tokens ``[B, T, D]``."""
        b, t, _ = obs.shape
        time = self.embed_timestep(timesteps)
        tokens = torch.stack([self.embed_action(actions) + time, self.embed_state(obs) + time], dim=2).reshape(b, 2 * t, -1)
        x = self.embed_dropout(self.embed_norm(tokens))
        bias = padding_bias(mask.repeat_interleave(2, dim=1))
        for block in self.blocks:
            x = block(x, bias)
        return self.final_norm(x).reshape(b, t, 2, -1)[:, :, 1]

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, timesteps: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, v)`` ``[B, T]`` each: ``z_t = Σ_j softmax_j(q_t·k_j + pad_j) v_j`` and ``v_t`` (MLP head: ``z = v``)."""
        x = self.hidden(obs, actions, timesteps, mask)
        if not self.config.preference_attention:
            value = self.head(x).squeeze(-1)
            return value, value
        p = self.config.preference_dim
        query, key, value = self.head(x).split([p, p, 1], dim=-1)
        weights = (query @ key.transpose(-2, -1) + padding_bias(mask)[:, 0]).softmax(dim=-1)  # scaled by √(dim v) = 1
        return (weights @ value).squeeze(-1), value.squeeze(-1)
