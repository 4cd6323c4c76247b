"""Lossy image codecs: rate-distortion monotonicity, shapes, HEVC bit accounting."""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest

from semantic.codecs import (
    IMAGE_CODECS,
    AvifImageCodec,
    HevcImageCodec,
    JpegImageCodec,
    JxlImageCodec,
    ScaledImageCodec,
    WebpImageCodec,
    build_image_codec,
)
from semantic.codecs.bitstream import leb128_encode
from semantic.codecs.hevc import nal_type, parse_pps, parse_sps, slice_qp, unpack_stream
from tests.semantic.codecs.inputs import smooth_image


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _decode_ok(codec, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    result = codec.decode(data, shape)
    assert result.ok, result.error
    assert result.array.dtype == np.uint8 and result.array.shape == shape
    return result.array


def test_hevc_psnr_increases_as_qp_decreases(sample_image: np.ndarray) -> None:
    sizes, psnrs = [], []
    for qp in (42, 32, 22):
        codec = HevcImageCodec(qp=qp)
        data = codec.encode(sample_image)
        sizes.append(len(data))
        psnrs.append(psnr_db(sample_image, _decode_ok(codec, data, sample_image.shape)))
    assert sizes[0] < sizes[1] < sizes[2]
    assert psnrs[0] + 2 < psnrs[1] and psnrs[1] + 2 < psnrs[2]
    assert 24 < psnrs[0] and psnrs[2] < 45


def test_hevc_every_slice_is_coded_at_the_requested_qp() -> None:
    image = smooth_image(64, 96, seed=0)
    for qp in (0, 17, 37, 51):
        height, width, units = unpack_stream(HevcImageCodec(qp=qp).encode(image))
        assert (height, width) == (64, 96)
        sps, pps = parse_sps(units[1]), parse_pps(units[2])
        assert not pps.cu_qp_delta_enabled  # no per-block QP changes: constant QP
        assert all(slice_qp(unit, sps, pps) == qp for unit in units[3:])


def test_hevc_transmits_only_header_and_nal_units(sample_image: np.ndarray) -> None:
    data = HevcImageCodec(qp=32).encode(sample_image)
    height, width, units = unpack_stream(data)
    assert (height, width) == (128, 256)
    assert [nal_type(u) for u in units[:3]] == [32, 33, 34]  # VPS, SPS, PPS
    assert all(nal_type(u) in (19, 20) for u in units[3:])  # IDR slices only, no SEI
    header = leb128_encode(256) + leb128_encode(128)
    assert len(header) == 4
    expected = len(header) + sum(len(leb128_encode(len(u))) + len(u) for u in units)
    assert len(data) == expected
    # far less than the HEIF file libheif writes around the same picture
    heif = io.BytesIO()
    pillow_heif.encode(
        "RGB", (256, 128), sample_image.tobytes(), heif, tile_size=0, chroma=420,
        enc_params={"x265:qp": 32, "x265:ipratio": 1, "preset": "slow", "tune": "ssim"},
    )  # fmt: skip
    assert len(heif.getvalue()) - len(data) > 250


@pytest.mark.parametrize("shape", [(1, 1, 3), (16, 24, 3), (33, 65, 3), (65, 33, 3), (128, 256, 3)])
def test_hevc_rebuilt_container_decodes_like_libheif(shape: tuple[int, int, int]) -> None:
    """The receiver's deterministic HEIF gives exactly the pixels of libheif's own file."""
    image = smooth_image(*shape[:2], seed=shape[0])
    heif = io.BytesIO()
    pillow_heif.encode(
        "RGB", (shape[1], shape[0]), image.tobytes(), heif, tile_size=0, chroma=420,
        enc_params={"x265:qp": 27, "x265:ipratio": 1, "preset": "slow", "tune": "ssim"},
    )  # fmt: skip
    reference = np.asarray(pillow_heif.open_heif(io.BytesIO(heif.getvalue())))
    codec = HevcImageCodec(qp=27)
    np.testing.assert_array_equal(_decode_ok(codec, codec.encode(image), shape), reference)


@pytest.mark.parametrize(
    ("codec_class", "qualities"),
    [(JpegImageCodec, (10, 50, 90)), (WebpImageCodec, (10, 50, 90)),
     (AvifImageCodec, (10, 50, 90)), (JxlImageCodec, (10, 50, 90))],
)  # fmt: skip
def test_psnr_increases_with_quality(codec_class, qualities, sample_image: np.ndarray) -> None:
    sizes, psnrs = [], []
    for quality in qualities:
        codec = codec_class(quality=quality)
        data = codec.encode(sample_image)
        sizes.append(len(data))
        psnrs.append(psnr_db(sample_image, _decode_ok(codec, data, sample_image.shape)))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert psnrs[0] + 1 < psnrs[1] and psnrs[1] + 1 < psnrs[2]


@pytest.mark.parametrize("name", sorted(IMAGE_CODECS))
@pytest.mark.parametrize("shape", [(32, 64, 3), (31, 47, 3)])
def test_shapes_and_dtypes(name: str, shape: tuple[int, int, int]) -> None:
    codec = build_image_codec(name)
    image = smooth_image(*shape[:2], seed=1)
    decoded = _decode_ok(codec, codec.encode(image), shape)
    assert psnr_db(image, decoded) > 18  # the same picture (an unrelated one scores ~8 dB)
    wrong = codec.decode(codec.encode(image), (shape[0] + 1, shape[1], 3))
    assert not wrong.ok and wrong.array is None


@pytest.mark.parametrize("name", sorted(IMAGE_CODECS))
def test_bad_arguments_raise(name: str) -> None:
    codec = build_image_codec(name)
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="3 channels"):
        codec.decode(b"", (8, 8, 4))


@pytest.mark.parametrize("factor", [2, 4])
def test_scaled_codec_codes_the_coarse_image(factor: int, sample_image: np.ndarray) -> None:
    inner = HevcImageCodec(qp=22)
    scaled = ScaledImageCodec(inner, factor=factor)
    data = scaled.encode(sample_image)
    coarse = inner.decode(data, (128 // factor, 256 // factor, 3))
    assert coarse.ok  # the bytes are exactly the coarse image's HEVC stream
    full = _decode_ok(scaled, data, sample_image.shape)
    assert len(data) < len(inner.encode(sample_image)) / factor
    assert (
        20
        < psnr_db(sample_image, full)
        < psnr_db(sample_image, _decode_ok(inner, inner.encode(sample_image), sample_image.shape))
    )
