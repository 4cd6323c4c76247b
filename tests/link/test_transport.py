"""Digital transport of byte streams over CRC-checked LDPC blocks."""

from __future__ import annotations

import math

import torch

from link.transport import DigitalTransport, channel_uses, ebno_for_snr
from phy.link import PhyLink
from phy.specs import CodingSpec


def _link():
    return PhyLink("16qam", CodingSpec(type="ldpc5g", k=280, n=560, crc="CRC24A"))


def test_high_snr_delivers_exact_bytes_and_counts():
    link = _link()
    streams = [bytes(range(256)) * 3, b"\x01\x02\x03"]
    out = DigitalTransport(link).send(streams, 30.0, torch.Generator().manual_seed(1))
    assert [d.data for d in out] == streams
    assert all(d.ok and d.block_errors == 0 and d.bit_errors == 0 for d in out)
    assert out[0].blocks == math.ceil(8 * 768 / link.k) and out[1].blocks == 1
    assert out[0].channel_uses == out[0].blocks * link.num_symbols_per_block
    assert channel_uses(link, 24) == link.num_symbols_per_block


def test_low_snr_failures_are_flagged_by_crc():
    link = _link()
    out = DigitalTransport(link).send([bytes(500)] * 4, -5.0, torch.Generator().manual_seed(2))
    assert all(not d.ok and d.block_errors > 0 and d.bit_errors > 0 for d in out)
    assert all(len(d.data) == 500 for d in out)


def test_partial_bits_and_snr_convention():
    link = _link()
    out = DigitalTransport(link).send([b"\xff\xf0"], 30.0, torch.Generator().manual_seed(3),
                                      num_bits=[12])
    assert out[0].data == b"\xff\xf0" and out[0].bits == 12
    # Es/N0 per data symbol equals snr_db: N0 = 10^(-snr/10).
    no = float(link.noise_var(ebno_for_snr(link, 7.0)))
    assert abs(no - 10 ** (-0.7)) < 1e-6
