"""Ship a trained receiver: EMA weights (float16) + its configs + a model card with sha256.

    python -m semantic.diffusion.export RUN_DIR OUT.pt --config TRAIN.yaml

reads ``RUN_DIR/receiver_ema.pt`` (written by ``simulate.py train receiver``), stores the EMA
state dict in float16 (the receiver casts back to float32 on load) with the UNet and training
configs, and writes ``OUT.md`` beside it: training command, data, steps, parameters, MACs per
image, file size and sha256. Metrics measured on the shipped file are appended by the caller
(``--metrics JSON``) so that a card never states a number that was not measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from semantic.diffusion.training import EMA_EXPORT_FORMAT


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_receiver(run_dir: str | os.PathLike, out_path: str | os.PathLike, config_path: str,
                    metrics: dict[str, Any] | None = None) -> Path:
    """Write the shipped receiver and its model card; returns the weights path."""
    from semantic.diffusion.flops import estimate_macs
    from semantic.diffusion.unet import UNetConfig

    data = torch.load(Path(run_dir) / "receiver_ema.pt", map_location="cpu", weights_only=True)
    if data.get("format") != EMA_EXPORT_FORMAT:
        raise ValueError(f"{run_dir}: no receiver EMA export")
    out_path = Path(out_path)
    # Runs started before UNetConfig lost its informational "notes" field still carry it.
    known = {f.name for f in dataclasses.fields(UNetConfig)}
    unet_config = {k: v for k, v in data["unet_config"].items() if k in known}
    payload = {**data, "unet_config": unet_config,
               "state_dict": {k: v.half() if v.is_floating_point() else v
                              for k, v in data["state_dict"].items()}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(payload, tmp)
    os.replace(tmp, out_path)
    cfg = UNetConfig.from_dict(unet_config)
    train = data.get("train_config", {})
    size = tuple(train.get("data", {}).get("size", (64, 128)))
    params = sum(v.numel() for v in data["state_dict"].values())
    macs_full = estimate_macs(cfg, *size, use_cache=False)
    macs_cached = estimate_macs(cfg, *size, use_cache=True)
    lines = [
        f"# Model card: {out_path.name}",
        "",
        "Conditional diffusion receiver (SDM-style UNet with SPADE decoder normalisation), "
        + ("map + 2x-downscaled coarse image (SPIC family)." if cfg.super_res
           else "map-only (GESCO family)."),
        "",
        "| item | value |",
        "|---|---|",
        f"| training command | `python simulate.py train receiver --config {config_path}` |",
        f"| export command | `python -m semantic.diffusion.export {run_dir} {out_path} "
        f"--config {config_path}` |",
        f"| data | synthetic street scenes (semantic/data/synthetic.py), train split, "
        f"{size[0]}x{size[1]}, data seed {train.get('data', {}).get('seed', 0)} |",
        f"| optimiser steps | {data.get('step')} of {train.get('num_steps')} planned "
        f"(batch {train.get('batch_size')}) |",
        f"| loss | {train.get('loss')}, label dropout {train.get('drop_rate')}, "
        f"EMA {train.get('ema_rate')} |",
        f"| parameters | {params:,} (stored float16) |",
        f"| MACs per image | {macs_full.total / 1e9:.2f} G full forward, "
        f"{macs_cached.total / 1e9:.2f} G per sampling step with the SPADE cache |",
        f"| file size | {out_path.stat().st_size:,} bytes |",
        f"| sha256 | `{sha256_of(out_path)}` |",
    ]
    if metrics:
        lines += ["", "## Measured", "", "```", json.dumps(metrics, indent=2), "```"]
    out_path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return out_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out")
    parser.add_argument("--config", required=True)
    parser.add_argument("--metrics", default=None, help="JSON file with measured metrics")
    args = parser.parse_args()
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    print(export_receiver(args.run_dir, args.out, args.config, metrics))


if __name__ == "__main__":
    main()
