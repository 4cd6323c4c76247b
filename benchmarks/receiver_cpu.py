"""CPU cost of the shipped diffusion receivers: seconds per batch of 16 images, SPADE cache on/off.

For ``semantic/weights/receiver_map_64x128.pt`` and ``receiver_superres_64x128.pt``, loaded
with ``load_receiver(path, "cpu", sampler="ddim", steps=20, guidance_scale=1.5)``, times
``receiver.generate`` on one batch of conditions built from the synthetic val scenes at 64x128:
the one-hot map (plus the instance-edge channel when the receiver has 20 label channels) and,
for the super-resolution receiver, the 2x-downscaled coarse image through HEVC at qp 32 (as
the SPIC transmitter makes it). Two paths are timed in the same run:

* cached: the receiver as shipped; ``GuidedDenoiser`` runs the SPADE convolutions once per
  batch (``precompute_condition``) and every DDIM step reuses them;
* naive (the reference): the same receiver, sampler, generator and DDIM loop with a
  ``GuidedDenoiser(use_cache=False)``, so every step runs the full forward, SPADE included.

Each path gets one warm-up call, then ``--repeats`` rounds that alternate cached and naive (a
load change on the shared machine hits both alike); the median wall time and process CPU time
(summed over threads; on a busy machine the better estimate of the time on idle cores) are
printed, with the issue's budget of 20 s per 16 images, images/s, the naive/cached time ratio,
the MACs per image of one forward from ``semantic.diffusion.flops.estimate_macs`` and the MAC
ratio of a whole generation. The largest difference between the two paths' images is printed
as evidence that they compute the same thing.

Usage:
    .venv/bin/python benchmarks/receiver_cpu.py [--repeats 3] [--batch 16] [--threads N]
        [--receivers receiver_map_64x128.pt receiver_superres_64x128.pt]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import torch

from semantic.data import build_dataset
from semantic.data.maps import semantic_map
from semantic.diffusion import train_data
from semantic.diffusion.flops import estimate_macs
from semantic.diffusion.guidance import GuidedDenoiser
from semantic.diffusion.receiver import DiffusionReceiver, load_receiver

WEIGHTS = Path(__file__).resolve().parents[1] / "semantic" / "weights"
RECEIVERS = ("receiver_map_64x128.pt", "receiver_superres_64x128.pt")
SIZE_HW = (64, 128)
NUM_CLASSES = 19
STEPS = 20
GUIDANCE_SCALE = 1.5
BUDGET_S_PER_16_IMAGES = 20.0


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def conditions(receiver: DiffusionReceiver, num_images: int
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The map ``[B, L, 64, 128]`` and, for super-res, the coarse image ``[B, 3, 32, 64]``."""
    scenes = build_dataset("synthetic", None, "val", num_images=num_images, size=SIZE_HW, seed=0)
    batch = scenes.batch(slice(0, num_images))
    labels = torch.from_numpy(batch.labels).long()
    edges = receiver.config.num_label_channels == NUM_CLASSES + 1
    instances = torch.from_numpy(batch.instances) if edges else None
    y = semantic_map(labels, NUM_CLASSES, instances)
    low_res = None
    if receiver.super_res:
        low_res = train_data.to_model_range(train_data.coarse_images(batch.images, 2, "hevc", 32))
    return y, low_res


def without_cache(receiver: DiffusionReceiver) -> DiffusionReceiver:
    """The same receiver (shared network and sampler) whose denoiser never uses the SPADE cache."""
    cached = receiver.denoiser
    naive = copy.copy(receiver)
    naive.denoiser = GuidedDenoiser(
        receiver.unet, cached.guidance_scale, batched=cached.batched, use_cache=False,
        autocast_dtype=cached.autocast_dtype)
    return naive


def generation_macs(receiver: DiffusionReceiver, use_cache: bool) -> tuple[float, float]:
    """(MACs of one forward, MACs of one whole generation) per image at 64x128."""
    config = receiver.config
    count = estimate_macs(config, *SIZE_HW, use_cache=use_cache)
    passes = 2 if receiver.denoiser.guided else 1
    if not use_cache:
        return count.per_image, STEPS * passes * count.per_image
    full = estimate_macs(config, *SIZE_HW, use_cache=False)
    spade_per_image = full.by_category["spade_conv"] / full.batch_size
    return count.per_image, STEPS * passes * count.per_image + passes * spade_per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after a warm-up")
    parser.add_argument("--batch", type=int, default=16, help="images per generate call")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--receivers", nargs="+", choices=RECEIVERS, default=list(RECEIVERS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    budget_s = BUDGET_S_PER_16_IMAGES * args.batch / 16
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpus {os.cpu_count()}, "
        f"load average {_load()} (1/5/15 min)"
    )
    print(
        f"DDIM {STEPS} steps, guidance {GUIDANCE_SCALE}, batch {args.batch} at "
        f"{SIZE_HW[0]}x{SIZE_HW[1]}, median of {args.repeats} after one warm-up; "
        f"budget {budget_s:g} s per {args.batch} images"
    )
    for name in args.receivers:
        receiver = load_receiver(WEIGHTS / name, "cpu", sampler="ddim", steps=STEPS,
                                 guidance_scale=GUIDANCE_SCALE, batch_size=args.batch)
        naive = without_cache(receiver)
        y, low_res = conditions(receiver, args.batch)
        paths = {"cached": receiver, "naive": naive}
        images = {}
        for label, rx in paths.items():  # warm-up: oneDNN primitive creation, allocator
            images[label] = rx.generate(y, torch.Generator().manual_seed(0), low_res=low_res)
        wall: dict[str, list[float]] = {label: [] for label in paths}
        cpu: dict[str, list[float]] = {label: [] for label in paths}
        for _ in range(args.repeats):
            for label, rx in paths.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                rx.generate(y, torch.Generator().manual_seed(0), low_res=low_res)
                wall[label].append(time.perf_counter() - start)
                cpu[label].append(time.process_time() - start_cpu)

        print(f"\n{name} (L={receiver.config.num_label_channels}, "
              f"super_res={receiver.super_res})")
        macs = {}
        for label, use_cache in (("cached", True), ("naive", False)):
            forward, macs[label] = generation_macs(receiver, use_cache)
            seconds = statistics.median(wall[label])
            print(
                f"  {label:6s}: {seconds:6.2f} s for {args.batch} images (budget "
                f"{budget_s:g} s), {args.batch / seconds:5.2f} images/s, CPU time "
                f"{statistics.median(cpu[label]):6.2f} s; {forward / 1e9:.3f} GMAC/image per "
                f"forward, {macs[label] / 1e9:.2f} GMAC/image per generation"
            )
        difference = (images["cached"] - images["naive"]).abs().max().item()
        ratio = statistics.median(wall["naive"]) / statistics.median(wall["cached"])
        print(
            f"  naive/cached: time {ratio:.2f}x, MACs {macs['naive'] / macs['cached']:.2f}x; "
            f"max |cached - naive| = {difference:.1e}"
        )
    print(f"\nload average after: {_load()}")


if __name__ == "__main__":
    main()
