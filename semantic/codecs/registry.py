"""The closed lists of codec names that scenarios (YAML) may use, and their builders.

Example:
    >>> sorted(MAP_CODECS), sorted(IMAGE_CODECS)
    (['jxl', 'png', 'webp', 'zstd'], ['avif', 'hevc', 'jpeg', 'jxl', 'webp'])
    >>> build_image_codec("hevc", qp=37).qp
    37
    >>> build_image_codec("hevc", qp=37, factor=4).factor
    4
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from semantic.codecs.base import ImageCodec, MapCodec
from semantic.codecs.hevc import HevcImageCodec
from semantic.codecs.images import (
    AvifImageCodec,
    JpegImageCodec,
    JxlImageCodec,
    ScaledImageCodec,
    WebpImageCodec,
)
from semantic.codecs.maps import JxlMapCodec, PngMapCodec, WebpMapCodec, ZstdMapCodec

MAP_CODECS: Mapping[str, Callable[..., MapCodec]] = MappingProxyType(
    {"jxl": JxlMapCodec, "png": PngMapCodec, "webp": WebpMapCodec, "zstd": ZstdMapCodec}
)
IMAGE_CODECS: Mapping[str, Callable[..., ImageCodec]] = MappingProxyType(
    {
        "hevc": HevcImageCodec,
        "jpeg": JpegImageCodec,
        "webp": WebpImageCodec,
        "avif": AvifImageCodec,
        "jxl": JxlImageCodec,
    }
)


def build_map_codec(name: str, **params: Any) -> MapCodec:
    """Build the lossless label-map codec ``name`` (one of :data:`MAP_CODECS`) with ``params``."""
    return _build("map", MAP_CODECS, name, params)


def build_image_codec(
    name: str, factor: float = 1, downscale_method: str = "area", **params: Any
) -> ImageCodec:
    """Build the lossy image codec ``name`` (one of :data:`IMAGE_CODECS`) with ``params``.

    ``factor > 1`` wraps it in :class:`~semantic.codecs.images.ScaledImageCodec` (SPIC-style
    downscaling by ``factor`` with ``downscale_method``, bicubic upsampling at the receiver).
    """
    codec = _build("image", IMAGE_CODECS, name, params)
    if factor == 1:
        return codec
    return ScaledImageCodec(codec, factor=factor, method=downscale_method)


def _build(
    kind: str, registry: Mapping[str, Callable[..., Any]], name: str, params: dict[str, Any]
) -> Any:
    if name not in registry:
        raise ValueError(
            f"unknown {kind} codec {name!r}; valid names: {', '.join(sorted(registry))}"
        )
    builder = registry[name]
    accepted = list(inspect.signature(builder).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"{kind} codec {name!r} does not take {', '.join(unknown)}; parameters: {', '.join(accepted)}"
        )
    return builder(**params)
