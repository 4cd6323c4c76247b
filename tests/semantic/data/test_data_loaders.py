"""Cityscapes and folder loaders on tiny trees, build_dataset and its errors, the real sample."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semantic.data import DataError, build_dataset
from semantic.data.cityscapes import CityscapesScenes

# labelIds 7 (road -> 0), 26 (car -> 13), 1 (ego vehicle -> 255), 23 (sky -> 10)
LABEL_IDS = np.array([[7, 7, 26, 26], [7, 1, 26, 23]], dtype=np.uint8)
INSTANCE_IDS = np.array([[7, 7, 26000, 26001], [7, 1, 26000, 23]], dtype=np.uint16)


def _write_cityscapes(root, split="val", cities=("aachen", "bonn"), per_city=2):
    for c, city in enumerate(cities):
        img_dir = root / "leftImg8bit" / split / city
        gt_dir = root / "gtFine" / split / city
        img_dir.mkdir(parents=True)
        gt_dir.mkdir(parents=True)
        for k in range(per_city):
            stem = f"{city}_{k:06d}_000019"
            rgb = np.full((2, 4, 3), 10 * (c * per_city + k), dtype=np.uint8)
            Image.fromarray(rgb).save(img_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(LABEL_IDS).save(gt_dir / f"{stem}_gtFine_labelIds.png")
            Image.fromarray(INSTANCE_IDS).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
    return root


def test_cityscapes_trainid_mode_maps_labels_and_keeps_thing_instances(tmp_path):
    ds = build_dataset("cityscapes", _write_cityscapes(tmp_path), "val", size=None, seed=0)
    assert len(ds) == 4 and ds.num_classes == 19 and ds.ignore_index == 255
    s = ds[0]
    assert s.labels.tolist() == [[0, 0, 13, 13], [0, 255, 13, 10]]
    assert s.instances.dtype == np.int32
    assert s.instances.tolist() == [[0, 0, 26000, 26001], [0, 0, 26000, 0]]
    # files come in sorted order: aachen first, then bonn
    assert ds[2].image[0, 0, 0] == 20 and ds.files[2][0].parent.name == "bonn"


def test_cityscapes_labelid_mode_and_raw_instances(tmp_path):
    ds = build_dataset(
        "cityscapes", _write_cityscapes(tmp_path), "val", seed=0, mode="labelid", instance_mode="raw"
    )
    assert ds.num_classes == 35 and ds.class_names[26] == "car"
    s = ds[1]
    assert s.labels.tolist() == LABEL_IDS.tolist()
    assert s.instances.tolist() == INSTANCE_IDS.astype(np.int32).tolist()
    gesco = CityscapesScenes(tmp_path, "val", mode="labelid", instance_mode="gesco")[0]
    assert gesco.instances.tolist() == [[7, 7, 255, 255], [7, 1, 255, 23]]


def test_cityscapes_resize_crop_and_num_images(tmp_path):
    ds = build_dataset("cityscapes", _write_cityscapes(tmp_path), "val", num_images=3, size=(4, 8), seed=0)
    assert len(ds) == 3
    s = ds[0]
    assert s.image.shape == (4, 8, 3)
    # nearest resize doubles every label
    assert s.labels.tolist()[0] == [0, 0, 0, 0, 13, 13, 13, 13]
    b = ds.batch([0, 2])
    assert b.labels.shape == (2, 4, 8) and b.indices.tolist() == [0, 2]
    cropped = CityscapesScenes(tmp_path, "val", size=(4, 8), crop=(2, 4))
    # the centre 2x4 window of the 4x8 map starts at row 1, column 2
    assert cropped[0].labels.tolist() == [[0, 0, 13, 13], [255, 255, 13, 13]]
    rand = CityscapesScenes(tmp_path, "val", size=(4, 8), crop=(2, 4), crop_mode="random", seed=5)
    assert np.array_equal(rand[1].labels, rand[1].labels) and rand[1].labels.shape == (2, 4)


def test_cityscapes_errors_say_what_was_expected_where(tmp_path):
    with pytest.raises(DataError, match=r"data.root: .*nope: expected a Cityscapes root"):
        build_dataset("cityscapes", tmp_path / "nope", "val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        build_dataset("cityscapes", tmp_path / "empty", "val")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == f"data.root: {tmp_path / 'empty'}: expected leftImg8bit/val/<city>/*_leftImg8bit.png, found none"
    root = _write_cityscapes(tmp_path / "cs")
    (root / "gtFine/val/bonn/bonn_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DataError, match=r"expected gtFine/val/bonn/bonn_000000_000019_gtFine_labelIds.png"):
        build_dataset("cityscapes", root, "val")
    assert issubclass(DataError, ValueError)
    with pytest.raises(DataError, match="expected a folder"):
        build_dataset("cityscapes", None, "val")


def _write_folder(root, classes_file="classes.txt", split=None):
    base = root / split if split else root
    (base / "images").mkdir(parents=True)
    (base / "labels").mkdir(parents=True)
    for k in range(3):
        Image.fromarray(np.full((4, 6, 3), 40 * k, np.uint8)).save(base / "images" / f"s{k}.png")
        lab = np.array([[0, 1, 2, 255, 1, 0]] * 4, dtype=np.uint8)
        Image.fromarray(lab).save(base / "labels" / f"s{k}.png")
    if classes_file == "classes.txt":
        (root / "classes.txt").write_text("sky 70 130 180\nground 128 64 128\nthing 0 0 142\n")
    else:
        (root / "classes.yaml").write_text("names: [sky, ground, thing]\n")
    return root


def test_folder_loader_with_txt_palette(tmp_path):
    ds = build_dataset("folder", _write_folder(tmp_path), "train", size=(8, 12))
    assert len(ds) == 3 and ds.num_classes == 3 and ds.class_names == ("sky", "ground", "thing")
    assert ds.palette[1].tolist() == [128, 64, 128]
    s = ds[2]
    assert s.image.shape == (8, 12, 3) and s.labels[0].tolist()[:8] == [0, 0, 1, 1, 2, 2, 255, 255]
    assert (s.instances == 0).all()


def test_folder_loader_with_yaml_and_split_folder(tmp_path):
    ds = build_dataset("folder", _write_folder(tmp_path, "classes.yaml", split="val"), "val")
    assert ds.class_names == ("sky", "ground", "thing") and ds[0].labels.shape == (4, 6)
    assert ds.batch(slice(None)).images.shape == (3, 4, 6, 3)


def test_folder_errors(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match=r"expected classes\.txt or classes\.yaml"):
        build_dataset("folder", tmp_path / "a", "train")
    root = _write_folder(tmp_path / "b")
    (root / "labels" / "s1.png").unlink()
    with pytest.raises(DataError, match=r"expected labels/s1.png for s1.png"):
        build_dataset("folder", root, "train")
    root = _write_folder(tmp_path / "c")
    Image.fromarray(np.full((4, 6), 7, np.uint8)).save(root / "labels" / "s0.png")
    with pytest.raises(DataError, match=r"expected labels 0\.\.2 or 255"):
        build_dataset("folder", root, "train")[0]


def test_build_dataset_synthetic_and_unknown_source():
    ds = build_dataset("synthetic", None, "test", num_images=3, size=(64, 128), seed=2)
    assert len(ds) == 3 and ds.num_classes == 19 and ds.palette[13].tolist() == [0, 0, 142]
    b = ds.batch(slice(0, 3))
    assert b.images.shape == (3, 64, 128, 3) and b.indices[0] == 1_010_000
    with pytest.raises(ValueError, match="expected one of"):
        build_dataset("imagenet", None, "val")
    with pytest.raises(ValueError, match="no options"):
        build_dataset("synthetic", None, "val", mode="labelid")


def test_real_cityscapes_sample(shared_dir):
    root = shared_dir / "data" / "cityscapes_sample"
    if not root.is_dir():
        pytest.skip("Cityscapes sample absent")
    ds = build_dataset("cityscapes", root, "val", size=(64, 128), seed=0)
    assert len(ds) == 1
    s = ds[0]
    assert s.image.shape == (64, 128, 3) and s.image.std() > 10
    present = set(np.unique(s.labels).tolist())
    # the frame shows road, sidewalk, building, vegetation, sky and cars
    assert {0, 1, 2, 8, 10, 13} <= present and present <= {*range(19), 255}
    things = np.unique(s.instances[s.instances > 0])
    assert things.size >= 3 and set((things // 1000).tolist()) <= {24, 26}
    full = build_dataset("cityscapes", root, "val", seed=0, mode="labelid")[0]
    assert full.labels.shape == (128, 256) and {7, 8, 11, 21, 23, 26} <= set(np.unique(full.labels).tolist())
