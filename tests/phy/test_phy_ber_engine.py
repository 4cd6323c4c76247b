"""Monte-Carlo engine: stopping rules, exact counts, determinism, seeding of points."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from sionna.phy import config as sionna_config

from phy.ber import BerPoint, point_seed, simulate_curve, simulate_point
from phy.link import ErrorCounts, PhyLink
from phy.specs import ChannelSpec, CodingSpec
from phy.stats import binomial_ci

COUNT_FIELDS = ("bit_errors", "bits", "block_errors", "blocks")


def _counts(point: BerPoint) -> tuple[int, ...]:
    return tuple(getattr(point, f) for f in COUNT_FIELDS)


def test_stops_when_both_targets_are_reached():
    seen: list[ErrorCounts] = []
    point = simulate_point(PhyLink("qpsk", CodingSpec(k=64)), 3.0, target_bit_errors=500,
                           target_block_errors=300, max_bits=10**7, batch_size=50,
                           generator=torch.Generator().manual_seed(0), progress=seen.append)
    assert point.stop_reason == "targets"
    assert point.bit_errors >= 500 and point.block_errors >= 300
    # the batch before the last one had not reached both targets
    before = seen[-2]
    assert before.bit_errors < 500 or before.block_errors < 300
    assert (seen[-1].bit_errors, seen[-1].bits) == (point.bit_errors, point.bits)
    assert point.blocks == 50 * len(seen) and point.bits == 64 * point.blocks


def test_stops_at_max_bits_with_a_short_last_batch():
    point = simulate_point(PhyLink("bpsk", CodingSpec(k=100)), 30.0, target_bit_errors=1,
                           target_block_errors=1, max_bits=12_345, batch_size=40,
                           generator=torch.Generator().manual_seed(0))
    assert point.stop_reason == "max_bits"
    assert (point.bit_errors, point.bits, point.blocks) == (0, 12_300, 123)
    assert point.ber == 0.0 and point.ber_ci_low == 0.0
    assert point.ber_ci_high == pytest.approx(binomial_ci(0, 12_300)[1])
    with pytest.raises(ValueError, match="smaller than one block"):
        simulate_point(PhyLink("bpsk", CodingSpec(k=100)), 0.0, max_bits=50,
                       generator=torch.Generator())


def test_counts_are_exact_integers_and_rates_derive_from_them():
    point = simulate_point(PhyLink("16qam", channel=ChannelSpec(type="rayleigh")), 8.0,
                           target_bit_errors=2000, target_block_errors=20, max_bits=10**6,
                           generator=torch.Generator().manual_seed(1))
    for field in COUNT_FIELDS:
        assert type(getattr(point, field)) is int
    assert point.ber == point.bit_errors / point.bits
    assert point.bler == point.block_errors / point.blocks
    assert (point.bler_ci_low, point.bler_ci_high) == binomial_ci(point.block_errors,
                                                                  point.blocks)
    assert point.esno_db == pytest.approx(8.0 + 6.0206, abs=1e-3)
    assert set(point.as_row()) == {f.name for f in dataclasses.fields(BerPoint)}


def test_count_errors_agrees_with_the_full_call():
    """The uncoded fast path (labels, slicer, popcount) and the call (bits, mapper) agree."""
    link = PhyLink("8psk", CodingSpec(k=3 * 40))
    counts = link.count_errors(2000, 4.0, torch.Generator().manual_seed(2))
    assert counts.bits == 2000 * 120 and counts.blocks == 2000
    assert 0 < counts.block_errors <= min(counts.blocks, counts.bit_errors)
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 2, (2000, link.k), generator=g).float()
    errors = (link(bits, 4.0, g).bits_hat != bits).sum().item()
    p = (errors + counts.bit_errors) / (2 * counts.bits)
    assert abs(errors - counts.bit_errors) / counts.bits <= 4 * (2 * p * (1 - p) / counts.bits) ** 0.5


@pytest.mark.parametrize(
    ("modulation", "coding", "channel"),
    [
        ("qpsk", CodingSpec(k=128), ChannelSpec(type="rician", fading="fast")),
        ("16qam", CodingSpec(k=3072), ChannelSpec(type="tdl", csi="ls", max_speed_mps=30.0)),
        ("qpsk", CodingSpec(type="ldpc5g", k=64, n=128, decoder="sionna", crc="CRC11"),
         ChannelSpec(type="rayleigh")),
    ],
)
def test_same_seed_same_result(modulation, coding, channel):
    link = PhyLink(modulation, coding, channel)
    kwargs = dict(target_bit_errors=50, target_block_errors=5, max_bits=200 * link.k,
                  batch_size=20)
    first = simulate_point(link, 4.0, generator=torch.Generator().manual_seed(5), **kwargs)
    second = simulate_point(link, 4.0, generator=torch.Generator().manual_seed(5), **kwargs)
    other = simulate_point(link, 4.0, generator=torch.Generator().manual_seed(6), **kwargs)
    assert _counts(first) == _counts(second)
    assert _counts(first) != _counts(other)
    bits = torch.randint(0, 2, (3, link.k), generator=torch.Generator().manual_seed(0)).float()
    a = link(bits, 2.0, torch.Generator().manual_seed(9))
    b = link(bits, 2.0, torch.Generator().manual_seed(9))
    assert torch.equal(a.llr, b.llr) and torch.equal(a.bits_hat, b.bits_hat)


def test_tdl_leaves_sionnas_global_generator_untouched():
    link = PhyLink("qpsk", CodingSpec(k=1536), ChannelSpec(type="tdl"))
    state = sionna_config.torch_rng("cpu").get_state()
    link(torch.zeros(2, link.k), 5.0, torch.Generator().manual_seed(0))
    assert torch.equal(sionna_config.torch_rng("cpu").get_state(), state)


def test_curve_points_are_seeded_by_index():
    link = PhyLink("qpsk", CodingSpec(k=64))
    kwargs = dict(target_bit_errors=100, target_block_errors=10, max_bits=10**5, batch_size=100)
    curve = simulate_curve(link, [1.0, 3.0], seed=7, **kwargs)
    alone = simulate_point(link, 3.0, generator=torch.Generator().manual_seed(point_seed(7, 1)),
                           **kwargs)
    assert _counts(curve[1]) == _counts(alone)
    assert point_seed(7, 1) != point_seed(8, 1) and 0 <= point_seed(7, 1) < 2**63


def test_curve_can_stop_after_an_error_free_point():
    link = PhyLink("qpsk", CodingSpec(k=64))
    curve = simulate_curve(link, [0.0, 40.0, 41.0], target_bit_errors=10, target_block_errors=1,
                           max_bits=6400, batch_size=100, stop_when_error_free=True)
    assert [p.ebno_db for p in curve] == [0.0, 40.0] and curve[1].bit_errors == 0
