"""The Cityscapes label table, the 19 training classes and colour helpers.

Values follow the official ``cityscapesscripts/helpers/labels.py`` table (Cordts et al., CVPR 2016):
35 labels (ids 0..33 and -1 for license plates), the 19 evaluated classes with their trainIds
(everything else maps to the ignore value 255) and the official colour palette.

Example:
    >>> import numpy as np
    >>> LABELID_TO_TRAINID[np.array([7, 26, 0])].tolist()
    [0, 13, 255]
    >>> colorize(np.array([[0, 255]], dtype=np.uint8), TRAIN_PALETTE)[0, 0].tolist()
    [128, 64, 128]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255
"""Label value that every loss and metric of the project skips."""


@dataclass(frozen=True)
class CityscapesLabel:
    """One row of the official Cityscapes label table.

    ``has_instances`` marks the countable ("thing") classes whose instances are annotated.
    """

    name: str
    label_id: int
    train_id: int
    category: str
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# name, labelId, trainId, category, hasInstances, ignoreInEval, color
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = tuple(
    CityscapesLabel(*row)
    for row in (
        ("unlabeled", 0, 255, "void", False, True, (0, 0, 0)),
        ("ego vehicle", 1, 255, "void", False, True, (0, 0, 0)),
        ("rectification border", 2, 255, "void", False, True, (0, 0, 0)),
        ("out of roi", 3, 255, "void", False, True, (0, 0, 0)),
        ("static", 4, 255, "void", False, True, (0, 0, 0)),
        ("dynamic", 5, 255, "void", False, True, (111, 74, 0)),
        ("ground", 6, 255, "void", False, True, (81, 0, 81)),
        ("road", 7, 0, "flat", False, False, (128, 64, 128)),
        ("sidewalk", 8, 1, "flat", False, False, (244, 35, 232)),
        ("parking", 9, 255, "flat", False, True, (250, 170, 160)),
        ("rail track", 10, 255, "flat", False, True, (230, 150, 140)),
        ("building", 11, 2, "construction", False, False, (70, 70, 70)),
        ("wall", 12, 3, "construction", False, False, (102, 102, 156)),
        ("fence", 13, 4, "construction", False, False, (190, 153, 153)),
        ("guard rail", 14, 255, "construction", False, True, (180, 165, 180)),
        ("bridge", 15, 255, "construction", False, True, (150, 100, 100)),
        ("tunnel", 16, 255, "construction", False, True, (150, 120, 90)),
        ("pole", 17, 5, "object", False, False, (153, 153, 153)),
        ("polegroup", 18, 255, "object", False, True, (153, 153, 153)),
        ("traffic light", 19, 6, "object", False, False, (250, 170, 30)),
        ("traffic sign", 20, 7, "object", False, False, (220, 220, 0)),
        ("vegetation", 21, 8, "nature", False, False, (107, 142, 35)),
        ("terrain", 22, 9, "nature", False, False, (152, 251, 152)),
        ("sky", 23, 10, "sky", False, False, (70, 130, 180)),
        ("person", 24, 11, "human", True, False, (220, 20, 60)),
        ("rider", 25, 12, "human", True, False, (255, 0, 0)),
        ("car", 26, 13, "vehicle", True, False, (0, 0, 142)),
        ("truck", 27, 14, "vehicle", True, False, (0, 0, 70)),
        ("bus", 28, 15, "vehicle", True, False, (0, 60, 100)),
        ("caravan", 29, 255, "vehicle", True, True, (0, 0, 90)),
        ("trailer", 30, 255, "vehicle", True, True, (0, 0, 110)),
        ("train", 31, 16, "vehicle", True, False, (0, 80, 100)),
        ("motorcycle", 32, 17, "vehicle", True, False, (0, 0, 230)),
        ("bicycle", 33, 18, "vehicle", True, False, (119, 11, 32)),
        ("license plate", -1, -1, "vehicle", False, True, (0, 0, 142)),
    )
)

NUM_LABEL_IDS = 35
"""Channels of the labelId map used by SDM/GESCO (ids 0..33; channel 34 holds license plates)."""

NUM_TRAIN_CLASSES = 19

TRAIN_LABELS: tuple[CityscapesLabel, ...] = tuple(
    sorted((lab for lab in CITYSCAPES_LABELS if 0 <= lab.train_id < 255), key=lambda x: x.train_id)
)
"""The 19 evaluated classes in trainId order (road, sidewalk, ..., bicycle)."""

TRAIN_CLASS_NAMES: tuple[str, ...] = tuple(lab.name for lab in TRAIN_LABELS)

LABELID_CLASS_NAMES: tuple[str, ...] = tuple(
    lab.name for lab in sorted(CITYSCAPES_LABELS, key=lambda x: x.label_id % NUM_LABEL_IDS)
)
"""The 35 labelId classes in channel order (ids 0..33, then license plate at channel 34)."""


def _palette_array(colors: list[tuple[int, int, int]]) -> np.ndarray:
    # 256 rows so any uint8 label (including 255 = ignore, drawn black) indexes it directly.
    out = np.zeros((256, 3), dtype=np.uint8)
    out[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    return out


TRAIN_PALETTE: np.ndarray = _palette_array([lab.color for lab in TRAIN_LABELS])
"""uint8 [256, 3]: official colour of each trainId; rows 19..255 (ignore) are black."""

LABELID_PALETTE: np.ndarray = _palette_array(
    [lab.color for lab in sorted(CITYSCAPES_LABELS, key=lambda x: x.label_id % NUM_LABEL_IDS)]
)
"""uint8 [256, 3]: official colour of each labelId channel (license plate at 34)."""


def _labelid_lut() -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for lab in CITYSCAPES_LABELS:
        if lab.label_id >= 0:
            lut[lab.label_id] = lab.train_id if 0 <= lab.train_id < 255 else IGNORE_INDEX
    return lut


LABELID_TO_TRAINID: np.ndarray = _labelid_lut()
"""uint8 [256]: lookup table labelId -> trainId (255 for every void or unevaluated id)."""

TRAINID_TO_LABELID: np.ndarray = np.array([lab.label_id for lab in TRAIN_LABELS], dtype=np.uint8)
"""uint8 [19]: the labelId of each trainId (inverse of :data:`LABELID_TO_TRAINID` on the 19)."""

COUNTABLE_TRAIN_IDS: tuple[int, ...] = tuple(
    lab.train_id for lab in TRAIN_LABELS if lab.has_instances
)
"""trainIds of the classes with instances: person, rider, car, truck, bus, train, motorcycle,
bicycle (11..18)."""

COUNTABLE_LABEL_IDS: tuple[int, ...] = tuple(
    lab.label_id for lab in CITYSCAPES_LABELS if lab.has_instances
)
"""labelIds of the classes with instances (24..33)."""

TRAIN_ID: dict[str, int] = {lab.name: lab.train_id for lab in TRAIN_LABELS}
"""trainId by class name, e.g. ``TRAIN_ID["car"] == 13``."""


def labelid_to_trainid(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelId map to trainIds.

    Args:
        label_ids: integer array [...] of Cityscapes labelIds (values outside 0..255 are ignored).

    Returns:
        uint8 array [...] of trainIds 0..18, 255 where the labelId is not evaluated.
    """
    ids = np.asarray(label_ids)
    valid = (ids >= 0) & (ids < 256)
    out = LABELID_TO_TRAINID[np.where(valid, ids, 0).astype(np.intp)]
    out[~valid] = IGNORE_INDEX
    return out


def colorize(labels: np.ndarray, palette: np.ndarray = TRAIN_PALETTE) -> np.ndarray:
    """Colour a label map.

    Args:
        labels: integer array [..., H, W] with values 0..255.
        palette: uint8 [K, 3] colours; labels >= K are drawn black.

    Returns:
        uint8 [..., H, W, 3].

    Example:
        >>> colorize(np.array([[10]], dtype=np.uint8)).tolist()
        [[[70, 130, 180]]]
    """
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.shape[0] < 256:
        full = np.zeros((256, 3), dtype=np.uint8)
        full[: palette.shape[0]] = palette
        palette = full
    return palette[np.clip(np.asarray(labels), 0, 255).astype(np.intp)]
