"""The procedural street-scene generator: determinism, shapes, classes, instances, splits."""

from __future__ import annotations

import numpy as np
import pytest

from semantic.data.labels import COUNTABLE_TRAIN_IDS, TRAINID_TO_LABELID
from semantic.data.synthetic import (
    SPLITS,
    TEST_RANGE,
    TRAIN_RANGE,
    VAL_RANGE,
    SyntheticStreetScenes,
)


@pytest.fixture(scope="module")
def hundred():
    gen = SyntheticStreetScenes((128, 256), seed=0)
    return gen.batch(range(100))


def test_same_seed_and_index_give_identical_scenes():
    a = SyntheticStreetScenes((64, 128), seed=3).scene(17)
    b = SyntheticStreetScenes((64, 128), seed=3).scene(17)
    assert a.index == 17
    for x, y in ((a.image, b.image), (a.labels, b.labels), (a.instances, b.instances)):
        assert np.array_equal(x, y)


def test_order_of_generation_does_not_matter():
    gen = SyntheticStreetScenes((64, 128), seed=0)
    batch = gen.batch([5, 2, 9])
    assert np.array_equal(batch.images[1], gen.scene(2).image)
    assert batch.indices.tolist() == [5, 2, 9]


def test_different_index_or_seed_gives_a_different_scene():
    gen = SyntheticStreetScenes((64, 128), seed=0)
    s0, s1 = gen.scene(0), gen.scene(1)
    assert not np.array_equal(s0.image, s1.image)
    assert not np.array_equal(s0.labels, s1.labels)
    other = SyntheticStreetScenes((64, 128), seed=1).scene(0)
    assert not np.array_equal(s0.labels, other.labels)


@pytest.mark.parametrize("size", [(64, 128), (128, 256), (256, 512), (96, 96)])
def test_shapes_and_dtypes(size):
    gen = SyntheticStreetScenes(size, seed=0)
    s = gen.scene(4)
    assert s.image.shape == (*size, 3) and s.image.dtype == np.uint8
    assert s.labels.shape == size and s.labels.dtype == np.uint8
    assert s.instances.shape == size and s.instances.dtype == np.int32
    valid = s.labels[s.labels != 255]
    assert valid.max() <= 18
    b = gen.batch([0, 1])
    assert b.images.shape == (2, *size, 3) and b.labels.shape == (2, *size)
    assert b.instances.dtype == np.int32 and len(b) == 2


def test_sizes_must_be_multiples_of_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        SyntheticStreetScenes((100, 256))


def test_geometry_scales_with_size():
    small = SyntheticStreetScenes((64, 128), seed=0)
    large = SyntheticStreetScenes((256, 512), seed=0)
    for i in range(3):
        # nearest-downsampled large labels agree with the small ones almost everywhere
        agree = (small.scene(i).labels == large.scene(i).labels[2::4, 2::4]).mean()
        assert agree > 0.9


def test_every_class_appears_and_none_dominates(hundred):
    labels = hundred.labels
    counts = np.stack([np.bincount(lab.ravel(), minlength=256) for lab in labels])
    frac = counts / labels[0].size
    present = (counts[:, :19] > 0).sum(axis=0)
    assert (present >= 1).all(), f"classes never drawn: {np.nonzero(present == 0)[0]}"
    assert frac[:, :19].mean(axis=0).max() < 0.6
    # rare classes show up often enough to learn (train, rider, motorcycle, wall, terrain, bus, truck)
    for cls in (3, 9, 12, 14, 15, 16, 17):
        assert present[cls] >= 8, (cls, present[cls])
    # the ignore label is used only on the ego bonnet, a minority of pixels
    assert frac[:, 255].mean() < 0.05


def test_instances_only_on_countable_classes_with_one_class_each(hundred):
    countable = np.isin(hundred.labels, COUNTABLE_TRAIN_IDS)
    assert (hundred.instances[~countable] == 0).all()
    assert (hundred.instances[countable] > 0).all()
    for b in range(len(hundred)):
        inst, lab = hundred.instances[b], hundred.labels[b]
        for obj in np.unique(inst[inst > 0]):
            classes = np.unique(lab[inst == obj])
            assert classes.size == 1, (b, obj, classes)
            # Cityscapes convention: labelId * 1000 + k
            assert obj // 1000 == TRAINID_TO_LABELID[classes[0]]


def test_objects_are_separate_instances(hundred):
    # scenes hold several cars, each with its own id
    cars = [np.unique(i[lab == 13]).size for i, lab in zip(hundred.instances, hundred.labels)]
    assert max(cars) >= 4 and np.mean(cars) > 2


def test_split_ranges_are_disjoint_and_views_index_them():
    ranges = [TRAIN_RANGE, VAL_RANGE, TEST_RANGE]
    for a in range(3):
        for b in range(a + 1, 3):
            assert max(ranges[a].start, ranges[b].start) >= min(ranges[a].stop, ranges[b].stop)
    gen = SyntheticStreetScenes((64, 128), seed=0)
    val = gen.split("val")
    assert len(val) == len(SPLITS["val"]) == 10_000
    assert val[0].index == VAL_RANGE.start
    assert np.array_equal(val[1].labels, gen.scene(VAL_RANGE.start + 1).labels)
    assert val[-1].index == VAL_RANGE.stop - 1
    assert gen.split("train", num_images=5).batch(slice(1, 3)).indices.tolist() == [1, 2]
    with pytest.raises(ValueError, match="unknown split"):
        gen.split("dev")
    with pytest.raises(IndexError):
        gen.split("test", num_images=3)[3]
