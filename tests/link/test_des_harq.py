"""HARQ on the real PHY: the PhyLink hooks, soft combining gains, and residual BLER of the engine
against the PHY's own BLER."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from link.des import FramePayload, LinkLayerConfig, LinkLayerSimulator, PhyBlockCodec
from link.des.harq import BlockBatch, SoftBuffer, redundancy_versions
from link.transport import ebno_for_snr
from phy.link import PhyLink
from phy.specs import CodingSpec


def _link(modulation: str = "qpsk", k: int = 128, n: int = 256) -> PhyLink:
    return PhyLink(modulation, CodingSpec(type="ldpc5g", k=k, n=n, crc="CRC16", decoder="fast"))


def _block_error_rates(codec: PhyBlockCodec, snr_db: float, num_blocks: int,
                       transmissions: int, seed: int) -> list[float]:
    """BLER after each of ``transmissions`` combined transmissions of the same blocks (AWGN)."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    bits = rng.integers(0, 2, (num_blocks, codec.payload_bits_per_block), dtype=np.uint8)
    keys = np.arange(num_blocks)
    codec.prepare(keys, bits)
    rates = []
    for attempt in range(1, transmissions + 1):
        out = codec.transmit(BlockBatch(keys, bits, np.full(num_blocks, attempt),
                                        np.ones(num_blocks, complex), snr_db), g)
        # the receiver's view: a block failed when its CRC fails
        rates.append(float(np.mean(~out.crc_ok)))
    codec.release(keys)
    assert len(codec.soft) == 0
    return rates


def _snr_at(bler_target: float, snrs: list[float], blers: list[float]) -> float:
    """SNR where the BLER curve crosses ``bler_target`` (linear in log10 BLER)."""
    for (s0, b0), (s1, b1) in zip(zip(snrs, blers), zip(snrs[1:], blers[1:])):
        if b0 >= bler_target >= b1 > 0:
            frac = (math.log10(b0) - math.log10(bler_target)) / (math.log10(b0) - math.log10(b1))
            return s0 + frac * (s1 - s0)
    raise AssertionError(f"BLER {bler_target} not bracketed by {list(zip(snrs, blers))}")


def test_phy_hooks_round_trip_through_a_rotating_channel():
    link = _link()
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (50, link.k), generator=g).float()
    coded = link.encode(bits)
    assert coded.shape == (50, link.n)
    rvs = link.encode(bits, rv=[0, 2])
    torch.testing.assert_close(rvs[:, 0], coded)  # version 0 is what __call__ sends
    assert not torch.equal(rvs[:, 1], coded)
    # deep but known fades with random phases: equalised, then decoded without error at 15 dB
    h = torch.polar(torch.full((50,), 0.3), torch.rand(50, generator=g) * 2 * math.pi)
    llr = link.llr_with_coefficient(coded, 10 ** (-1.5), h, g)
    bits_hat, ok = link.decode(llr)
    assert bool(ok.all()) and torch.equal(bits_hat, bits)
    # the LLR scale follows |h|^2 / N0: a weaker channel gives smaller LLRs
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    strong = link.llr_with_coefficient(coded, 0.1, None, g1)
    weak = link.llr_with_coefficient(coded, 0.1, torch.full((50,), 0.5 + 0j), g2)
    assert weak.abs().mean() < strong.abs().mean()


def test_soft_buffer_and_redundancy_versions():
    assert redundancy_versions(np.array([1, 2, 3]), "chase", (0, 2, 3, 1)).tolist() == [0, 0, 0]
    buf = SoftBuffer(n=4, num_versions=4)
    buf.add([1, 2], torch.tensor([0, 2]), torch.ones(2, 4))
    buf.add([1], torch.tensor([3]), 2 * torch.ones(1, 4))
    assert buf.versions(1) == (0, 3) and buf.versions(2) == (2,)
    rows = buf.rows([1])
    assert rows.shape == (1, 4, 4)
    assert rows[0, :, 0].tolist() == [1.0, 0.0, 0.0, 2.0]
    buf.release([1, 2, 99])
    assert len(buf) == 0


def test_chase_combining_of_two_transmissions_gains_3_db():
    # QPSK LLRs are linear in y, so two combined copies at SNR s decode exactly like one copy
    # at s + 3.01 dB; measured where the curves cross BLER 0.2 (waterfall).
    codec = PhyBlockCodec(_link(), "chase")
    num = 800
    single_snrs, chase_snrs = [1.0, 1.5, 2.0], [-2.0, -1.5, -1.0]
    single = [_block_error_rates(codec, s, num, 1, seed=10 + i)[0]
              for i, s in enumerate(single_snrs)]
    chase = [_block_error_rates(codec, s, num, 2, seed=20 + i)[1]
             for i, s in enumerate(chase_snrs)]
    gain_db = _snr_at(0.2, single_snrs, single) - _snr_at(0.2, chase_snrs, chase)
    assert gain_db == pytest.approx(10 * math.log10(2), abs=0.25)


def test_no_combining_does_not_gain_and_ir_beats_chase_at_high_rate():
    num = 400
    # without combining the second transmission is decoded alone: same BLER as the first
    none = _block_error_rates(PhyBlockCodec(_link(), "none"), 1.5, num, 2, seed=3)
    tol = 4 * math.sqrt(2 * 0.25 / num)
    assert abs(none[1] - none[0]) < tol
    assert 0.1 < none[0] < 0.4
    # rate 2/3, 16-QAM at 5 dB: a repeated codeword (chase) is still far from decodable, while
    # redundancy version 2 adds parity (combined rate ~1/3)
    chase = _block_error_rates(PhyBlockCodec(_link("16qam", 128, 192), "chase"), 5.0, num, 2, 4)
    ir = _block_error_rates(PhyBlockCodec(_link("16qam", 128, 192), "ir"), 5.0, num, 2, 4)
    assert chase[0] > 0.95 and ir[0] > 0.95  # first transmissions are the same codeword
    assert chase[1] > 0.6
    assert ir[1] < 0.1


def test_residual_bler_without_fading_or_harq_equals_phy_bler():
    link = _link()
    snr_db, frames, blocks_per_frame = 1.5, 10, 100
    cfg = LinkLayerConfig.model_validate({
        "source": {"fps": 100.0},
        "fading": {"model": "awgn"},
        "harq": {"max_transmissions": 1, "combining": "none"},
    })
    sim = LinkLayerSimulator(cfg, PhyBlockCodec(link, "none"))
    run = sim([FramePayload((blocks_per_frame * link.k,))] * frames, snr_db, seed=7)
    n_engine = run.metrics.num_blocks
    assert n_engine == frames * blocks_per_frame
    assert run.metrics.mean_transmissions_per_block == 1.0
    # many blocks per PHY call: without HARQ a whole frame goes through at once
    assert run.num_phy_calls <= frames
    counts = link.count_errors(n_engine, ebno_for_snr(link, snr_db),
                               torch.Generator().manual_seed(8))
    p_engine = run.metrics.residual_bler
    p_phy = counts.block_errors / counts.blocks
    p = 0.5 * (p_engine + p_phy)
    assert 0.1 < p < 0.4
    assert abs(p_engine - p_phy) < 4 * math.sqrt(p * (1 - p) * 2 / n_engine)
    # residual BER: only bits of failed blocks can be wrong
    assert 0 < run.metrics.residual_ber < p_engine


def _ir_recovers_erased_version_zero(decoder: str) -> None:
    # Noiseless LLRs with the first 80 of 128 bits of version 0 erased: version 0 alone cannot
    # be decoded; adding redundancy version 2 in the circular buffer recovers every block.
    link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=64, n=128, crc="CRC16", decoder=decoder))
    assert link.decoder_name == decoder
    bits = torch.randint(0, 2, (6, link.k), generator=torch.Generator().manual_seed(0)).float()
    llr = 8.0 * (2.0 * link.encode(bits, rv=[0, 2]) - 1.0)
    llr[:, 0, :80] = 0.0
    _, ok_single = link.decode(llr[:, 0])
    bits_hat, ok_ir = link.decode(llr, rv=[0, 2])
    assert not ok_single.any()
    assert bool(ok_ir.all()) and torch.equal(bits_hat, bits)


def test_incremental_redundancy_recovers_erasures_fast_decoder():
    _ir_recovers_erased_version_zero("fast")


@pytest.mark.slow
def test_incremental_redundancy_recovers_erasures_sionna_harq_decoder():
    # Sionna's LDPC5GDecoder(harq_mode=True) path of PhyLink.decode (slow on CPU; the fast
    # decoder test above covers the same behaviour)
    _ir_recovers_erased_version_zero("sionna")
