"""An ensemble of MLPs evaluated as one batched network.

Member ``e``'s layer is ``y_e = x_e W_e + b_e``; stacking the members' weights into
``W ∈ R^{E×in×out}`` turns the whole ensemble into one ``baddbmm`` per layer, so an
ensemble forward/backward pass is one set of kernels whatever ``E`` is (no Python loop
over members). Each member is initialised like its own ``nn.Linear``; the layers are
:class:`pbrl.nets.BatchedLinear`, built by the one MLP builder :func:`pbrl.nets.mlp`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pbrl.nets import mlp


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
        self.net = mlp(in_features, out_features, hidden_sizes, activation_name="leaky_relu",
                       output_activation=output_activation, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[E, N, in]`` (member-specific inputs) or ``[N, in]`` (shared); returns ``[E, N, out]``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        return self.net(x)
