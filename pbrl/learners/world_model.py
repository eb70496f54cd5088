"""A small causal transformer world model whose attention says which steps matter
(Hindsight PRIOR's state-importance estimate; Verma & Metcalf, ICLR 2024, arXiv 2404.08828).

Two token layouts (``tokens``):

* ``"state_action"`` (default): step ``t`` is two tokens, ``x_{2t} = W_s s_t + p_{2t}`` and
  ``x_{2t+1} = W_a a_t + p_{2t+1}`` (learned position embedding per token), interleaved
  ``s_0, a_0, s_1, a_1, …``; the next state ``ŝ_{t+1}`` is read from the action token of step
  ``t`` (it has seen ``s_{≤t}, a_{≤t}``). The importance of step ``t`` adds the attention the
  last token pays to its state token and to its action token, averaged over layers and heads:

      α_t = (1 / (L H)) Σ_{l,h} (A^{l,h}_{last, s_t} + A^{l,h}_{last, a_t}),   Σ_t α_t = 1.

  This is the paper's α as two independent readers of it state it: an ICLR 2024 reviewer asks
  why "the attention coefficient for the state and action should be equally weighted within
  the α coefficient", and WiseRL's ``hprior_iql.py`` writes ``alpha = 1/L * sum_l (attn_{s_t}^l
  + attn_{a_t}^l)`` over the last token's row. The paper's own equation was not read here.
* ``"step"``: one token per step, ``x_t = W [s_t, a_t] + p_t``, ``α_t = (1/(L H)) Σ_{l,h}
  A^{l,h}_{last, t}`` — pbrl's layout before the two-token one (half the sequence length);
  it is a different model, not a re-indexing of the two-token one.

``L`` pre-norm blocks of causal multi-head self-attention and an MLP follow the embedding; a
linear head predicts the next state. Trained on replay segments with

    L_wm = (1 / (B T d)) Σ_{b,t} ‖ŝ_{t+1} − s_{t+1}‖².

Each attention row is a softmax over the tokens it may see, so the last token's row sums to 1
over the segment's steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TOKEN_LAYOUTS = ("state_action", "step")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention that also returns its weights ``[B, H, N, N]``."""

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

    def __init__(
        self, obs_dim: int, act_dim: int, max_length: int, dim: int = 64, layers: int = 2, heads: int = 4,
        tokens: str = "state_action",
    ) -> None:
        super().__init__()
        if tokens not in TOKEN_LAYOUTS:
            raise ValueError(f"world model tokens must be one of {TOKEN_LAYOUTS}, got {tokens!r}")
        self.max_length, self.tokens = max_length, tokens
        self.per_step = 2 if tokens == "state_action" else 1
        if tokens == "state_action":
            self.embed_state, self.embed_action = nn.Linear(obs_dim, dim), nn.Linear(act_dim, dim)
        else:
            self.embed = nn.Linear(obs_dim + act_dim, dim)
        self.position = nn.Parameter(torch.zeros(1, self.per_step * max_length, dim))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, obs_dim)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` [B, T, d], ``actions`` [B, T, a] → predicted next states [B, T, d] and
        attention weights [B, L, H, N, N] over the N = T (``step``) or 2T (``state_action``) tokens."""
        b, t = obs.shape[:2]
        if t > self.max_length:
            raise ValueError(f"segments of {t} steps exceed the world model's context of {self.max_length}")
        if self.tokens == "state_action":
            x = torch.stack([self.embed_state(obs), self.embed_action(actions)], dim=2).reshape(b, 2 * t, -1)
        else:
            x = self.embed(torch.cat([obs, actions], dim=-1))
        x = x + self.position[:, : self.per_step * t]
        weights = []
        for block in self.blocks:
            x, w = block(x)
            weights.append(w)
        if self.tokens == "state_action":
            x = x[:, 1::2]  # the action token of step t predicts s_{t+1}
        return self.head(self.norm(x)), torch.stack(weights, dim=1)

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Next-state mean squared error ``L_wm``."""
        return (self(obs, actions)[0] - next_obs).pow(2).mean()

    @torch.no_grad()
    def importance(self, obs: torch.Tensor, actions: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
        """Per-step importance ``α`` [B, T]: the last token's attention, averaged over layers and
        heads, summed over each step's tokens (its state and action tokens, or its one token).

        ``last`` (``[B]`` ints) names each segment's last step instead of ``T − 1``: attention
        being causal, that is the importance of the segment cut after it (0 beyond it)."""
        weights = self(obs, actions)[1]
        b, t = obs.shape[:2]
        steps = torch.full((b,), t - 1, device=weights.device) if last is None else last.to(weights.device)
        row = self.per_step * steps + self.per_step - 1  # the step's last token (its action token)
        attention = weights[torch.arange(b, device=weights.device), :, :, row, :].mean(dim=(1, 2))  # [B, N]
        return attention.reshape(b, t, self.per_step).sum(dim=-1)
