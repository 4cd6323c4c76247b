"""Throughput of Inception feature extraction (images/s) at 128x256 inputs, honestly measured.

Runs ``InceptionFeatures`` (preprocessing included: bilinear resize 128x256 -> 299x299 and
scaling) on random uint8 images for each batch size, after one warm-up call per batch size,
and prints images/s together with the machine load so numbers taken on a shared machine can
be judged. For reference it also times the raw TorchScript module (no freezing, NCHW).

Usage:
    python benchmarks/fid_features.py [--images 48] [--batch-sizes 4 8 16]
        [--precision fp32 bf16] [--threads N] [--raw]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from semantic.metrics.fid import InceptionFeatures, load_inception_network, preprocess


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _time(fn, images: torch.Tensor, batch_size: int) -> float:
    fn(images[:batch_size])  # warm-up: profiling executor, oneDNN primitive creation
    start = time.perf_counter()
    fn(images)
    return images.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--raw", action="store_true", help="also time the unoptimised module")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 256, (args.images, args.height, args.width, 3), dtype=torch.uint8, generator=gen
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpus {os.cpu_count()}, "
        f"load average {_load()} (1/5/15 min)"
    )
    print(f"{args.images} images of {args.height}x{args.width}, resized to 299x299")
    for precision in args.precision:
        for batch_size in args.batch_sizes:
            extractor = InceptionFeatures("cpu", "pytorch-fid", batch_size, precision)
            rate = _time(extractor, images, batch_size)
            print(f"InceptionFeatures {precision} batch {batch_size:3d}: {rate:6.2f} images/s")
    if args.raw:
        raw = load_inception_network()

        def run_raw(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return torch.cat([raw(preprocess(x[i : i + 8])) for i in range(0, x.shape[0], 8)])

        print(f"raw TorchScript fp32 batch   8: {_time(run_raw, images, 8):6.2f} images/s")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
