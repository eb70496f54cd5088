"""pbrl.cpu_linear: float32 linear layers through oneDNN give torch's product and gradients
(to float32 rounding), in full float32 precision, and only where they are meant to run."""

import pytest
import torch
from torch.nn import functional as F

from pbrl import cpu_linear

needs_onednn = pytest.mark.skipif(not cpu_linear.onednn_active("cpu"), reason="torch built without oneDNN")


@pytest.fixture(autouse=True)
def _restore_backend():
    before = cpu_linear.backend()
    yield
    cpu_linear.set_backend(before)


def _grads(fn, *tensors):
    out = fn(*tensors)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    grads = [t.grad.clone() for t in tensors if t.requires_grad]
    for t in tensors:
        t.grad = None
    return out.detach(), grads


@needs_onednn
def test_linear_equals_torch_forward_and_backward_and_runs_on_onednn():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=g, requires_grad=True)
    w = torch.randn(256, 64, generator=g, requires_grad=True)
    b = torch.randn(256, generator=g, requires_grad=True)
    assert type(cpu_linear.linear(x, w, b).grad_fn).__name__ == "_OneDNNLinearBackward"
    ours, our_grads = _grads(cpu_linear.linear, x, w, b)
    torch_out, torch_grads = _grads(F.linear, x, w, b)
    torch.testing.assert_close(ours, torch_out, rtol=1e-5, atol=1e-4)
    for a, e in zip(our_grads, torch_grads):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_onednn_products_are_full_float32_not_reduced_precision():
    """Against a float64 product: float32 rounding of a 256-term sum (torch's own: 2e-5 here), where
    bf16 arithmetic is off by ~1e-1 and tf32 by ~1e-3."""
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(512, 256, generator=g), torch.randn(256, 256, generator=g)
    exact = x.double() @ w.double().t()
    error = ((cpu_linear.linear(x, w).double() - exact).abs() / exact.abs().clamp_min(1.0)).max().item()
    assert error < 1e-4


@needs_onednn
def test_batched_linear_equals_baddbmm_forward_and_backward():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 400, 64, generator=g, requires_grad=True)
    w = torch.randn(3, 64, 128, generator=g, requires_grad=True)
    b = torch.randn(3, 1, 128, generator=g, requires_grad=True)
    ours, our_grads = _grads(cpu_linear.batched_linear, x, w, b)
    torch_out, torch_grads = _grads(torch.baddbmm, b, x, w)
    torch.testing.assert_close(ours, torch_out, rtol=1e-5, atol=1e-4)
    for a, e in zip(our_grads, [torch_grads[1], torch_grads[2], torch_grads[0]]):  # x, W, b
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_small_products_autocast_and_the_aten_backend_stay_on_torch():
    big_x, w = torch.randn(256, 64, requires_grad=True), torch.randn(256, 64)
    small_x = torch.randn(1, 64, requires_grad=True)  # one observation: below MIN_MULTIPLY_ADDS
    assert type(cpu_linear.linear(small_x, w).grad_fn).__name__ != "_OneDNNLinearBackward"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_linear.linear(big_x, w).dtype == torch.bfloat16  # autocast's product, not ours
    cpu_linear.set_backend("aten")
    assert not cpu_linear.onednn_active("cpu")
    assert type(cpu_linear.linear(big_x, w).grad_fn).__name__ != "_OneDNNLinearBackward"


def test_unknown_backend_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="PBRL_CPU_LINEAR.*'auto', 'onednn', 'aten'"):
        cpu_linear.set_backend("mkl")


@needs_onednn
def test_ensemble_member_by_member_equals_the_batched_network():
    """EnsembleMLP on CPU runs each member with oneDNN's products (pbrl.nets.mlp_per_member); the
    batched baddbmm network (backend 'aten') gives the same outputs and parameter gradients."""
    from pbrl.learners.ensemble import EnsembleMLP

    torch.manual_seed(0)
    net = EnsembleMLP(3, 23, [256, 256, 256])
    x = torch.randn(3, 400, 23)

    def run(backend):
        cpu_linear.set_backend(backend)
        net.zero_grad()
        out = net(x)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    calls = []
    real = cpu_linear._product
    cpu_linear._product = lambda *a: calls.append(1) or real(*a)
    try:
        ours, our_grads = run("auto")
    finally:
        cpu_linear._product = real
    assert calls  # the per-member oneDNN path ran
    batched, batched_grads = run("aten")
    torch.testing.assert_close(ours, batched, rtol=1e-5, atol=1e-5)
    for a, e in zip(our_grads, batched_grads):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)
