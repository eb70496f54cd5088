"""An ensemble of MLPs evaluated as one batched network.

Member ``e``'s layer is ``y_e = x_e W_e + b_e``; stacking the members' weights into
``W ∈ R^{E×in×out}`` turns the whole ensemble into one ``baddbmm`` per layer, so an
ensemble forward/backward pass is one set of kernels whatever ``E`` is (no Python loop
over members). Each member is initialised like its own ``nn.Linear``; the layers are
:class:`pbrl.nets.BatchedLinear`, built by the one MLP builder :func:`pbrl.nets.mlp`.

On CPU a float32 forward runs member by member with oneDNN's products
(:func:`pbrl.nets.mlp_per_member`, :mod:`pbrl.cpu_linear`; the same maths, 2× faster products on
AMD CPUs, ``experiments/bench/results/reward_ensemble_speed.md``). Two opt-in fast paths, both off
by default:

* ``train_autocast="bfloat16"``: forward passes that build a graph (training) run their
  matrix products in bfloat16 under ``torch.autocast`` (parameters, gradients and Adam stay
  float32; inference stays float32). On a CPU with AVX512-BF16 one 128-pair × 50-step
  minibatch at 3×256 took 0.13 s instead of 0.42 s (one thread); held-out label accuracy
  in ``docs/speed.md``.
* ``graph_inference=True`` (CUDA only): gradient-free forwards of small flat batches (the
  per-env-step reward, ``[N ≤ 256, in]``) replay a CUDA graph captured once per input
  shape; the graph reads the parameters in place, so optimizer steps and
  ``load_state_dict`` need no re-capture (a moved or replaced parameter does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pbrl import cpu_linear
from pbrl.nets import mlp, mlp_per_member


class EnsembleMLP(nn.Module):
    """``E`` MLPs ``in → hidden… → out`` with LeakyReLU between layers and an optional output squashing."""

    def __init__(
        self,
        members: int,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int = 1,
        output_activation: str | None = "tanh",
        train_autocast: str | None = None,
        graph_inference: bool = False,
    ) -> None:
        super().__init__()
        if train_autocast not in (None, "bfloat16"):
            raise ValueError(f"train_autocast must be None or 'bfloat16', got {train_autocast!r}")
        self.members = members
        self.train_autocast = train_autocast
        """``"bfloat16"``: matrix products of training forwards in bf16 (autocast); ``None``: float32."""
        self.graph_inference = graph_inference
        """CUDA: replay a captured graph for gradient-free forwards of small flat batches."""
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._widest = max(hidden_sizes, default=in_features)
        self.net = mlp(in_features, out_features, hidden_sizes, activation_name="leaky_relu",
                       output_activation=output_activation, members=members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[E, N, in]`` (member-specific inputs) or ``[N, in]`` (shared); returns ``[E, N, out]``."""
        if self.graph_inference and x.is_cuda and x.dim() == 2 and len(x) <= 256 and not torch.is_grad_enabled():
            return self._graph_forward(x)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        if self.train_autocast is not None and torch.is_grad_enabled():
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.net(x).float()
        if (x.dtype == torch.float32 and cpu_linear.onednn_active(x.device)
                and x.shape[1] * self._widest**2 >= cpu_linear.MIN_MULTIPLY_ADDS):  # not for a per-step reward
            return mlp_per_member(self.net, x)
        return self.net(x)

    def _graph_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The shared-input forward as a CUDA-graph replay (captured on the first call per shape)."""
        key = (tuple(x.shape), x.dtype, x.device, tuple(p.data_ptr() for p in self.parameters()))
        if key not in self._graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream(x.device)
            stream.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(stream):  # warm-up outside the capture (cuBLAS workspaces)
                self.net(static_in.unsqueeze(0).expand(self.members, -1, -1))
            torch.cuda.current_stream(x.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.net(static_in.unsqueeze(0).expand(self.members, -1, -1))
            self._graphs = {k: v for k, v in self._graphs.items() if k[3] == key[3]}  # drop graphs of old parameters
            self._graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()
