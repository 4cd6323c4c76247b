"""Schema of the link-layer section and its checks against a PHY link."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from link.des.config import (
    SPEED_OF_LIGHT_MPS,
    AirConfig,
    FadingConfig,
    HarqConfig,
    LinkLayerConfig,
    check_against_link,
)
from phy.link import PhyLink
from phy.specs import ChannelSpec, CodingSpec


def test_ofdm_numerology():
    # TS 38.211: slot = 1 ms / 2^mu; 12 subcarriers per PRB; 14 - 2 data OFDM symbols
    air = AirConfig(subcarrier_spacing_khz=30, num_prb=51)
    assert air.slot_s == pytest.approx(0.5e-3)
    assert air.capacity_symbols == 12 * 51 * 12
    assert air.data_symbol_rate == pytest.approx(7344 / 0.5e-3)
    assert AirConfig(subcarrier_spacing_khz=15, num_prb=1).slot_s == pytest.approx(1e-3)
    assert AirConfig(subcarrier_spacing_khz=120).slot_s == pytest.approx(0.125e-3)
    with pytest.raises(ValidationError, match="extended CP"):
        AirConfig(ofdm_symbols_per_slot=12, subcarrier_spacing_khz=30)
    with pytest.raises(ValidationError, match="no data symbol"):
        AirConfig(overhead_symbols_per_slot=14)


def test_symbol_rate_air():
    air = AirConfig(mode="symbol_rate", symbol_rate_baud=2e6, symbols_per_slot=1000,
                    slotted=False)
    assert (air.slot_s, air.capacity_symbols) == (5e-4, 1000)
    with pytest.raises(ValidationError, match="symbol_rate"):
        AirConfig(mode="ofdm", slotted=False)


def test_doppler_resolution():
    assert FadingConfig(model="jakes", doppler_hz=12.5).resolved_doppler_hz == 12.5
    assert FadingConfig(model="jakes", coherence_time_s=0.01).resolved_doppler_hz == (
        pytest.approx(42.3))
    speed = FadingConfig(model="gauss_markov", speed_mps=30.0, carrier_frequency_hz=3.5e9)
    assert speed.resolved_doppler_hz == pytest.approx(30.0 * 3.5e9 / SPEED_OF_LIGHT_MPS)
    assert speed.resolved_doppler_hz == pytest.approx(350.24, abs=0.01)
    assert FadingConfig(model="iid").resolved_doppler_hz == 0.0
    with pytest.raises(ValidationError, match="exactly one"):
        FadingConfig(model="jakes")
    with pytest.raises(ValidationError, match="exactly one"):
        FadingConfig(model="jakes", doppler_hz=1.0, speed_mps=1.0)
    with pytest.raises(ValidationError, match="takes no Doppler"):
        FadingConfig(model="awgn", doppler_hz=1.0)


def test_unknown_keys_and_bad_values_are_rejected():
    with pytest.raises(ValidationError, match="extra"):
        LinkLayerConfig.model_validate({"harq": {"max_transmission": 4}})
    with pytest.raises(ValidationError):
        LinkLayerConfig.model_validate({"source": {"arrival": "bursty"}})
    with pytest.raises(ValidationError, match="start with 0"):
        HarqConfig(rv_sequence=(2, 0))
    with pytest.raises(ValidationError, match=r"0\.\.3"):
        HarqConfig(rv_sequence=(0, 4))
    with pytest.raises(ValidationError):
        HarqConfig(feedback_delay_s=-1.0)


def test_defaults_round_trip():
    cfg = LinkLayerConfig()
    again = LinkLayerConfig.model_validate(cfg.model_dump(mode="json"))
    assert again == cfg
    assert cfg.harq.max_transmissions == 4 and cfg.fading.model == "awgn"


def test_check_against_link():
    link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=256, n=512, crc="CRC16"))
    check_against_link(LinkLayerConfig(), link)
    tiny = LinkLayerConfig.model_validate(
        {"air": {"mode": "symbol_rate", "symbols_per_slot": 100}})
    with pytest.raises(ValueError, match="slot carries 100"):
        check_against_link(tiny, link)
    no_crc = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=256, n=512))
    with pytest.raises(ValueError, match="CRC"):
        check_against_link(LinkLayerConfig(), no_crc)
    check_against_link(LinkLayerConfig.model_validate({"harq": {"max_transmissions": 1}}),
                       no_crc)
    uncoded = PhyLink("qpsk")
    with pytest.raises(ValueError, match="ldpc5g"):
        check_against_link(LinkLayerConfig.model_validate(
            {"harq": {"max_transmissions": 1, "combining": "ir"}}), uncoded)
    fading = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=256, n=512, crc="CRC16"),
                     ChannelSpec(type="rayleigh"))
    with pytest.raises(ValueError, match="awgn"):
        check_against_link(LinkLayerConfig(), fading)
