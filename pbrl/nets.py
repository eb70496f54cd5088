"""The one MLP builder of pbrl, for single networks and for ensembles evaluated as one.

:func:`mlp` builds ``in → hidden… → out``: per hidden width a linear layer, the activation
and (optionally) dropout, then a linear output layer and an optional output activation.
With ``members=E`` every linear layer is a :class:`BatchedLinear`, so the result is ``E``
independent MLPs evaluated as one batched network on ``[E, N, in]`` inputs. Every learner
and agent network built from layers of this kind comes from here (policies, critics and
value functions of CPL/IPL, the regret learner's anchor actor, the Bradley–Terry ensemble,
REED's encoders, the scripted expert's untrained policy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from pbrl import cpu_linear
from pbrl.cpu_linear import batched_linear

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01 (PyTorch's default, B-Pref's and REED's)
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class BatchedLinear(nn.Module):
    """``E`` independent linear layers applied to ``[E, N, in]`` inputs.

    Member ``e``'s layer is ``y_e = x_e W_e + b_e``; stacking the members' weights into
    ``W ∈ R^{E×in×out}`` makes the layer one ``baddbmm`` whatever ``E`` is (no Python loop
    over members), or on CPU one oneDNN product per member where that is faster
    (:func:`pbrl.cpu_linear.batched_linear`). Each member is initialised like its own ``nn.Linear``.
    """

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        # nn.Linear's default: kaiming_uniform(a=√5) on weights == U(−1/√in, 1/√in); same for bias.
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return batched_linear(x, self.weight, self.bias)


def mlp_per_member(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """An ensemble :func:`mlp` on ``[E, N, in]`` evaluated member by member: ``y_e = f_e(x_e)``, ``[E, N, out]``.

    The same maths as ``net(x)``; each member's layers are plain products through
    :func:`pbrl.cpu_linear.linear` (oneDNN on CPU where faster) and only the outputs are
    stacked, where ``net(x)`` through :func:`~pbrl.cpu_linear.batched_linear` stacks every
    layer's activations. For nets of :class:`BatchedLinear` and elementwise layers
    (activations; dropout draws its masks per member, not in one draw).
    """
    weights = {id(layer): (layer.weight.unbind(0), layer.bias.unbind(0)) for layer in net if isinstance(layer, BatchedLinear)}
    outputs = []
    for member, h in enumerate(x.unbind(0)):
        for layer in net:
            if isinstance(layer, BatchedLinear):
                weight, bias = weights[id(layer)]
                h = cpu_linear.linear(h, weight[member].t(), bias[member][0])
            else:
                h = layer(h)
        outputs.append(h)
    return torch.stack(outputs)


INITS = ("torch", "orthogonal")
"""Weight initialisations of :func:`mlp`."""


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(
    in_features: int,
    out_features: int,
    hidden: Sequence[int] = (),
    *,
    activation_name: str = "relu",
    output_activation: str | None = None,
    dropout: float = 0.0,
    members: int | None = None,
    init: str = "torch",
) -> nn.Sequential:
    """``Linear → activation (→ Dropout)`` per hidden width, then ``Linear`` (→ output activation).

    ``members=None`` uses ``nn.Linear``; ``members=E`` uses :class:`BatchedLinear` (``E``
    MLPs on ``[E, N, in]``). Layers are created in order, so a seeded build is reproducible
    and the state-dict keys are the layer indices of one flat ``nn.Sequential``.
    ``init="orthogonal"``: every weight matrix (each member's separately) ``orthogonal_(gain=1)``
    and every bias 0, output layer included (jhejna/cpl and jhejna/inverse-preference-learning
    ``research/networks/mlp.py`` ``weight_init``, their ``ortho_init: True``); ``"torch"``: PyTorch's default.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"mlp dropout must be in [0, 1), got {dropout}")
    if init not in INITS:
        raise ValueError(f"mlp init must be one of {INITS}, got {init!r}")
    linear = (lambda a, b: nn.Linear(a, b)) if members is None else (lambda a, b: BatchedLinear(members, a, b))  # noqa: E731
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [linear(in_features, width), activation(activation_name)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    layers.append(linear(in_features, out_features))
    if output_activation is not None:
        layers.append(activation(output_activation))
    if init == "orthogonal":
        for layer in layers:
            if isinstance(layer, (nn.Linear, BatchedLinear)):
                for matrix in layer.weight.data.reshape(-1, *layer.weight.shape[-2:]):  # one per member
                    nn.init.orthogonal_(matrix, gain=1.0)
                nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)
