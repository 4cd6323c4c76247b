"""Confusion-matrix segmentation metrics: per-class IoU, mIoU, pixel accuracy.

Convention (the Cityscapes evaluation convention): the confusion matrix counts pixels whose
target is not ``ignore_index``; rows are target classes, columns predicted classes. The IoU of
class ``c`` is ``TP / (TP + FP + FN)``. A class whose union ``TP + FP + FN`` is zero (absent
from both the target and the prediction) has an undefined IoU (NaN) and is left out of the
mean, so ``miou`` is the mean over the classes whose union is non-empty. A class that is
predicted but absent from the target has IoU 0 and counts.

Example:
    >>> import torch
    >>> cm = ConfusionMatrix(num_classes=3)
    >>> pred = torch.tensor([[[0, 1], [1, 1]]])
    >>> target = torch.tensor([[[0, 1], [2, 255]]])
    >>> cm.update(pred, target)
    >>> cm.per_class_iou().tolist()
    [1.0, 0.5, 0.0]
    >>> round(cm.miou(), 4), round(cm.pixel_accuracy(), 4)
    (0.5, 0.6667)
"""

from __future__ import annotations

import torch

from semantic.data.labels import IGNORE_INDEX

__all__ = [
    "ConfusionMatrix",
    "confusion_per_image",
    "iou_from_confusion",
    "miou_from_confusion",
    "pixel_accuracy_from_confusion",
]


def _check_labels(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a prediction/target pair and return flat int64 (pred, target) of valid pixels."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dtype.is_floating_point or target.dtype.is_floating_point or pred.dtype == torch.bool:
        raise TypeError("pred and target must be integer label maps (argmax the logits first)")
    pred = pred.reshape(-1).to(torch.int64)
    target = target.reshape(-1).to(torch.int64)
    valid = target != ignore_index
    pred, target = pred[valid], target[valid]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(
            f"target holds labels outside [0, {num_classes}) other than ignore_index={ignore_index}"
        )
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"pred holds labels outside [0, {num_classes}) at non-ignored pixels")
    return pred, target


def confusion_per_image(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """One confusion matrix per image, from a single ``bincount``.

    Args:
        pred: int tensor [B, H, W], predicted class per pixel in ``[0, num_classes)``.
        target: int tensor [B, H, W], target class per pixel or ``ignore_index``.
        num_classes: number of classes C.
        ignore_index: target value that is not counted.

    Returns:
        int64 tensor [B, C, C] (on ``pred``'s device); ``[b, t, p]`` counts pixels of image ``b``
        with target ``t`` and prediction ``p``.

    Example:
        >>> import torch
        >>> p = torch.tensor([[[0, 1]], [[1, 1]]])
        >>> confusion_per_image(p, torch.tensor([[[0, 1]], [[0, 255]]]), 2).tolist()
        [[[1, 0], [0, 1]], [[0, 1], [0, 0]]]
    """
    if pred.ndim != 3:
        raise ValueError(f"expected [B, H, W] label maps, got shape {tuple(pred.shape)}")
    batch = pred.shape[0]
    image_index = torch.arange(batch, device=pred.device).view(batch, 1, 1).expand_as(pred)
    valid_target = target.reshape(-1).to(torch.int64) != ignore_index
    flat_pred, flat_target = _check_labels(pred, target, num_classes, ignore_index)
    flat_image = image_index.reshape(-1)[valid_target]
    code = (flat_image * num_classes + flat_target) * num_classes + flat_pred
    counts = torch.bincount(code, minlength=batch * num_classes * num_classes)
    return counts.view(batch, num_classes, num_classes)


def iou_from_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """Per-class IoU from confusion matrices [..., C, C]; NaN where the union is empty.

    Returns:
        float64 tensor [..., C].
    """
    confusion = confusion.to(torch.float64)
    tp = torch.diagonal(confusion, dim1=-2, dim2=-1)
    union = confusion.sum(-1) + confusion.sum(-2) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def miou_from_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """mIoU over the classes with a non-empty union; [..., C, C] -> float64 [...] (NaN if none)."""
    return torch.nanmean(iou_from_confusion(confusion), dim=-1)


def pixel_accuracy_from_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """Fraction of counted pixels predicted correctly; [..., C, C] -> float64 [...]."""
    confusion = confusion.to(torch.float64)
    correct = torch.diagonal(confusion, dim1=-2, dim2=-1).sum(-1)
    total = confusion.sum((-2, -1))
    return torch.where(total > 0, correct / total.clamp_min(1), torch.full_like(total, torch.nan))


class ConfusionMatrix:
    """Accumulates a [C, C] confusion matrix over batches (rows: target, columns: prediction).

    Args:
        num_classes: number of classes C (19 for Cityscapes trainIds).
        ignore_index: target value that is not counted (255).
        keep_per_image: also keep one [C, C] matrix per image (for bootstrap intervals and
            per-image IoU); costs C*C*8 bytes per image.

    ``update(pred, target)`` takes int tensors [B, H, W]. ``miou()`` is the mean IoU over the
    classes whose union TP+FP+FN is non-empty (see the module docstring).
    """

    def __init__(
        self, num_classes: int, ignore_index: int = IGNORE_INDEX, keep_per_image: bool = False
    ) -> None:
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.keep_per_image = keep_per_image
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self._per_image: list[torch.Tensor] = []

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.matrix.zero_()
        self._per_image.clear()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Count a batch: ``pred`` and ``target`` int tensors [B, H, W] (or [H, W])."""
        if pred.ndim == 2:
            pred, target = pred.unsqueeze(0), target.unsqueeze(0)
        if self.keep_per_image:
            per_image = confusion_per_image(pred, target, self.num_classes, self.ignore_index)
            per_image = per_image.cpu()
            self._per_image.append(per_image)
            self.matrix += per_image.sum(0)
            return
        flat_pred, flat_target = _check_labels(pred, target, self.num_classes, self.ignore_index)
        counts = torch.bincount(
            flat_target * self.num_classes + flat_pred, minlength=self.num_classes**2
        )
        self.matrix += counts.view(self.num_classes, self.num_classes).cpu()

    def per_image(self) -> torch.Tensor:
        """int64 [N, C, C]: the matrices of every image counted (needs ``keep_per_image``)."""
        if not self.keep_per_image:
            raise RuntimeError("construct ConfusionMatrix(..., keep_per_image=True) for this")
        if not self._per_image:
            return torch.zeros(0, self.num_classes, self.num_classes, dtype=torch.int64)
        return torch.cat(self._per_image)

    def per_image_iou(self) -> torch.Tensor:
        """float64 [N, C]: IoU of each class in each image (NaN where the union is empty)."""
        return iou_from_confusion(self.per_image())

    def per_image_miou(self) -> torch.Tensor:
        """float64 [N]: each image's mIoU over the classes with a non-empty union in it."""
        return miou_from_confusion(self.per_image())

    def per_class_iou(self) -> torch.Tensor:
        """float64 [C]: IoU per class over everything counted; NaN where the union is empty."""
        return iou_from_confusion(self.matrix)

    def miou(self) -> float:
        """Mean IoU over the classes whose union is non-empty (NaN before any pixel counted)."""
        return float(miou_from_confusion(self.matrix))

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted (non-ignored) pixels."""
        return float(pixel_accuracy_from_confusion(self.matrix))
