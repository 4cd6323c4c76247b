"""Q-GESCO: the quantised map receiver against the float32 receiver, in one run.

Same images, same received maps (one AWGN realisation at ``--snr-db``), same receiver seed and
thread count for every variant. Calibration (train-split maps through the same channel at
``--calibration-snr-db``, ``--calibration-timesteps`` steps, both guidance passes) runs once
and every activation-quantised variant uses it. Per variant:

* weight memory ratio: stored bytes of the UNet / float32 bytes (``semantic.quant.weight_memory``);
* MAC and BOP ratio: BOPs = MACs x weight bits x activation bits over one image generation
  (all steps, both guidance passes, the SPADE condition caches; MACs counted with
  ``semantic.diffusion.flops``); float32 operands count 32 bits;
* CPU latency ratio: best-of-``--repeats`` wall time of ``receiver.generate`` on the batch
  (the rounds visit all variants in turn, so load changes hit all of them alike),
  and the process CPU time of the same call (on a shared machine the better estimate of the
  time on an idle core; with one thread the two agree when the machine is idle);
* mIoU (scoring segmenter), FID/KID against the original images (Inception pool3, pytorch-fid
  protocol), PSNR to the original and to the float32 receiver's output.

Prints a Markdown table of ratios and deltas against float32:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/qgesco.py --n 8 --steps 10
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from link.channel_io import deliver
from phy.link import PhyLink
from phy.specs import ChannelSpec, CodingSpec
from semantic.data import build_dataset
from semantic.diffusion.receiver import load_receiver
from semantic.metrics.fid import InceptionFeatures, fid_from_features
from semantic.metrics.miou import ConfusionMatrix
from semantic.metrics.pixel import psnr
from semantic.quant.calibration import calibration_maps, collect_statistics
from semantic.quant.model import (
    QuantConfig,
    bit_operations,
    precision_label,
    quantize_receiver,
    weight_memory,
)
from semantic.schemes.base import SourceBatch, model_to_images
from semantic.schemes.gesco import GescoConfig, GescoScheme

VARIANTS: dict[str, QuantConfig] = {
    "weight_only": QuantConfig("weight_only", 8, None),
    "fake_quant_w8": QuantConfig("fake_quant", 8, None),
    "fake_quant_w8a8": QuantConfig("fake_quant", 8, 8),
    "fake_quant_w8a8_rr": QuantConfig("fake_quant", 8, 8, reduce_range=True),
    "int8": QuantConfig("int8", 8, 8),
}


@dataclass(frozen=True)
class Result:
    name: str
    precision: str
    memory_bytes: int
    macs: float
    bops: float
    latency_s: float
    cpu_s: float
    miou: float
    fid: float
    kid: float
    psnr_original: float
    psnr_to_fp32: float


def _source(split: str, n: int, size: tuple[int, int], seed: int) -> SourceBatch:
    ds = build_dataset("synthetic", None, split, num_images=n, size=size, seed=seed)
    b = ds.batch(slice(0, n))
    return SourceBatch(b.images, b.labels, b.instances, np.asarray(b.indices))


def _segmenter(path: str):
    import torch.nn.functional as F

    from semantic.segmenter import load_segmenter

    model = load_segmenter(path, "cpu")
    train_hw = getattr(getattr(model, "config", None), "train_size", None) or (128, 256)

    @torch.inference_mode()
    def segment(images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        hw = tuple(x.shape[-2:])
        if hw != tuple(train_hw):
            x = F.interpolate(x, size=tuple(train_hw), mode="bilinear", align_corners=False)
        logits = model(x).float()
        if tuple(logits.shape[-2:]) != hw:
            logits = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)
        return logits.argmax(1)

    return segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="semantic/weights/receiver_map_64x128.pt")
    parser.add_argument("--segmenter", default="semantic/weights/segmenter.pt")
    parser.add_argument("--n", type=int, default=8, help="evaluated images (val split)")
    parser.add_argument("--size", type=int, nargs=2, default=[64, 128], metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=1.5)
    parser.add_argument("--snr-db", type=float, default=10.0, help="test SNR per channel use")
    parser.add_argument("--calibration-images", type=int, default=8)
    parser.add_argument("--calibration-timesteps", type=int, default=5)
    parser.add_argument("--calibration-snr-db", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="latency: best of N runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(args.size)

    receiver = load_receiver(args.weights, "cpu", sampler="ddim", steps=args.steps,
                             guidance_scale=args.guidance, batch_size=args.n)
    gesco = GescoScheme(GescoConfig(), receiver)
    link = PhyLink("qpsk", CodingSpec(type="none", k=2), ChannelSpec(type="awgn"))
    source = _source("val", args.n, size, 0)
    delivered, _ = deliver(gesco.transmit(source), link, args.snr_db, source.size,
                           torch.Generator().manual_seed(args.seed))
    y, _ = gesco.condition(delivered)

    t0 = time.perf_counter()
    calib = _source("train", args.calibration_images, size, 0)
    maps = calibration_maps(gesco, calib, args.calibration_snr_db,
                            torch.Generator().manual_seed(args.seed + 10), link)
    stats = collect_statistics(receiver, maps, args.calibration_timesteps,
                               torch.Generator().manual_seed(args.seed + 11), seed=args.seed)
    calib_s = time.perf_counter() - t0

    segment = _segmenter(args.segmenter)
    inception = InceptionFeatures("cpu", "pytorch-fid")
    reference = inception(torch.from_numpy(source.images))
    labels = torch.from_numpy(source.labels).long()
    originals = torch.from_numpy(source.images)
    h, w = size

    receivers: dict[str, tuple[str, object, object]] = {"fp32": ("fp32", receiver, None)}
    for name in args.variants:
        config = VARIANTS[name]
        qrx = quantize_receiver(receiver, config, stats if config.needs_calibration else None)
        receivers[name] = (precision_label(config), qrx, qrx.unet)

    # Latency: rounds over all variants (interleaved, so a change of machine load hits every
    # variant alike), best wall and best CPU time per variant.
    wall = dict.fromkeys(receivers, float("inf"))
    cpu = dict.fromkeys(receivers, float("inf"))
    images: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, (_, rx, _) in receivers.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            out = rx.generate(y, torch.Generator().manual_seed(args.seed + 1))
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
            images[name] = model_to_images(out)
            print(f"  {name}: {wall[name]:.1f} s wall, {cpu[name]:.1f} s CPU", flush=True)

    results = []
    for name, (precision, _, qunet) in receivers.items():
        cm = ConfusionMatrix(19)
        cm.update(segment(images[name]), labels)
        recon = torch.from_numpy(images[name])
        fid = fid_from_features(inception(recon), reference, "pytorch-fid",
                                kid_subset_size=args.n, generator=args.seed)
        to_fp32 = float(psnr(recon, torch.from_numpy(images["fp32"]), data_range=255.0).mean())
        ops = bit_operations(receiver.unet, qunet, h, w, args.steps, args.guidance > 1.0)
        memory = weight_memory(qunet if qunet is not None else receiver.unet).total_bytes
        results.append(Result(name, precision, memory, ops.macs, ops.bops, wall[name],
                              cpu[name], float(cm.miou()), fid.fid, fid.kid,
                              float(psnr(recon, originals, data_range=255.0).mean()), to_fp32))
    fp32 = results[0]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nQ-GESCO vs float32: {args.n} val images {h}x{w}, DDIM {args.steps} steps, "
          f"s={args.guidance}, AWGN {args.snr_db} dB, {args.threads} thread(s), load "
          f"{load:.1f}; calibration {args.calibration_images} train maps at "
          f"{args.calibration_snr_db} dB, timesteps {list(stats.timesteps)} ({calib_s:.0f} s)")
    print(f"fp32: {fp32.memory_bytes / 2**20:.2f} MiB, {fp32.macs / 1e9:.2f} GMAC/image, "
          f"{fp32.latency_s:.1f} s wall ({fp32.cpu_s:.1f} s CPU), mIoU {fp32.miou:.4f}, "
          f"FID {fp32.fid:.1f}, KID {fp32.kid:.4f}, PSNR {fp32.psnr_original:.2f} dB\n")
    print("| variant | receiver_precision | memory ratio | BOPs ratio | latency ratio (wall) | "
          "CPU-time ratio | ΔmIoU | ΔFID | ΔKID | PSNR to fp32 (dB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results[1:]:
        print(f"| {r.name} | {r.precision} | {r.memory_bytes / fp32.memory_bytes:.4f} | "
              f"{r.bops / fp32.bops:.4f} | {r.latency_s / fp32.latency_s:.2f} | "
              f"{r.cpu_s / fp32.cpu_s:.2f} | "
              f"{r.miou - fp32.miou:+.4f} | {r.fid - fp32.fid:+.1f} | {r.kid - fp32.kid:+.4f} | "
              f"{r.psnr_to_fp32:.1f} |")


if __name__ == "__main__":
    main()
