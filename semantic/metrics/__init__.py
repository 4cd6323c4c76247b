"""Metrics of the semantic link: mIoU, bootstrap intervals, FID/KID, PSNR/SSIM/MS-SSIM.

``semantic.metrics.fid`` loads the Inception network only when an extractor is built.
"""

from semantic.metrics.fid import (
    FeatureStats,
    FidResult,
    InceptionFeatures,
    KidEstimate,
    ReferenceStatsCache,
    fid_between_folders,
    fid_from_features,
    fid_from_stats,
    frechet_distance,
    kernel_inception_distance,
    preprocess,
)
from semantic.metrics.intervals import (
    BootstrapInterval,
    binomial_ci,
    bootstrap_mean_ci,
    bootstrap_miou_ci,
)
from semantic.metrics.miou import (
    ConfusionMatrix,
    confusion_per_image,
    iou_from_confusion,
    miou_from_confusion,
    pixel_accuracy_from_confusion,
)
from semantic.metrics.pixel import ms_ssim, psnr, ssim

__all__ = [
    "BootstrapInterval",
    "ConfusionMatrix",
    "FeatureStats",
    "FidResult",
    "InceptionFeatures",
    "KidEstimate",
    "ReferenceStatsCache",
    "binomial_ci",
    "bootstrap_mean_ci",
    "bootstrap_miou_ci",
    "confusion_per_image",
    "fid_between_folders",
    "fid_from_features",
    "fid_from_stats",
    "frechet_distance",
    "iou_from_confusion",
    "kernel_inception_distance",
    "miou_from_confusion",
    "ms_ssim",
    "pixel_accuracy_from_confusion",
    "preprocess",
    "psnr",
    "ssim",
]
