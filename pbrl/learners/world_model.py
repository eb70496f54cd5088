"""A small causal transformer world model whose attention says which steps matter
(Hindsight PRIOR's state-importance estimate; Verma & Metcalf, ICLR 2024).

Step ``t`` of a segment is one token, ``x_t = W [s_t, a_t] + p_t`` (learned position
embedding ``p_t``); ``L`` pre-norm blocks of causal multi-head self-attention and an MLP
follow, and a linear head predicts the next state from every token. Trained on replay
segments with

    L_wm = (1 / (B T d)) Σ_{b,t} ‖ŝ_{t+1} − s_{t+1}‖².

The importance of step ``t`` is how much the last token — the one that predicts where the
segment ends up — attends to it, averaged over layers and heads:

    α_t = (1 / (L H)) Σ_{l,h} A^{l,h}_{T−1, t},   Σ_t α_t = 1,

each attention row being a softmax over the steps it may see. (The paper gives states and
actions separate tokens and adds their two weights; one token per step keeps the sequence
half as long and yields the same per-step distribution.)
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention that also returns its weights ``[B, H, T, T]``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"world model width {dim} is not divisible by its {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(b, t, d)), weights


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attention(self.norm1(x))
        x = x + attended
        return x + self.mlp(self.norm2(x)), weights


class WorldModel(nn.Module):
    """Causal transformer over ``(s_t, a_t)`` sequences predicting ``s_{t+1}``."""

    def __init__(self, obs_dim: int, act_dim: int, max_length: int, dim: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.max_length = max_length
        self.embed = nn.Linear(obs_dim + act_dim, dim)
        self.position = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, obs_dim)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` [B, T, d], ``actions`` [B, T, a] → predicted next states [B, T, d] and
        attention weights [B, L, H, T, T]."""
        t = obs.shape[1]
        if t > self.max_length:
            raise ValueError(f"segments of {t} steps exceed the world model's context of {self.max_length}")
        x = self.embed(torch.cat([obs, actions], dim=-1)) + self.position[:, :t]
        weights = []
        for block in self.blocks:
            x, w = block(x)
            weights.append(w)
        return self.head(self.norm(x)), torch.stack(weights, dim=1)

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Next-state mean squared error ``L_wm``."""
        return (self(obs, actions)[0] - next_obs).pow(2).mean()

    @torch.no_grad()
    def importance(self, obs: torch.Tensor, actions: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
        """Per-step importance ``α`` [B, T]: the last token's attention, averaged over layers and heads.

        ``last`` (``[B]`` ints) names each segment's last token instead of ``T − 1``: attention
        being causal, that is the importance of the segment cut after it (0 beyond it)."""
        weights = self(obs, actions)[1]
        if last is None:
            return weights[:, :, :, -1, :].mean(dim=(1, 2))
        return weights[torch.arange(len(weights), device=weights.device), :, :, last, :].mean(dim=(1, 2))
