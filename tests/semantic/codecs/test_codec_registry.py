"""Registry of codec names: closed lists, builders and helpful errors."""

from __future__ import annotations

import pytest

from semantic.codecs import (
    IMAGE_CODECS,
    MAP_CODECS,
    HevcImageCodec,
    JxlMapCodec,
    ScaledImageCodec,
    build_image_codec,
    build_map_codec,
)


def test_closed_lists() -> None:
    assert set(MAP_CODECS) == {"jxl", "png", "webp", "zstd"}
    assert set(IMAGE_CODECS) == {"hevc", "jpeg", "webp", "avif", "jxl"}
    with pytest.raises(TypeError):
        MAP_CODECS["bpg"] = HevcImageCodec  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(MAP_CODECS))
def test_build_every_map_codec(name: str) -> None:
    codec = build_map_codec(name, num_classes=19)
    assert codec.name == name


@pytest.mark.parametrize("name", sorted(IMAGE_CODECS))
def test_build_every_image_codec(name: str) -> None:
    assert build_image_codec(name).name == name


def test_parameters_reach_the_codec() -> None:
    codec = build_map_codec("jxl", effort=5)
    assert isinstance(codec, JxlMapCodec) and codec.effort == 5
    scaled = build_image_codec("hevc", qp=40, factor=4, downscale_method="bicubic")
    assert isinstance(scaled, ScaledImageCodec)
    assert scaled.factor == 4 and scaled.method == "bicubic"
    assert isinstance(scaled.codec, HevcImageCodec) and scaled.codec.qp == 40


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(
        ValueError, match=r"unknown map codec 'flif'; valid names: jxl, png, webp, zstd"
    ):
        build_map_codec("flif")
    with pytest.raises(
        ValueError, match=r"unknown image codec 'bpg'; valid names: avif, hevc, jpeg"
    ):
        build_image_codec("bpg")


def test_unknown_parameter_lists_accepted_ones() -> None:
    with pytest.raises(
        ValueError, match=r"'hevc' does not take quality; parameters: qp, preset, tune"
    ):
        build_image_codec("hevc", quality=50)


def test_invalid_parameter_values() -> None:
    with pytest.raises(ValueError, match="qp"):
        build_image_codec("hevc", qp=52)
    with pytest.raises(ValueError, match="preset"):
        build_image_codec("hevc", preset="warp")
    with pytest.raises(ValueError, match="quality"):
        build_image_codec("jpeg", quality=101)
    with pytest.raises(ValueError, match="effort"):
        build_map_codec("jxl", effort=0)
    with pytest.raises(ValueError, match="factor"):
        build_image_codec("webp", factor=0.5)
