"""Training batches for the diffusion receivers, drawn from the synthetic street scenes.

``make_batch_fn(config)`` turns the ``data`` section of a ``ReceiverTrainConfig`` into the
``batch_fn(step, generator)`` that ``train_receiver`` calls. Every random choice (which scenes,
flips) comes from the generator, so a resumed run sees exactly the batches an uninterrupted run
would. For super-resolution receivers the coarse image is made the way the SPIC transmitter
makes it: area downscaling by ``lowres_factor``, optionally through the lossy image codec at the
qp used at test time, so the receiver learns the codec's artefacts.

``data`` keys: ``source`` (``synthetic``), ``size`` ([H, W]), ``seed`` (data-set seed),
``instance_edges`` (bool: append the edge channel), ``hflip`` (bool), ``lowres_codec``
(``none`` or an image codec name such as ``hevc``), ``lowres_qp`` (int, for ``hevc``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from semantic.data.maps import semantic_map
from semantic.data.synthetic import SPLITS, SyntheticStreetScenes

_KEYS = {"source", "size", "seed", "instance_edges", "hflip", "lowres_codec", "lowres_qp",
         "dataset"}


def coarse_images(images: np.ndarray, factor: int, codec: str = "none",
                  qp: int = 32) -> np.ndarray:
    """SPIC's coarse image: area-downscaled by ``factor``, optionally through a lossy codec.

    Args:
        images: uint8 [B, H, W, 3].
    Returns:
        uint8 [B, H/factor, W/factor, 3] (a failed decode keeps the un-coded coarse image,
        which cannot happen for a clean round trip).
    """
    from semantic.codecs.resample import downscale

    coarse = np.stack([downscale(img, factor) for img in images])
    if codec == "none":
        return coarse
    from semantic.codecs.registry import build_image_codec

    params = {"qp": qp} if codec == "hevc" else {}
    coder = build_image_codec(codec, **params)
    out = []
    for img in coarse:
        result = coder.decode(coder.encode(img), img.shape)
        out.append(result.array if result.ok else img)
    return np.stack(out)


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float32 [B, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def make_batch_fn(data: Mapping[str, Any], batch_size: int, num_classes: int = 19,
                  super_res: bool = False, lowres_factor: int = 2, split: str = "train"
                  ) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor | None]]:
    """Build ``batch_fn(step, generator) -> (images [-1,1], y one-hot(+edges), low_res|None)``
    drawing scenes of ``split`` (``train``; ``val`` for early stopping's validation set)."""
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown receiver data keys {sorted(unknown)}; valid: {sorted(_KEYS)}")
    source = data.get("source", "synthetic")
    if source != "synthetic":
        raise ValueError(f"receiver training supports data.source 'synthetic', got {source!r}")
    size = tuple(data.get("size", (64, 128)))
    scenes = SyntheticStreetScenes(size=size, seed=int(data.get("seed", 0)))
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLITS)}")
    lo, hi = SPLITS[split].start, SPLITS[split].stop
    edges = bool(data.get("instance_edges", True))
    hflip = bool(data.get("hflip", True))
    codec = str(data.get("lowres_codec", "none"))
    qp = int(data.get("lowres_qp", 32))

    def batch_fn(step: int, generator: torch.Generator):
        idx = torch.randint(lo, hi, (batch_size,), generator=generator).tolist()
        flips = torch.rand(batch_size, generator=generator) < 0.5
        batch = scenes.batch(idx)
        images, labels, inst = batch.images, batch.labels, batch.instances
        if hflip:
            f = flips.numpy()
            images = np.where(f[:, None, None, None], images[:, :, ::-1], images)
            labels = np.where(f[:, None, None], labels[:, :, ::-1], labels)
            inst = np.where(f[:, None, None], inst[:, :, ::-1], inst)
        x = to_model_range(np.ascontiguousarray(images))
        y = semantic_map(torch.from_numpy(np.ascontiguousarray(labels)).long(), num_classes,
                         torch.from_numpy(np.ascontiguousarray(inst)) if edges else None)
        low = None
        if super_res:
            low = to_model_range(coarse_images(np.ascontiguousarray(images), lowres_factor,
                                               codec, qp))
        return x, y, low

    return batch_fn
