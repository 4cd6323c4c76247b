"""Resizing and cropping shared by the file-based loaders (PIL; nearest for label-like maps).

Example:
    >>> import numpy as np
    >>> img = np.zeros((8, 16, 3), np.uint8); lab = np.ones((8, 16), np.uint8)
    >>> inst = np.zeros((8, 16), np.int32)
    >>> out = resize_scene(img, lab, inst, (4, 8), "bicubic")
    >>> [a.shape for a in out]
    [(4, 8, 3), (4, 8), (4, 8)]
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def resize_scene(
    image: np.ndarray,
    labels: np.ndarray,
    instances: np.ndarray,
    size: tuple[int, int],
    resample: str = "bicubic",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize an image (``resample``) and its label and instance maps (nearest) to ``size``.

    The image is first BOX-halved while it stays at least twice the target in both directions,
    as the SDM/GESCO Cityscapes loader does, so strong downscaling does not alias.

    Args:
        image: uint8 [H, W, 3]. labels: uint8 [H, W]. instances: int32 [H, W].
        size: target (H', W').
        resample: ``"bicubic"`` or ``"bilinear"`` for the image.

    Returns:
        (image uint8 [H', W', 3], labels uint8 [H', W'], instances int32 [H', W']).
    """
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    th, tw = size
    if image.shape[:2] == (th, tw):
        return image, labels, instances
    pil = Image.fromarray(image)
    while pil.height >= 2 * th and pil.width >= 2 * tw:
        pil = pil.reduce(2)
    img = np.asarray(pil.resize((tw, th), _RESAMPLE[resample]))
    lab = np.asarray(Image.fromarray(labels).resize((tw, th), Image.Resampling.NEAREST))
    ins = Image.fromarray(instances.astype(np.int32)).resize((tw, th), Image.Resampling.NEAREST)
    return img, lab, np.asarray(ins, dtype=np.int32)


def crop_box(
    shape: tuple[int, int], crop: tuple[int, int], mode: str, rng: np.random.Generator | None
) -> tuple[int, int]:
    """Top-left corner of a ``crop`` window inside ``shape`` ("center" or "random")."""
    h, w = shape
    ch, cw = crop
    if ch > h or cw > w:
        raise ValueError(f"crop {crop} is larger than the (resized) scene {shape}")
    if mode == "center":
        return (h - ch) // 2, (w - cw) // 2
    if mode == "random":
        if rng is None:
            raise ValueError("a random crop needs a generator")
        return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    raise ValueError(f"crop_mode must be 'center' or 'random', got {mode!r}")
