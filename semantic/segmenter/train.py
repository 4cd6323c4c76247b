"""Training of the segmenter on the synthetic street scenes, with resumable checkpoints.

Data: ``SyntheticStreetScenes(size, seed)``; training images come from the first
``train_pool_size`` indices of the train split (generated on first use and kept in memory,
so each scene is rendered once), validation images are the first ``val_images`` indices of
the val split. Each step draws ``batch_size`` pool indices with a seeded torch.Generator and
augments them (random scale in [0.75, 1.5] + random crop back to ``size``, horizontal flip,
brightness/contrast/saturation jitter). Loss: cross-entropy with ignore index 255.
Optimiser: AdamW with linear warm-up and cosine decay to zero.

All randomness after initialisation (pool sampling, augmentation) comes from one seeded
``torch.Generator``; the global RNGs are not used. A checkpoint (model, optimiser, step,
generator state, configs, history) is saved atomically every ``checkpoint_every`` steps to
``<out_path stem>.ckpt.pt`` next to ``out_path``; ``resume=True`` continues from it and reproduces the uninterrupted run. At the
end the weights go to ``out_path`` and a model card to ``out_path`` with suffix ``.md``.

Example (a smoke run; real training uses 128x256 and thousands of steps):
    >>> import tempfile
    >>> result = train_segmenter(
    ...     tempfile.mkdtemp() + "/seg.pt", steps=1, batch_size=2, size=(32, 64),
    ...     val_images=2, train_pool_size=4, log_every=0, log=lambda line: None)
    >>> result.steps, 0.0 <= result.val_miou <= 1.0
    (1, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from semantic.data.labels import IGNORE_INDEX, NUM_TRAIN_CLASSES, TRAIN_CLASS_NAMES
from semantic.data.synthetic import TRAIN_RANGE, VAL_RANGE, SyntheticStreetScenes
from semantic.metrics.miou import ConfusionMatrix
from semantic.segmenter.io import atomic_torch_save, save_weights
from semantic.segmenter.model import Segmenter, SegmenterConfig

__all__ = ["TrainConfig", "TrainResult", "checkpoint_path", "train_segmenter"]

CHECKPOINT_FORMAT = "semlink-segmenter-checkpoint/1"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (stored in checkpoints and the model card)."""

    steps: int = 3000
    batch_size: int = 16
    size: tuple[int, int] = (128, 256)
    seed: int = 0
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    train_pool_size: int = 4000
    val_images: int = 200
    eval_every: int = 500
    checkpoint_every: int = 100
    scale_range: tuple[float, float] = (0.75, 1.5)
    jitter: float = 0.25
    class_weighting: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_segmenter`.

    Attributes:
        weights_path, card_path, checkpoint_path: files written.
        steps: optimiser steps done in total.
        val_miou, val_pixel_accuracy: final validation metrics.
        per_class_iou: final validation IoU per class (NaN where the class is absent).
        seconds_per_step: mean wall time of the training steps run in this call.
        params: number of parameters.
        sha256: SHA-256 of the weights file.
        history: logged records (step, loss, lr, and val_miou at evaluations).
    """

    weights_path: Path
    card_path: Path
    checkpoint_path: Path
    steps: int
    val_miou: float
    val_pixel_accuracy: float
    per_class_iou: list[float]
    seconds_per_step: float
    params: int
    sha256: str
    history: list[dict[str, float]] = field(default_factory=list)


def checkpoint_path(out_path: str | os.PathLike[str]) -> Path:
    """Where the training checkpoint of ``out_path`` lives: ``<stem>.ckpt.pt`` beside it."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".ckpt.pt")


class _ScenePool:
    """Scenes of fixed indices, rendered on first use and kept as uint8 arrays."""

    def __init__(self, data: SyntheticStreetScenes, indices: range):
        h, w = data.size
        self.data = data
        self.indices = indices
        self.images = np.zeros((len(indices), h, w, 3), np.uint8)
        self.labels = np.zeros((len(indices), h, w), np.uint8)
        self.ready = np.zeros(len(indices), bool)

    def get(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(images uint8 [B, H, W, 3], labels uint8 [B, H, W]) of pool positions."""
        missing = np.unique(positions[~self.ready[positions]])
        if missing.size:
            batch = self.data.batch([self.indices[i] for i in missing])
            self.images[missing] = batch.images
            self.labels[missing] = batch.labels
            self.ready[missing] = True
        return torch.from_numpy(self.images[positions]), torch.from_numpy(self.labels[positions])


def _augment(
    images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale-crop, flip and colour jitter: uint8 [B,H,W,3], [B,H,W] -> float [B,3,H,W], int64."""
    batch, height, width = labels.shape
    x = images.permute(0, 3, 1, 2).float() / 255.0
    y = labels.long()
    # Random scale (one per batch) then a random crop per image back to (height, width);
    # a scale below 1 pads with black pixels labelled ignore.
    lo, hi = cfg.scale_range
    scale = lo + (hi - lo) * float(torch.rand((), generator=gen))
    new_h, new_w = max(round(height * scale), 1), max(round(width * scale), 1)
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    y = F.interpolate(y[:, None].float(), size=(new_h, new_w), mode="nearest")[:, 0].long()
    pad_h, pad_w = max(height - new_h, 0), max(width - new_w, 0)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
        y = F.pad(y, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
    top = torch.randint(0, x.shape[-2] - height + 1, (batch,), generator=gen)
    left = torch.randint(0, x.shape[-1] - width + 1, (batch,), generator=gen)
    rows = (top[:, None] + torch.arange(height))[:, :, None]  # [B, H, 1]
    cols = (left[:, None] + torch.arange(width))[:, None, :]  # [B, 1, W]
    b_idx = torch.arange(batch)[:, None, None]
    x = x.permute(0, 2, 3, 1)[b_idx, rows, cols].permute(0, 3, 1, 2)
    y = y[b_idx, rows, cols]
    # Horizontal flip per image.
    flip = torch.rand(batch, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    y = torch.where(flip.view(-1, 1, 1), y.flip(-1), y)
    # Brightness, contrast and saturation factors in [1 - jitter, 1 + jitter] per image.
    factors = 1.0 + cfg.jitter * (2.0 * torch.rand(3, batch, 1, 1, 1, generator=gen) - 1.0)
    brightness, contrast, saturation = factors
    x = x * brightness
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0.0, 1.0)
    x = grey.mean(dim=(2, 3), keepdim=True) + (x - grey.mean(dim=(2, 3), keepdim=True)) * contrast
    grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    x = grey + (x - grey) * saturation
    return x.clamp(0.0, 1.0).contiguous(), y.contiguous()


PRECISIONS = ("fp32", "bf16")
CLASS_WEIGHTINGS = ("none", "enet")
_CLASS_WEIGHT_SAMPLE = 200


def _class_weights(pool: _ScenePool, cfg: TrainConfig, num_classes: int) -> torch.Tensor | None:
    """Loss weights per class, or None for plain cross-entropy.

    ``"enet"``: ``w_c = 1 / ln(1.02 + p_c)`` with ``p_c`` the class frequency among the valid
    pixels of the first 200 pool scenes (Paszke et al., "ENet", 2016, sec. 5.2); weights lie
    in [1/ln(2.02), 1/ln(1.02)] ~ [1.4, 50.5].
    """
    if cfg.class_weighting == "none":
        return None
    if cfg.class_weighting != "enet":
        raise ValueError(
            f"unknown class_weighting {cfg.class_weighting!r}; valid: {', '.join(CLASS_WEIGHTINGS)}"
        )
    _, labels = pool.get(np.arange(min(len(pool.indices), _CLASS_WEIGHT_SAMPLE)))
    labels = labels.reshape(-1).long()
    counts = torch.bincount(labels[labels != IGNORE_INDEX], minlength=num_classes)[:num_classes]
    freq = counts.double() / max(int(counts.sum()), 1)
    return (1.0 / torch.log(1.02 + freq)).float()


def _learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _evaluate(
    model: Segmenter, pool: _ScenePool, device: torch.device, batch_size: int
) -> ConfusionMatrix:
    cm = ConfusionMatrix(model.num_classes, IGNORE_INDEX)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(pool.indices), batch_size):
            positions = np.arange(start, min(start + batch_size, len(pool.indices)))
            images, labels = pool.get(positions)
            x = (images.permute(0, 3, 1, 2).float() / 255.0).to(device)
            cm.update(model(x).argmax(1).cpu(), labels.long())
    model.train(was_training)
    return cm


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_card(
    path: Path,
    *,
    command: str,
    cfg: TrainConfig,
    model_cfg: SegmenterConfig,
    cm: ConfusionMatrix,
    weights_path: Path,
    sha256: str,
    params: int,
    seconds_per_step: float,
    device: torch.device,
    steps_done: int,
    precision: str = "fp32",
) -> None:
    iou = cm.per_class_iou().tolist()
    rows = "\n".join(
        f"| {i} | {name} | {'n/a' if math.isnan(v) else f'{v:.3f}'} |"
        for i, (name, v) in enumerate(zip(TRAIN_CLASS_NAMES, iou))
    )
    status = "" if steps_done >= cfg.steps else " (an unfinished run's snapshot; resume to finish)"
    speed = "n/a" if math.isnan(seconds_per_step) else f"{seconds_per_step:.2f}"
    text = f"""# Segmenter model card

Compact encoder-decoder (`semantic.segmenter.Segmenter`) that scores mIoU of reconstructed
images in the semantic-link simulator. Trained from scratch (no pretrained weights).

- Training command: `{command}`
- Data: `SyntheticStreetScenes(size={tuple(cfg.size)}, seed={cfg.seed})`; train images = the
  first {cfg.train_pool_size} indices of the train split ({TRAIN_RANGE.start}..), validation =
  the first {cfg.val_images} indices of the val split ({VAL_RANGE.start}..).
- Steps: {steps_done} of {cfg.steps} planned{status}, batch size {cfg.batch_size}, AdamW lr {cfg.lr} (warm-up {cfg.warmup_steps},
  cosine), weight decay {cfg.weight_decay}; augmentation: scale {tuple(cfg.scale_range)} +
  crop, flip, colour jitter ±{cfg.jitter}; loss: cross-entropy (class weighting
  `{cfg.class_weighting}`), ignore index {IGNORE_INDEX}.
- Architecture: `{model_cfg.to_dict()}`; parameters: {params:,}.
- Device: {device.type} ({platform.machine()}, {torch.get_num_threads()} threads), torch
  {torch.__version__}, precision {precision}; {speed} s per step (the last call).
- Weights: `{weights_path.name}`, {weights_path.stat().st_size:,} bytes,
  sha256 `{sha256}`.

## Validation metrics ({cfg.val_images} synthetic val images, {cfg.size[0]}x{cfg.size[1]})

- mIoU (mean over classes with non-empty union): **{cm.miou():.4f}**
- Pixel accuracy: {cm.pixel_accuracy():.4f}

| trainId | class | IoU |
|---:|---|---:|
{rows}

## Limits

Trained and validated on synthetic scenes only; its mIoU on real Cityscapes images is not
measured and will be much lower. Use it to compare reconstructions with each other, not as
an absolute segmentation benchmark.
"""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def train_segmenter(
    out_path: str | os.PathLike[str],
    steps: int = 3000,
    batch_size: int = 16,
    size: tuple[int, int] = (128, 256),
    seed: int = 0,
    lr: float = 3e-3,
    log_every: int = 50,
    resume: bool = False,
    device: str | torch.device = "cpu",
    *,
    weight_decay: float = 1e-4,
    warmup_steps: int = 100,
    train_pool_size: int = 4000,
    val_images: int = 200,
    eval_every: int = 500,
    checkpoint_every: int = 100,
    class_weighting: str = "none",
    model_config: SegmenterConfig | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
    max_minutes: float | None = None,
    precision: str = "fp32",
) -> TrainResult:
    """Train a :class:`Segmenter` on synthetic street scenes; write weights and a model card.

    Args:
        out_path: weights file to write (``.pt``); the model card goes to ``.md`` beside it
            and the checkpoint to ``<stem>.ckpt.pt``.
        steps: total optimiser steps.
        batch_size: images per step.
        size: (H, W) of the training and validation scenes (multiples of 32).
        seed: seed of the data set, the initial weights and the sampling/augmentation.
        lr: peak learning rate.
        log_every: log a line every this many steps (0: never).
        resume: continue from the checkpoint if one exists (its configuration must match).
        device: torch device.
        weight_decay, warmup_steps, train_pool_size, val_images, eval_every,
            checkpoint_every: see :class:`TrainConfig`.
        class_weighting: ``"none"`` (plain cross-entropy) or ``"enet"`` (``1 / ln(1.02 + p_c)``
            class weights from the training pool's label frequencies).
        model_config: network structure (default :class:`SegmenterConfig`).
        checkpoint: checkpoint file (default ``checkpoint_path(out_path)``, beside the weights).
        command: the command line recorded in the model card (default: this call).
        log: sink for progress lines.
        max_minutes: wall-clock budget of this call (None: unlimited). When it is spent the
            loop stops before the next step, checkpoints, evaluates and writes the weights and
            card of the snapshot (the card says how many of the planned steps were done);
            rerun with ``resume=True`` to continue. ``0`` exports the checkpoint as it is.
        precision: ``"fp32"`` or ``"bf16"`` (forward and loss under bf16 autocast; weights
            and optimiser stay float32; ~1.8x faster on CPUs with AVX512-BF16/AMX). It steers
            the run, not its definition, so it may change when a run resumes; the card says
            which precision the last call used.

    Returns:
        TrainResult with the final validation metrics and the files written.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if class_weighting not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"unknown class_weighting {class_weighting!r}; valid: {', '.join(CLASS_WEIGHTINGS)}"
        )
    cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        size=(int(size[0]), int(size[1])),
        seed=seed,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        train_pool_size=train_pool_size,
        val_images=val_images,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        class_weighting=class_weighting,
    )
    model_cfg = model_config or SegmenterConfig(num_classes=NUM_TRAIN_CLASSES)
    device = torch.device(device)
    out_path = Path(out_path)
    ckpt_path = Path(checkpoint) if checkpoint is not None else checkpoint_path(out_path)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Segmenter(model_cfg)
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    history: list[dict[str, float]] = []

    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{ckpt_path} is not a segmenter training checkpoint")
        # Fields added after a checkpoint was written take their defaults (older runs resume).
        saved_train = {**TrainConfig().to_dict(), **state["train_config"]}
        saved_model = SegmenterConfig.from_dict(state["model_config"]).to_dict()
        if saved_train != cfg.to_dict() or saved_model != model_cfg.to_dict():
            raise ValueError(
                f"checkpoint {ckpt_path} was made with a different configuration: "
                f"{state['train_config']} / {state['model_config']}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        step = int(state["step"])
        history = list(state["history"])
        log(f"resumed from {ckpt_path} at step {step}")

    def save_checkpoint() -> None:
        atomic_torch_save(
            {
                "format": CHECKPOINT_FORMAT,
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": gen.get_state(),
                "train_config": cfg.to_dict(),
                "model_config": model_cfg.to_dict(),
                "history": history,
            },
            ckpt_path,
        )

    data = SyntheticStreetScenes(size=cfg.size, seed=seed)
    train_pool = _ScenePool(data, TRAIN_RANGE[: cfg.train_pool_size])
    val_pool = _ScenePool(data, VAL_RANGE[: cfg.val_images])
    weights = _class_weights(train_pool, cfg, model_cfg.num_classes)
    if weights is not None:
        weights = weights.to(device)

    model.train()
    run_start, steps_run, loss_sum, loss_count = time.perf_counter(), 0, 0.0, 0
    budget_s = None if max_minutes is None else 60.0 * max_minutes
    while step < cfg.steps:
        if budget_s is not None and time.perf_counter() - run_start >= budget_s:
            log(f"time budget of {max_minutes} min spent at step {step}/{cfg.steps}")
            break
        positions = torch.randint(0, cfg.train_pool_size, (cfg.batch_size,), generator=gen)
        images, labels = train_pool.get(positions.numpy())
        x, y = _augment(images, labels, cfg, gen)
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        y = y.to(device)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, cfg)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, weight=weights, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        steps_run += 1
        loss_sum += float(loss.detach())
        loss_count += 1
        if log_every and step % log_every == 0:
            elapsed = time.perf_counter() - run_start
            record = {
                "step": step,
                "loss": loss_sum / loss_count,
                "lr": _learning_rate(step - 1, cfg),
            }
            history.append(record)
            log(
                f"step {step}/{cfg.steps} loss {record['loss']:.4f} lr {record['lr']:.2e} "
                f"{elapsed / steps_run:.2f} s/step"
            )
            loss_sum, loss_count = 0.0, 0
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            cm = _evaluate(model, val_pool, device, cfg.batch_size)
            history.append({"step": step, "val_miou": cm.miou()})
            log(f"step {step}: val mIoU {cm.miou():.4f}, pixel accuracy {cm.pixel_accuracy():.4f}")
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            save_checkpoint()
    seconds_per_step = (time.perf_counter() - run_start) / steps_run if steps_run else math.nan
    if steps_run and not (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
        save_checkpoint()

    cm = _evaluate(model, val_pool, device, cfg.batch_size)
    history.append({"step": step, "val_miou": cm.miou()})
    log(f"final: val mIoU {cm.miou():.4f}, pixel accuracy {cm.pixel_accuracy():.4f}")
    model = model.to(memory_format=torch.contiguous_format)
    metrics = {
        "val_miou": cm.miou(),
        "val_pixel_accuracy": cm.pixel_accuracy(),
        "per_class_iou": cm.per_class_iou().tolist(),
    }
    save_weights(model, out_path, {"train_config": cfg.to_dict(), "metrics": metrics})
    sha256 = _sha256(out_path)
    params = sum(p.numel() for p in model.parameters())
    if command is None:
        command = (
            f"train_segmenter({str(out_path)!r}, steps={steps}, batch_size={batch_size}, "
            f"size={tuple(cfg.size)}, seed={seed}, lr={lr}, device={str(device)!r})"
        )
    card_path = out_path.with_suffix(".md")
    _write_card(
        card_path,
        command=command,
        cfg=cfg,
        model_cfg=model_cfg,
        cm=cm,
        weights_path=out_path,
        sha256=sha256,
        params=params,
        seconds_per_step=seconds_per_step,
        device=device,
        steps_done=step,
        precision=precision,
    )
    return TrainResult(
        weights_path=out_path,
        card_path=card_path,
        checkpoint_path=ckpt_path,
        steps=step,
        val_miou=metrics["val_miou"],
        val_pixel_accuracy=metrics["val_pixel_accuracy"],
        per_class_iou=metrics["per_class_iou"],
        seconds_per_step=seconds_per_step,
        params=params,
        sha256=sha256,
        history=history,
    )
