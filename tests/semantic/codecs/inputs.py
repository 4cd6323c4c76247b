"""Small deterministic test inputs for the codec tests."""

from __future__ import annotations

import numpy as np


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth colour image with mild noise, ``uint8 [H, W, 3]`` (natural-image-like statistics)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = []
    for _ in range(3):
        fx, fy, phase = [*rng.uniform(1, 6, 2).tolist(), rng.uniform(0, 2 * np.pi)]
        channels.append(128 + 90 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    image = np.stack(channels, axis=-1) + rng.normal(0, 6, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def blocky_labels(height: int, width: int, num_classes: int, seed: int) -> np.ndarray:
    """A piecewise-constant label map of ``num_classes`` classes with an ignore (255) band."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, (height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    labels = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width].copy()
    labels[: max(1, height // 10)] = 255
    return labels
