"""Percentile-bootstrap confidence intervals over images.

Two statistics are supported:

* the mean of a per-image metric (PSNR, SSIM, per-image mIoU, ...): resample images with
  replacement and take the mean of each resample;
* the data-set mIoU: resample images with replacement, add up their confusion matrices and
  recompute the mIoU of the pooled matrix (so the interval is for the same quantity that is
  reported, not for the mean of per-image mIoUs).

A resample is drawn as multinomial counts per image (``counts[r, i]`` = how often image ``i``
appears in resample ``r``), so the pooled statistics are one matrix product, not a Python
loop. The interval is the ``(alpha/2, 1 - alpha/2)`` quantile pair of the resampled statistic
(Efron & Tibshirani 1993, ch. 13, percentile method; linear interpolation between order
statistics).

Binomial intervals for BER/BLER counts are ``phy.stats.binomial_ci`` (Clopper-Pearson or
Wilson), re-exported here so that every interval of a result row comes from one module.

Example:
    >>> import torch
    >>> ci = bootstrap_mean_ci(torch.tensor([1.0, 2.0, 3.0, 4.0]), generator=0, n_resamples=500)
    >>> ci.estimate, ci.low <= 2.5 <= ci.high
    (2.5, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from phy.stats import binomial_ci
from semantic.metrics.miou import miou_from_confusion

__all__ = [
    "BootstrapInterval",
    "binomial_ci",
    "bootstrap_mean_ci",
    "bootstrap_miou_ci",
    "bootstrap_miou_ratio_ci",
    "resample_counts",
]


@dataclass(frozen=True)
class BootstrapInterval:
    """A point estimate with its percentile-bootstrap interval.

    Attributes:
        estimate: the statistic on the full sample.
        low, high: interval bounds.
        confidence: nominal coverage, e.g. 0.95.
        n_items: number of images resampled.
        n_resamples: number of bootstrap resamples.
        method: always ``"percentile"``.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_items: int
    n_resamples: int
    method: str = "percentile"


def _as_generator(generator: torch.Generator | int) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(generator))


def resample_counts(
    n_items: int, n_resamples: int, generator: torch.Generator | int
) -> torch.Tensor:
    """Bootstrap resamples as counts: float64 [n_resamples, n_items], each row sums to n_items.

    Row ``r`` says how often each item is drawn in resample ``r`` (draws with replacement).
    """
    gen = _as_generator(generator)
    draws = torch.randint(0, n_items, (n_resamples, n_items), generator=gen)
    counts = torch.zeros(n_resamples, n_items, dtype=torch.float64)
    counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    return counts


def _percentile_interval(
    estimate: float, stats: np.ndarray, confidence: float, n_items: int
) -> BootstrapInterval:
    alpha = 1.0 - confidence
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return BootstrapInterval(
        estimate=float(estimate),
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_items=n_items,
        n_resamples=len(stats),
    )


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")


def bootstrap_mean_ci(
    values: torch.Tensor | np.ndarray,
    *,
    generator: torch.Generator | int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> BootstrapInterval:
    """Percentile-bootstrap interval of the mean of per-image values.

    Args:
        values: [N] per-image metric values (finite).
        generator: torch.Generator or integer seed; the same seed gives the same interval.
        n_resamples: number of bootstrap resamples.
        confidence: nominal coverage.

    Returns:
        BootstrapInterval with ``estimate`` = the sample mean.
    """
    _check(confidence, n_resamples)
    x = torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(-1)
    if x.numel() == 0:
        raise ValueError("no values to bootstrap")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("values must be finite (drop or resolve NaN/inf per-image values first)")
    counts = resample_counts(x.numel(), n_resamples, generator)
    stats = (counts @ x) / x.numel()
    return _percentile_interval(float(x.mean()), stats.numpy(), confidence, x.numel())


def bootstrap_miou_ci(
    confusions: torch.Tensor,
    *,
    generator: torch.Generator | int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> BootstrapInterval:
    """Percentile-bootstrap interval of the data-set mIoU from per-image confusion matrices.

    Args:
        confusions: int [N, C, C] per-image confusion matrices (``ConfusionMatrix(...,
            keep_per_image=True).per_image()`` or ``confusion_per_image``).
        generator: torch.Generator or integer seed.
        n_resamples: number of bootstrap resamples.
        confidence: nominal coverage.

    Returns:
        BootstrapInterval with ``estimate`` = the mIoU of the summed matrix (classes with an
        empty union in a resample are left out of that resample's mean, as in ``miou``).
    """
    _check(confidence, n_resamples)
    conf = _check_confusions(confusions)
    counts = resample_counts(conf.shape[0], n_resamples, generator)
    stats = _resampled_miou(conf, counts)
    estimate = float(miou_from_confusion(conf.sum(0)))
    return _percentile_interval(estimate, stats.numpy(), confidence, conf.shape[0])


def bootstrap_miou_ratio_ci(
    confusions: torch.Tensor,
    reference: torch.Tensor,
    *,
    generator: torch.Generator | int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> BootstrapInterval:
    """Paired percentile-bootstrap interval of ``mIoU(confusions) / mIoU(reference)``.

    Both sets score the same N images (e.g. regenerated and original images against the same
    maps); each resample draws the same images for numerator and denominator, so the interval
    reflects the ratio's own spread, not the two mIoUs' independent spreads.

    Args:
        confusions, reference: int [N, C, C] per-image confusion matrices, same N and C.
        generator, n_resamples, confidence: as :func:`bootstrap_miou_ci`.

    Returns:
        BootstrapInterval with ``estimate`` = ratio of the summed matrices' mIoUs.
    """
    _check(confidence, n_resamples)
    num, den = _check_confusions(confusions), _check_confusions(reference)
    if num.shape != den.shape:
        raise ValueError(f"paired sets differ in shape: {tuple(num.shape)} vs {tuple(den.shape)}")
    counts = resample_counts(num.shape[0], n_resamples, generator)
    stats = _resampled_miou(num, counts) / _resampled_miou(den, counts)
    estimate = float(miou_from_confusion(num.sum(0)) / miou_from_confusion(den.sum(0)))
    return _percentile_interval(estimate, stats.numpy(), confidence, num.shape[0])


def _check_confusions(confusions: torch.Tensor) -> torch.Tensor:
    if confusions.ndim != 3 or confusions.shape[1] != confusions.shape[2]:
        raise ValueError(f"expected [N, C, C] confusion matrices, got {tuple(confusions.shape)}")
    if confusions.shape[0] == 0:
        raise ValueError("no images to bootstrap")
    return confusions.to(torch.float64).cpu()


def _resampled_miou(conf: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """float64 [R]: mIoU of each resample (``counts`` [R, N]) of per-image matrices [N, C, C].

    Only TP, target totals and prediction totals enter the IoU, so those are pooled per
    resample; classes with an empty union in a resample are left out of its mean."""
    tp = torch.diagonal(conf, dim1=1, dim2=2)
    tp_r, target_r, pred_r = counts @ tp, counts @ conf.sum(2), counts @ conf.sum(1)
    union_r = target_r + pred_r - tp_r
    iou_r = torch.where(union_r > 0, tp_r / union_r.clamp_min(1), torch.nan)
    return torch.nanmean(iou_r, dim=1)
