"""Saving and loading :class:`~semantic.diffusion.unet.SDMUNet` weights.

Two kinds of file:

* **Project checkpoints** (:func:`save_checkpoint` / :func:`load_unet` / :func:`read_checkpoint`):
  one ``torch.save`` dict ``{"format", "config", "state_dict", "extra"}`` where ``config`` is
  :meth:`UNetConfig.to_dict` (the structure travels with the weights) and ``extra`` holds plain
  values only (training step, data-set name, EMA rate, metrics, tensors …).
* **Published state dicts** (SDM, GESCO / Q-GESCO / Diff-GO^n, SPIC):
  :func:`load_published_state_dict` loads them into a model built from the matching config,
  ignoring GESCO's unused ``input_blocks.*.0.spade_norm.*`` tensors and casting float16 weights.

Everything is read with ``torch.load(..., weights_only=True)``: loading never executes code from
the file (a pickle carrying a code payload raises ``pickle.UnpicklingError``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from semantic.diffusion.unet import SDMUNet, UNetConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "PublishedLoadReport",
    "UNetCheckpoint",
    "load_published_state_dict",
    "load_published_unet",
    "load_unet",
    "read_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "semlink.sdm_unet.v1"
_GESCO_UNUSED = re.compile(r"^input_blocks\.\d+\.0\.spade_norm\.")


@dataclass(frozen=True)
class UNetCheckpoint:
    """A loaded project checkpoint.

    Attributes:
        model: the network (eval mode) on the requested device.
        config: its structure.
        extra: the plain values saved next to the weights.
    """

    model: SDMUNet
    config: UNetConfig
    extra: dict[str, Any]


@dataclass(frozen=True)
class PublishedLoadReport:
    """What :func:`load_published_state_dict` did besides a strict load.

    Attributes:
        ignored_keys: GESCO ``spade_norm`` tensors present in the file, absent from the model.
        unused_missing_keys: GESCO ``spade_norm`` parameters of the model absent from the file
            (left at their initial values; they never affect the output).
        cast_from: dtypes converted to the model's dtype (e.g. ``("torch.float16",)``).
    """

    ignored_keys: tuple[str, ...]
    unused_missing_keys: tuple[str, ...]
    cast_from: tuple[str, ...]


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | float | str | Tensor):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: dict keys must be str, got {type(key).__name__}")
            _check_plain(item, f"{where}.{key}")
        return
    raise TypeError(
        f"{where}: {type(value).__name__} is not a plain value (None, bool, int, float, str, "
        "Tensor, list, tuple, dict)"
    )


def save_checkpoint(
    path: str | os.PathLike, model: SDMUNet, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` (config + float weights on CPU) and ``extra`` to ``path`` atomically.

    The file is written to a temporary name in the same folder and moved into place with
    ``os.replace``, so a reader never sees a partial file.

    Args:
        path: destination file (``.pt``); parent folders are created.
        model: the network to save.
        extra: plain values only (None, bool, int, float, str, Tensor, list, tuple, dict with
            str keys); anything else raises ``TypeError`` before writing.

    Returns:
        The destination path.

    Example:
        >>> import tempfile
        >>> cfg = UNetConfig(image_size=32, model_channels=32, num_res_blocks=1,
        ...                  channel_mult=(1, 1), num_label_channels=6)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     file = save_checkpoint(Path(folder) / "unet.pt", SDMUNet(cfg), {"step": 10})
        ...     read_checkpoint(file).extra
        {'step': 10}
    """
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", strict: bool = True
) -> UNetCheckpoint:
    """Load a project checkpoint (``weights_only=True``) into a new model in eval mode.

    Args:
        path: file written by :func:`save_checkpoint`.
        device: where the weights go.
        strict: require exactly the model's state-dict keys.
    """
    data = torch.load(Path(path), weights_only=True, map_location=device)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    config = UNetConfig.from_dict(data["config"])
    if strict:
        # Every parameter is overwritten: skip the (slow, for big models) random init.
        model = _empty_model(config, device)
    else:
        model = SDMUNet(config).to(device)
    model.load_state_dict(data["state_dict"], strict=strict)
    return UNetCheckpoint(model=model.eval(), config=config, extra=dict(data.get("extra", {})))


def load_unet(
    path: str | os.PathLike, device: str | torch.device = "cpu", strict: bool = True
) -> SDMUNet:
    """Model of a project checkpoint (eval mode); see :func:`read_checkpoint`."""
    return read_checkpoint(path, device, strict).model


def load_published_state_dict(
    model: SDMUNet, state_dict: Mapping[str, Tensor]
) -> PublishedLoadReport:
    """Load a published SDM / GESCO / SPIC state dict into ``model`` (in place).

    Strict on every key except GESCO's unused encoder ``spade_norm`` tensors, which are ignored
    when the model does not have them (and tolerated as missing when it does). A leading
    ``module.`` (DistributedDataParallel) is stripped. Tensors are cast to the model's dtype, so
    float16 files load into a float32 model.

    Args:
        model: built from the matching config (e.g. :meth:`UNetConfig.gesco_cityscapes256`).
        state_dict: key → tensor, as read with ``torch.load(..., weights_only=True)``.

    Raises:
        KeyError: other missing or unexpected keys (first ten listed).
        RuntimeError: shape mismatches (from ``load_state_dict``).
    """
    own = model.state_dict()
    provided = {k.removeprefix("module."): v for k, v in state_dict.items()}
    ignored = sorted(k for k in provided if k not in own and _GESCO_UNUSED.match(k))
    unexpected = sorted(k for k in provided if k not in own and not _GESCO_UNUSED.match(k))
    missing = sorted(k for k in own if k not in provided)
    unused_missing = [k for k in missing if _GESCO_UNUSED.match(k)]
    really_missing = [k for k in missing if not _GESCO_UNUSED.match(k)]
    if unexpected or really_missing:
        raise KeyError(
            f"state dict does not fit the model: missing {really_missing[:10]} "
            f"({len(really_missing)}), unexpected {unexpected[:10]} ({len(unexpected)})"
        )
    cast_from = sorted(
        {str(v.dtype) for k, v in provided.items() if k in own and v.dtype != own[k].dtype}
    )
    converted = {
        k: v.to(device=own[k].device, dtype=own[k].dtype) for k, v in provided.items() if k in own
    }
    for key in unused_missing:
        converted[key] = own[key]
    model.load_state_dict(converted, strict=True)
    return PublishedLoadReport(tuple(ignored), tuple(unused_missing), tuple(cast_from))


def load_published_unet(
    path: str | os.PathLike, config: UNetConfig, device: str | torch.device = "cpu"
) -> SDMUNet:
    """Build ``SDMUNet(config)`` and load a published checkpoint file into it (eval mode).

    The file may be a plain state dict (what the guided-diffusion training loops write) or a
    dict with a ``"state_dict"`` entry. Read with ``weights_only=True``.
    """
    data = torch.load(Path(path), weights_only=True, map_location="cpu")
    if "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    model = _empty_model(config, device)
    report = load_published_state_dict(model, data)
    with torch.no_grad():
        for key in report.unused_missing_keys:
            model.get_parameter(key).zero_()
    return model.eval()


def _empty_model(config: UNetConfig, device: str | torch.device) -> SDMUNet:
    """Model with uninitialised storage on ``device`` (to be filled by a strict load)."""
    with torch.device("meta"):
        model = SDMUNet(config)
    return model.to_empty(device=device)
