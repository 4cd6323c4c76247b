"""Saving, loading and running segmenters: our checkpoints or a user's TorchScript model.

``load_segmenter(path)`` accepts

* a weights file written by ``train_segmenter`` (``torch.load(weights_only=True)``: a dict with
  ``config`` and ``state_dict``), or one of its training checkpoints (``model_config`` and
  ``model``);
* a TorchScript archive (``torch.jit.save``) of any segmentation network that takes float
  images [B, 3, H, W] in [0, 1] and returns logits [B, C, H, W]; it is wrapped so that a wrong
  output shape raises a clear error.

Example:
    >>> import tempfile, torch
    >>> from semantic.segmenter.model import Segmenter
    >>> path = tempfile.mkdtemp() + "/seg.pt"
    >>> save_weights(Segmenter(), path)
    >>> net = load_segmenter(path)
    >>> predict_labels(net, torch.zeros(1, 32, 64, 3, dtype=torch.uint8)).shape
    torch.Size([1, 32, 64])
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semantic.segmenter.model import Segmenter, SegmenterConfig

__all__ = [
    "WEIGHTS_FORMAT",
    "TorchScriptSegmenter",
    "atomic_torch_save",
    "is_torchscript_archive",
    "load_segmenter",
    "predict_labels",
    "save_weights",
]

WEIGHTS_FORMAT = "semlink-segmenter/1"


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        # Through a file object: given a path, torch.save names the archive's inner folder
        # after the (random) temporary file, and equal objects would give different bytes.
        with open(tmp_name, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def save_weights(
    model: Segmenter,
    path: str | os.PathLike[str],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a weights file: ``{"format", "config", "state_dict", **extra}`` (atomically)."""
    payload: dict[str, Any] = {
        "format": WEIGHTS_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    payload.update(extra or {})
    atomic_torch_save(payload, path)


def is_torchscript_archive(path: str | os.PathLike[str]) -> bool:
    """True for a ``torch.jit.save`` archive (it holds compiled ``code/``), False otherwise."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


class TorchScriptSegmenter(nn.Module):
    """Wraps a user's TorchScript network: float [B, 3, H, W] in [0, 1] -> logits [B, C, H, W]."""

    def __init__(self, module: torch.jit.ScriptModule):
        super().__init__()
        self.module = module
        self.num_classes: int | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.module(images)
        if (
            not isinstance(logits, torch.Tensor)
            or logits.ndim != 4
            or logits.shape[0] != images.shape[0]
            or logits.shape[-2:] != images.shape[-2:]
        ):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
            raise ValueError(
                "a TorchScript segmenter must return logits [B, C, H, W] for images "
                f"{tuple(images.shape)}, got {shape}"
            )
        return logits


def load_segmenter(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """Load a segmenter (eval mode) from our weights/checkpoint file or a TorchScript archive.

    Args:
        path: file to load (see the module docstring for what is accepted).
        device: torch device to place it on.

    Returns:
        nn.Module mapping float [B, 3, H, W] in [0, 1] to logits [B, C, H, W].
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no segmenter file at {path}")
    device = torch.device(device)
    if is_torchscript_archive(path):
        return TorchScriptSegmenter(torch.jit.load(str(path), map_location=device)).eval()
    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is neither a segmenter weights file nor a TorchScript archive")
    if "state_dict" in payload and "config" in payload:
        config, state = payload["config"], payload["state_dict"]
    elif "model" in payload and "model_config" in payload:
        config, state = payload["model_config"], payload["model"]
    else:
        raise ValueError(
            f"{path} holds no segmenter (expected keys config+state_dict or model_config+model)"
        )
    model = Segmenter(SegmenterConfig.from_dict(config))
    model.load_state_dict(state)
    return model.to(device).eval()


def _as_unit_float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"uint8 images must be [B, H, W, 3], got {tuple(images.shape)}")
        return images.permute(0, 3, 1, 2).float() / 255.0
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"float images must be [B, 3, H, W], got {tuple(images.shape)}")
    return images.float()


def predict_labels(model: nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Arg-max labels of a segmenter.

    Args:
        model: a segmenter (from :func:`load_segmenter` or :class:`Segmenter`).
        images: uint8 [B, H, W, 3] or float [B, 3, H, W] in [0, 1].
        batch_size: images per forward pass.

    Returns:
        int64 [B, H, W] class ids, on the CPU.
    """
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                batch = _as_unit_float(images[start : start + batch_size]).to(device)
                out.append(model(batch).argmax(dim=1).cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.zeros(0, *images.shape[1:3], dtype=torch.int64)
    return torch.cat(out)


def make_scorer(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", batch_size: int = 16
) -> Callable[[np.ndarray], torch.Tensor]:
    """The mIoU scorer: ``scorer(images) -> labels``, the one every measured mIoU goes through.

    Images whose size differs from the segmenter's training size (``config.train_size``;
    128x256 for the shipped one and for TorchScript models) are upsampled bilinearly to it,
    and the logits are resized back, so the score is taken at the images' own resolution.

    Args:
        path: segmenter weights or TorchScript archive (see :func:`load_segmenter`).
        device: where the segmenter runs.
        batch_size: images per forward pass.

    Returns:
        ``scorer(images: uint8 [B, H, W, 3]) -> int64 [B, H, W]`` (CPU).
    """
    import torch.nn.functional as F

    model = load_segmenter(path, device)
    train_hw = tuple(getattr(getattr(model, "config", None), "train_size", None) or (128, 256))

    @torch.inference_mode()
    def scorer(images: np.ndarray) -> torch.Tensor:
        out = []
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
            x = x.permute(0, 3, 1, 2).float() / 255.0
            hw = tuple(x.shape[-2:])
            if hw != train_hw:
                x = F.interpolate(x, size=train_hw, mode="bilinear", align_corners=False)
            logits = model(x.to(device)).float()
            if tuple(logits.shape[-2:]) != hw:
                logits = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)
            out.append(logits.argmax(1).cpu())
        if not out:
            return torch.zeros(0, *images.shape[1:3], dtype=torch.int64)
        return torch.cat(out)

    return scorer
