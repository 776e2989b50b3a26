"""Benchmark: batched MC-dropout inference against sequential single passes (goal: >= 5x faster).

Both use :func:`dustcmb.separation.mc.mc_predict` on the same ResUNet (architecture from the
parameter file, random weights): the batched run replicates each map ``--batch`` times along the
batch dimension so one forward does that many passes; the sequential reference does one pass per
forward (``batch=1``). Prints the best of three times per pass of each and their ratio, passes per second, and the
fraction of this machine's matmul peak (a large float32 ``torch.mm`` timed in the same run) that the
batched forward pass reaches, from the multiply-adds of its convolutions counted with hooks; and the
forward with the project's dropout layer (16-bit thresholds, :class:`dustcmb.separation.resunet.Dropout`)
against the same network with ``torch.nn.functional.dropout`` (one 32-bit draw per element) and with
no dropout at all; and the batched time per pass for a range of forward batch sizes, since the
fastest one is set by the CPU's caches, not by the largest batch memory allows.

Usage: python benchmarks/bench_mc_dropout.py [--params params.yaml] [--device cpu|cuda]
       [--maps 4] [--passes 100] [--batch 200] [--sequential-maps 1]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from dustcmb.config import load_params
from dustcmb.separation.inputs import n_inputs
from dustcmb.separation.mc import mc_mode, mc_predict
from dustcmb.separation.resunet import Dropout, ResUNet
from dustcmb.simulation.dataset import Normalisation

BATCH_SCAN = (25, 50, 100, 200, 400)  # forward batch sizes of the scan [passes]
REPEATS = 3  # every time is the best of this many runs (the least disturbed by other processes)


def timed(model, inputs, norm, passes: int, batch: int, device: str) -> float:
    """Wall-clock seconds of one :func:`mc_predict` call (results are back on the CPU when it returns)."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    mc_predict(model, inputs, norm, passes, batch)
    return time.perf_counter() - start


def conv_flops(model, inputs: torch.Tensor) -> float:
    """Floating-point operations (2 per multiply-add) of the convolutions of one forward of ``inputs``."""
    total = [0.0]

    def hook(module, _, output):
        kernel = module.weight[0].numel()  # in_channels/groups × kh × kw
        total[0] += 2.0 * output.numel() * kernel

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(inputs)
    for handle in handles:
        handle.remove()
    return total[0]


def matmul_peak(device: str, n: int = 2048, repeats: int = 5) -> float:
    """Best float32 ``torch.mm`` throughput [FLOP/s] of ``n × n`` matrices on ``device``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def timed_forward(model, replicas: torch.Tensor, device: str, layout=torch.contiguous_format) -> float:
    """Seconds of one MC-mode forward of ``replicas`` (the network alone, no spectra or quantiles) with
    parameters and inputs in ``layout`` (``torch.channels_last`` is how :func:`mc_predict` runs it)."""
    mc_mode(model).to(memory_format=layout)
    replicas = replicas.to(device).contiguous(memory_format=layout)
    with torch.no_grad():
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(replicas)
        if device == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - start


class TorchDropout(torch.nn.Dropout):
    """The plain reference: ``torch.nn.functional.dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training)


def with_dropout(model: ResUNet, layer) -> ResUNet:
    """A copy of ``model`` whose dropout layers are replaced by ``layer(rate)`` (a class or factory)."""
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, layer(child.p))
    return clone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--npix", type=int, default=None, help="default: patches.npix")
    parser.add_argument("--maps", type=int, default=4, help="maps for the batched run")
    parser.add_argument("--passes", type=int, default=None, help="default: separation.mc_passes")
    parser.add_argument("--batch", type=int, default=None, help="default: separation.mc_batch")
    parser.add_argument("--sequential-maps", type=int, default=1, help="maps for the (slow) sequential run")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.separation
    npix = args.npix or params.patches.npix
    passes, batch = args.passes or cfg.mc_passes, args.batch or cfg.mc_batch
    torch.manual_seed(0)
    channels = n_inputs(3, cfg)
    model = ResUNet(npix, params.patches.size_deg, channels, cfg.base_channels, cfg.dropout,
                    prior_channel=cfg.prior != "none").to(args.device)
    norm = Normalisation((143.0, 353.0, 545.0), (0.0,) * 3, (1.0,) * 3, 0.0, 100.0)
    inputs = torch.randn(args.maps, channels, npix, npix)
    timed(model, inputs[:1], norm, min(passes, batch), batch, args.device)  # warm-up (allocator, kernels)
    timed(model, inputs[:1], norm, 4, 1, args.device)
    batched = min(timed(model, inputs, norm, passes, batch, args.device) for _ in range(REPEATS)) / (
        args.maps * passes)
    sequential = min(timed(model, inputs[:args.sequential_maps], norm, passes, 1, args.device)
                     for _ in range(REPEATS)) / (args.sequential_maps * passes)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ResUNet {npix}² base {cfg.base_channels} ({n_params / 1e6:.2f} M parameters) on {args.device}, "
          f"{passes} passes per map, threads {torch.get_num_threads()}")
    print(f"sequential (1 pass per forward):      {1e3 * sequential:8.3f} ms per pass")
    print(f"batched ({batch} passes per forward): {1e3 * batched:8.3f} ms per pass")
    print(f"speed-up: {sequential / batched:.1f}x (goal >= 5x); {1 / batched:.0f} passes/s batched")
    flops = conv_flops(model, inputs[:1])
    peak = matmul_peak(args.device)
    for name, layout in (("NCHW", torch.contiguous_format), ("NHWC, as mc_predict", torch.channels_last)):
        forward = min(timed_forward(model, inputs[:1].repeat(batch, 1, 1, 1), args.device, layout)
                      for _ in range(3)) / batch
        print(f"forward only ({name}): {1e3 * forward:.3f} ms per pass ({forward / batched:.0%} of the batched "
              f"pass), {flops / 1e6:.1f} MFLOP per pass -> {flops / forward / 1e9:.1f} GFLOP/s, "
              f"{flops / forward / peak:.1%} of the {peak / 1e9:.0f} GFLOP/s matmul peak")
    replicas = inputs[:1].repeat(batch, 1, 1, 1)
    layers = {"this project's Dropout": model, "torch F.dropout": with_dropout(model, TorchDropout),
              "no dropout (p = 0)": with_dropout(model, lambda p: Dropout(0.0))}
    times = {name: min(timed_forward(net, replicas, args.device, torch.channels_last) for _ in range(3)) / batch
             for name, net in layers.items()}
    reference = times["torch F.dropout"]
    for name, forward in times.items():
        print(f"forward (NHWC) with {name:24s} {1e3 * forward:.3f} ms per pass "
              f"({reference / forward:.2f}x F.dropout's speed)")
    scan = {size: min(timed(model, inputs, norm, passes, size, args.device) for _ in range(REPEATS))
            / (args.maps * passes) for size in BATCH_SCAN}
    print("batched, by passes per forward: " + ", ".join(
        f"{size}: {1e3 * t:.3f} ms ({sequential / t:.1f}x)" for size, t in scan.items()))


if __name__ == "__main__":
    main()
