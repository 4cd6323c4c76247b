"""Fixtures of the codec tests: the real Cityscapes sample and small smooth test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path("data/cityscapes_sample")
SAMPLE_LABELS = SAMPLE / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png"
SAMPLE_IMAGE = SAMPLE / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
SIZE = (128, 256)


@pytest.fixture(scope="session")
def sample_labels(shared_dir: Path) -> np.ndarray:
    """The real Cityscapes trainId map, ``uint8 [128, 256]`` (nearest-resized if needed)."""
    image = Image.open(shared_dir / SAMPLE_LABELS)
    if image.size != SIZE[::-1]:
        image = image.resize(SIZE[::-1], Image.Resampling.NEAREST)
    return np.array(image, dtype=np.uint8)


@pytest.fixture(scope="session")
def sample_image(shared_dir: Path) -> np.ndarray:
    """The real Cityscapes RGB image, ``uint8 [128, 256, 3]``."""
    image = Image.open(shared_dir / SAMPLE_IMAGE).convert("RGB")
    if image.size != SIZE[::-1]:
        image = image.resize(SIZE[::-1], Image.Resampling.LANCZOS)
    return np.array(image, dtype=np.uint8)
