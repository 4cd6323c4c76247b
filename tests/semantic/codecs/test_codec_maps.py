"""Lossless label-map codecs: exact round trips, value ranges and rates on the real sample."""

from __future__ import annotations

import numpy as np
import pytest

from semantic.codecs import MAP_CODECS, JxlMapCodec, PngMapCodec, build_map_codec
from tests.semantic.codecs.inputs import blocky_labels

NAMES = sorted(MAP_CODECS)


def _round_trip(name: str, labels: np.ndarray, **params) -> np.ndarray:
    codec = build_map_codec(name, **params)
    data = codec.encode(labels)
    assert isinstance(data, bytes) and len(data) > 0
    result = codec.decode(data, labels.shape)
    assert result.ok, result.error
    assert result.error is None
    assert result.array.dtype == np.uint8 and result.array.shape == labels.shape
    return result.array


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("num_classes", "shape"), [(2, (32, 64)), (5, (37, 61)), (19, (128, 256))])
def test_round_trip_random_maps(name: str, num_classes: int, shape: tuple[int, int]) -> None:
    labels = blocky_labels(*shape, num_classes=num_classes, seed=num_classes)
    np.testing.assert_array_equal(_round_trip(name, labels, num_classes=num_classes), labels)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_full_8_bit_range(name: str) -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 256, (24, 40), dtype=np.uint8)
    labels[0, :4] = [0, 254, 255, 1]
    np.testing.assert_array_equal(_round_trip(name, labels), labels)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_real_sample(name: str, sample_labels: np.ndarray) -> None:
    assert {254, 255} & set(np.unique(sample_labels).tolist()) == {255}
    np.testing.assert_array_equal(_round_trip(name, sample_labels, num_classes=19), sample_labels)


@pytest.mark.parametrize("name", NAMES)
def test_value_range_is_enforced(name: str) -> None:
    labels = blocky_labels(16, 32, num_classes=19, seed=1)
    labels[3, 3] = 19  # neither a class of 19 nor the ignore index
    with pytest.raises(ValueError, match="outside"):
        build_map_codec(name, num_classes=19).encode(labels)
    data = build_map_codec(name).encode(labels)
    result = build_map_codec(name, num_classes=19).decode(data, labels.shape)
    assert not result.ok and result.array is None and "outside" in result.error
    no_ignore = build_map_codec(name, num_classes=19, ignore_index=None)
    labels[3, 3] = 0
    assert not no_ignore.decode(data, labels.shape).ok  # 255 is not valid without an ignore index


@pytest.mark.parametrize("name", NAMES)
def test_wrong_expected_shape_is_a_failure(name: str) -> None:
    labels = blocky_labels(16, 32, num_classes=3, seed=2)
    codec = build_map_codec(name)
    data = codec.encode(labels)
    for shape in [(32, 16), (16, 33), (15, 32)]:
        result = codec.decode(data, shape)
        assert not result.ok and result.array is None


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_raise(name: str) -> None:
    codec = build_map_codec(name)
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((8, 8), np.int32))
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="expected_shape"):
        codec.decode(b"", (8, 8, 3))


def test_rates_on_real_sample(sample_labels: np.ndarray) -> None:
    """Snapshot regression of the measured rates (docs/codecs.md): JPEG XL ~0.17 bpp, PNG ~2x."""
    num_pixels = sample_labels.size
    jxl_bpp = 8 * len(JxlMapCodec().encode(sample_labels)) / num_pixels
    png_bpp = 8 * len(PngMapCodec().encode(sample_labels)) / num_pixels
    assert 0.14 < jxl_bpp < 0.19
    assert 1.6 < png_bpp / jxl_bpp < 2.2
    # a higher effort is never worse on this map
    assert len(JxlMapCodec(effort=9).encode(sample_labels)) < len(
        JxlMapCodec(effort=3).encode(sample_labels)
    )


def test_zstd_header_is_transmitted_and_checked() -> None:
    labels = blocky_labels(20, 30, num_classes=4, seed=3)
    codec = build_map_codec("zstd")
    data = codec.encode(labels)
    assert data[:4] == bytes([0, 20, 0, 30])
    result = codec.decode(b"\x00\x15" + data[2:], labels.shape)
    assert not result.ok and "header" in result.error


def test_webp_rejects_colour_maps() -> None:
    import imagecodecs

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 1
    data = bytes(imagecodecs.webp_encode(rgb, lossless=True))
    result = build_map_codec("webp").decode(data, (8, 8))
    assert not result.ok and "channels differ" in result.error
