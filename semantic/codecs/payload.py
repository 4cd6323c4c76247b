"""Exact accounting of what a semantic transmitter sends.

A :class:`Payload` itemises its streams by name (``map``, ``image``, ``latent``, ``index``,
``header`` …). A *digital* stream is bits that go through channel coding; an *analog* stream
is complex symbols sent directly (JSCC) and is counted in channel uses, never in bits.
Nothing is free: any side information the receiver needs (shape, quantiser, codec id) is
either a fixed part of the configuration known to both ends or a ``header`` stream here.

Example:
    >>> p = Payload.of(Stream.digital("map", b"\\x00" * 10), Stream.digital("header", b"\\x01"))
    >>> p.total_bits, p.bits("map"), p.bpp(8, 11)
    (88, 80, 1.0)
    >>> p.bpp_by_stream(8, 11)
    {'map': 0.9090909090909091, 'header': 0.09090909090909091}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

StreamKind = Literal["digital", "analog"]


@dataclass(frozen=True)
class Stream:
    """One named stream of a payload.

    Args:
        name: stream name (``map``, ``image``, ``latent``, ``index``, ``header`` …).
        data: the bytes sent (digital) or ``None`` (analog, or digital accounted without data).
        num_bits: number of information bits (digital); ``0`` for analog streams. When
            ``data`` is given, the last byte may carry fewer than 8 bits, so
            ``8 * (len(data) - 1) < num_bits <= 8 * len(data)`` (or both are zero).
        kind: ``"digital"`` or ``"analog"``.
        channel_uses: complex channel uses (analog streams only; ``0`` for digital ones).
    """

    name: str
    data: bytes | None
    num_bits: int
    kind: StreamKind = "digital"
    channel_uses: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a stream needs a non-empty name")
        if self.kind not in ("digital", "analog"):
            raise ValueError(f"stream kind must be 'digital' or 'analog', got {self.kind!r}")
        if self.num_bits < 0 or self.channel_uses < 0:
            raise ValueError("num_bits and channel_uses must be non-negative")
        if self.kind == "analog":
            if self.num_bits != 0:
                raise ValueError(f"analog stream {self.name!r} counts channel uses, not bits")
            return
        if self.channel_uses != 0:
            raise ValueError(f"digital stream {self.name!r} counts bits, not channel uses")
        if self.data is not None:
            num_bytes = len(self.data)
            if not (
                8 * (num_bytes - 1) < self.num_bits <= 8 * num_bytes
                or num_bytes == 0 == self.num_bits
            ):
                raise ValueError(
                    f"stream {self.name!r}: num_bits={self.num_bits} does not fit "
                    f"{num_bytes} bytes of data"
                )

    @classmethod
    def digital(cls, name: str, data: bytes, num_bits: int | None = None) -> Stream:
        """A digital stream of ``data``; ``num_bits`` defaults to ``8 * len(data)``."""
        return cls(name, bytes(data), 8 * len(data) if num_bits is None else num_bits)

    @classmethod
    def analog(cls, name: str, channel_uses: int) -> Stream:
        """An analog stream of ``channel_uses`` complex symbols."""
        return cls(name, None, 0, kind="analog", channel_uses=channel_uses)


@dataclass(frozen=True)
class Payload:
    """The itemised streams of one transmitted image.

    Attributes:
        streams: read-only mapping ``name -> Stream`` (insertion order kept).
    """

    streams: Mapping[str, Stream] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, stream in self.streams.items():
            if key != stream.name:
                raise ValueError(f"stream stored under {key!r} is named {stream.name!r}")
        object.__setattr__(self, "streams", MappingProxyType(dict(self.streams)))

    @classmethod
    def of(cls, *streams: Stream) -> Payload:
        """A payload made of ``streams``; names must be unique."""
        named: dict[str, Stream] = {}
        for stream in streams:
            if stream.name in named:
                raise ValueError(f"duplicate stream name {stream.name!r}")
            named[stream.name] = stream
        return cls(named)

    @property
    def total_bits(self) -> int:
        """Sum of the bits of all digital streams."""
        return sum(s.num_bits for s in self.streams.values() if s.kind == "digital")

    @property
    def total_channel_uses(self) -> int:
        """Sum of the channel uses of all analog streams."""
        return sum(s.channel_uses for s in self.streams.values() if s.kind == "analog")

    def bits(self, name: str) -> int:
        """Bits of the digital stream ``name`` (``KeyError`` lists the streams present)."""
        stream = self._get(name)
        if stream.kind != "digital":
            raise ValueError(f"stream {name!r} is analog; use channel_uses(name)")
        return stream.num_bits

    def channel_uses(self, name: str) -> int:
        """Channel uses of the analog stream ``name``."""
        stream = self._get(name)
        if stream.kind != "analog":
            raise ValueError(f"stream {name!r} is digital; use bits(name)")
        return stream.channel_uses

    def bpp(self, height: int, width: int) -> float:
        """Bits per pixel of the original ``height x width`` image: ``total_bits / (H*W)``."""
        return self.total_bits / _num_pixels(height, width)

    def bpp_by_stream(self, height: int, width: int) -> dict[str, float]:
        """Bits per original pixel of each digital stream (analog streams are left out)."""
        num_pixels = _num_pixels(height, width)
        return {n: s.num_bits / num_pixels for n, s in self.streams.items() if s.kind == "digital"}

    def channel_uses_per_pixel(self, height: int, width: int) -> float:
        """Analog channel uses per pixel of the original image."""
        return self.total_channel_uses / _num_pixels(height, width)

    def _get(self, name: str) -> Stream:
        try:
            return self.streams[name]
        except KeyError:
            raise KeyError(f"no stream {name!r}; streams: {sorted(self.streams)}") from None


def _num_pixels(height: int, width: int) -> int:
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    return height * width
