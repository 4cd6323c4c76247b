"""Source codecs of the semantic transmitter and exact bit accounting.

- Label maps, lossless (FLIF's role): :class:`JxlMapCodec` (default), :class:`PngMapCodec`,
  :class:`WebpMapCodec`, :class:`ZstdMapCodec`.
- Coarse images, lossy (BPG's role): :class:`HevcImageCodec` (HEVC intra, constant QP; only
  the NAL units are sent), :class:`JpegImageCodec`, :class:`WebpImageCodec`,
  :class:`AvifImageCodec`, :class:`JxlImageCodec`; :class:`ScaledImageCodec` adds SPIC-style
  downscaling and bicubic upsampling (:func:`downscale`, :func:`upscale`).
- :class:`Payload` / :class:`Stream`: itemised bits (digital) and channel uses (analog).
- Registries for YAML: :data:`MAP_CODECS`, :data:`IMAGE_CODECS`, :func:`build_map_codec`,
  :func:`build_image_codec`.

See ``docs/codecs.md`` for the choice of codecs and the measured rates.
"""

from semantic.codecs.base import DecodeResult, ImageCodec, MapCodec
from semantic.codecs.hevc import HevcImageCodec
from semantic.codecs.images import (
    AvifImageCodec,
    JpegImageCodec,
    JxlImageCodec,
    ScaledImageCodec,
    WebpImageCodec,
)
from semantic.codecs.maps import JxlMapCodec, PngMapCodec, WebpMapCodec, ZstdMapCodec
from semantic.codecs.payload import Payload, Stream
from semantic.codecs.registry import IMAGE_CODECS, MAP_CODECS, build_image_codec, build_map_codec
from semantic.codecs.resample import coarse_size, downscale, upscale

__all__ = [
    "IMAGE_CODECS",
    "MAP_CODECS",
    "AvifImageCodec",
    "DecodeResult",
    "HevcImageCodec",
    "ImageCodec",
    "JpegImageCodec",
    "JxlImageCodec",
    "JxlMapCodec",
    "MapCodec",
    "Payload",
    "PngMapCodec",
    "ScaledImageCodec",
    "Stream",
    "WebpImageCodec",
    "WebpMapCodec",
    "ZstdMapCodec",
    "build_image_codec",
    "build_map_codec",
    "coarse_size",
    "downscale",
    "upscale",
]
