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
from pathlib import Path
from typing import Any

import torch

from semantic.diffusion.training import EMA_EXPORT_FORMAT
from semantic.segmenter.io import atomic_torch_save


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_receiver(run_dir: str | os.PathLike, out_path: str | os.PathLike, config_path: str,
                    metrics: dict[str, Any] | list[dict[str, Any]] | None = None,
                    notes: str | None = None) -> Path:
    """Write the shipped receiver and its model card; returns the weights path.

    Args:
        run_dir: a training run folder (``receiver_ema.pt``; ``train_state.pt`` when present
            gives the training compute).
        out_path: the shipped weights file; the card is written beside it (``.md``).
        config_path: the training YAML (quoted in the card's commands).
        metrics: ``eval receiver --json`` output (or a list of them, e.g. one per sampler)
            measured on ``out_path`` itself (each sha256 must match the new export), rendered
            as the card's quality tables.
        notes: free text for the card's "Status" section (what the numbers mean, what is left).
    """
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
    atomic_torch_save(payload, out_path)  # byte-stable: the same EMA gives the same sha256
    digest = sha256_of(out_path)
    results = [metrics] if isinstance(metrics, dict) else list(metrics or [])
    for result in results:
        if result.get("sha256") not in (None, digest):
            raise ValueError(f"the metrics were measured on a file with sha256 "
                             f"{result['sha256']}, not on this export ({digest}): re-measure "
                             "the shipped file")
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
        f"| sha256 | `{digest}` |",
    ]
    state_path = Path(run_dir) / "train_state.pt"
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if int(state.get("step", -1)) == int(data.get("step", -2)):
            lines.insert(lines.index(next(x for x in lines if x.startswith("| loss |"))),
                         f"| training compute | {float(state['wall_s']) / 3600:.2f} h wall in "
                         f"all (device `{train.get('device')}`, precision "
                         f"`{train.get('precision')}` of the latest chunk) |")
    if notes:
        lines += ["", "## Status", "", notes.strip()]
    for result in results:
        if "regenerated" in result:
            lines += ["", *quality_table(result)]
        else:
            lines += ["", "## Measured", "", "```", json.dumps(result, indent=2), "```"]
    out_path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return out_path


def quality_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines of a card's quality section from ``eval receiver --json`` output."""
    c = result["config"]
    rows = [("regenerated", result["regenerated"])]
    if result.get("bicubic"):
        rows.append(("bicubic-upsampled coarse image (baseline)", result["bicubic"]))
    lines = [
        f"## Quality (measured on this file): {c['sampler']}-{c['steps']}, guidance "
        f"{c['guidance_scale']}",
        "",
        f"`python simulate.py eval receiver {result['weights']} --n {c['n']} --steps {c['steps']}"
        f" --sampler {c['sampler']} --guidance {c['guidance_scale']} --seed {c['seed']} --json`:"
        f" the first {c['n']} "
        f"synthetic val scenes, noiseless condition, {c['sampler']}-{c['steps']}, guidance "
        f"{c['guidance_scale']}; mIoU by `{c['segmenter']}`; originals' mIoU "
        f"{result['miou_original']:.3f}. Bar: ratio >= 0.85"
        + ("; FID below the bicubic baseline." if result.get("bicubic") else "."),
        "",
        "| images | mIoU (95% CI) | ratio to originals (95% CI) | FID | KID | PSNR dB | SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['miou']:.3f} ({r['miou_ci_low']:.3f}-{r['miou_ci_high']:.3f}) | "
            f"{r['ratio']:.2f} ({r['ratio_ci_low']:.2f}-{r['ratio_ci_high']:.2f}) | "
            f"{r['fid']:.1f} | {r['kid']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} |")
    if result.get("fid_warning"):
        lines += ["", f"FID caveat: {result['fid_warning']}."]
    return lines


COMPACT_EMA_DTYPE = torch.float16
COMPACT_MOMENT_DTYPE = torch.bfloat16


def compact_train_state(state_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """A resumable training state small enough to commit (about 0.6x the full state).

    The online weights stay float32 (training continues from exactly them); the EMA is stored
    in float16 (what the shipped receiver is anyway) and AdamW's moments in bfloat16 (float32's
    range, so tiny second moments survive). ``train_receiver`` resumes from the result as from
    any state: the EMA is cast back to float32 and ``Optimizer.load_state_dict`` casts the
    moments to the parameters' dtype. The only difference from an uninterrupted run is that
    one rounding of the EMA and of the moments (relative 2^-11 and 2^-8).

    Args:
        state_path: a full ``train_state.pt``.
        out_path: where to write the compact state (atomically).
    Returns:
        ``out_path``.
    """
    from semantic.diffusion.training import TRAIN_STATE_FORMAT

    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(f"{state_path}: not a receiver training state")

    def cast(value: Any, dtype: torch.dtype) -> Any:
        return value.to(dtype) if torch.is_tensor(value) and value.is_floating_point() else value

    optimizer = dict(state["optimizer"])
    optimizer["state"] = {
        index: {key: value if key == "step" else cast(value, COMPACT_MOMENT_DTYPE)
                for key, value in per_param.items()}
        for index, per_param in optimizer["state"].items()
    }
    compact = {**state, "ema": {k: cast(v, COMPACT_EMA_DTYPE) for k, v in state["ema"].items()},
               "optimizer": optimizer,
               "compact": {"ema": str(COMPACT_EMA_DTYPE), "moments": str(COMPACT_MOMENT_DTYPE)}}
    out_path = Path(out_path)
    atomic_torch_save(compact, out_path)
    return out_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out")
    parser.add_argument("--config", required=True)
    parser.add_argument("--metrics", action="append", default=None,
                        help="JSON of `simulate.py eval receiver OUT --json` measured on the "
                             "shipped file (rendered as a quality table; may repeat)")
    parser.add_argument("--state", default=None,
                        help="also write a compact resumable training state here "
                             "(checkpoints/<name>.compact_state.pt)")
    parser.add_argument("--notes", default=None, help="text of the card's Status section")
    args = parser.parse_args()
    metrics = [json.loads(Path(m).read_text()) for m in args.metrics or []]
    print(export_receiver(args.run_dir, args.out, args.config, metrics, args.notes))
    if args.state:
        print(compact_train_state(Path(args.run_dir) / "train_state.pt", args.state))


if __name__ == "__main__":
    main()
