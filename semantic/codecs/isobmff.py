"""Minimal ISO base media file format (ISO/IEC 14496-12) reading and writing for HEIF/AVIF.

Only what single-image HEIF/AVIF files need: the box tree, the item information (``iinf``),
item locations (``iloc``, construction method 0), the primary item (``pitm``) and item
properties (``ipco``/``ipma``). Parsing is defensive: any inconsistency raises
:class:`ValueError`, so corrupted containers are rejected before a decoder sees them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    """One box: its four-character ``kind`` and the byte range of its payload in the file."""

    kind: bytes
    start: int
    end: int


def iter_boxes(data: bytes, start: int, end: int) -> list[Box]:
    """The boxes that tile ``data[start:end]`` exactly."""
    boxes = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ValueError("truncated box header")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise ValueError("truncated large box header")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"box {kind!r} of size {size} overruns its parent")
        boxes.append(Box(kind, pos + header, pos + size))
        pos += size
    return boxes


def find_box(data: bytes, boxes: list[Box], kind: bytes) -> Box:
    """The single box of ``kind`` among ``boxes`` (exactly one must exist)."""
    matches = [b for b in boxes if b.kind == kind]
    if len(matches) != 1:
        raise ValueError(f"expected one {kind!r} box, found {len(matches)}")
    return matches[0]


@dataclass
class HeifItems:
    """Parsed item structure of a ``meta`` box.

    Attributes:
        primary_id: the ``pitm`` item.
        item_types: item id -> four-character item type.
        extents: item id -> list of ``(offset, length)`` file ranges.
        properties: the ``ipco`` children, in order (property index ``i`` is ``properties[i-1]``).
        associations: item id -> property indices (1-based).
    """

    primary_id: int
    item_types: dict[int, bytes] = field(default_factory=dict)
    extents: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    properties: list[Box] = field(default_factory=list)
    associations: dict[int, list[int]] = field(default_factory=dict)

    def item_data(self, data: bytes, item_id: int) -> bytes:
        """Concatenated extents of ``item_id``."""
        if item_id not in self.extents:
            raise ValueError(f"item {item_id} has no location")
        chunks = []
        for offset, length in self.extents[item_id]:
            if length == 0:
                length = len(data) - offset
            if offset < 0 or length < 0 or offset + length > len(data):
                raise ValueError("item extent outside the file")
            chunks.append(data[offset : offset + length])
        return b"".join(chunks)

    def item_property(self, data: bytes, item_id: int, kind: bytes) -> Box:
        """The single property of ``kind`` associated with ``item_id``."""
        found = []
        for index in self.associations.get(item_id, []):
            if not 1 <= index <= len(self.properties):
                raise ValueError(f"property index {index} out of range")
            if self.properties[index - 1].kind == kind:
                found.append(self.properties[index - 1])
        if len(found) != 1:
            raise ValueError(f"item {item_id}: expected one {kind!r} property, found {len(found)}")
        return found[0]


def parse_heif_items(data: bytes) -> HeifItems:
    """Parse the ``meta`` box of a HEIF/AVIF file (top level: ``ftyp``, ``meta``, ``mdat`` …)."""
    top = iter_boxes(data, 0, len(data))
    meta = find_box(data, top, b"meta")
    children = iter_boxes(data, meta.start + 4, meta.end)  # meta is a full box
    pitm = find_box(data, children, b"pitm")
    version = _u8(data, pitm.start, pitm.end)
    primary_id = _uint(data, pitm.start + 4, 4 if version else 2, pitm.end)
    items = HeifItems(primary_id=primary_id)
    _parse_iinf(data, find_box(data, children, b"iinf"), items)
    _parse_iloc(data, find_box(data, children, b"iloc"), items)
    iprp = find_box(data, children, b"iprp")
    iprp_children = iter_boxes(data, iprp.start, iprp.end)
    ipco = find_box(data, iprp_children, b"ipco")
    items.properties = iter_boxes(data, ipco.start, ipco.end)
    for ipma in (b for b in iprp_children if b.kind == b"ipma"):
        _parse_ipma(data, ipma, items)
    return items


def _parse_iinf(data: bytes, iinf: Box, items: HeifItems) -> None:
    version = _u8(data, iinf.start, iinf.end)
    count_size = 2 if version == 0 else 4
    count = _uint(data, iinf.start + 4, count_size, iinf.end)
    entries = iter_boxes(data, iinf.start + 4 + count_size, iinf.end)
    if len(entries) != count:
        raise ValueError("iinf entry count mismatch")
    for infe in entries:
        if infe.kind != b"infe":
            raise ValueError("unexpected box in iinf")
        infe_version = _u8(data, infe.start, infe.end)
        if infe_version not in (2, 3):
            raise ValueError(f"unsupported infe version {infe_version}")
        id_size = 2 if infe_version == 2 else 4
        item_id = _uint(data, infe.start + 4, id_size, infe.end)
        type_at = infe.start + 4 + id_size + 2
        if type_at + 4 > infe.end:
            raise ValueError("truncated infe")
        items.item_types[item_id] = data[type_at : type_at + 4]


def _parse_iloc(data: bytes, iloc: Box, items: HeifItems) -> None:
    version = _u8(data, iloc.start, iloc.end)
    if version > 2:
        raise ValueError(f"unsupported iloc version {version}")
    pos = iloc.start + 4
    sizes = _uint(data, pos, 2, iloc.end)
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 0xF
    base_offset_size = (sizes >> 4) & 0xF
    index_size = sizes & 0xF if version in (1, 2) else 0
    if any(s not in (0, 4, 8) for s in (offset_size, length_size, base_offset_size, index_size)):
        raise ValueError("invalid iloc field size")
    pos += 2
    count_size = 4 if version == 2 else 2
    count = _uint(data, pos, count_size, iloc.end)
    pos += count_size
    for _ in range(count):
        item_id = _uint(data, pos, count_size, iloc.end)
        pos += count_size
        if version in (1, 2):
            if _uint(data, pos, 2, iloc.end) & 0xF != 0:
                raise ValueError("only file-offset item locations are supported")
            pos += 2
        pos += 2  # data_reference_index
        base_offset = _uint(data, pos, base_offset_size, iloc.end)
        pos += base_offset_size
        extent_count = _uint(data, pos, 2, iloc.end)
        pos += 2
        extents = []
        for _ in range(extent_count):
            pos += index_size
            offset = _uint(data, pos, offset_size, iloc.end)
            pos += offset_size
            length = _uint(data, pos, length_size, iloc.end)
            pos += length_size
            extents.append((base_offset + offset, length))
        items.extents[item_id] = extents


def _parse_ipma(data: bytes, ipma: Box, items: HeifItems) -> None:
    version = _u8(data, ipma.start, ipma.end)
    flags = _uint(data, ipma.start + 1, 3, ipma.end)
    pos = ipma.start + 4
    count = _uint(data, pos, 4, ipma.end)
    pos += 4
    id_size = 2 if version < 1 else 4
    index_size = 2 if flags & 1 else 1
    for _ in range(count):
        item_id = _uint(data, pos, id_size, ipma.end)
        pos += id_size
        num = _uint(data, pos, 1, ipma.end)
        pos += 1
        indices = items.associations.setdefault(item_id, [])
        for _ in range(num):
            value = _uint(data, pos, index_size, ipma.end)
            pos += index_size
            indices.append(value & (0x7FFF if index_size == 2 else 0x7F))


def _u8(data: bytes, pos: int, end: int) -> int:
    return _uint(data, pos, 1, end)


def _uint(data: bytes, pos: int, size: int, end: int) -> int:
    if pos + size > end:
        raise ValueError("truncated box payload")
    return int.from_bytes(data[pos : pos + size], "big")


def box(kind: bytes, payload: bytes) -> bytes:
    """Serialise a box."""
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    """Serialise a full box (version and flags before the payload)."""
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)
