"""The segmenter that scores mIoU of reconstructed images: network, training, loading.

Example:
    >>> import torch
    >>> logits = Segmenter()(torch.rand(1, 3, 32, 64))
    >>> logits.shape
    torch.Size([1, 19, 32, 64])
"""

from semantic.segmenter.io import (
    TorchScriptSegmenter,
    is_torchscript_archive,
    load_segmenter,
    make_scorer,
    predict_labels,
    save_weights,
)
from semantic.segmenter.model import Segmenter, SegmenterConfig
from semantic.segmenter.train import TrainConfig, TrainResult, checkpoint_path, train_segmenter

__all__ = [
    "Segmenter",
    "SegmenterConfig",
    "TorchScriptSegmenter",
    "TrainConfig",
    "TrainResult",
    "checkpoint_path",
    "is_torchscript_archive",
    "load_segmenter",
    "make_scorer",
    "predict_labels",
    "save_weights",
    "train_segmenter",
]
