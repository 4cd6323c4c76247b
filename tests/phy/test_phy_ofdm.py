"""TDL over the OFDM grid: perfect CSI against Rayleigh theory, LS estimation costs SNR.

Each block is one slot here (768 data symbols), an independent TDL realisation, so the
per-block BERs are i.i.d. and their sample standard error sizes the tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch

from phy.link import PhyLink
from phy.specs import ChannelSpec, CodingSpec
from phy.theory import uncoded_ber

SLOTS = 300



def _per_block_ber(csi: str, ebno_db: float, seed: int) -> tuple[float, float, PhyLink]:
    link = PhyLink("16qam", CodingSpec(k=768 * 4), ChannelSpec(type="tdl", csi=csi))
    assert link.num_slots_per_block == 1
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (SLOTS, link.k), generator=g).float()
    out = link(bits, ebno_db, g)
    per_block = (out.bits_hat != bits).double().mean(-1)
    assert torch.isfinite(out.llr).all()
    return per_block.mean().item(), per_block.std().item() / math.sqrt(SLOTS), link


@pytest.mark.parametrize("ebno_db", [6.0, 16.0])
def test_perfect_csi_matches_rayleigh_after_pilot_overhead(ebno_db):
    ber, stderr, link = _per_block_ber("perfect", ebno_db, seed=int(ebno_db))
    # every resource element sees CN(0, 1) marginally; pilots + CP cost 1.0 dB of Eb/N0
    expected = uncoded_ber("16qam", ebno_db - link.ofdm_overhead_db, "rayleigh")
    assert abs(ber - expected) <= 4 * stderr, (ber, expected, stderr)


def test_ls_estimation_is_worse_than_perfect_csi():
    perfect, se_p, _ = _per_block_ber("perfect", 12.0, seed=21)
    ls, se_ls, _ = _per_block_ber("ls", 12.0, seed=21)
    assert 0 < perfect < ls < 0.5
    assert ls - perfect > 4 * math.hypot(se_p, se_ls)
    # LS with 2 pilot symbols costs about 2.5 dB of raw BER here (Sionna API notes, 3c): LS
    # at 12 dB is still worse than perfect CSI at 10 dB
    assert ls > _per_block_ber("perfect", 10.0, seed=22)[0]


def test_blocks_longer_than_a_slot_span_several_slots():
    link = PhyLink("qpsk", CodingSpec(k=2 * 1000), ChannelSpec(type="tdl"))
    assert link.num_slots_per_block == 2  # 1000 symbols, 768 per slot
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (3, link.k), generator=g).float()
    out = link(bits, 40.0, g)
    assert torch.equal(out.bits_hat, bits)
