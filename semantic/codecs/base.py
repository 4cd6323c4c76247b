"""Common types of the codecs: the decode result, the codec protocols and input checks.

The contract of every codec: ``encode(array) -> bytes`` returns exactly the bytes that are
transmitted, and ``decode(data, expected_shape)`` needs nothing else (besides the codec's
fixed configuration, known to both ends). Decoding damaged bytes never raises and never
returns an array of the wrong shape or dtype: it returns ``DecodeResult(ok=False, ...)``.
Wrong *arguments* (a float image, a negative shape) are programming errors and raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class DecodeResult:
    """Outcome of decoding one received byte string.

    Attributes:
        ok: ``True`` when ``array`` holds a decoded array of the expected shape and dtype.
        array: the decoded ``uint8`` array (``[H, W]`` label map or ``[H, W, 3]`` image), or
            ``None`` when decoding failed.
        error: why decoding failed (``None`` when ``ok``).
    """

    ok: bool
    array: np.ndarray | None
    error: str | None = None

    @classmethod
    def success(cls, array: np.ndarray) -> DecodeResult:
        return cls(True, array, None)

    @classmethod
    def failure(cls, error: str) -> DecodeResult:
        return cls(False, None, error)


@runtime_checkable
class MapCodec(Protocol):
    """Lossless codec of ``uint8 [H, W]`` label maps."""

    name: str

    def encode(self, labels: np.ndarray) -> bytes: ...

    def decode(self, data: bytes, expected_shape: tuple[int, int]) -> DecodeResult: ...


@runtime_checkable
class ImageCodec(Protocol):
    """Lossy codec of ``uint8 [H, W, 3]`` RGB images."""

    name: str

    def encode(self, image: np.ndarray) -> bytes: ...

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult: ...


def check_labels(
    labels: np.ndarray, num_classes: int | None, ignore_index: int | None
) -> np.ndarray:
    """Validate an encoder input label map: ``uint8 [H, W]`` with valid values."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint8 or labels.ndim != 2 or labels.size == 0:
        raise ValueError(f"label map must be uint8 [H, W], got {labels.dtype} {labels.shape}")
    if labels.shape[0] > 65535 or labels.shape[1] > 65535:
        raise ValueError(f"label map too large: {labels.shape}")
    if num_classes is not None and not labels_in_range(labels, num_classes, ignore_index):
        raise ValueError(f"label values outside [0, {num_classes}) ∪ {{{ignore_index}}}")
    return np.ascontiguousarray(labels)


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an encoder input image: ``uint8 [H, W, 3]``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if image.shape[0] > 16384 or image.shape[1] > 16384:
        raise ValueError(f"image too large: {image.shape}")
    return np.ascontiguousarray(image)


def check_expected_shape(expected_shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Validate the ``expected_shape`` argument of ``decode`` (a programming error raises)."""
    shape = tuple(int(s) for s in expected_shape)
    if len(shape) != ndim or any(s <= 0 for s in shape):
        raise ValueError(f"expected_shape must be {ndim} positive ints, got {expected_shape!r}")
    if ndim == 3 and shape[2] != 3:
        raise ValueError(f"images have 3 channels, got expected_shape {expected_shape!r}")
    return shape


def labels_in_range(labels: np.ndarray, num_classes: int, ignore_index: int | None) -> bool:
    """``True`` when every value is a class index ``< num_classes`` or ``ignore_index``."""
    valid = labels < num_classes
    if ignore_index is not None:
        valid |= labels == ignore_index
    return bool(valid.all())


def guarded_decode(
    decode_fn: Callable[[], np.ndarray],
    expected_shape: tuple[int, ...],
    validate: Callable[[np.ndarray], str | None] | None = None,
) -> DecodeResult:
    """Run ``decode_fn`` and turn every library error or wrong output into a failure.

    Args:
        decode_fn: decodes the bytes; may raise anything (library errors).
        expected_shape: the only acceptable output shape (dtype must be ``uint8``).
        validate: optional extra check returning an error message or ``None``.
    """
    try:
        array = decode_fn()
    except Exception as exc:  # library errors on damaged data are reported, never raised
        return DecodeResult.failure(f"{type(exc).__name__}: {exc}")
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        return DecodeResult.failure(f"decoder returned {type(array).__name__} of wrong dtype")
    if array.shape != tuple(expected_shape):
        return DecodeResult.failure(
            f"decoded shape {array.shape} != expected {tuple(expected_shape)}"
        )
    if validate is not None:
        message = validate(array)
        if message is not None:
            return DecodeResult.failure(message)
    return DecodeResult.success(np.ascontiguousarray(array))
