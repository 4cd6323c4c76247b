"""HEVC intra coding at a constant quantiser: the BPG equivalent.

BPG (Bellard's "Better Portable Graphics") is an HEVC intra picture behind a tiny header; its
``-q`` option is the HEVC quantiser parameter (0..51). BPG itself is not packaged here, so
this codec drives the same kind of encoder (x265 through libheif / pillow-heif) in constant-QP
mode (x265 ``--qp`` with ``--ipratio 1``, so every slice is coded at exactly ``qp``; constant
QP also disables adaptive quantisation) with 4:2:0 chroma, and decodes with libde265 through
pillow-heif.

**What is transmitted** (``encode`` returns exactly these bytes):

1. a header: image width and height as LEB128 varints (1 byte each below 128, 2 below
   16384), like BPG's ``ue7`` size fields. The HEVC picture may be larger than the image
   (libheif pads pictures to at least 64 luma rows and to even sizes), so the receiver needs
   the true size to crop;
2. the HEVC NAL units — VPS, SPS, PPS and the slice data — each preceded by its length as a
   LEB128 varint.

The HEIF container that libheif wraps around the NAL units is *not* sent: the receiver
rebuilds it deterministically (:func:`build_heif`), taking chroma format and bit depth from
the SPS, the crop from the header, and the colour description from the codec's fixed
configuration (BT.601 full-range YCbCr, libheif's default, known to both ends). SEI units,
if the encoder wrote any, are dropped; decoding does not need them.

**Guards.** Before anything is handed to libde265 the received bytes are checked: the header
size equals the expected size; exactly one VPS, SPS and PPS followed by IDR slices; an 8-bit
4:2:0 SPS whose picture covers the image and is at most 64 samples larger in each direction.
A damaged header therefore cannot make the decoder allocate a huge picture.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import pillow_heif

from semantic.codecs.base import DecodeResult, check_expected_shape, check_image, guarded_decode
from semantic.codecs.bitstream import (
    BitReader,
    leb128_decode,
    leb128_encode,
    remove_emulation_prevention,
)
from semantic.codecs.isobmff import box, full_box, parse_heif_items

NAL_VPS, NAL_SPS, NAL_PPS = 32, 33, 34
NAL_IDR_W_RADL, NAL_IDR_N_LP = 19, 20
_PARAMETER_SETS = (NAL_VPS, NAL_SPS, NAL_PPS)
_MAX_PARAMETER_SET_BYTES = 1024  # x265 writes 20-60 bytes; hvcC stores 16-bit lengths
_MAX_PAD = 64  # libheif pads pictures to >= 64 rows; x265 codes whole 8x8 blocks
# Fixed colour description of the configuration: libheif's default for RGB input
# (BT.709 primaries, sRGB transfer, BT.601 matrix, full range; ITU-T H.273 code points).
_NCLX = (1, 13, 6, True)
X265_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
X265_TUNES = ("psnr", "ssim", "grain", "fastdecode")


def nal_type(nal: bytes) -> int:
    """``nal_unit_type`` of an HEVC NAL unit (H.265 7.3.1.2)."""
    return (nal[0] >> 1) & 0x3F


@dataclass(frozen=True)
class SequenceParameters:
    """The fields of an HEVC SPS that the container and the guards need.

    Attributes:
        width, height: output (cropped) picture size in luma samples.
        coded_width, coded_height: decoded picture size before conformance cropping.
        chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
        bit_depth_luma, bit_depth_chroma: sample bit depths.
        general_profile_tier_level: the 12 bytes of the general profile, tier and level.
        sample_adaptive_offset: ``sample_adaptive_offset_enabled_flag``.
        separate_colour_plane: ``separate_colour_plane_flag``.
    """

    width: int
    height: int
    coded_width: int
    coded_height: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    general_profile_tier_level: bytes
    sample_adaptive_offset: bool
    separate_colour_plane: bool


def parse_sps(nal: bytes) -> SequenceParameters:
    """Parse an SPS NAL unit (H.265 7.3.2.2) up to ``sample_adaptive_offset_enabled_flag``."""
    rbsp = remove_emulation_prevention(nal)
    if len(rbsp) < 16 or nal_type(rbsp) != NAL_SPS:
        raise ValueError("not an SPS")
    r = BitReader(rbsp[2:])
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    r.u(1)
    ptl = rbsp[3:15]
    r.skip(96)  # general profile (8 + 32 + 48 bits) and general_level_idc (8 bits)
    present = [(r.u(1), r.u(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in present:
        r.skip(88 * profile_present + 8 * level_present)
    if r.ue() > 15:
        raise ValueError("sps_seq_parameter_set_id out of range")
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise ValueError("chroma_format_idc out of range")
    separate_colour_plane = bool(r.u(1)) if chroma_format_idc == 3 else False
    coded_width, coded_height = r.ue(), r.ue()
    left = right = top = bottom = 0
    if r.u(1):  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    sub_width = 2 if chroma_format_idc in (1, 2) else 1
    sub_height = 2 if chroma_format_idc == 1 else 1
    width = coded_width - sub_width * (left + right)
    height = coded_height - sub_height * (top + bottom)
    bit_depth_luma, bit_depth_chroma = 8 + r.ue(), 8 + r.ue()
    if r.ue() > 12:  # log2_max_pic_order_cnt_lsb_minus4
        raise ValueError("log2_max_pic_order_cnt_lsb out of range")
    ordering_info_present = r.u(1)
    for _ in range(
        0 if ordering_info_present else max_sub_layers_minus1, max_sub_layers_minus1 + 1
    ):
        r.ue(), r.ue(), r.ue()
    for _ in range(6):  # coding/transform block sizes and hierarchy depths
        r.ue()
    if r.u(1) and r.u(1):  # scaling_list_enabled_flag and sps_scaling_list_data_present_flag
        raise ValueError("explicit scaling lists are not supported")
    r.u(1)  # amp_enabled_flag
    sample_adaptive_offset = bool(r.u(1))
    return SequenceParameters(
        width, height, coded_width, coded_height, chroma_format_idc,
        bit_depth_luma, bit_depth_chroma, ptl, sample_adaptive_offset, separate_colour_plane,
    )  # fmt: skip


@dataclass(frozen=True)
class PictureParameters:
    """The PPS fields needed to find a slice's quantiser (H.265 7.3.2.3)."""

    output_flag_present: bool
    num_extra_slice_header_bits: int
    init_qp: int
    cu_qp_delta_enabled: bool


def parse_pps(nal: bytes) -> PictureParameters:
    """Parse a PPS NAL unit up to ``cu_qp_delta_enabled_flag``."""
    rbsp = remove_emulation_prevention(nal)
    if len(rbsp) < 3 or nal_type(rbsp) != NAL_PPS:
        raise ValueError("not a PPS")
    r = BitReader(rbsp[2:])
    r.ue(), r.ue()  # pps_pic_parameter_set_id, pps_seq_parameter_set_id
    r.u(1)  # dependent_slice_segments_enabled_flag
    output_flag_present = bool(r.u(1))
    num_extra_slice_header_bits = r.u(3)
    r.u(1), r.u(1)  # sign_data_hiding_enabled_flag, cabac_init_present_flag
    r.ue(), r.ue()  # num_ref_idx_l0/l1_default_active_minus1
    init_qp = 26 + r.se()
    r.u(1), r.u(1)  # constrained_intra_pred_flag, transform_skip_enabled_flag
    return PictureParameters(
        output_flag_present, num_extra_slice_header_bits, init_qp, bool(r.u(1))
    )


def slice_qp(nal: bytes, sps: SequenceParameters, pps: PictureParameters) -> int:
    """``SliceQpY`` of the first slice segment of an IDR picture (H.265 7.3.6.1, eq. 7-54)."""
    rbsp = remove_emulation_prevention(nal)
    if nal_type(rbsp) not in (NAL_IDR_W_RADL, NAL_IDR_N_LP):
        raise ValueError("not an IDR slice")
    r = BitReader(rbsp[2:])
    if not r.u(1):
        raise ValueError("not the first slice segment of the picture")
    r.u(1)  # no_output_of_prior_pics_flag
    r.ue()  # slice_pic_parameter_set_id
    r.skip(pps.num_extra_slice_header_bits)
    if r.ue() != 2:
        raise ValueError("not an I slice")
    if pps.output_flag_present:
        r.u(1)
    if sps.separate_colour_plane:
        r.u(2)
    if sps.sample_adaptive_offset:
        r.u(1)
        if sps.chroma_format_idc != 0:
            r.u(1)
    return pps.init_qp + r.se()


def pack_stream(height: int, width: int, units: list[bytes]) -> bytes:
    """Serialise the transmitted bytes: size header, then length-prefixed NAL units."""
    return (
        leb128_encode(width)
        + leb128_encode(height)
        + b"".join(leb128_encode(len(u)) + u for u in units)
    )


def unpack_stream(data: bytes) -> tuple[int, int, list[bytes]]:
    """Inverse of :func:`pack_stream`: ``(height, width, units)``; ``ValueError`` if malformed."""
    width, pos = leb128_decode(data, 0, max_bytes=3)
    height, pos = leb128_decode(data, pos, max_bytes=3)
    units = []
    while pos < len(data):
        length, pos = leb128_decode(data, pos, max_bytes=4)
        if length < 3 or pos + length > len(data):
            raise ValueError("NAL unit length out of range")
        units.append(data[pos : pos + length])
        pos += length
    return height, width, units


def extract_nal_units(heif: bytes) -> list[bytes]:
    """The VPS, SPS, PPS and slice NAL units of the primary image of a single-image HEIF."""
    items = parse_heif_items(heif)
    if items.item_types.get(items.primary_id) != b"hvc1":
        raise ValueError("primary item is not an HEVC image")
    hvcc = items.item_property(heif, items.primary_id, b"hvcC")
    config = heif[hvcc.start : hvcc.end]
    length_size = (config[21] & 3) + 1
    pos, num_arrays = 23, config[22]
    parameter_sets: dict[int, list[bytes]] = {}
    for _ in range(num_arrays):
        kind, count = config[pos] & 0x3F, struct.unpack_from(">H", config, pos + 1)[0]
        pos += 3
        for _ in range(count):
            length = struct.unpack_from(">H", config, pos)[0]
            parameter_sets.setdefault(kind, []).append(config[pos + 2 : pos + 2 + length])
            pos += 2 + length
    data = items.item_data(heif, items.primary_id)
    slices = []
    pos = 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + length_size], "big")
        unit = data[pos + length_size : pos + length_size + length]
        pos += length_size + length
        if nal_type(unit) < 32:
            slices.append(unit)
        elif nal_type(unit) in _PARAMETER_SETS:
            parameter_sets.setdefault(nal_type(unit), []).append(unit)
        # other units (SEI, access unit delimiters) are not needed to decode and are not sent
    units = []
    for kind in _PARAMETER_SETS:
        if len(parameter_sets.get(kind, [])) != 1:
            raise ValueError(f"expected one parameter set of NAL type {kind}")
        units.append(parameter_sets[kind][0])
    if not slices:
        raise ValueError("no slice data in the HEIF item")
    return units + slices


def check_units(units: list[bytes]) -> SequenceParameters:
    """Validate received NAL units before decoding; returns the parsed SPS."""
    if len(units) < 4 or [nal_type(u) for u in units[:3]] != list(_PARAMETER_SETS):
        raise ValueError("expected VPS, SPS, PPS then slices")
    for unit in units:
        # forbidden_zero_bit = 0, nuh_layer_id = 0, nuh_temporal_id_plus1 = 1
        if unit[0] & 0x81 or unit[1] != 1:
            raise ValueError("invalid NAL unit header")
    if any(nal_type(u) not in (NAL_IDR_W_RADL, NAL_IDR_N_LP) for u in units[3:]):
        raise ValueError("expected only IDR slice NAL units after the parameter sets")
    if any(len(u) > _MAX_PARAMETER_SET_BYTES for u in units[:3]):
        raise ValueError("parameter set too long")
    return parse_sps(units[1])


def build_heif(units: list[bytes], sps: SequenceParameters, height: int, width: int) -> bytes:
    """Wrap NAL units in a minimal single-image HEIF file (ISO/IEC 23008-12), deterministically.

    The item is the whole HEVC picture (``ispe``); when the image is smaller, a clean-aperture
    (``clap``) property crops its top-left ``height x width`` corner, as libheif writes it.
    """
    vps, sps_nal, pps = units[:3]
    hvcc = (
        bytes([1])
        + sps.general_profile_tier_level
        + bytes([0xF0, 0x00, 0xFC, 0xFC | sps.chroma_format_idc])
        + bytes([0xF8 | (sps.bit_depth_luma - 8), 0xF8 | (sps.bit_depth_chroma - 8)])
        + bytes([0, 0, 0x0F, 3])  # avgFrameRate, 1 temporal layer, nested, 4-byte lengths
        + b"".join(
            struct.pack(">BHH", 0x40 | nal_type(u), 1, len(u)) + u for u in (vps, sps_nal, pps)
        )
    )
    primaries, transfer, matrix, full_range = _NCLX
    depths = bytes([3, sps.bit_depth_luma, sps.bit_depth_chroma, sps.bit_depth_chroma])
    properties = [
        box(b"hvcC", hvcc),
        box(b"colr", b"nclx" + struct.pack(">HHHB", primaries, transfer, matrix, full_range << 7)),
        full_box(b"ispe", 0, 0, struct.pack(">II", sps.width, sps.height)),
        full_box(b"pixi", 0, 0, depths),
    ]
    associations = [0x81, 0x02, 0x03, 0x04]  # high bit: essential property
    if (sps.height, sps.width) != (height, width):
        # clean aperture centred at picture centre + offset; offset = (image - picture) / 2
        clap = struct.pack(
            ">IIIIiIiI", width, 1, height, 1, width - sps.width, 2, height - sps.height, 2
        )
        properties.append(box(b"clap", clap))
        associations.append(0x85)
    ipma_payload = struct.pack(">IHB", 1, 1, len(associations)) + bytes(associations)
    iprp = box(b"iprp", box(b"ipco", b"".join(properties)) + full_box(b"ipma", 0, 0, ipma_payload))
    hdlr = full_box(b"hdlr", 0, 0, b"\0\0\0\0pict" + bytes(13))
    pitm = full_box(b"pitm", 0, 0, struct.pack(">H", 1))
    infe = full_box(b"infe", 2, 0, b"\0\x01\0\0hvc1\0")
    iinf = full_box(b"iinf", 0, 0, struct.pack(">H", 1) + infe)
    item_data = b"".join(struct.pack(">I", len(u)) + u for u in units[3:])
    ftyp = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")

    def iloc(offset: int) -> bytes:
        location = struct.pack(">BBHHHHII", 0x44, 0, 1, 1, 0, 1, offset, len(item_data))
        return full_box(b"iloc", 0, 0, location)

    meta_size = len(full_box(b"meta", 0, 0, hdlr + pitm + iloc(0) + iinf + iprp))
    offset = len(ftyp) + meta_size + 8
    meta = full_box(b"meta", 0, 0, hdlr + pitm + iloc(offset) + iinf + iprp)
    return ftyp + meta + box(b"mdat", item_data)


class HevcImageCodec:
    """HEVC intra (x265) at a constant QP with 4:2:0 chroma; transmits only NAL units.

    Args:
        qp: HEVC quantiser parameter, 0 (finest) .. 51 (coarsest); BPG's ``-q`` scale.
        preset: x265 speed preset (``slow`` is libheif's default).
        tune: x265 tuning (``ssim`` is libheif's default; with constant QP it only turns
            psycho-visual optimisations off, like ``psnr``).

    Shapes: ``encode(uint8 [H, W, 3]) -> bytes``; ``decode(bytes, (H, W, 3)) -> DecodeResult``.

    Example:
        >>> codec = HevcImageCodec(qp=32)
        >>> image = np.zeros((16, 24, 3), np.uint8)
        >>> codec.decode(codec.encode(image), (16, 24, 3)).array.shape
        (16, 24, 3)
    """

    name = "hevc"

    def __init__(self, qp: int = 32, preset: str = "slow", tune: str = "ssim") -> None:
        if not (isinstance(qp, int) and 0 <= qp <= 51):
            raise ValueError(f"qp must be an int in 0..51, got {qp!r}")
        if preset not in X265_PRESETS:
            raise ValueError(f"preset must be one of {X265_PRESETS}, got {preset!r}")
        if tune not in X265_TUNES:
            raise ValueError(f"tune must be one of {X265_TUNES}, got {tune!r}")
        self.qp = qp
        self.preset = preset
        self.tune = tune

    def encode(self, image: np.ndarray) -> bytes:
        """Encode ``uint8 [H, W, 3]`` RGB; returns the transmitted bytes."""
        image = check_image(image)
        height, width = image.shape[:2]
        buffer = io.BytesIO()
        # x265:qp switches x265 to constant QP, so libheif's `quality` (CRF) has no effect
        pillow_heif.encode(
            "RGB", (width, height), image.tobytes(), buffer,
            tile_size=0, chroma=420, quality=50, save_nclx_profile=True,
            enc_params={"x265:qp": self.qp, "x265:ipratio": 1, "preset": self.preset, "tune": self.tune},
        )  # fmt: skip
        return pack_stream(height, width, extract_nal_units(buffer.getvalue()))

    def decode(self, data: bytes, expected_shape: tuple[int, int, int]) -> DecodeResult:
        """Decode received bytes to ``uint8 [H, W, 3]``, or report failure."""
        shape = check_expected_shape(expected_shape, 3)
        try:
            height, width, units = unpack_stream(bytes(data))
            if (height, width) != shape[:2]:
                raise ValueError(f"header size {height}x{width} != expected {shape[0]}x{shape[1]}")
            sps = check_units(units)
            if not (
                height <= sps.height <= height + _MAX_PAD and width <= sps.width <= width + _MAX_PAD
            ):
                raise ValueError(f"SPS picture {sps.height}x{sps.width} does not fit the image")
            if not (
                sps.coded_height <= sps.height + _MAX_PAD
                and sps.coded_width <= sps.width + _MAX_PAD
            ):
                raise ValueError("SPS coded size inconsistent with its cropped size")
            if sps.chroma_format_idc != 1 or sps.bit_depth_luma != 8 or sps.bit_depth_chroma != 8:
                raise ValueError("SPS is not 8-bit 4:2:0")
        except (ValueError, IndexError) as exc:
            return DecodeResult.failure(f"invalid HEVC stream: {exc}")
        return guarded_decode(lambda: _decode_heif(build_heif(units, sps, height, width)), shape)


def _decode_heif(heif: bytes) -> np.ndarray:
    heif_file = pillow_heif.open_heif(io.BytesIO(heif), convert_hdr_to_8bit=True)
    if heif_file.mode != "RGB":
        raise ValueError(f"decoded mode {heif_file.mode}")
    return np.asarray(heif_file)
