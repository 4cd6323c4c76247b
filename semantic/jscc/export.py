"""Ship a trained JSCC codec or diffjscc refiner (float16) with a model card measured on it.

    python -m semantic.jscc.export codec RUN_DIR OUT.pt --config TRAIN.yaml [--images N]
    python -m semantic.jscc.export refiner RUN_DIR OUT.pt --config TRAIN.yaml --codec CODEC.pt

The card states the training command, data, steps, parameters, file size and sha256, and a
PSNR-vs-SNR table measured on the *shipped file* over the project's PHY (``PhyLink.analog``:
AWGN and Rayleigh block fading with perfect CSI) on the first N validation scenes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic.diffusion.export import sha256_of

CARD_SNRS_DB = (-2.0, 0.0, 5.0, 10.0, 15.0, 20.0)


def _save(payload: dict[str, Any], out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(payload, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out_path)


def evaluate(scheme, snrs_db, channel: str, num_images: int, size=(64, 128), seed: int = 0
             ) -> list[dict[str, float]]:
    """PSNR (dB, mean over images) of ``scheme`` per SNR over ``PhyLink.analog``.

    Args:
        scheme: an object with ``transmit`` / ``receive`` (analog streams only).
        snrs_db: SNRs per complex channel use. channel: ``awgn`` or ``rayleigh`` (block).
        num_images: first N scenes of the synthetic validation split.
    """
    from link.channel_io import deliver
    from phy.link import PhyLink
    from phy.specs import ChannelSpec
    from semantic.data.synthetic import SPLITS, SyntheticStreetScenes
    from semantic.metrics.pixel import psnr
    from semantic.schemes.base import SourceBatch

    first = SPLITS["val"].start
    b = SyntheticStreetScenes(size=tuple(size), seed=0).batch(range(first, first + num_images))
    source = SourceBatch(b.images, b.labels, b.instances, np.asarray(b.indices))
    link = PhyLink("qpsk", channel=ChannelSpec(type=channel, fading="block"))
    tx = scheme.transmit(source)
    rows = []
    for snr in snrs_db:
        delivered, counts = deliver(tx, link, float(snr), source.size,
                                    torch.Generator().manual_seed(seed))
        rec = scheme.receive(delivered, torch.Generator().manual_seed(seed))
        value = psnr(torch.from_numpy(rec.images), torch.from_numpy(source.images),
                     data_range=255.0)
        rows.append({"snr_db": float(snr), "psnr_db": float(value.mean()),
                     "channel_uses_per_pixel": counts.analog_channel_uses
                     / (len(source) * source.size[0] * source.size[1])})
    return rows


def _table(results: dict[str, list[dict[str, float]]]) -> list[str]:
    channels = list(results)
    lines = ["| SNR (dB) | " + " | ".join(f"PSNR {c} (dB)" for c in channels) + " |",
             "|---|" + "---|" * len(channels)]
    for i, row in enumerate(results[channels[0]]):
        cells = " | ".join(f"{results[c][i]['psnr_db']:.2f}" for c in channels)
        lines.append(f"| {row['snr_db']:g} | {cells} |")
    return lines


def _export_half(source: Path, fmt: str, out_path: Path) -> dict:
    """Load a training export of format ``fmt``, write it to ``out_path`` with float16
    weights, and return the loaded (full-precision) dict."""
    data = torch.load(source, map_location="cpu", weights_only=True)
    if data.get("format") != fmt:
        raise ValueError(f"{source.parent}: no {source.name}")
    payload = {**data, "state_dict": {k: v.half() if v.is_floating_point() else v
                                      for k, v in data["state_dict"].items()}}
    _save(payload, out_path)
    return data


def export_codec(run_dir: str | os.PathLike, out_path: str | os.PathLike, config_path: str,
                 num_images: int = 32) -> Path:
    """Write the float16 codec and its card (PSNR vs SNR measured on the written file)."""
    from semantic.jscc.model import CODEC_FORMAT, load_codec
    from semantic.jscc.schemes import DeepJSCCScheme

    out_path = Path(out_path)
    data = _export_half(Path(run_dir) / "codec.pt", CODEC_FORMAT, out_path)
    codec = load_codec(out_path)
    train = data.get("train_config", {})
    size = tuple(train.get("data", {}).get("size", (64, 128)))
    scheme = DeepJSCCScheme(codec)
    results = {c: evaluate(scheme, CARD_SNRS_DB, c, num_images, size) for c in ("awgn",
                                                                              "rayleigh")}
    cfg = codec.config
    params = sum(p.numel() for p in codec.parameters())
    lines = [
        f"# Model card: {out_path.name}",
        "",
        "Deep-JSCC codec (Bourtsoulatze et al. 2019 layout: 5x5 convolutions, stride-2 "
        "downsampling, GDN + PReLU; mirrored decoder with LMMSE input and an SNR plane), "
        "trained end to end with the channel in the loop.",
        "",
        "| item | value |",
        "|---|---|",
        f"| training command | `python simulate.py train jscc --config {config_path}` |",
        f"| export command | `python -m semantic.jscc.export codec {run_dir} {out_path} "
        f"--config {config_path} --images {num_images}` |",
        f"| data | synthetic street scenes, train split (first {train.get('data', {}).get('pool_size')}"
        f" scenes, h-flips), {size[0]}x{size[1]}, data seed {train.get('data', {}).get('seed', 0)} |",
        f"| bandwidth | {cfg.channel_uses_per_pixel:g} complex channel uses per pixel "
        f"({cfg.channel_uses((size[0], size[1]))} per image; Bourtsoulatze k/n = "
        f"{cfg.channel_uses_per_pixel / 3:.4g}); latent {cfg.latent_channels} x "
        f"{size[0] // cfg.size_multiple} x {size[1] // cfg.size_multiple} |",
        f"| training channel | {train.get('channel')} (AWGN / Rayleigh block fading, perfect CSI), "
        f"SNR uniform in {train.get('snr_range_db')} dB per example |",
        f"| optimiser steps | {data.get('step')} of {train.get('num_steps')} planned "
        f"(batch {train.get('batch_size')}, Adam lr {train.get('learning_rate')}, MSE loss) |",
        f"| parameters | {params:,} (stored float16) |",
        f"| file size | {out_path.stat().st_size:,} bytes |",
        f"| sha256 | `{sha256_of(out_path)}` |",
        "",
        f"## Measured on this file ({num_images} validation scenes, `PhyLink.analog`, block "
        "fading = one coefficient per image)",
        "",
        *_table(results),
        "",
    ]
    out_path.with_suffix(".md").write_text("\n".join(lines))
    return out_path


def export_refiner(run_dir: str | os.PathLike, out_path: str | os.PathLike, config_path: str,
                   codec_path: str, num_images: int = 8, steps: int = 20) -> Path:
    """Write the float16 refiner (receiver EMA export) and its card with PSNR of deepjscc vs
    diffjscc measured on the written file."""
    from semantic.diffusion.flops import estimate_macs
    from semantic.diffusion.training import EMA_EXPORT_FORMAT
    from semantic.diffusion.unet import UNetConfig
    from semantic.jscc.model import load_codec
    from semantic.jscc.refiner import load_refiner
    from semantic.jscc.schemes import DeepJSCCScheme, DiffJSCCScheme

    out_path = Path(out_path)
    data = _export_half(Path(run_dir) / "receiver_ema.pt", EMA_EXPORT_FORMAT, out_path)
    train = data["train_config"]
    info = train["data"]
    if info.get("codec_sha256") != sha256_of(codec_path):
        raise ValueError(f"{codec_path} is not the codec the refiner was trained with")
    codec = load_codec(codec_path)
    refiner, _ = load_refiner(out_path, steps=steps)
    size = tuple(info.get("size", (64, 128)))
    snrs = (0.0, 10.0, 20.0)
    results = {}
    for label, scheme in (("deepjscc", DeepJSCCScheme(codec)),
                          ("diffjscc", DiffJSCCScheme(codec, refiner)),
                          ("diffjscc_oracle_start (ORACLE)",
                           DiffJSCCScheme(codec, refiner, oracle_start=True))):
        results[label] = evaluate(scheme, snrs, "awgn", num_images, size)
    cfg = UNetConfig.from_dict(data["unet_config"])
    params = sum(v.numel() for v in data["state_dict"].values())
    macs = estimate_macs(cfg, *size, use_cache=True).total
    lines = [
        f"# Model card: {out_path.name}",
        "",
        "diffjscc refiner: SDM UNet (super-resolution variant: sees the deep-JSCC decoder's "
        "image) with SPADE conditioned on the upsampled LMMSE-scaled received latent + an SNR "
        "plane; predicts the noise of a diffusion over the scaled residual "
        f"{info.get('residual_scale')} x (x - x_jscc); sampling starts from Gaussian noise.",
        "",
        "| item | value |",
        "|---|---|",
        f"| training command | `python simulate.py train jscc --config {config_path}` |",
        f"| export command | `python -m semantic.jscc.export refiner {run_dir} {out_path} "
        f"--config {config_path} --codec {codec_path} --images {num_images}` |",
        f"| codec | `{codec_path}` (sha256 `{info.get('codec_sha256')}`), frozen |",
        f"| data | synthetic street scenes, train split (first {info.get('pool_size')} scenes, "
        f"h-flips), {size[0]}x{size[1]}; channel {info.get('channel')}, SNR uniform in "
        f"{info.get('snr_range_db')} dB |",
        f"| optimiser steps | {data.get('step')} of {train.get('num_steps')} planned "
        f"(batch {train.get('batch_size')}, lr {train.get('learning_rate')}, loss "
        f"{train.get('loss')}, EMA {train.get('ema_rate')}) |",
        f"| parameters | {params:,} (stored float16) |",
        f"| MACs per image | {macs / 1e9:.3f} G per sampling step (SPADE cache) |",
        f"| file size | {out_path.stat().st_size:,} bytes |",
        f"| sha256 | `{sha256_of(out_path)}` |",
        "",
        f"## Measured on this file ({num_images} validation scenes, AWGN via `PhyLink.analog`, "
        f"DDIM {steps} steps)",
        "",
        *_table(results),
        "",
        "The oracle column starts the chain from the DDIM inversion of the original image's "
        "residual (needs the original at the receiver); it is not a realisable receiver.",
        "",
    ]
    out_path.with_suffix(".md").write_text("\n".join(lines))
    return out_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("codec", "refiner"))
    parser.add_argument("run_dir")
    parser.add_argument("out")
    parser.add_argument("--config", required=True)
    parser.add_argument("--codec", default=None, help="refiner: the shipped codec it was trained on")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20, help="refiner: DDIM steps for the card")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "codec":
        print(export_codec(args.run_dir, args.out, args.config, args.images or 32))
    else:
        if not args.codec:
            parser.error("refiner export needs --codec")
        print(export_refiner(args.run_dir, args.out, args.config, args.codec, args.images or 8,
                             args.steps))


if __name__ == "__main__":
    main()
