"""Confusion matrix, IoU and mIoU against a pixel-by-pixel brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semantic.metrics.miou import (
    ConfusionMatrix,
    confusion_per_image,
    iou_from_confusion,
    miou_from_confusion,
)


def _brute_force(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int):
    """Per-class IoU, mIoU and pixel accuracy by looping over pixels and classes."""
    tp = [0] * num_classes
    fp = [0] * num_classes
    fn = [0] * num_classes
    correct = counted = 0
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
        if t == ignore:
            continue
        counted += 1
        if p == t:
            tp[t] += 1
            correct += 1
        else:
            fp[p] += 1
            fn[t] += 1
    iou = [
        tp[c] / (tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else math.nan
        for c in range(num_classes)
    ]
    defined = [v for v in iou if not math.isnan(v)]
    return iou, sum(defined) / len(defined), correct / counted


def test_confusion_matrix_matches_brute_force_with_ignore_pixels():
    gen = np.random.default_rng(7)
    num_classes = 6
    cm = ConfusionMatrix(num_classes, ignore_index=255)
    preds, targets = [], []
    for _ in range(3):  # several updates accumulate
        target = gen.integers(0, num_classes - 1, (2, 9, 11))  # class 5 never in the target
        target[gen.random(target.shape) < 0.2] = 255
        pred = np.where(gen.random(target.shape) < 0.6, np.minimum(target, 4), 0)
        pred = np.where(gen.random(target.shape) < 0.1, 5, pred)  # class 5: only false positives
        pred[0, 0, 0] = 3
        cm.update(torch.from_numpy(pred), torch.from_numpy(target).to(torch.uint8))
        preds.append(pred)
        targets.append(target)
    iou, miou, acc = _brute_force(np.stack(preds), np.stack(targets), num_classes, 255)
    np.testing.assert_allclose(cm.per_class_iou().numpy(), iou, rtol=0, atol=1e-15)
    assert cm.per_class_iou()[5] == 0.0  # predicted but absent from the target: counts as 0
    assert cm.miou() == pytest.approx(miou, abs=1e-15)
    assert cm.pixel_accuracy() == pytest.approx(acc, abs=1e-15)
    assert int(cm.matrix.sum()) == sum(int((t != 255).sum()) for t in targets)


def test_class_absent_from_prediction_and_target_is_left_out_of_the_mean():
    cm = ConfusionMatrix(4)
    cm.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 255]]))
    iou = cm.per_class_iou()
    assert iou[0] == 0.5 and iou[1] == 0.5
    assert torch.isnan(iou[2]) and torch.isnan(iou[3])
    assert cm.miou() == 0.5
    assert cm.pixel_accuracy() == pytest.approx(2 / 3)


def test_per_image_confusions_sum_to_the_dataset_matrix_and_match_per_image_brute_force():
    gen = np.random.default_rng(3)
    target = gen.integers(0, 5, (4, 7, 6))
    target[gen.random(target.shape) < 0.15] = 255
    pred = gen.integers(0, 5, target.shape)
    cm = ConfusionMatrix(5, keep_per_image=True)
    cm.update(torch.from_numpy(pred[:3]), torch.from_numpy(target[:3]))
    cm.update(torch.from_numpy(pred[3:]), torch.from_numpy(target[3:]))
    per_image = cm.per_image()
    assert per_image.shape == (4, 5, 5)
    assert torch.equal(per_image.sum(0), cm.matrix)
    for b in range(4):
        iou, miou, _ = _brute_force(pred[b], target[b], 5, 255)
        np.testing.assert_allclose(cm.per_image_iou()[b].numpy(), iou, atol=1e-15)
        assert float(cm.per_image_miou()[b]) == pytest.approx(miou, abs=1e-15)
    direct = confusion_per_image(torch.from_numpy(pred), torch.from_numpy(target), 5)
    assert torch.equal(direct, per_image)


def test_functional_forms_agree_with_the_accumulator():
    conf = torch.tensor([[3, 1], [0, 0]])
    np.testing.assert_allclose(iou_from_confusion(conf).numpy(), [0.75, 0.0])
    assert float(miou_from_confusion(conf)) == pytest.approx(0.375)


@pytest.mark.parametrize(
    ("pred", "target", "error"),
    [
        ([[0, 4]], [[0, 1]], ValueError),  # prediction out of range
        ([[0, 1]], [[0, 7]], ValueError),  # target out of range and not ignore
        ([[0.0, 1.0]], [[0, 1]], TypeError),  # float logits are not labels
    ],
)
def test_invalid_labels_raise(pred, target, error):
    cm = ConfusionMatrix(3)
    with pytest.raises(error):
        cm.update(torch.tensor(pred), torch.tensor(target))


def test_prediction_outside_range_at_ignored_pixel_is_fine():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 200]]), torch.tensor([[0, 255]]))
    assert cm.miou() == 1.0
