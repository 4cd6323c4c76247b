"""5G LDPC links with Sionna's decoder: BLER against stored reference counts, CRC, fading.

Reference counts were measured once with this link (QPSK, LDPC k=512 n=1024, Sionna
``LDPC5GDecoder`` boxplus-phi, 20 flooding iterations, AWGN) and large block counts:

* 0.5 dB: 1817 block errors / 2000 blocks (BLER 0.9085)
* 1.25 dB: 1077 / 5000 (BLER 0.2154)

The tests draw fewer blocks with other seeds and accept 4 standard deviations of the
difference of two binomial estimates (test + reference). A 0.25 dB error in the SNR
scaling moves the 1.25 dB BLER to ~0.09 or ~0.44, outside the band.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from phy.ber import simulate_point
from phy.link import PhyLink
from phy.specs import ChannelSpec, CodingSpec

LDPC = CodingSpec(type="ldpc5g", k=512, n=1024, decoder="sionna", num_iter=20)
REFERENCE = {0.5: (1817, 2000), 1.25: (1077, 5000)}



def _fixed_blocks(link: PhyLink, ebno_db: float, blocks: int, seed: int):
    return simulate_point(link, ebno_db, target_bit_errors=10**12, target_block_errors=10**12,
                          max_bits=blocks * link.k, batch_size=100,
                          generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("ebno_db", "blocks"), [(0.5, 100), (1.25, 200)])
def test_awgn_bler_matches_reference_counts(ebno_db, blocks):
    link = PhyLink("qpsk", LDPC, ChannelSpec())
    assert link.decoder_name == "sionna" and link.code_rate == 0.5
    point = _fixed_blocks(link, ebno_db, blocks, seed=1000 + int(10 * ebno_db))
    ref_errors, ref_blocks = REFERENCE[ebno_db]
    p = ref_errors / ref_blocks
    tol = 4 * math.sqrt(p * (1 - p) * (1 / point.blocks + 1 / ref_blocks))
    assert point.blocks == blocks
    assert abs(point.bler - p) <= tol, (point.bler, p, tol)
    assert point.theory_ber is None


def test_rayleigh_block_fading_follows_the_outage_picture():
    """Block fading: a block fails when its SNR falls below the AWGN waterfall (0.5-2 dB).

    With ``g = |h|^2 ~ Exp(1)`` and AWGN BLER >= 0.9085 below 0.5 dB and <= ~0.01 above
    2 dB, ``0.9085 P(g < 0.5 dB - x) <= BLER(x) <= P(g < 2 dB - x) + 0.01``.
    """
    link = PhyLink("qpsk", LDPC, ChannelSpec(type="rayleigh", fading="block"))
    ebno_db = 10.0
    point = _fixed_blocks(link, ebno_db, 400, seed=2000)
    low = 0.9085 * (1 - math.exp(-(10 ** ((0.5 - ebno_db) / 10))))
    high = (1 - math.exp(-(10 ** ((2.0 - ebno_db) / 10)))) + 0.01
    sigma = math.sqrt(high * (1 - low) / point.blocks)
    assert low - 4 * sigma <= point.bler <= high + 4 * sigma, (low, point.bler, high)
    awgn = _fixed_blocks(PhyLink("qpsk", LDPC), 3.0, 100, seed=2001)
    assert awgn.block_errors == 0 < point.block_errors  # fading hurts


def test_crc_flags_wrong_blocks():
    coding = CodingSpec(type="ldpc5g", k=512, n=1024, decoder="sionna", crc="CRC24A")
    link = PhyLink("qpsk", coding)
    assert link.k == 488 and link.n == 1024
    g = torch.Generator().manual_seed(5)
    bits = torch.randint(0, 2, (60, link.k), generator=g).float()
    out = link(bits, torch.linspace(0.0, 3.0, 60), g)
    correct = (out.bits_hat == bits).all(-1)
    assert out.crc_ok.dtype == torch.bool and out.crc_ok.shape == (60,)
    assert torch.equal(out.crc_ok, correct)
    assert 0 < int(correct.sum()) < 60


def test_padding_when_n_is_not_a_multiple_of_bits_per_symbol():
    link = PhyLink("8psk", CodingSpec(type="ldpc5g", k=100, n=200, decoder="sionna"))
    assert link.num_symbols_per_block == 67  # 201 bits, one zero pad bit
    assert link.bits_per_symbol_effective == pytest.approx(100 / 67)
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (4, 100), generator=g).float()
    out = link(bits, 12.0, g)
    assert out.llr.shape == (4, 200) and torch.equal(out.bits_hat, bits)


def test_decoder_selection(monkeypatch):
    coding = dict(type="ldpc5g", k=64, n=128)
    assert PhyLink("qpsk", CodingSpec(**coding, decoder="sionna")).decoder_name == "sionna"
    try:
        import phy.ldpc_fast  # noqa: F401  (written separately; optional here)

        fast_available = True
    except ImportError:
        fast_available = False
    auto = PhyLink("qpsk", CodingSpec(**coding, decoder="auto"))
    assert auto.decoder_name == ("fast" if fast_available else "sionna")
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (20, 64), generator=g).float()
    assert torch.equal(auto(bits, 6.0, g).bits_hat, bits)

    monkeypatch.setitem(sys.modules, "phy.ldpc_fast", None)  # import now raises ImportError
    assert PhyLink("qpsk", CodingSpec(**coding, decoder="auto")).decoder_name == "sionna"
    with pytest.raises(ImportError):
        PhyLink("qpsk", CodingSpec(**coding, decoder="fast"))
