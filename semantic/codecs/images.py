"""Lossy codecs for ``uint8 [H, W, 3]`` coarse images, alternatives to HEVC (BPG's role).

JPEG, WebP, AVIF and JPEG XL through imagecodecs, each with its own ``quality`` (0..100,
higher is better). Unlike :class:`~semantic.codecs.hevc.HevcImageCodec`, these transmit the
library's file as is, so their byte counts include their file headers: JPEG's markers and
tables (JFIF segment included), WebP's RIFF header, JPEG XL's size header and AVIF's ISOBMFF
container (about 300 bytes).

:class:`ScaledImageCodec` wraps any image codec with SPIC-style downscaling before coding and
bicubic upsampling after decoding.

Example:
    >>> codec = ScaledImageCodec(JpegImageCodec(quality=50), factor=2)
    >>> image = np.zeros((32, 64, 3), np.uint8)
    >>> codec.decode(codec.encode(image), (32, 64, 3)).array.shape
    (32, 64, 3)
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from semantic.codecs.av1 import check_avif_size
from semantic.codecs.base import (
    DecodeResult,
    ImageCodec,
    check_expected_shape,
    check_image,
    guarded_decode,
)
from semantic.codecs.resample import DOWNSCALE_METHODS, coarse_size, downscale, upscale


def _check_quality(quality: int) -> int:
    if not (isinstance(quality, int) and 0 <= quality <= 100):
        raise ValueError(f"quality must be an int in 0..100, got {quality!r}")
    return quality


def _check_speed(name: str, value: int, low: int, high: int) -> int:
    if not (isinstance(value, int) and low <= value <= high):
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


class JpegImageCodec:
    """Baseline JPEG (libjpeg-turbo), 4:2:0 chroma, optimised Huffman tables.

    Args:
        quality: IJG quality 0..100.

    Shapes: ``encode(uint8 [H, W, 3]) -> bytes``; ``decode(bytes, (H, W, 3)) -> DecodeResult``.
    """

    name = "jpeg"

    def __init__(self, quality: int = 75) -> None:
        self.quality = _check_quality(quality)

    def encode(self, image: np.ndarray) -> bytes:
        image = check_image(image)
        return bytes(
            imagecodecs.jpeg8_encode(image, level=self.quality, subsampling="420", optimize=True)
        )

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 3)
        out = np.empty(shape, np.uint8)
        return guarded_decode(lambda: imagecodecs.jpeg8_decode(bytes(data), out=out), shape)


class WebpImageCodec:
    """Lossy WebP (VP8 intra, 4:2:0).

    Args:
        quality: 0..100.
        method: encoder effort 0 (fast) .. 6 (best).
    """

    name = "webp"

    def __init__(self, quality: int = 75, method: int = 6) -> None:
        self.quality = _check_quality(quality)
        self.method = _check_speed("method", method, 0, 6)

    def encode(self, image: np.ndarray) -> bytes:
        image = check_image(image)
        if image.shape[0] > 16383 or image.shape[1] > 16383:
            raise ValueError("WebP is limited to 16383 x 16383")
        return bytes(
            imagecodecs.webp_encode(
                image, level=self.quality, lossless=False, method=self.method, numthreads=1
            )
        )

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 3)
        out = np.empty(shape, np.uint8)
        return guarded_decode(
            lambda: imagecodecs.webp_decode(bytes(data), hasalpha=False, out=out), shape
        )


class AvifImageCodec:
    """AVIF (AV1 intra via libaom, 4:2:0, 8-bit).

    Args:
        quality: libavif quality 0..100.
        speed: encoder speed 0 (slowest, best) .. 10.

    Before decoding, the ``ispe`` size and every AV1 sequence header's maximum frame size are
    checked against the expected size (:func:`~semantic.codecs.av1.check_avif_size`).
    """

    name = "avif"

    def __init__(self, quality: int = 50, speed: int = 6) -> None:
        self.quality = _check_quality(quality)
        self.speed = _check_speed("speed", speed, 0, 10)

    def encode(self, image: np.ndarray) -> bytes:
        image = check_image(image)
        return bytes(
            imagecodecs.avif_encode(
                image, level=self.quality, speed=self.speed, numthreads=1,
                pixelformat=imagecodecs.AVIF.PIXEL_FORMAT.YUV420,
            )
        )  # fmt: skip

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 3)
        out = np.empty(shape, np.uint8)
        data = bytes(data)

        def decode() -> np.ndarray:
            check_avif_size(data, shape[0], shape[1])
            return imagecodecs.avif_decode(data, numthreads=1, out=out)

        return guarded_decode(decode, shape)


class JxlImageCodec:
    """Lossy JPEG XL (VarDCT).

    Args:
        quality: libjxl quality 0..100 (mapped by libjxl to a Butteraugli distance).
        effort: encoder effort 1..10.
    """

    name = "jxl"

    def __init__(self, quality: int = 75, effort: int = 7) -> None:
        self.quality = _check_quality(quality)
        self.effort = _check_speed("effort", effort, 1, 10)

    def encode(self, image: np.ndarray) -> bytes:
        image = check_image(image)
        return bytes(
            imagecodecs.jpegxl_encode(image, level=self.quality, effort=self.effort, numthreads=1)
        )

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 3)
        out = np.empty(shape, np.uint8)
        return guarded_decode(
            lambda: imagecodecs.jpegxl_decode(bytes(data), numthreads=1, out=out), shape
        )


class ScaledImageCodec:
    """SPIC-style coarse-image coding: downscale, code with ``codec``, decode, upsample.

    Args:
        codec: the image codec applied to the downscaled image.
        factor: downscaling factor (>= 1); the coarse size is
            :func:`~semantic.codecs.resample.coarse_size` of the original size.
        method: antialiased downscaling filter, ``area`` or ``bicubic``. The receiver always
            upsamples with bicubic interpolation.

    ``decode(data, (H, W, 3))`` decodes a ``coarse_size(H, W, factor)`` image and returns it
    upsampled to ``H x W``. The original size and ``factor`` are configuration, not sent.
    """

    def __init__(self, codec: ImageCodec, factor: float = 4, method: str = "area") -> None:
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        if method not in DOWNSCALE_METHODS:
            raise ValueError(f"method must be one of {DOWNSCALE_METHODS}, got {method!r}")
        self.codec = codec
        self.factor = factor
        self.method = method
        self.name = codec.name

    def encode(self, image: np.ndarray) -> bytes:
        image = check_image(image)
        return self.codec.encode(downscale(image, self.factor, self.method))

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 3)
        small = coarse_size(shape[0], shape[1], self.factor)
        result = self.codec.decode(data, (*small, 3))
        if not result.ok:
            return result
        return guarded_decode(lambda: upscale(result.array, shape[:2]), shape)
