"""Float32 linear layers on CPU through oneDNN: the same product as torch's, twice as fast on AMD CPUs.

PyTorch's x86 wheels multiply float32 matrices with MKL's ``sgemm``. On AMD CPUs MKL does
not take its AVX-512 kernels; oneDNN, shipped in the same wheel (torch uses it for bf16),
picks its kernels from the instruction set. Measured on this project's machine (AMD EPYC,
Zen 5, one thread; ``python -m pbrl.experiments.bench.cpu_linear``): a 256-row
``256 → 256`` layer 49 → 97 G multiply-adds/s, so SAC's update and the reward ensemble's
training, which are mostly such products, run up to 2× faster with nothing else changed.
Both libraries compute IEEE float32 products; only the summation order differs (rounding-level
differences, ~10⁻⁶ relative).

:func:`linear` is ``y = x Wᵀ + b`` (``nn.Linear``'s layout, ``W`` ``[out, in]``) with its own
backward, each product a oneDNN call:

    ∂L/∂x = (∂L/∂y) W,    ∂L/∂W = (∂L/∂y)ᵀ x,    ∂L/∂b = Σ_rows ∂L/∂y.

It takes the oneDNN path only where that is faster — a float32 CPU input, not under
``torch.autocast``, at least :data:`MIN_MULTIPLY_ADDS` per product (oneDNN's fixed cost of
~15 µs a call loses on tiny products such as one observation's action) — and otherwise calls
``torch.nn.functional.linear``. :func:`set_backend` (or ``PBRL_CPU_LINEAR=aten`` in the
environment) turns it off process-wide, e.g. to reproduce a run made before it existed.
"""

from __future__ import annotations

import os

import torch
from torch.nn import functional as F

BACKENDS = ("auto", "onednn", "aten")
"""``auto``: oneDNN where it is present and the product is large enough; ``onednn``: the same but
refused when absent; ``aten``: always ``torch.nn.functional.linear`` (MKL on x86)."""

MIN_MULTIPLY_ADDS = 1_500_000
"""Smallest ``rows × in × out`` sent to oneDNN: below it MKL's call was as fast or faster
(measured one thread, ``experiments/bench/results/cpu_linear.md``)."""

_ONEDNN = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
_backend = "auto"


def set_backend(backend: str) -> None:
    """Choose how float32 CPU linear layers run in this process (one of :data:`BACKENDS`)."""
    global _backend
    if backend not in BACKENDS:
        raise ValueError(f"PBRL_CPU_LINEAR / cpu_linear backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "onednn" and _ONEDNN is None:
        raise ValueError("cpu_linear backend 'onednn' needs a torch build with oneDNN (torch.backends.mkldnn); use 'aten'")
    _backend = backend


def backend() -> str:
    """The backend in force (:func:`set_backend`)."""
    return _backend


def onednn_active(device: torch.device | str) -> bool:
    """Whether float32 products on ``device`` go to oneDNN (large enough ones: :data:`MIN_MULTIPLY_ADDS`)."""
    return _ONEDNN is not None and _backend != "aten" and torch.device(device).type == "cpu"


def _uses_onednn(x: torch.Tensor, out_features: int) -> bool:
    return (
        onednn_active(x.device)
        and x.dtype == torch.float32
        and x.dim() == 2
        and not torch.is_autocast_enabled("cpu")
        and x.shape[0] * x.shape[1] * out_features >= MIN_MULTIPLY_ADDS
    )


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x weightᵀ (+ bias)`` by oneDNN; strided (transposed) operands are read in place."""
    return _ONEDNN(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """``y = x Wᵀ + b`` with the three backward products also in oneDNN (module docstring)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = _product(grad_y, weight.t()) if ctx.needs_input_grad[0] else None  # dY W
        grad_w = _product(grad_y.t(), x.t()) if ctx.needs_input_grad[1] else None  # dYᵀ X
        grad_b = grad_y.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x Wᵀ + b`` (``W`` ``[out, in]``): oneDNN where it is faster (module docstring), else ``F.linear``."""
    if _uses_onednn(x, weight.shape[0]):
        return _OneDNNLinear.apply(x, weight, bias)
    return F.linear(x, weight, bias)


def batched_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``E`` layers at once: ``y_e = x_e W_e + b_e`` for ``x`` ``[E, N, in]``, ``W`` ``[E, in, out]``, ``b`` ``[E, 1, out]``.

    One ``baddbmm``, or on the oneDNN path one product per member (oneDNN has no batched
    product in torch; the per-member products still win by ~2× at these sizes).
    """
    if not _uses_onednn(x[0], weight.shape[-1]):
        return torch.baddbmm(bias, x, weight)
    # unbind, not x[e]: each x[e]'s backward would write its gradient into a zero tensor of x's whole size
    members = zip(x.unbind(0), weight.unbind(0), bias.unbind(0))
    return torch.stack([_OneDNNLinear.apply(x_e, w_e.t(), b_e[0]) for x_e, w_e, b_e in members])


set_backend(os.environ.get("PBRL_CPU_LINEAR", "auto"))
