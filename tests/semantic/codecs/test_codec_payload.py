"""Payload accounting: hand-computed bits, bpp and channel uses."""

from __future__ import annotations

import pytest

from semantic.codecs import Payload, Stream


def test_bits_and_bpp_hand_computed() -> None:
    # 128x256 image: map 700 bytes, image 300 bytes, header 3 bits in one byte.
    payload = Payload.of(
        Stream.digital("map", bytes(700)),
        Stream.digital("image", bytes(300)),
        Stream.digital("header", b"\x05", num_bits=3),
    )
    assert payload.bits("map") == 5600
    assert payload.bits("header") == 3
    assert payload.total_bits == 5600 + 2400 + 3
    assert payload.bpp(128, 256) == pytest.approx(8003 / 32768, abs=0, rel=1e-15)
    assert payload.bpp_by_stream(128, 256) == {
        "map": 5600 / 32768,
        "image": 2400 / 32768,
        "header": 3 / 32768,
    }
    assert sum(payload.bpp_by_stream(128, 256).values()) == pytest.approx(payload.bpp(128, 256))


def test_analog_streams_count_channel_uses_not_bits() -> None:
    payload = Payload.of(
        Stream.digital("map", bytes(10)), Stream.analog("latent", channel_uses=4096)
    )
    assert payload.total_bits == 80
    assert payload.total_channel_uses == 4096
    assert payload.channel_uses("latent") == 4096
    assert payload.channel_uses_per_pixel(64, 128) == 0.5
    assert "latent" not in payload.bpp_by_stream(64, 128)
    with pytest.raises(ValueError, match="analog"):
        payload.bits("latent")
    with pytest.raises(ValueError, match="digital"):
        payload.channel_uses("map")


def test_stream_validation() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        Stream("map", bytes(2), num_bits=17)
    with pytest.raises(ValueError, match="does not fit"):
        Stream("map", bytes(2), num_bits=8)  # a whole unused byte would be sent for free
    with pytest.raises(ValueError, match="channel uses, not bits"):
        Stream("latent", None, num_bits=5, kind="analog", channel_uses=3)
    with pytest.raises(ValueError, match="bits, not channel uses"):
        Stream("map", bytes(1), num_bits=8, channel_uses=1)
    with pytest.raises(ValueError, match="kind"):
        Stream("map", bytes(1), num_bits=8, kind="optical")  # type: ignore[arg-type]
    assert Stream("empty", b"", 0).num_bits == 0
    assert Stream("counted", None, 1234).num_bits == 1234


def test_payload_names_are_unique_and_errors_list_streams() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Payload.of(Stream.digital("map", b"a"), Stream.digital("map", b"b"))
    with pytest.raises(ValueError, match="named"):
        Payload({"image": Stream.digital("map", b"a")})
    payload = Payload.of(Stream.digital("map", b"a"))
    with pytest.raises(KeyError, match="map"):
        payload.bits("index")
    with pytest.raises(ValueError, match="positive"):
        payload.bpp(0, 10)
    with pytest.raises(TypeError):
        payload.streams["x"] = Stream.digital("x", b"")  # type: ignore[index]
