"""Throughput of the synthetic street-scene generator, against PNG decoding in the same run.

The reference is decoding the same scenes from in-memory PNG files with Pillow: the cost a
file-based loader pays per image before any resizing. Run on one core for the per-core number:

    taskset -c 0 .venv/bin/python benchmarks/synthetic_data.py --size 128 256 --n 200
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from semantic.data.synthetic import SyntheticStreetScenes


def _timed(fn, n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per call; CPU time is robust to other processes' load."""
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    parser.add_argument("--n", type=int, default=200, help="scenes to generate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gen = SyntheticStreetScenes(tuple(args.size), seed=args.seed)
    gen.scene(0)  # warm-up: imports, allocator
    gen_cpu, gen_wall = _timed(gen.scene, args.n)

    pngs = []
    for i in range(min(args.n, 50)):
        buf = io.BytesIO()
        Image.fromarray(gen.scene(i).image).save(buf, format="PNG")
        pngs.append(buf.getvalue())

    def decode(i: int) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(pngs[i % len(pngs)])).convert("RGB"))

    dec_cpu, dec_wall = _timed(decode, args.n)
    h, w = args.size
    print(f"synthetic scenes {h}x{w}, {args.n} scenes, one process")
    print(f"{'':24s}{'ms/img (cpu)':>14s}{'img/s (cpu)':>14s}{'ms/img (wall)':>15s}")
    print(f"{'generate':24s}{gen_cpu * 1e3:14.2f}{1 / gen_cpu:14.1f}{gen_wall * 1e3:15.2f}")
    print(f"{'PNG decode (reference)':24s}{dec_cpu * 1e3:14.2f}{1 / dec_cpu:14.1f}{dec_wall * 1e3:15.2f}")
    print(f"ratio generate / decode (cpu): {gen_cpu / dec_cpu:.1f}")


if __name__ == "__main__":
    main()
