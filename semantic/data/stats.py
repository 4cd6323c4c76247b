"""Class statistics of a data set: pixel shares and how many scenes show each class.

Example:
    >>> from semantic.data.synthetic import SyntheticStreetScenes
    >>> st = class_statistics(SyntheticStreetScenes((64, 128)).split("val"), 4)
    >>> st.pixel_fraction.shape, round(float(st.pixel_fraction.sum() + st.ignore_fraction), 6)
    ((19,), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassStatistics:
    """Per-class statistics over ``num_images`` scenes.

    Attributes:
        pixel_fraction: float64 [C], mean share of pixels per class (over scenes).
        image_count: int64 [C], number of scenes where the class has at least one pixel.
        ignore_fraction: mean share of ignore pixels.
        num_images: scenes counted.
    """

    pixel_fraction: np.ndarray
    image_count: np.ndarray
    ignore_fraction: float
    num_images: int

    def table(self, class_names) -> str:
        """A plain-text table: class, mean pixel %, scenes showing it."""
        lines = [f"{'id':>3} {'class':14s} {'pixels %':>9} {'scenes':>7}"]
        for k, name in enumerate(class_names):
            lines.append(
                f"{k:3d} {name:14s} {100 * self.pixel_fraction[k]:9.2f} {self.image_count[k]:7d}"
            )
        lines.append(f"{'':3s} {'(ignore)':14s} {100 * self.ignore_fraction:9.2f}")
        return "\n".join(lines)


def class_statistics(dataset, n: int | None = None) -> ClassStatistics:
    """Count classes over the first ``n`` scenes of ``dataset`` (all when None).

    Args:
        dataset: anything with ``__len__``, ``__getitem__ -> Scene``, ``num_classes`` and
            ``ignore_index``.
    """
    n = len(dataset) if n is None else min(int(n), len(dataset))
    c = dataset.num_classes
    frac = np.zeros(c, dtype=np.float64)
    count = np.zeros(c, dtype=np.int64)
    ignore = 0.0
    for i in range(n):
        lab = dataset[i].labels
        hist = np.bincount(lab.ravel(), minlength=256).astype(np.float64) / lab.size
        frac += hist[:c]
        count += hist[:c] > 0
        ignore += hist[dataset.ignore_index]
    return ClassStatistics(frac / max(n, 1), count, ignore / max(n, 1), n)
