"""Bit-level helpers shared by the HEVC and AV1 header parsers.

Every reader raises :class:`ValueError` on malformed or truncated input, so a caller that
parses untrusted (possibly corrupted) bytes only has to catch ``ValueError``.
"""

from __future__ import annotations


class BitReader:
    """Reads a byte string most-significant bit first (H.265 ``u(n)``/``ue(v)``, AV1 ``f(n)``).

    Example:
        >>> r = BitReader(bytes([0b10100110]))
        >>> r.u(1), r.ue(), r.ue()
        (1, 1, 2)
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0  # in bits

    @property
    def bits_left(self) -> int:
        return 8 * len(self._data) - self._pos

    def u(self, num_bits: int) -> int:
        """Unsigned integer of ``num_bits`` bits."""
        if num_bits < 0 or num_bits > self.bits_left:
            raise ValueError("bitstream truncated")
        value = 0
        for _ in range(num_bits):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def skip(self, num_bits: int) -> None:
        if num_bits < 0 or num_bits > self.bits_left:
            raise ValueError("bitstream truncated")
        self._pos += num_bits

    def ue(self) -> int:
        """Unsigned Exp-Golomb code (H.265 clause 9.2); at most 31 leading zeros."""
        leading_zeros = 0
        while self.u(1) == 0:
            leading_zeros += 1
            if leading_zeros > 31:
                raise ValueError("Exp-Golomb code too long")
        return (1 << leading_zeros) - 1 + self.u(leading_zeros)

    def se(self) -> int:
        """Signed Exp-Golomb code (H.265 clause 9.2.2)."""
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def remove_emulation_prevention(nal: bytes) -> bytes:
    """Raw byte sequence payload of a NAL unit: drop each ``0x03`` of ``00 00 03`` (H.265 7.4.2)."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def leb128_encode(value: int) -> bytes:
    """Little-endian base-128 varint (7 bits per byte, high bit = more bytes follow)."""
    if value < 0:
        raise ValueError("leb128 encodes non-negative integers")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def leb128_decode(data: bytes, pos: int, max_bytes: int = 8) -> tuple[int, int]:
    """Decode a varint at ``data[pos]``; returns ``(value, next_pos)``."""
    value = 0
    for i in range(max_bytes):
        if pos + i >= len(data):
            raise ValueError("varint truncated")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError("varint too long")
