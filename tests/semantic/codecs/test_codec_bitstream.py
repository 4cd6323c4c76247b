"""Header parsers and pre-decode guards: bit readers, HEVC/AV1 headers, ISOBMFF, size guards."""

from __future__ import annotations

import doctest
import struct
import zlib

import imagecodecs
import numpy as np
import pytest

import semantic.codecs.bitstream
import semantic.codecs.hevc
import semantic.codecs.images
import semantic.codecs.maps
import semantic.codecs.payload
import semantic.codecs.registry
import semantic.codecs.resample
from semantic.codecs import AvifImageCodec, HevcImageCodec, PngMapCodec
from semantic.codecs.av1 import check_avif_size, max_frame_size
from semantic.codecs.bitstream import (
    BitReader,
    leb128_decode,
    leb128_encode,
    remove_emulation_prevention,
)
from semantic.codecs.hevc import build_heif, pack_stream, parse_sps, unpack_stream
from semantic.codecs.isobmff import iter_boxes, parse_heif_items
from tests.semantic.codecs.inputs import smooth_image


@pytest.mark.parametrize(
    "module",
    [
        semantic.codecs.bitstream,
        semantic.codecs.hevc,
        semantic.codecs.images,
        semantic.codecs.maps,
        semantic.codecs.payload,
        semantic.codecs.registry,
        semantic.codecs.resample,
    ],
)
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module, verbose=False)
    assert result.failed == 0 and result.attempted > 0


def _bits(text: str) -> bytes:
    text = text.replace(" ", "")
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big")


def test_exp_golomb_known_codes() -> None:
    # H.265 table 9-2: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3, 00111 -> 6; se: 1, -1, 2, -3
    r = BitReader(_bits("1 010 011 00100 00111"))
    assert [r.ue() for _ in range(5)] == [0, 1, 2, 3, 6]
    r = BitReader(_bits("010 011 00100 00111"))
    assert [r.se() for _ in range(4)] == [1, -1, 2, -3]
    with pytest.raises(ValueError):
        BitReader(b"\x00\x00\x00\x00\x00").ue()  # too many leading zeros
    with pytest.raises(ValueError):
        BitReader(b"\x01").u(9)


def test_leb128_and_emulation_prevention() -> None:
    for value in (0, 1, 127, 128, 300, 16383, 16384, 2**21):
        encoded = leb128_encode(value)
        assert leb128_decode(encoded + b"\xff", 0) == (value, len(encoded))
    assert leb128_encode(300) == b"\xac\x02"
    with pytest.raises(ValueError):
        leb128_decode(b"\x80\x80", 0)
    assert (
        remove_emulation_prevention(b"\x00\x00\x03\x01\x00\x00\x03\x00")
        == b"\x00\x00\x01\x00\x00\x00"
    )


def test_av1_sequence_header_sizes() -> None:
    # reduced still picture header: profile 0, still, reduced, level 0, 10 width/height bits
    reduced = _bits("000 1 1 00000 1001 1001" + format(639, "010b") + format(479, "010b"))
    assert max_frame_size(reduced) == (480, 640)
    # full header: no timing info, no display delay, one operating point at level 8 (tier bit)
    full = _bits("000 0 0 0 0 00000" + "0" * 12 + "01000" + "0" + "0111 0110" + "1" * 8 + "1" * 7)
    assert max_frame_size(full) == (128, 256)


def test_avif_guard_checks_the_declared_size() -> None:
    image = smooth_image(24, 40, seed=0)
    data = AvifImageCodec(quality=60).encode(image)
    check_avif_size(data, 24, 40)
    with pytest.raises(ValueError, match="ispe"):
        check_avif_size(data, 24, 41)
    items = parse_heif_items(data)
    ispe = items.item_property(data, items.primary_id, b"ispe")
    huge = bytearray(data)
    huge[ispe.start + 4 : ispe.start + 12] = struct.pack(">II", 40000, 40000)
    result = AvifImageCodec().decode(bytes(huge), (24, 40, 3))
    assert not result.ok and "ispe" in result.error


def test_isobmff_rejects_overrunning_boxes() -> None:
    with pytest.raises(ValueError, match="overruns"):
        iter_boxes(struct.pack(">I4s", 100, b"meta") + bytes(8), 0, 16)
    with pytest.raises(ValueError, match="truncated"):
        iter_boxes(b"\x00\x00\x00", 0, 3)


def test_hevc_sps_fields_and_rebuilt_container() -> None:
    image = smooth_image(40, 72, seed=1)
    height, width, units = unpack_stream(HevcImageCodec(qp=30).encode(image))
    sps = parse_sps(units[1])
    assert (sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma) == (1, 8, 8)
    assert sps.width == 72 and sps.height == 64  # libheif pads to >= 64 rows
    heif = build_heif(units, sps, height, width)
    items = parse_heif_items(heif)
    assert items.item_types == {1: b"hvc1"}
    kinds = [items.properties[i - 1].kind for i in items.associations[1]]
    assert kinds == [b"hvcC", b"colr", b"ispe", b"pixi", b"clap"]
    assert heif == build_heif(units, sps, height, width)  # deterministic


def test_hevc_guard_rejects_pictures_larger_than_expected() -> None:
    codec = HevcImageCodec(qp=40)
    big = codec.encode(smooth_image(128, 128, seed=2))
    _, _, units = unpack_stream(big)
    relabelled = pack_stream(16, 16, units)  # header claims 16x16, SPS holds 128x128
    result = codec.decode(relabelled, (16, 16, 3))
    assert not result.ok and "does not fit" in result.error
    result = codec.decode(big, (16, 16, 3))
    assert not result.ok and "header size" in result.error
    result = codec.decode(pack_stream(128, 128, units[1:]), (128, 128, 3))
    assert not result.ok and "VPS, SPS, PPS" in result.error
    long_sps = [units[0], units[1] + bytes(70000), *units[2:]]  # parses, but hvcC holds 16 bits
    result = codec.decode(pack_stream(128, 128, long_sps), (128, 128, 3))
    assert not result.ok and "too long" in result.error


def test_png_guard_never_allocates_the_header_size() -> None:
    labels = np.zeros((16, 16), np.uint8)
    data = bytearray(PngMapCodec().encode(labels))
    # IHDR claims 60000 x 60000 (3.6 GB); fix the CRC so only the size check can reject it
    data[16:24] = struct.pack(">II", 60000, 60000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    assert imagecodecs.png_check(bytes(data))
    result = PngMapCodec().decode(bytes(data), (16, 16))
    assert not result.ok and "shape" in result.error
