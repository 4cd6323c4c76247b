"""Quality of a trained receiver on held-out scenes with a noiseless condition.

    python simulate.py eval receiver WEIGHTS [--n 100] [--steps 20] [--guidance 1.5]
                                              [--seed 0] [--grid PNG] [--json]

regenerates the first ``n`` synthetic val scenes from their noiseless semantic maps (a SPIC-family
receiver also gets the coarse image exactly as its training data made it: area-downscaled by
``lowres_factor``, through ``lowres_codec`` at ``lowres_qp``) and reports:

- mIoU of the regenerated images and of the originals, both scored by the same segmenter
  against the maps that were sent, and their ratio with a paired bootstrap interval (the
  receiver issue's bar is ratio >= 0.85);
- FID and KID of the regenerated images against the originals (TF-Inception pool3,
  ``pytorch-fid`` protocol), PSNR and SSIM;
- for a SPIC-family receiver, the same metrics for the bicubic-upsampled coarse image (the
  receiver must beat its FID).

The data description (size, data seed, instance edges, coarse-image codec) is read from the
training config stored in the weights file, so a receiver is always scored on the distribution
it was trained for, on the val split it never saw.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["EvalConfig", "ImageSetScores", "ReceiverEvaluation", "evaluate_receiver",
           "format_report", "write_grid"]

DEFAULT_SEGMENTER = "semantic/weights/segmenter.pt"


@dataclass(frozen=True)
class EvalConfig:
    """How a receiver is scored.

    Attributes:
        n: number of val scenes (the first ``n`` of the split).
        steps, sampler, guidance_scale: the sampling procedure.
        seed: seeds the sampling chain (one CPU generator for all images).
        batch_size: images per sampling batch.
        segmenter: the scoring segmenter's file.
        device: ``cpu``, ``cuda`` or ``auto``.
        bootstrap_resamples: resamples of the mIoU intervals.
    """

    n: int = 100
    steps: int = 20
    sampler: str = "ddim"
    guidance_scale: float = 1.5
    seed: int = 0
    batch_size: int = 16
    segmenter: str = DEFAULT_SEGMENTER
    device: str = "cpu"
    bootstrap_resamples: int = 2000

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"n must be >= 2 (FID/KID need two images), got {self.n}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")


@dataclass(frozen=True)
class ImageSetScores:
    """Metrics of one image set against the originals and the sent maps.

    Attributes:
        miou, miou_ci_low, miou_ci_high: segmenter mIoU and its 95 % bootstrap interval.
        ratio, ratio_ci_low, ratio_ci_high: mIoU / mIoU of the originals (paired bootstrap).
        pixel_accuracy: segmenter pixel accuracy.
        fid, kid, kid_std: against the originals (same n).
        psnr, ssim: means over images (PSNR in dB).
        per_class_iou: IoU per trainId (None where the class is absent).
    """

    miou: float
    miou_ci_low: float
    miou_ci_high: float
    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    pixel_accuracy: float
    fid: float
    kid: float
    kid_std: float
    psnr: float
    ssim: float
    per_class_iou: list[float | None]


@dataclass(frozen=True)
class ReceiverEvaluation:
    """Result of :func:`evaluate_receiver` (``to_dict`` is what ``--json`` prints).

    Attributes:
        weights, sha256, family, train_step: which receiver was scored.
        size: (H, W) of the scenes.
        config: the :class:`EvalConfig` as a dict.
        miou_original: segmenter mIoU of the original images.
        regenerated: scores of the receiver's images.
        bicubic: scores of the bicubic-upsampled coarse image (SPIC family), else None.
        fid_protocol, fid_warning: the FID preprocessing and any small-sample caveat.
        wall_s: seconds spent sampling (``sampling_s``) and in all (``wall_s``).
    """

    weights: str
    sha256: str
    family: str
    train_step: int | None
    size: tuple[int, int]
    config: dict[str, Any]
    miou_original: float
    regenerated: ImageSetScores
    bicubic: ImageSetScores | None
    fid_protocol: str
    fid_warning: str | None
    sampling_s: float
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3] (round half up, as PNG export)."""
    x = ((images.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def _score(images: np.ndarray, originals: np.ndarray, labels: torch.Tensor,
           reference_conf: torch.Tensor, scorer: Callable[[np.ndarray], torch.Tensor],
           reference_features: torch.Tensor, inception, config: EvalConfig) -> tuple[
               ImageSetScores, str | None]:
    from semantic.metrics.fid import fid_from_features
    from semantic.metrics.intervals import bootstrap_miou_ci, bootstrap_miou_ratio_ci
    from semantic.metrics.miou import ConfusionMatrix
    from semantic.metrics.pixel import psnr, ssim

    cm = ConfusionMatrix(19, keep_per_image=True)
    cm.update(scorer(images), labels)
    conf = cm.per_image()
    miou_ci = bootstrap_miou_ci(conf, generator=config.seed,
                                n_resamples=config.bootstrap_resamples)
    ratio_ci = bootstrap_miou_ratio_ci(conf, reference_conf, generator=config.seed,
                                       n_resamples=config.bootstrap_resamples)
    features = inception(torch.from_numpy(images))
    fid = fid_from_features(features, reference_features, inception.protocol_name,
                            kid_subset_size=min(1000, len(images)), generator=config.seed)
    a, b = torch.from_numpy(images), torch.from_numpy(originals)
    per_class = [None if np.isnan(v) else float(v) for v in cm.per_class_iou().tolist()]
    scores = ImageSetScores(
        miou=miou_ci.estimate, miou_ci_low=miou_ci.low, miou_ci_high=miou_ci.high,
        ratio=ratio_ci.estimate, ratio_ci_low=ratio_ci.low, ratio_ci_high=ratio_ci.high,
        pixel_accuracy=cm.pixel_accuracy(), fid=fid.fid, kid=fid.kid, kid_std=fid.kid_std,
        psnr=float(psnr(a, b).mean()),
        ssim=float(ssim(a, b).mean()), per_class_iou=per_class)
    return scores, fid.warning


def evaluate_receiver(weights: str | Path, config: EvalConfig = EvalConfig(),
                      grid_path: str | Path | None = None, grid_rows: int = 8
                      ) -> ReceiverEvaluation:
    """Score a shipped receiver (see the module docstring).

    Args:
        weights: a receiver EMA export (``semantic/weights/receiver_*.pt`` or a run's
            ``receiver_ema.pt``).
        config: the scoring procedure.
        grid_path: if given, a PNG of the first ``grid_rows`` scenes: map | original |
            regenerated (| bicubic coarse image for the SPIC family).

    Returns:
        :class:`ReceiverEvaluation`. Deterministic for a given config on the CPU.

    Raises:
        FileNotFoundError: weights or segmenter missing.
        ValueError: the file is not a receiver export or lacks its training config.
    """
    from semantic.data import build_dataset
    from semantic.data.maps import semantic_map
    from semantic.diffusion.receiver import load_receiver
    from semantic.diffusion.train_data import coarse_images, to_model_range
    from semantic.metrics.fid import InceptionFeatures
    from semantic.metrics.miou import ConfusionMatrix
    from semantic.segmenter import make_scorer

    started = time.perf_counter()
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such receiver file")
    if not Path(config.segmenter).is_file():
        raise FileNotFoundError(f"{config.segmenter}: no such segmenter file")
    data = torch.load(weights, map_location="cpu", weights_only=True)
    train = data.get("train_config") if isinstance(data, dict) else None
    if not isinstance(train, dict) or "state_dict" not in data:
        raise ValueError(f"{weights}: not a receiver export with its training config")
    description = train.get("data", {})
    size = tuple(int(s) for s in description.get("size", (64, 128)))
    edges = bool(description.get("instance_edges", True))
    super_res = bool(train.get("super_res", False))
    factor = int(train.get("lowres_factor", 2))
    codec = str(description.get("lowres_codec", "none"))
    qp = int(description.get("lowres_qp", 32))
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    scenes = build_dataset("synthetic", None, "val", num_images=config.n, size=size,
                           seed=int(description.get("seed", 0)))
    batch = scenes.batch(slice(0, config.n))
    originals = np.ascontiguousarray(batch.images)
    labels = torch.from_numpy(np.ascontiguousarray(batch.labels)).long()
    instances = torch.from_numpy(np.ascontiguousarray(batch.instances)) if edges else None
    y = semantic_map(labels, 19, instances)
    coarse = coarse_images(originals, factor, codec, qp) if super_res else None

    receiver = load_receiver(weights, device, sampler=config.sampler, steps=config.steps,
                             guidance_scale=config.guidance_scale, batch_size=config.batch_size)
    if receiver.config.num_label_channels != y.shape[1]:
        raise ValueError(f"{weights}: the UNet takes {receiver.config.num_label_channels} map "
                         f"channels, the data description gives {y.shape[1]}")
    t0 = time.perf_counter()
    regenerated = _to_uint8(receiver.generate(
        y, torch.Generator().manual_seed(config.seed),
        low_res=None if coarse is None else to_model_range(coarse)))
    sampling_s = time.perf_counter() - t0

    scorer = make_scorer(config.segmenter, device)
    reference = ConfusionMatrix(19, keep_per_image=True)
    reference.update(scorer(originals), labels)
    inception = InceptionFeatures(device=device)
    reference_features = inception(torch.from_numpy(originals))
    score = dict(originals=originals, labels=labels, reference_conf=reference.per_image(),
                 scorer=scorer, reference_features=reference_features, inception=inception,
                 config=config)
    regen_scores, warning = _score(regenerated, **score)
    bicubic_scores, bicubic = None, None
    if coarse is not None:
        from semantic.codecs.resample import upscale

        bicubic = np.stack([upscale(img, size) for img in coarse])
        bicubic_scores, _ = _score(bicubic, **score)
    if grid_path is not None:
        columns = [scenes.palette[batch.labels[:grid_rows]], originals[:grid_rows],
                   regenerated[:grid_rows]]
        if bicubic is not None:
            columns.append(bicubic[:grid_rows])
        write_grid(grid_path, columns)
    family = "spic" if super_res else "gesco"
    return ReceiverEvaluation(
        weights=str(weights), sha256=_sha256(weights), family=family,
        train_step=None if data.get("step") is None else int(data["step"]), size=size,
        config=dataclasses.asdict(config), miou_original=reference.miou(),
        regenerated=regen_scores, bicubic=bicubic_scores,
        fid_protocol=inception.protocol_name, fid_warning=warning,
        sampling_s=sampling_s, wall_s=time.perf_counter() - started)


def write_grid(path: str | Path, columns: list[np.ndarray], gap: int = 2) -> Path:
    """Write a PNG with one row per scene and one column per image set.

    Args:
        columns: each uint8 [R, H, W, 3], same R, H, W.
        gap: white pixels between tiles.
    """
    from PIL import Image

    rows, h, w, _ = columns[0].shape
    if any(c.shape != columns[0].shape for c in columns):
        raise ValueError("all grid columns must have the same shape")
    cols = len(columns)
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for r in range(rows):
        for c, images in enumerate(columns):
            grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = images[r]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


def format_report(result: ReceiverEvaluation) -> str:
    """A few human-readable lines for the terminal."""
    r = result.regenerated
    c = result.config
    lines = [
        f"{result.weights} ({result.family} family, step {result.train_step}, "
        f"sha256 {result.sha256[:12]}): {c['n']} val scenes {result.size[0]}x{result.size[1]}, "
        f"{c['sampler']}-{c['steps']}, guidance {c['guidance_scale']}, seed {c['seed']}",
        f"  originals     mIoU {result.miou_original:.3f}",
        f"  regenerated   mIoU {r.miou:.3f} ({r.miou_ci_low:.3f}-{r.miou_ci_high:.3f}), "
        f"ratio {r.ratio:.3f} ({r.ratio_ci_low:.3f}-{r.ratio_ci_high:.3f}) [bar 0.85], "
        f"FID {r.fid:.1f}, KID {r.kid:.4f}±{r.kid_std:.4f}, PSNR {r.psnr:.2f} dB, "
        f"SSIM {r.ssim:.3f}",
    ]
    if result.bicubic is not None:
        b = result.bicubic
        lines.append(
            f"  bicubic coarse mIoU {b.miou:.3f}, ratio {b.ratio:.3f}, FID {b.fid:.1f}, "
            f"KID {b.kid:.4f}, PSNR {b.psnr:.2f} dB, SSIM {b.ssim:.3f} "
            f"[receiver FID must be lower]")
    lines.append(f"  sampling {result.sampling_s:.1f} s, total {result.wall_s:.1f} s "
                 f"(FID protocol {result.fid_protocol})")
    if result.fid_warning:
        lines.append(f"  note: {result.fid_warning}")
    return "\n".join(lines)
