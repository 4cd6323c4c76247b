"""Roofline of the GESCO-size UNet: achieved FLOP/s of one denoiser call against the GPU's peak.

Builds ``SDMUNet(UNetConfig.gesco_cityscapes256())`` (the published Cityscapes hyperparameters,
675 M parameters, random weights), channels-last, in bf16 on CUDA (``--precision``: ``bf16``
weights, ``autocast`` = float32 weights under bf16 autocast as ``DiffusionReceiver`` runs on a
GPU, or ``fp32``). The timed call is what one DDIM step with classifier-free guidance runs:
``model(x, t, cache=cache)`` with a precomputed SPADE condition cache, at batch 2B on a GPU
(conditional and null passes in one batch, ``GuidedDenoiser(batched=True)``) and at batch B on
the CPU (two separate passes). FLOPs per call = 2 x the MACs counted by
``semantic.diffusion.flops.estimate_macs`` (convolutions, linears, attention products).

Times are medians of ``--repeats`` after ``--warmup`` calls (CUDA events on a GPU, wall clock
on the CPU). Printed: achieved FLOP/s, its fraction of the detected GPU's datasheet dense bf16
peak (``PEAK_BF16_TFLOPS``; an unknown GPU prints ``peak unknown``) against the target of 0.35,
a same-run reference (a square matmul of ``--matmul-size`` in the same dtype) and the UNet's
fraction of it, and DDIM images/s with guidance 1.5 derived from the timed parts,
``B / (passes x (condition cache + steps x call))``; ``--sample`` also times a real
``DiffusionReceiver.generate`` end to end. ``--full`` also times the uncached forward (SPADE
convolutions every call, as in training).

Without CUDA it is a smoke test at 64x128, batch 1, fp32 (``no GPU: CPU smoke run``); it
takes about 15 s on one core.

Usage:
    .venv/bin/python benchmarks/unet_roofline.py [--size 256 512] [--batch 4]
        [--precision bf16|autocast|fp32] [--repeats 10] [--warmup 3] [--steps 20]
        [--matmul-size 8192] [--full] [--sample] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch

from semantic.diffusion.flops import estimate_macs
from semantic.diffusion.receiver import DiffusionReceiver
from semantic.diffusion.unet import SDMUNet, UNetConfig

# Datasheet dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, matched as substrings of
# torch.cuda.get_device_name in this order ("H100 PCIe" before "H100", "A100" before "A10").
# The SXM H100 reports itself as e.g. "NVIDIA H100 80GB HBM3".
PEAK_BF16_TFLOPS: tuple[tuple[str, str, float], ...] = (
    ("H100 PCIe", "H100 PCIe", 756.0),
    ("H200", "H200", 989.0),
    ("H100", "H100 SXM", 989.0),
    ("A100", "A100", 312.0),
    ("L40S", "L40S", 362.0),
    ("A10", "A10", 125.0),
    ("RTX 4090", "RTX 4090", 165.0),
)
TARGET_FRACTION = 0.35
GUIDANCE_SCALE = 1.5
DTYPES = {"bf16": torch.bfloat16, "autocast": torch.float32, "fp32": torch.float32}


def peak_bf16_tflops(device_name: str) -> tuple[str, float] | None:
    """(label, dense bf16 TFLOP/s) of the first table entry found in ``device_name``, or None."""
    for key, label, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return label, tflops
    return None


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int,
                   warmup: int) -> float:
    """Median time of ``fn()`` after ``warmup`` calls (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            stop = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) / 1e3)
        else:
            start_s = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start_s)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="input size (default 256 512 on a GPU, 64 128 on the CPU)")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per sampling batch B (default 4 on a GPU, 1 on the CPU)")
    parser.add_argument("--precision", choices=sorted(DTYPES), default=None,
                        help="default bf16 on a GPU, fp32 on the CPU")
    parser.add_argument("--repeats", type=int, default=None, help="default 10 GPU, 1 CPU")
    parser.add_argument("--warmup", type=int, default=None, help="default 3 GPU, 1 CPU")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("--matmul-size", type=int, default=None,
                        help="reference matmul n (n x n @ n x n; default 8192 GPU, 2048 CPU)")
    parser.add_argument("--full", action="store_true", help="also time the uncached forward")
    parser.add_argument("--sample", action="store_true",
                        help="also time one real DiffusionReceiver.generate")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    on_gpu = torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    height, width = args.size or ((256, 512) if on_gpu else (64, 128))
    batch = args.batch or (4 if on_gpu else 1)
    precision = args.precision or ("bf16" if on_gpu else "fp32")
    repeats = args.repeats or (10 if on_gpu else 1)
    warmup = args.warmup if args.warmup is not None else (3 if on_gpu else 1)
    matmul_n = args.matmul_size or (8192 if on_gpu else 2048)
    dtype = DTYPES[precision]
    compute_dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    # One batch of 2B on a GPU (batched guidance), two passes of B on the CPU, as the receiver.
    passes = 1 if on_gpu else 2
    call_batch = batch * 2 // passes

    if on_gpu:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
        peak = peak_bf16_tflops(name)
        peak_text = (f"dense bf16 peak {peak[1]:.0f} TFLOP/s ({peak[0]})" if peak
                     else "peak unknown")
        print(f"device: {name}, {peak_text}; torch {torch.__version__}")
    else:
        peak = None
        print(f"no GPU: CPU smoke run (torch threads {torch.get_num_threads()}, peak unknown); "
              f"torch {torch.__version__}")

    config = UNetConfig.gesco_cityscapes256()
    with torch.device(device):
        model = SDMUNet(config)
    model = model.to(dtype=dtype, memory_format=torch.channels_last).eval()
    parameters_m = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: GESCO Cityscapes UNet, {parameters_m:.0f} M parameters (random weights), "
          f"{precision}, channels-last, {height}x{width}")

    gen = torch.Generator(device).manual_seed(0)
    x = torch.randn(call_batch, 3, height, width, generator=gen, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, config.num_label_channels, (batch, height, width), generator=gen,
                           device=device)
    y = torch.nn.functional.one_hot(labels, config.num_label_channels).permute(0, 3, 1, 2)
    y = y.to(dtype).contiguous(memory_format=torch.channels_last)
    if on_gpu:
        y = torch.cat([y, torch.zeros_like(y)])
    t = torch.full((call_batch,), 500, device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "autocast"
                else contextlib.nullcontext())

    macs = estimate_macs(config, height, width, use_cache=True, batch_size=call_batch)
    flop = 2 * macs.total
    print(f"denoiser call: batch {call_batch} (B = {batch} images x 2 guidance passes"
          f"{' in one batch' if on_gpu else ', two calls'}), SPADE cache, "
          f"{macs.gmac_per_image:.1f} GMAC/image, {flop / 1e12:.3f} TFLOP per call")

    with torch.inference_mode(), autocast:
        cache = model.precompute_condition(y)
        condition_s = median_seconds(lambda: model.precompute_condition(y), device, repeats,
                                     warmup)
        step_s = median_seconds(lambda: model(x, t, cache=cache), device, repeats, warmup)
        full_s = None
        if args.full:
            full_s = median_seconds(lambda: model(x, t, y), device, repeats, warmup)
    achieved = flop / step_s
    if peak:
        fraction_text = (f"{achieved / (peak[1] * 1e12):.3f} of the dense bf16 peak "
                         f"(target >= {TARGET_FRACTION})")
    else:
        fraction_text = f"peak unknown, fraction omitted (target >= {TARGET_FRACTION})"
    print(f"time: median of {repeats} after {warmup} warm-up: call {step_s * 1e3:.1f} ms, "
          f"condition cache {condition_s * 1e3:.1f} ms")
    print(f"achieved: {achieved / 1e12:.3f} TFLOP/s, {fraction_text}")
    if full_s is not None:
        full_flop = 2 * estimate_macs(config, height, width, use_cache=False,
                                      batch_size=call_batch).total
        print(f"uncached forward (training): {full_s * 1e3:.1f} ms, "
              f"{full_flop / full_s / 1e12:.3f} TFLOP/s")

    a = torch.randn(matmul_n, matmul_n, generator=gen, device=device, dtype=compute_dtype)
    b = torch.randn(matmul_n, matmul_n, generator=gen, device=device, dtype=compute_dtype)
    with torch.inference_mode():
        matmul_s = median_seconds(lambda: a @ b, device, max(repeats, 3), warmup)
    matmul_flops = 2 * matmul_n**3 / matmul_s
    print(f"reference matmul {matmul_n}^3 {str(compute_dtype).removeprefix('torch.')}: "
          f"{matmul_flops / 1e12:.3f} TFLOP/s; UNet / matmul = {achieved / matmul_flops:.3f}")

    per_batch_s = passes * (condition_s + args.steps * step_s)
    print(f"DDIM-{args.steps} with guidance {GUIDANCE_SCALE}, batch {batch}: "
          f"{batch / per_batch_s:.3f} images/s "
          f"(derived: {batch} / ({passes} x (cache + {args.steps} x call)))")
    if args.sample:
        receiver = DiffusionReceiver(model, "ddim", args.steps, GUIDANCE_SCALE,
                                     device=str(device), batch_size=batch)
        y_cpu = y[:batch].float().cpu()
        start_s = time.perf_counter()
        receiver.generate(y_cpu, torch.Generator().manual_seed(0))
        sample_s = time.perf_counter() - start_s
        print(f"DDIM-{args.steps} measured (DiffusionReceiver.generate, one call): "
              f"{batch / sample_s:.3f} images/s")


if __name__ == "__main__":
    main()
