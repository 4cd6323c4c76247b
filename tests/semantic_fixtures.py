"""Inputs shared by the scheme tests: two synthetic scenes and a coded 16-QAM AWGN link."""

from __future__ import annotations

import numpy as np

from phy.link import PhyLink
from phy.specs import ChannelSpec, CodingSpec
from semantic.data.synthetic import SyntheticStreetScenes
from semantic.schemes.base import SourceBatch


def two_scenes(size: tuple[int, int]) -> SourceBatch:
    """Two held-out synthetic scenes (indices 1e6, 1e6 + 1) of ``size`` (H, W)."""
    b = SyntheticStreetScenes(size=size, seed=0).batch([1_000_000, 1_000_001])
    return SourceBatch(b.images, b.labels, b.instances, np.asarray(b.indices))


def ldpc_16qam_awgn_link() -> PhyLink:
    """16-QAM, 5G LDPC (1024, 2048) with CRC24A, AWGN."""
    return PhyLink("16qam", CodingSpec(type="ldpc5g", k=1024, n=2048, crc="CRC24A"),
                   ChannelSpec(type="awgn"))
