"""A PNG contact sheet of a data set for a person to look at: image | labels | instance edges.

Example:
    >>> from pathlib import Path
    >>> from semantic.data.synthetic import SyntheticStreetScenes
    >>> import tempfile
    >>> ds = SyntheticStreetScenes((64, 128)).split("val")
    >>> write_preview(ds, 2, Path(tempfile.mkdtemp())).suffix
    '.png'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from semantic.data.labels import colorize
from semantic.data.maps import instance_edges

_GAP = 2


def preview_grid(dataset, n: int) -> np.ndarray:
    """uint8 [n * (H + gap) - gap, 3 * W + 2 * gap, 3]: one row per scene, white gaps."""
    n = min(int(n), len(dataset))
    if n <= 0:
        raise ValueError("a preview needs at least one scene")
    rows = []
    for i in range(n):
        s = dataset[i]
        edges = instance_edges(s.instances)
        edge_img = np.repeat((edges * 255).astype(np.uint8)[..., None], 3, axis=-1)
        gap = np.full((s.image.shape[0], _GAP, 3), 255, dtype=np.uint8)
        rows.append(np.concatenate([s.image, gap, colorize(s.labels, dataset.palette), gap, edge_img], 1))
    width = max(r.shape[1] for r in rows)
    out = []
    for k, r in enumerate(rows):
        if r.shape[1] < width:
            r = np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
        out.append(r)
        if k < len(rows) - 1:
            out.append(np.full((_GAP, width, 3), 255, dtype=np.uint8))
    return np.concatenate(out, 0)


def write_preview(dataset, n: int, out_dir: Path, name: str = "preview.png") -> Path:
    """Write the first ``n`` scenes of ``dataset`` as ``out_dir/name`` and return that path.

    Args:
        dataset: anything with ``__len__``, ``__getitem__ -> Scene`` and ``palette``.
        n: number of scenes (rows); capped at ``len(dataset)``.
        out_dir: folder, created if missing.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    Image.fromarray(preview_grid(dataset, n)).save(path)
    return path
