"""An ensemble of MLPs evaluated as one batched network.

Member ``e``'s layer is ``y_e = x_e W_e + b_e``; stacking the members' weights into
``W ∈ R^{E×in×out}`` turns the whole ensemble into one ``baddbmm`` per layer, so an
ensemble forward/backward pass is one set of kernels whatever ``E`` is (no Python loop
over members). Each member is initialised like its own ``nn.Linear``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class BatchedLinear(nn.Module):
    """``E`` independent linear layers applied to ``[E, N, in]`` inputs."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        # nn.Linear's default: kaiming_uniform(a=√5) on weights == U(−1/√in, 1/√in); same for bias.
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """``E`` MLPs ``in → hidden… → out`` with LeakyReLU between layers and an optional output squashing."""

    def __init__(
        self,
        members: int,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int = 1,
        output_activation: str | None = "tanh",
    ) -> None:
        super().__init__()
        self.members = members
        sizes = [in_features, *hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [BatchedLinear(members, a, b), nn.LeakyReLU()]
        layers.append(BatchedLinear(members, sizes[-1], out_features))
        if output_activation == "tanh":
            layers.append(nn.Tanh())
        elif output_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        elif output_activation is not None:
            raise ValueError(f"output_activation must be 'tanh', 'sigmoid' or None, got {output_activation!r}")
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[E, N, in]`` (member-specific inputs) or ``[N, in]`` (shared); returns ``[E, N, out]``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        return self.net(x)
