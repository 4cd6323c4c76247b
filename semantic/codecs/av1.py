"""Pre-decode size guard for AVIF files: check ``ispe`` and every AV1 sequence header.

libavif takes the image size from the ``ispe`` property, but the AV1 decoder allocates frames
from the sequence header inside the item data. A corrupted file could let the two disagree,
so both are checked against the expected size before any decoder runs.
"""

from __future__ import annotations

import struct

from semantic.codecs.bitstream import BitReader, leb128_decode
from semantic.codecs.isobmff import parse_heif_items

OBU_SEQUENCE_HEADER = 1
_MAX_PAD = 64


def max_frame_size(sequence_header: bytes) -> tuple[int, int]:
    """``(max_frame_height, max_frame_width)`` of an AV1 sequence header OBU payload (AV1 5.5)."""
    r = BitReader(sequence_header)
    r.u(3)  # seq_profile
    r.u(1)  # still_picture
    if r.u(1):  # reduced_still_picture_header
        r.u(5)  # seq_level_idx[0]
    else:
        if r.u(1):  # timing_info_present_flag: never written for still images
            raise ValueError("timing info in an AVIF sequence header is not supported")
        initial_display_delay_present = r.u(1)
        for _ in range(r.u(5) + 1):  # operating points
            r.u(12)  # operating_point_idc
            if r.u(5) > 7:  # seq_level_idx
                r.u(1)  # seq_tier
            if initial_display_delay_present and r.u(1):
                r.u(4)
    width_bits, height_bits = r.u(4) + 1, r.u(4) + 1
    max_width = r.u(width_bits) + 1
    max_height = r.u(height_bits) + 1
    return max_height, max_width


def check_avif_size(data: bytes, height: int, width: int) -> None:
    """Raise ``ValueError`` unless the AVIF declares (and can only decode) ``height x width``."""
    items = parse_heif_items(data)
    if items.item_types != {items.primary_id: b"av01"}:
        raise ValueError("expected a single AV1 image item")
    ispe = items.item_property(data, items.primary_id, b"ispe")
    if ispe.end - ispe.start < 12:
        raise ValueError("truncated ispe")
    ispe_width, ispe_height = struct.unpack_from(">II", data, ispe.start + 4)
    if (ispe_height, ispe_width) != (height, width):
        raise ValueError(f"ispe {ispe_height}x{ispe_width} != expected {height}x{width}")
    obus = items.item_data(data, items.primary_id)
    pos = 0
    found = False
    while pos < len(obus):
        header = obus[pos]
        obu_type, has_extension, has_size = (header >> 3) & 0xF, header >> 2 & 1, header >> 1 & 1
        pos += 1 + has_extension
        if has_size:
            size, pos = leb128_decode(obus, pos)
        else:
            size = len(obus) - pos
        if pos + size > len(obus):
            raise ValueError("OBU overruns the item")
        if obu_type == OBU_SEQUENCE_HEADER:
            max_height, max_width = max_frame_size(obus[pos : pos + size])
            if max_height > height + _MAX_PAD or max_width > width + _MAX_PAD:
                raise ValueError(f"sequence header allows {max_height}x{max_width} frames")
            found = True
        pos += size
    if not found:
        raise ValueError("no AV1 sequence header in the item")
