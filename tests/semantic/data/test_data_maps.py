"""Instance edges (SDM/GESCO rule), one-hot maps and the preview sheet."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from semantic.data import build_dataset, instance_edges, one_hot, semantic_map, write_preview


def test_instance_edges_on_a_hand_made_map():
    inst = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 5, 5, 0, 0],
            [0, 5, 5, 0, 7],
            [0, 0, 0, 0, 7],
        ]
    )
    expected = np.array(
        [
            [0, 1, 1, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1],
        ],
        dtype=bool,
    )
    assert np.array_equal(instance_edges(inst), expected)
    # torch in, torch out; batch dimensions pass through
    t = instance_edges(torch.as_tensor(np.stack([inst, np.zeros_like(inst)])))
    assert t.dtype == torch.bool and t.shape == (2, 4, 5)
    assert torch.equal(t[0], torch.as_tensor(expected)) and not t[1].any()


def test_one_hot_and_ignore():
    lab = torch.tensor([[[0, 2], [255, 1]]])
    out = one_hot(lab, 3)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.float32
    assert out[0, :, 0, 1].tolist() == [0.0, 0.0, 1.0]
    assert out[0, :, 1, 0].tolist() == [0.0, 0.0, 0.0]
    assert out.sum().item() == 3.0
    try:
        one_hot(torch.tensor([[[3]]]), 3)
    except ValueError as err:
        assert "0..2" in str(err)
    else:
        raise AssertionError("out-of-range label accepted")


def test_semantic_map_appends_edges_last():
    lab = np.array([[[1, 1], [1, 1]]], dtype=np.uint8)
    inst = np.array([[[0, 26000], [0, 26000]]], dtype=np.int32)
    out = semantic_map(lab, 2, inst)
    assert out.shape == (1, 3, 2, 2)
    assert out[0, 1].sum().item() == 4.0 and out[0, 2].sum().item() == 4.0
    assert semantic_map(lab, 2).shape == (1, 2, 2, 2)


def test_write_preview_writes_a_grid(tmp_path):
    ds = build_dataset("synthetic", None, "val", num_images=3, size=(64, 128), seed=0)
    path = write_preview(ds, 2, tmp_path / "out")
    img = np.asarray(Image.open(path))
    assert path.exists() and img.shape == (2 * 64 + 2, 3 * 128 + 4, 3)
    assert np.array_equal(img[:64, :128], ds[0].image)


def test_class_statistics_counts_pixels_and_scenes():
    from semantic.data import Scene, class_statistics

    class Tiny:
        num_classes = 3
        ignore_index = 255

        def __len__(self):
            return 2

        def __getitem__(self, i):
            lab = np.array([[0, 0], [1, 255]] if i == 0 else [[2, 2], [2, 2]], dtype=np.uint8)
            return Scene(np.zeros((2, 2, 3), np.uint8), lab, np.zeros((2, 2), np.int32), i)

    st = class_statistics(Tiny())
    assert st.num_images == 2
    assert st.pixel_fraction.tolist() == [0.25, 0.125, 0.5]
    assert st.image_count.tolist() == [1, 1, 1] and st.ignore_fraction == 0.125
    assert "ignore" in st.table(["a", "b", "c"])
