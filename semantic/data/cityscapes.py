"""Cityscapes in its official directory layout.

::

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png   (optional)

Two label modes: ``"trainid"`` (19 classes through the official labelId->trainId table, 255 =
ignore; what SPIC uses) and ``"labelid"`` (the 35 raw labelIds, as SDM/GESCO feed them; ids above
34 become 255). Instances: ``"things"`` keeps the official ids ``labelId * 1000 + k`` of
countable objects and sets everything else to 0 (the project's convention); ``"raw"`` keeps the
file's values (stuff pixels carry their labelId, groups of objects their labelId), so instance
edges also mark stuff/stuff boundaries as GESCO's edges do; ``"gesco"`` additionally saturates
ids at 255, which is what GESCO's loader gets from converting the 16-bit file to 8-bit "L" with
current Pillow (every object then shares the value 255, so only thing/stuff boundaries remain).

Example (on a tree laid out as above):
    >>> ds = CityscapesScenes("/data/cityscapes", split="val", size=(128, 256))  # doctest: +SKIP
    >>> ds[0].labels.max() <= 18 or ds[0].labels.max() == 255                     # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from semantic.data.labels import (
    IGNORE_INDEX,
    LABELID_CLASS_NAMES,
    LABELID_PALETTE,
    NUM_LABEL_IDS,
    NUM_TRAIN_CLASSES,
    TRAIN_CLASS_NAMES,
    TRAIN_PALETTE,
    labelid_to_trainid,
)
from semantic.data.scene import DataError, Scene, SceneBatch, resolve_indices, stack_scenes
from semantic.data.transforms import crop_box, resize_scene

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
MODES = ("trainid", "labelid")
INSTANCE_MODES = ("things", "raw", "gesco")


class CityscapesScenes:
    """Cityscapes scenes as :class:`~semantic.data.scene.Scene` objects, in sorted file order.

    Args:
        root: the Cityscapes root (holding ``leftImg8bit/`` and ``gtFine/``).
        split: ``train``, ``val`` or ``test`` (a folder name under ``leftImg8bit/``).
        mode: ``"trainid"`` (19 classes) or ``"labelid"`` (35 classes).
        size: (H, W) to resize to (bicubic/bilinear image, nearest maps); None keeps the files'.
        crop: (h, w) window cut after resizing; None for the whole scene.
        crop_mode: ``"center"`` or ``"random"`` (random windows depend on ``(seed, index)``).
        num_images: keep the first N scenes.
        instance_mode: ``"things"``, ``"raw"`` or ``"gesco"`` (see the module docstring).
        resample: ``"bicubic"`` or ``"bilinear"`` for the image.
        seed: seed of the random crops.

    Raises:
        DataError: when the root or the split folder is missing or has no scene, or a scene's
            label file is missing.
    """

    ignore_index = IGNORE_INDEX

    def __init__(
        self,
        root: str | Path,
        split: str = "val",
        mode: str = "trainid",
        size: tuple[int, int] | None = None,
        crop: tuple[int, int] | None = None,
        crop_mode: str = "center",
        num_images: int | None = None,
        instance_mode: str = "things",
        resample: str = "bicubic",
        seed: int = 0,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if instance_mode not in INSTANCE_MODES:
            raise ValueError(f"instance_mode must be one of {INSTANCE_MODES}, got {instance_mode!r}")
        self.root = Path(root)
        self.split = split
        self.mode = mode
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.crop = None if crop is None else (int(crop[0]), int(crop[1]))
        self.crop_mode = crop_mode
        self.instance_mode = instance_mode
        self.resample = resample
        self.seed = int(seed)
        if mode == "trainid":
            self.num_classes, self.class_names, self.palette = (
                NUM_TRAIN_CLASSES, TRAIN_CLASS_NAMES, TRAIN_PALETTE,
            )
        else:
            self.num_classes, self.class_names, self.palette = (
                NUM_LABEL_IDS, LABELID_CLASS_NAMES, LABELID_PALETTE,
            )
        self.files = self._scan(num_images)

    def _scan(self, num_images: int | None) -> list[tuple[Path, Path, Path | None]]:
        where = f"data.root: {self.root}"
        if not self.root.is_dir():
            raise DataError(f"{where}: expected a Cityscapes root folder, found no such directory")
        img_dir = self.root / "leftImg8bit" / self.split
        pattern = f"leftImg8bit/{self.split}/<city>/*{IMAGE_SUFFIX}"
        images = sorted(img_dir.glob(f"*/*{IMAGE_SUFFIX}")) if img_dir.is_dir() else []
        if not images:
            raise DataError(f"{where}: expected {pattern}, found none")
        if num_images is not None:
            if num_images <= 0:
                raise ValueError(f"num_images must be positive, got {num_images}")
            images = images[:num_images]
        files = []
        for img in images:
            stem = img.name[: -len(IMAGE_SUFFIX)]
            gt = self.root / "gtFine" / self.split / img.parent.name
            lab = gt / f"{stem}{LABEL_SUFFIX}"
            if not lab.is_file():
                raise DataError(
                    f"{where}: expected gtFine/{self.split}/{img.parent.name}/{stem}{LABEL_SUFFIX}"
                    f" for {img.name}, found none"
                )
            inst = gt / f"{stem}{INSTANCE_SUFFIX}"
            files.append((img, lab, inst if inst.is_file() else None))
        return files

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
        label_ids = np.asarray(Image.open(lab_path))
        if label_ids.ndim != 2:
            raise DataError(f"data.root: {self.root}: expected a one-channel {lab_path.name}")
        if inst_path is not None:
            raw = np.asarray(Image.open(inst_path)).astype(np.int32)
        else:
            raw = np.zeros(label_ids.shape, dtype=np.int32)
        if self.mode == "trainid":
            labels = labelid_to_trainid(label_ids)
        else:
            labels = np.where(label_ids < NUM_LABEL_IDS, label_ids, IGNORE_INDEX).astype(np.uint8)
        if self.instance_mode == "raw":
            instances = raw
        elif self.instance_mode == "gesco":
            instances = np.minimum(raw, 255)
        else:
            instances = np.where(raw >= 1000, raw, 0)
        instances = instances.astype(np.int32)
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
            labels=np.ascontiguousarray(labels, dtype=np.uint8),
            instances=np.ascontiguousarray(instances, dtype=np.int32),
            index=j,
        )
