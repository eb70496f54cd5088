"""Float32 linear layers on one CPU thread: torch's product (MKL on x86) against oneDNN's (``pbrl.cpu_linear``).

For each layer shape of SAC's update and the reward ensemble (rows × in → out), the process-CPU
microseconds of the forward product ``x Wᵀ + b`` and of the two backward products
(``dY W`` and ``dYᵀ X``) by each library, their ratio, and the multiply-adds per second. The
shapes below :data:`pbrl.cpu_linear.MIN_MULTIPLY_ADDS` show why small products stay on torch.

Usage::

    python -m pbrl.experiments.bench.cpu_linear [--repeats 200]

Writes ``cpu_linear.md`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from pbrl import cpu_linear
from pbrl.experiments.bench.markdown import cpu_name, write_markdown

SHAPES = [
    (1, 17, 256, "one observation, first layer (acting)"),
    (1, 256, 256, "one observation, hidden layer (acting)"),
    (16, 256, 256, "16 rows, hidden layer"),
    (256, 23, 256, "SAC batch, critic's first layer"),
    (256, 256, 256, "SAC batch, hidden layer"),
    (256, 256, 6, "SAC batch, actor's mean"),
    (256, 256, 1, "SAC batch, critic's output"),
    (6400, 23, 256, "ensemble minibatch (128 × 50 rows), first layer"),
    (6400, 256, 256, "ensemble minibatch, hidden layer"),
]


def cpu_microseconds(fn, repeats: int) -> float:
    for _ in range(max(repeats // 10, 3)):
        fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out-dir", default="experiments/bench/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not cpu_linear.onednn_active("cpu"):
        raise SystemExit("this torch build has no oneDNN linear (torch.ops.mkldnn._linear_pointwise): nothing to compare")
    onednn = cpu_linear._product  # the raw oneDNN call, whatever the size threshold says
    lines = [
        "# Float32 linear layers, one CPU thread: torch (MKL) vs oneDNN",
        "",
        f"Command: `python -m pbrl.experiments.bench.cpu_linear --repeats {args.repeats}`; CPU: "
        f"{cpu_name()}, torch {torch.__version__}. Process-CPU µs per call; "
        f"forward = `x Wᵀ + b`, backward = `dY W` + `dYᵀ X`. `pbrl.cpu_linear` sends a product to oneDNN "
        f"from {cpu_linear.MIN_MULTIPLY_ADDS:,} multiply-adds.",
        "",
        "| layer | rows × in → out | torch fwd µs | oneDNN fwd µs | torch bwd µs | oneDNN bwd µs | speed-up fwd+bwd "
        "| oneDNN G mult-adds/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rows, fan_in, fan_out, what in SHAPES:
        g = torch.Generator().manual_seed(0)
        x, w = torch.randn(rows, fan_in, generator=g), torch.randn(fan_out, fan_in, generator=g)
        b, dy = torch.randn(fan_out, generator=g), torch.randn(rows, fan_out, generator=g)
        torch_fwd = cpu_microseconds(lambda: F.linear(x, w, b), args.repeats)
        dnn_fwd = cpu_microseconds(lambda: onednn(x, w, b), args.repeats)
        torch_bwd = cpu_microseconds(lambda: (dy @ w, dy.t() @ x), args.repeats)
        dnn_bwd = cpu_microseconds(lambda: (onednn(dy, w.t()), onednn(dy.t(), x.t())), args.repeats)
        macs = rows * fan_in * fan_out
        lines.append(
            f"| {what} | {rows} × {fan_in} → {fan_out} | {torch_fwd:.1f} | {dnn_fwd:.1f} | {torch_bwd:.1f} | "
            f"{dnn_bwd:.1f} | {(torch_fwd + torch_bwd) / (dnn_fwd + dnn_bwd):.2f}× | {3 * macs / (dnn_fwd + dnn_bwd) / 1e3:.1f} |"
        )
    write_markdown(lines, args.out_dir, "cpu_linear")


if __name__ == "__main__":
    main()
