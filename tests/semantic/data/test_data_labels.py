"""The Cityscapes label table, LUT and colour helpers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semantic.data.labels import (
    CITYSCAPES_LABELS,
    COUNTABLE_TRAIN_IDS,
    LABELID_CLASS_NAMES,
    LABELID_TO_TRAINID,
    TRAIN_CLASS_NAMES,
    TRAIN_PALETTE,
    TRAINID_TO_LABELID,
    colorize,
    labelid_to_trainid,
)


def test_table_has_the_35_official_labels():
    ids = sorted(lab.label_id for lab in CITYSCAPES_LABELS)
    assert ids == [-1, *range(34)]
    assert len(LABELID_CLASS_NAMES) == 35
    assert LABELID_CLASS_NAMES[26] == "car" and LABELID_CLASS_NAMES[34] == "license plate"


def test_train_classes_in_trainid_order_with_official_colours():
    assert TRAIN_CLASS_NAMES == (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
        "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
        "bus", "train", "motorcycle", "bicycle",
    )
    assert TRAIN_PALETTE.shape == (256, 3) and TRAIN_PALETTE.dtype == np.uint8
    assert TRAIN_PALETTE[0].tolist() == [128, 64, 128]
    assert TRAIN_PALETTE[10].tolist() == [70, 130, 180]
    assert TRAIN_PALETTE[18].tolist() == [119, 11, 32]
    assert TRAIN_PALETTE[255].tolist() == [0, 0, 0]


def test_labelid_to_trainid_known_values():
    assert LABELID_TO_TRAINID[[7, 8, 11, 23, 24, 26, 31, 33]].tolist() == [0, 1, 2, 10, 11, 13, 16, 18]
    # void and unevaluated ids (unlabeled, ego vehicle, parking, rail track, guard rail,
    # polegroup, caravan, trailer) are ignored
    assert set(LABELID_TO_TRAINID[[0, 1, 9, 10, 14, 18, 29, 30]].tolist()) == {255}
    assert (LABELID_TO_TRAINID[TRAINID_TO_LABELID] == np.arange(19)).all()
    assert labelid_to_trainid(np.array([-1, 26, 300])).tolist() == [255, 13, 255]


def test_countable_classes():
    names = [TRAIN_CLASS_NAMES[i] for i in COUNTABLE_TRAIN_IDS]
    assert names == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]


def test_colorize_maps_each_label_to_its_colour():
    lab = np.array([[0, 13], [255, 2]], dtype=np.uint8)
    out = colorize(lab, TRAIN_PALETTE)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 1].tolist() == [0, 0, 142] and out[1, 0].tolist() == [0, 0, 0]
    # a short palette is padded with black
    assert colorize(np.array([[3]]), np.array([[1, 2, 3]], np.uint8))[0, 0].tolist() == [0, 0, 0]


def test_lut_reproduces_the_official_trainid_file(shared_dir):
    base = shared_dir / "data/cityscapes_sample/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_"
    if not base.parent.is_dir():
        pytest.skip("Cityscapes sample absent")
    label_ids = np.asarray(Image.open(f"{base}labelIds.png"))
    train_ids = np.asarray(Image.open(f"{base}labelTrainIds.png"))
    # the sample's two files were downscaled separately, so a few boundary pixels disagree;
    # every labelId must still map to the trainId that the official file gives most of its pixels
    mapped = labelid_to_trainid(label_ids)
    assert (mapped == train_ids).mean() > 0.99
    for lid in np.unique(label_ids):
        values, counts = np.unique(train_ids[label_ids == lid], return_counts=True)
        assert mapped[label_ids == lid][0] == values[np.argmax(counts)], lid
