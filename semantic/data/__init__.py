"""Data sets of images with dense semantic labels and instance maps.

Sources: ``synthetic`` (procedural street scenes, 19 Cityscapes trainId classes, no files
needed), ``cityscapes`` (the official layout; trainId or labelId mode), ``folder`` (images/,
labels/, classes.txt). All yield :class:`Scene` / :class:`SceneBatch`.

Example:
    >>> ds = build_dataset("synthetic", None, split="val", num_images=4, size=(64, 128), seed=0)
    >>> len(ds), ds.num_classes, ds.batch(slice(0, 2)).images.shape
    (4, 19, (2, 64, 128, 3))
"""

from __future__ import annotations

from pathlib import Path

from semantic.data.cityscapes import CityscapesScenes
from semantic.data.folder import FolderScenes
from semantic.data.labels import (
    COUNTABLE_TRAIN_IDS,
    IGNORE_INDEX,
    LABELID_TO_TRAINID,
    TRAIN_CLASS_NAMES,
    TRAIN_PALETTE,
    colorize,
    labelid_to_trainid,
)
from semantic.data.maps import instance_edges, one_hot, semantic_map
from semantic.data.preview import write_preview
from semantic.data.scene import DataError, Scene, SceneBatch
from semantic.data.stats import ClassStatistics, class_statistics
from semantic.data.synthetic import SPLITS, SplitView, SyntheticStreetScenes

SOURCES = ("synthetic", "cityscapes", "folder")

__all__ = [
    "COUNTABLE_TRAIN_IDS",
    "IGNORE_INDEX",
    "LABELID_TO_TRAINID",
    "SOURCES",
    "SPLITS",
    "TRAIN_CLASS_NAMES",
    "TRAIN_PALETTE",
    "CityscapesScenes",
    "ClassStatistics",
    "DataError",
    "FolderScenes",
    "Scene",
    "SceneBatch",
    "SplitView",
    "SyntheticStreetScenes",
    "build_dataset",
    "class_statistics",
    "colorize",
    "instance_edges",
    "labelid_to_trainid",
    "one_hot",
    "semantic_map",
    "write_preview",
]


def build_dataset(
    source: str,
    root: str | Path | None,
    split: str,
    num_images: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    **options,
):
    """Build a data set by source name.

    Args:
        source: ``"synthetic"``, ``"cityscapes"`` or ``"folder"``.
        root: data folder (None for ``synthetic``).
        split: ``train``, ``val`` or ``test``.
        num_images: keep the first N scenes (None: all; synthetic train has 1,000,000).
        size: (H, W); None gives 128x256 for synthetic and the files' size otherwise.
        seed: synthetic data-set seed / random-crop seed.
        **options: cityscapes: ``mode`` ("trainid" | "labelid"), ``crop``, ``crop_mode``,
            ``instance_mode`` ("things" | "raw" | "gesco"), ``resample``;
            folder: ``crop``, ``crop_mode``, ``resample``.

    Returns:
        An object with ``__len__``, ``__getitem__ -> Scene``, ``batch(slice | indices) ->
        SceneBatch``, ``num_classes``, ``class_names``, ``palette`` (uint8 [256, 3]) and
        ``ignore_index`` (255).

    Raises:
        DataError: missing or malformed ``root`` (one-line message: what was expected where).
        ValueError: unknown source, split or option.
    """
    if source == "synthetic":
        if root is not None:
            raise ValueError(f"data.root: synthetic data is generated, expected no root, got {root}")
        if options:
            raise ValueError(f"synthetic data takes no options, got {sorted(options)}")
        gen = SyntheticStreetScenes(size=size or (128, 256), seed=seed)
        return gen.split(split, num_images)
    if source in ("cityscapes", "folder"):
        if root is None:
            raise DataError(f"data.root: expected a folder for source {source!r}, got none")
        cls = CityscapesScenes if source == "cityscapes" else FolderScenes
        try:
            return cls(root, split=split, size=size, num_images=num_images, seed=seed, **options)
        except TypeError as err:
            raise ValueError(f"invalid option for source {source!r}: {err}") from None
    raise ValueError(f"unknown data source {source!r}; expected one of {list(SOURCES)}")
