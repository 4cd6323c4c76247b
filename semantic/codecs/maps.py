"""Lossless codecs for ``uint8 [H, W]`` semantic label maps (FLIF's role in the papers).

FLIF is not packaged; JPEG XL lossless (modular mode) is its successor by the same authors and
is the default. PNG, WebP-lossless and Zstandard on the raw bytes are alternatives.

Every codec takes ``num_classes`` (optional) and ``ignore_index`` (default 255): when
``num_classes`` is given, the encoder refuses, and the decoder reports as failed, maps holding
values other than ``0..num_classes-1`` or ``ignore_index``. Decoders write into a
preallocated array of the expected shape, so the libraries check the header's size before
decoding and never allocate a picture of another size.

Example:
    >>> codec = JxlMapCodec(effort=7, num_classes=19)
    >>> labels = np.zeros((8, 16), np.uint8)
    >>> labels[:, 8:] = 255
    >>> result = codec.decode(codec.encode(labels), (8, 16))
    >>> result.ok, bool((result.array == labels).all())
    (True, True)
"""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np
import zstandard

from semantic.codecs.base import (
    DecodeResult,
    check_expected_shape,
    check_labels,
    guarded_decode,
    labels_in_range,
)


class _LabelRange:
    """Value-range check shared by the map codecs (composed, not inherited)."""

    def __init__(self, num_classes: int | None, ignore_index: int | None) -> None:
        if num_classes is not None and not 1 <= num_classes <= 256:
            raise ValueError(f"num_classes must be in 1..256, got {num_classes}")
        if ignore_index is not None and not 0 <= ignore_index <= 255:
            raise ValueError(f"ignore_index must be in 0..255, got {ignore_index}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def check_input(self, labels: np.ndarray) -> np.ndarray:
        return check_labels(labels, self.num_classes, self.ignore_index)

    def validate(self, labels: np.ndarray) -> str | None:
        if self.num_classes is None or labels_in_range(labels, self.num_classes, self.ignore_index):
            return None
        return (
            f"decoded labels outside [0, {self.num_classes}) and ignore index {self.ignore_index}"
        )


class JxlMapCodec:
    """JPEG XL lossless (modular mode) label-map codec; the default (FLIF's successor).

    Args:
        effort: libjxl encoder effort 1 (fastest) .. 10 (smallest); 9 by default.
        num_classes: if given, valid labels are ``0..num_classes-1`` and ``ignore_index``.
        ignore_index: the "void" label allowed besides the classes.

    Shapes: ``encode(uint8 [H, W]) -> bytes``; ``decode(bytes, (H, W)) -> DecodeResult``.
    """

    name = "jxl"

    def __init__(
        self, effort: int = 9, num_classes: int | None = None, ignore_index: int | None = 255
    ) -> None:
        if not (isinstance(effort, int) and 1 <= effort <= 10):
            raise ValueError(f"effort must be an int in 1..10, got {effort!r}")
        self.effort = effort
        self._range = _LabelRange(num_classes, ignore_index)

    def encode(self, labels: np.ndarray) -> bytes:
        labels = self._range.check_input(labels)
        return bytes(
            imagecodecs.jpegxl_encode(labels, lossless=True, effort=self.effort, numthreads=1)
        )

    def decode(self, data: bytes, expected_shape: tuple[int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 2)
        out = np.empty(shape, np.uint8)
        return guarded_decode(
            lambda: imagecodecs.jpegxl_decode(bytes(data), numthreads=1, out=out),
            shape, self._range.validate,
        )  # fmt: skip


class PngMapCodec:
    """PNG (8-bit greyscale, zlib level 9) label-map codec.

    Args:
        level: zlib compression level 0..9.
        num_classes, ignore_index: value-range validation, see :class:`JxlMapCodec`.
    """

    name = "png"

    def __init__(
        self, level: int = 9, num_classes: int | None = None, ignore_index: int | None = 255
    ) -> None:
        if not (isinstance(level, int) and 0 <= level <= 9):
            raise ValueError(f"level must be an int in 0..9, got {level!r}")
        self.level = level
        self._range = _LabelRange(num_classes, ignore_index)

    def encode(self, labels: np.ndarray) -> bytes:
        labels = self._range.check_input(labels)
        return bytes(imagecodecs.png_encode(labels, level=self.level))

    def decode(self, data: bytes, expected_shape: tuple[int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 2)
        out = np.empty(shape, np.uint8)
        return guarded_decode(
            lambda: imagecodecs.png_decode(bytes(data), out=out), shape, self._range.validate
        )


class WebpMapCodec:
    """WebP-lossless label-map codec (the map is stored as grey RGB, channels must agree).

    Args:
        method: encoder method 0 (fast) .. 6 (smallest).
        level: lossless effort 0..100.
        num_classes, ignore_index: value-range validation, see :class:`JxlMapCodec`.
    """

    name = "webp"

    def __init__(
        self,
        method: int = 6,
        level: int = 100,
        num_classes: int | None = None,
        ignore_index: int | None = 255,
    ) -> None:
        if not (isinstance(method, int) and 0 <= method <= 6):
            raise ValueError(f"method must be an int in 0..6, got {method!r}")
        if not (isinstance(level, int) and 0 <= level <= 100):
            raise ValueError(f"level must be an int in 0..100, got {level!r}")
        self.method = method
        self.level = level
        self._range = _LabelRange(num_classes, ignore_index)

    def encode(self, labels: np.ndarray) -> bytes:
        labels = self._range.check_input(labels)
        if labels.shape[0] > 16383 or labels.shape[1] > 16383:
            raise ValueError("WebP is limited to 16383 x 16383")
        rgb = np.repeat(labels[..., None], 3, axis=2)
        return bytes(
            imagecodecs.webp_encode(
                rgb, level=self.level, lossless=True, method=self.method, numthreads=1
            )
        )

    def decode(self, data: bytes, expected_shape: tuple[int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 2)
        out = np.empty((*shape, 3), np.uint8)

        def decode_grey() -> np.ndarray:
            rgb = imagecodecs.webp_decode(bytes(data), hasalpha=False, out=out)
            if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()):
                raise ValueError("decoded channels differ: not a grey label map")
            return rgb[..., 0]

        return guarded_decode(decode_grey, shape, self._range.validate)


class ZstdMapCodec:
    """Zstandard on the raw label bytes, after a 4-byte shape header.

    Wire format: ``uint16 H, uint16 W`` (big-endian) followed by one zstd frame without
    content size or checksum (the header gives the size). The header is transmitted and
    counted; the decoder rejects a header that disagrees with the expected shape before
    decompressing, and decompresses at most ``H * W`` bytes.

    Args:
        level: zstd compression level 1..22.
        num_classes, ignore_index: value-range validation, see :class:`JxlMapCodec`.
    """

    name = "zstd"
    header_bytes = 4

    def __init__(
        self, level: int = 19, num_classes: int | None = None, ignore_index: int | None = 255
    ) -> None:
        if not (isinstance(level, int) and 1 <= level <= 22):
            raise ValueError(f"level must be an int in 1..22, got {level!r}")
        self.level = level
        self._range = _LabelRange(num_classes, ignore_index)

    def encode(self, labels: np.ndarray) -> bytes:
        labels = self._range.check_input(labels)
        compressor = zstandard.ZstdCompressor(
            level=self.level, write_content_size=False, write_checksum=False
        )
        return struct.pack(">HH", *labels.shape) + compressor.compress(labels.tobytes())

    def decode(self, data: bytes, expected_shape: tuple[int, int]) -> DecodeResult:
        shape = check_expected_shape(expected_shape, 2)
        data = bytes(data)

        def decompress() -> np.ndarray:
            if len(data) < self.header_bytes or struct.unpack_from(">HH", data) != shape:
                raise ValueError("shape header missing or different from the expected shape")
            num_bytes = shape[0] * shape[1]
            raw = zstandard.ZstdDecompressor().decompress(
                data[self.header_bytes :], max_output_size=num_bytes
            )
            if len(raw) != num_bytes:
                raise ValueError(f"decompressed {len(raw)} bytes, expected {num_bytes}")
            return np.frombuffer(raw, np.uint8).reshape(shape).copy()

        return guarded_decode(decompress, shape, self._range.validate)
