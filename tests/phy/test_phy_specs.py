"""Spec validation: closed name lists with helpful errors, derived quantities."""

from __future__ import annotations

import pytest

from phy.specs import (
    CHANNELS,
    CODES,
    DECODERS,
    MODULATIONS,
    ChannelSpec,
    CodingSpec,
    OfdmSpec,
)


def test_name_lists_match_the_documented_choices():
    assert MODULATIONS == ("bpsk", "qpsk", "8psk", "16qam", "64qam", "256qam")
    assert CHANNELS == ("awgn", "rayleigh", "rician", "tdl")
    assert CODES == ("none", "ldpc5g")
    assert DECODERS == ("auto", "sionna", "fast")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid: awgn, rayleigh, rician, tdl"):
        ChannelSpec(type="awgnn")
    with pytest.raises(ValueError, match="CRC24A"):
        CodingSpec(type="ldpc5g", k=100, n=200, crc="CRC99")
    with pytest.raises(ValueError, match="nn"):
        OfdmSpec(ls_interpolation="cubic")


def test_crc_bits_are_inside_k_and_rate_counts_payload():
    spec = CodingSpec(type="ldpc5g", k=512, n=1024, crc="CRC24A")
    assert spec.crc_length == 24
    assert spec.payload_bits == 488
    assert spec.code_rate == pytest.approx(488 / 1024)
    assert CodingSpec().code_rate == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": "ldpc5g", "k": 512},  # n missing
        {"type": "ldpc5g", "k": 512, "n": 4096},  # rate below 1/5
        {"type": "ldpc5g", "k": 8, "n": 16},  # k below 12
        {"type": "none", "k": 100, "n": 200},  # uncoded needs k == n
        {"type": "none", "crc": "CRC16"},  # CRC without code
        {"type": "ldpc5g", "k": 100, "n": 200, "num_iter": 0},
        {"type": "ldpc5g", "k": 24, "n": 48, "crc": "CRC24A"},  # no payload left
    ],
)
def test_invalid_coding_is_rejected(kwargs):
    with pytest.raises(ValueError):
        CodingSpec(**kwargs)


def test_ls_csi_needs_the_ofdm_channel():
    with pytest.raises(ValueError, match="tdl"):
        ChannelSpec(type="rayleigh", csi="ls")
    assert ChannelSpec(type="tdl", csi="ls").is_fading


def test_specs_are_frozen():
    spec = ChannelSpec()
    with pytest.raises(AttributeError):
        spec.type = "rayleigh"
