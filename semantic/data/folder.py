"""A generic folder of images with dense labels.

::

    <root>[/<split>]/images/<stem>.(png|jpg|jpeg|webp|bmp)
    <root>[/<split>]/labels/<stem>.png          one channel, class index per pixel, 255 = ignore
    <root>[/<split>]/instances/<stem>.png       optional, instance id per pixel (0 = none)
    <root>/classes.txt  one class per line: ``name`` or ``name r g b``
      or <root>/classes.yaml: ``[name, ...]`` or ``{names: [...], palette: [[r, g, b], ...]}``

The split folder is used when ``<root>/<split>/images`` exists, otherwise ``<root>/images``.

Example (on a tree laid out as above):
    >>> ds = FolderScenes("/data/my_set", split="val", size=(128, 256))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from semantic.data.labels import IGNORE_INDEX
from semantic.data.scene import DataError, Scene, SceneBatch, resolve_indices, stack_scenes
from semantic.data.transforms import crop_box, resize_scene

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _default_palette(n: int) -> np.ndarray:
    """Distinct colours from a fixed golden-ratio hue walk (deterministic)."""
    import colorsys

    out = np.zeros((256, 3), dtype=np.uint8)
    for k in range(min(n, 255)):
        r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.65, 0.95 - 0.3 * (k % 3) / 2)
        out[k] = (round(r * 255), round(g * 255), round(b * 255))
    return out


def read_class_list(root: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and uint8 [256, 3] palette from ``classes.yaml`` or ``classes.txt``."""
    where = f"data.root: {root}"
    yml = next((root / n for n in ("classes.yaml", "classes.yml") if (root / n).is_file()), None)
    txt = root / "classes.txt"
    colors: list[tuple[int, int, int]] | None = None
    if yml is not None:
        doc = yaml.safe_load(yml.read_text())
        if isinstance(doc, dict):
            names = doc.get("names")
            colors = doc.get("palette")
        else:
            names = doc
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise DataError(f"{where}: expected {yml.name} to hold a list of class names")
    elif txt.is_file():
        names, colors = [], []
        for line in txt.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) >= 4 and all(p.isdigit() for p in parts[-3:]):
                names.append(" ".join(parts[:-3]))
                colors.append(tuple(int(p) for p in parts[-3:]))
            else:
                names.append(line)
        if not names:
            raise DataError(f"{where}: expected classes.txt to list at least one class")
        if colors and len(colors) != len(names):
            raise DataError(f"{where}: expected a colour on every line of classes.txt or on none")
        colors = colors or None
    else:
        raise DataError(f"{where}: expected classes.txt or classes.yaml, found none")
    if len(names) > 255:
        raise DataError(f"{where}: expected at most 255 classes, found {len(names)}")
    palette = _default_palette(len(names))
    if colors is not None:
        arr = np.asarray(colors)
        if arr.shape != (len(names), 3) or arr.min() < 0 or arr.max() > 255:
            raise DataError(f"{where}: expected one [r, g, b] colour (0..255) per class")
        palette[: len(names)] = arr.astype(np.uint8)
    return tuple(names), palette


class FolderScenes:
    """Scenes from a folder of images and label PNGs with matching stems (sorted by stem).

    Args:
        root: folder holding ``images/``, ``labels/`` (optionally under ``<split>/``) and the
            class list.
        split: split sub-folder to use when it exists.
        size: (H, W) to resize to; None keeps the files' size.
        crop: (h, w) window after resizing; ``crop_mode`` ``"center"`` or ``"random"``.
        num_images: keep the first N scenes.
        resample: ``"bicubic"`` or ``"bilinear"``.
        seed: seed of the random crops.

    Raises:
        DataError: missing folders, class list, label files, or labels outside the class list.
    """

    ignore_index = IGNORE_INDEX

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: tuple[int, int] | None = None,
        crop: tuple[int, int] | None = None,
        crop_mode: str = "center",
        num_images: int | None = None,
        resample: str = "bicubic",
        seed: int = 0,
    ):
        self.root = Path(root)
        where = f"data.root: {self.root}"
        if not self.root.is_dir():
            raise DataError(f"{where}: expected a folder with images/ and labels/, found no such directory")
        self.class_names, self.palette = read_class_list(self.root)
        self.num_classes = len(self.class_names)
        base = self.root / split if (self.root / split / "images").is_dir() else self.root
        self.split = split
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.crop = None if crop is None else (int(crop[0]), int(crop[1]))
        self.crop_mode = crop_mode
        self.resample = resample
        self.seed = int(seed)
        rel = base.relative_to(self.root)
        prefix = "" if str(rel) == "." else f"{rel}/"
        images = sorted(
            p for p in (base / "images").glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
        ) if (base / "images").is_dir() else []
        if not images:
            raise DataError(f"{where}: expected {prefix}images/<stem>.png (or .jpg), found none")
        if num_images is not None:
            images = images[:num_images]
        self.files: list[tuple[Path, Path, Path | None]] = []
        for img in images:
            lab = base / "labels" / f"{img.stem}.png"
            if not lab.is_file():
                raise DataError(f"{where}: expected {prefix}labels/{img.stem}.png for {img.name}, found none")
            inst = base / "instances" / f"{img.stem}.png"
            self.files.append((img, lab, inst if inst.is_file() else None))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Scene:
        (j,) = resolve_indices(i, len(self))
        return self._load(j)

    def batch(self, selection: slice | Sequence[int] | np.ndarray) -> SceneBatch:
        """Stack scenes (they must share one size: set ``size`` or ``crop``)."""
        return stack_scenes(self._load(j) for j in resolve_indices(selection, len(self)))

    def _load(self, j: int) -> Scene:
        img_path, lab_path, inst_path = self.files[j]
        image = np.asarray(Image.open(img_path).convert("RGB"))
        labels = np.asarray(Image.open(lab_path))
        if labels.ndim != 2:
            raise DataError(f"data.root: {self.root}: expected a one-channel label PNG, got {lab_path.name}")
        bad = (labels >= self.num_classes) & (labels != IGNORE_INDEX)
        if bad.any():
            raise DataError(
                f"data.root: {self.root}: expected labels 0..{self.num_classes - 1} or 255 in "
                f"{lab_path.name}, found {int(labels[bad].max())}"
            )
        if labels.shape != image.shape[:2]:
            raise DataError(
                f"data.root: {self.root}: expected {lab_path.name} to match its image size "
                f"{image.shape[:2]}, found {labels.shape}"
            )
        labels = labels.astype(np.uint8)
        if inst_path is not None:
            instances = np.asarray(Image.open(inst_path)).astype(np.int32)
        else:
            instances = np.zeros(labels.shape, dtype=np.int32)
        if self.size is not None:
            image, labels, instances = resize_scene(image, labels, instances, self.size, self.resample)
        if self.crop is not None:
            rng = np.random.default_rng((self.seed, j)) if self.crop_mode == "random" else None
            y0, x0 = crop_box(labels.shape, self.crop, self.crop_mode, rng)
            ch, cw = self.crop
            image = image[y0 : y0 + ch, x0 : x0 + cw]
            labels = labels[y0 : y0 + ch, x0 : x0 + cw]
            instances = instances[y0 : y0 + ch, x0 : x0 + cw]
        return Scene(
            image=np.ascontiguousarray(image),
            labels=np.ascontiguousarray(labels),
            instances=np.ascontiguousarray(instances, dtype=np.int32),
            index=j,
        )
