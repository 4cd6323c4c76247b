"""Uncoded links: Monte-Carlo BER against the closed forms, CommPy, Sionna's conventions.

Tolerance: ``4 sqrt(p (1 - p) / n)`` with ``p`` the closed form and ``n`` the number of bits.
Bit errors of one symbol are not independent; the variance of the per-symbol error count
relative to the binomial one was measured at <= 1.0 on AWGN and <= 1.7 on fast Rayleigh
(256-QAM), so the band stays >= 3 true standard deviations. For block fading, bits of a block
share one fade, so ``n`` is the number of blocks there (the block BER lies in [0, 1], whose
variance is at most ``p (1 - p)``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sionna.phy.utils import ebnodb2no

from phy.ber import simulate_point
from phy.link import PhyLink
from phy.specs import MODULATIONS, ChannelSpec, CodingSpec
from phy.theory import uncoded_ber

AWGN_POINTS = {
    "bpsk": (2.0, 7.0), "qpsk": (2.0, 7.0), "8psk": (4.0, 10.0),
    "16qam": (4.0, 10.0), "64qam": (6.0, 14.0), "256qam": (8.0, 18.0),
}
RAYLEIGH_POINTS = (5.0, 15.0)
NUM_BITS = 10**6



def _fixed_budget(link: PhyLink, ebno_db: float, seed: int, bits: int = NUM_BITS):
    return simulate_point(link, ebno_db, target_bit_errors=10**12, target_block_errors=10**12,
                          max_bits=bits, generator=torch.Generator().manual_seed(seed))


def _assert_close_to(ber: float, expected: float, n: int) -> None:
    assert expected >= 1e-4
    tol = 4 * math.sqrt(expected * (1 - expected) / n)
    assert abs(ber - expected) <= tol, (ber, expected, tol)


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_awgn_ber_matches_closed_form(modulation):
    link = PhyLink(modulation)
    for i, ebno_db in enumerate(AWGN_POINTS[modulation]):
        point = _fixed_budget(link, ebno_db, seed=100 + i)
        assert point.bits == (NUM_BITS // link.k) * link.k
        assert point.theory_ber == pytest.approx(uncoded_ber(modulation, ebno_db))
        _assert_close_to(point.ber, point.theory_ber, point.bits)


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_fast_rayleigh_ber_matches_closed_form(modulation):
    link = PhyLink(modulation, channel=ChannelSpec(type="rayleigh", fading="fast"))
    for i, ebno_db in enumerate(RAYLEIGH_POINTS):
        point = _fixed_budget(link, ebno_db, seed=200 + i)
        _assert_close_to(point.ber, uncoded_ber(modulation, ebno_db, "rayleigh"), point.bits)


@pytest.mark.parametrize("modulation", ["qpsk", "64qam"])
def test_block_rayleigh_ber_matches_closed_form(modulation):
    m = {"qpsk": 2, "64qam": 6}[modulation]
    link = PhyLink(modulation, CodingSpec(k=16 * m),
                   ChannelSpec(type="rayleigh", fading="block"))
    point = _fixed_budget(link, 10.0, seed=300, bits=40_000 * link.k)
    _assert_close_to(point.ber, uncoded_ber(modulation, 10.0, "rayleigh"), point.blocks)


@pytest.mark.parametrize("modulation", ["qpsk", "16qam", "8psk"])
def test_rician_ber_matches_numeric_theory(modulation):
    channel = ChannelSpec(type="rician", fading="fast", rician_k_db=6.0)
    point = _fixed_budget(PhyLink(modulation, channel=channel), 8.0, seed=400)
    expected = uncoded_ber(modulation, 8.0, "rician", 6.0)
    _assert_close_to(point.ber, expected, point.bits)
    assert uncoded_ber(modulation, 8.0) < expected < uncoded_ber(modulation, 8.0, "rayleigh")


@pytest.mark.parametrize(("modulation", "ebno_db"), [("16qam", 6.0), ("qpsk", 4.0)])
def test_agrees_with_commpy(modulation, ebno_db):
    """The same uncoded link simulated with scikit-commpy gives the same BER statistically."""
    from commpy.channels import awgn
    from commpy.modulation import QAMModem

    m = {"qpsk": 2, "16qam": 4}[modulation]
    bits = np.random.default_rng(7).integers(0, 2, 200_000 * m)
    modem = QAMModem(2**m)  # Gray, not unit energy: awgn() measures Es from the signal
    symbols = np.asarray(modem.modulate(bits), dtype=np.complex128)  # complex64 drops noise
    # Es/N0 in dB; CommPy draws from NumPy's global RNG, seeded by the conftest fixture
    received = awgn(symbols, ebno_db + 10 * math.log10(m), rate=1.0)
    commpy_errors = int(np.sum(modem.demodulate(received, "hard")[: bits.size] != bits))
    commpy_ber = commpy_errors / bits.size

    ours = _fixed_budget(PhyLink(modulation), ebno_db, seed=500)
    p = (commpy_errors + ours.bit_errors) / (bits.size + ours.bits)
    tol = 4 * math.sqrt(p * (1 - p) * (1 / bits.size + 1 / ours.bits))
    assert abs(ours.ber - commpy_ber) <= tol, (ours.ber, commpy_ber, tol)
    _assert_close_to(commpy_ber, uncoded_ber(modulation, ebno_db), bits.size)



def test_call_outputs_shapes_dtypes_and_hard_decisions():
    link = PhyLink("16qam", CodingSpec(k=64))
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 2, (5, 64), generator=g).float()
    out = link(bits, torch.tensor([0.0, 5.0, 10.0, 20.0, 40.0]), g)
    assert out.bits_hat.shape == (5, 64) and out.bits_hat.dtype == torch.float32
    assert out.llr.shape == (5, 64) and out.llr.dtype == torch.float32
    assert out.symbols_hat.shape == (5, 16) and out.symbols_hat.dtype == torch.complex64
    assert out.crc_ok is None
    assert torch.equal(out.bits_hat[4], bits[4])  # 40 dB: error free
    # Es/N0 = Eb/N0 * 4 bits per symbol
    np.testing.assert_allclose(out.esno_db.numpy(), [6.0206, 11.0206, 16.0206, 26.0206,
                                                      46.0206], atol=1e-3)
    # LLR signs agree with the symbol decisions at high SNR (Sionna logits: > 0 means 1)
    assert torch.equal((out.llr[3] > 0).float(), out.bits_hat[3])


def test_256qam_llrs_are_chunked_and_finite():
    link = PhyLink("256qam", CodingSpec(k=8 * 2048))  # 2048 symbols per block
    g = torch.Generator().manual_seed(4)
    bits = torch.randint(0, 2, (4, link.k), generator=g).float()
    out = link(bits, 30.0, g)
    assert out.llr.shape == (4, link.k) and torch.isfinite(out.llr).all()
    assert torch.equal((out.llr > 0).float(), bits)


def test_noise_variance_follows_sionna_ebnodb2no():
    coded = PhyLink("16qam", CodingSpec(type="ldpc5g", k=512, n=1024, decoder="sionna"))
    assert float(coded.noise_var(3.0)) == pytest.approx(float(ebnodb2no(3.0, 4, 0.5)), rel=1e-6)
    tdl = PhyLink("qpsk", CodingSpec(k=1536), ChannelSpec(type="tdl"))
    expected = float(ebnodb2no(3.0, 2, 1.0, resource_grid=tdl._rg))
    assert float(tdl.noise_var(3.0)) == pytest.approx(expected, rel=1e-6)
    assert tdl.ofdm_overhead_db == pytest.approx(
        10 * math.log10(14 * (1 + 6 / 76) * 64 / 768), abs=1e-9)


def test_double_precision():
    link = PhyLink("qpsk", CodingSpec(k=32), precision="double")
    out = link(torch.zeros(2, 32), 5.0, torch.Generator().manual_seed(0))
    assert out.llr.dtype == torch.float64 and out.symbols_hat.dtype == torch.complex128


def test_bad_inputs_are_rejected():
    link = PhyLink("qpsk", CodingSpec(k=32))
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=r"\[B, 32\]"):
        link(torch.zeros(2, 30), 5.0, g)
    with pytest.raises(ValueError, match="scalar or shape"):
        link(torch.zeros(2, 32), torch.zeros(3), g)
    with pytest.raises(ValueError, match="multiple of 3"):
        PhyLink("8psk", CodingSpec(k=100))
    with pytest.raises(ValueError, match="valid: bpsk"):
        PhyLink("32qam")
