"""The one MLP builder (pbrl.nets)."""

import pytest
import torch
from torch import nn

from pbrl.nets import BatchedLinear, mlp


def test_mlp_layers_in_order_with_dropout_and_output_activation():
    net = mlp(5, 2, (8, 4), dropout=0.1, output_activation="tanh")
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.Tanh]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [8, 4, 2]
    assert net(torch.randn(3, 5)).abs().max() < 1


def test_batched_members_are_independent_mlps_initialised_like_linear_layers():
    torch.manual_seed(0)
    batched = mlp(5, 1, (8,), activation_name="leaky_relu", members=3)
    x = torch.randn(3, 4, 5)
    out = batched(x)
    for e in range(3):
        h = x[e]
        for layer in batched:
            h = h @ layer.weight[e] + layer.bias[e] if isinstance(layer, BatchedLinear) else layer(h)
        torch.testing.assert_close(out[e], h)
    bound = 1 / 5**0.5
    assert batched[0].weight.abs().max() <= bound and batched[0].weight.std() > bound / 3


def test_unknown_activation_and_bad_dropout_are_refused():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        mlp(2, 1, (4,), activation_name="swish")
    with pytest.raises(ValueError, match="dropout"):
        mlp(2, 1, (4,), dropout=1.0)
