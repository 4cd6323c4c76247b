"""What the Diff-GO^n index selection buys: the chosen bank entry vs entry 0 (no selection).

For each image of the synthetic validation split the ``diffgo`` transmitter's own receiver
(the shipped map receiver by default) regenerates the image from every entry of a bank of N,
once; each candidate is scored by mIoU (the scoring segmenter vs the ground-truth map, per
image) and by PSNR against the original. For both goals it reports the mean over images of
the chosen entry's score and of entry 0's score (entry 0 is what a receiver without selection,
or with a lost index, uses; bank entries are i.i.d., so it stands for a random index), the mean
gain with a 95 % bootstrap interval over images, and the other metric's change under each goal.

Caveat printed with the numbers: with goal ``miou`` the selection maximises the very segmenter
that scores mIoU, so the gain it shows on that segmenter is what the transmitter optimised.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffgo_selection.py --images 8 --bank 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from link.config import parse_scenario
from link.semantic_run import load_source, make_segment_fn
from semantic.diffusion.receiver import load_receiver
from semantic.metrics.intervals import bootstrap_mean_ci
from semantic.schemes.diffgo import DiffgoConfig, DiffgoScheme, per_image_miou, per_image_psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--bank", type=int, default=16, help="bank size N (all entries tried)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--guidance", type=float, default=1.5)
    parser.add_argument("--weights", default="semantic/weights/receiver_map_64x128.pt")
    parser.add_argument("--bank-seed", type=int, default=0)
    args = parser.parse_args()

    scenario = parse_scenario({"name": "diffgo_selection", "kind": "semantic",
                               "schemes": ["diffgo"], "sweep": {"snr_db": [0]},
                               "data": {"split": "val", "num_images": args.images,
                                        "size": [64, 128]}})
    source = load_source(scenario)
    segment = make_segment_fn(scenario, "cpu")
    receiver = load_receiver(args.weights, "cpu", sampler="ddim", steps=args.steps,
                             guidance_scale=args.guidance, eta=0.0)
    scheme = DiffgoScheme(DiffgoConfig(bank_seed=args.bank_seed, bank_size=args.bank,
                                       candidates=args.bank, goal="miou"), receiver, segment)
    t0 = time.perf_counter()
    miou = np.zeros((len(source), args.bank))
    psnr = np.zeros((len(source), args.bank))
    for j in range(len(source)):
        _, labels, edges = scheme._encode(source.labels[j], source.instances[j])
        y = scheme.condition(labels, edges)
        images = np.stack([scheme.regenerate(y, i, torch.Generator()) for i in range(args.bank)])
        miou[j] = per_image_miou(torch.as_tensor(segment(images)), source.labels[j], 19)
        psnr[j] = per_image_psnr(images, source.images[j])
    wall = time.perf_counter() - t0

    print(f"{len(source)} images x {args.bank} bank entries, {args.steps} DDIM steps, "
          f"s = {args.guidance}, receiver {args.weights}; {wall:.0f} s")
    print("| goal | metric | entry 0 | chosen | gain [95% CI] | other metric: entry 0 -> chosen |")
    print("|---|---|---|---|---|---|")
    for goal, score, other, other_name in (("miou", miou, psnr, "PSNR dB"),
                                           ("psnr", psnr, miou, "mIoU")):
        best = np.argmax(np.where(np.isnan(score), -np.inf, score), axis=1)
        rows = np.arange(len(source))
        gain = score[rows, best] - score[:, 0]
        ci = bootstrap_mean_ci(torch.from_numpy(gain), generator=0, n_resamples=2000)
        print(f"| {goal} | {goal} | {np.nanmean(score[:, 0]):.4f} | "
              f"{np.nanmean(score[rows, best]):.4f} | {np.nanmean(gain):+.4f} "
              f"[{ci.low:+.4f}, {ci.high:+.4f}] | {other_name} {np.nanmean(other[:, 0]):.4f} -> "
              f"{np.nanmean(other[rows, best]):.4f} |")
    print("mIoU goal: selected and scored by the same segmenter (optimistic by construction).")


if __name__ == "__main__":
    main()
