"""Constellations: unit energy, Gray labels, Sionna-compatible labelling, exact slicer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sionna.phy.mapping import Mapper

from phy.modulation import (
    HardSlicer,
    constellation_points,
    label_bits,
    make_constellation,
    num_bits_per_symbol,
)
from phy.specs import MODULATIONS


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_unit_energy_and_gray_labels(modulation):
    points = constellation_points(modulation)
    m = num_bits_per_symbol(modulation)
    assert points.shape == (2**m,)
    assert np.mean(np.abs(points) ** 2) == pytest.approx(1.0, abs=1e-12)
    # Gray: every point's nearest neighbours differ from it in exactly one bit
    dist = np.abs(points[:, None] - points[None, :])
    np.fill_diagonal(dist, np.inf)
    dmin = dist.min()
    for i, j in zip(*np.nonzero(np.isclose(dist, dmin))):
        assert bin(i ^ j).count("1") == 1


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_sionna_constellation_and_mapper_use_the_same_labels(modulation):
    const = make_constellation(modulation)
    np.testing.assert_allclose(const().numpy(), constellation_points(modulation), atol=1e-6)
    m = num_bits_per_symbol(modulation)
    bits = torch.as_tensor(label_bits(m), dtype=torch.float32).reshape(1, -1)
    mapped = Mapper(constellation=const)(bits).reshape(-1).numpy()
    np.testing.assert_allclose(mapped, constellation_points(modulation), atol=1e-6)


def test_known_labels():
    assert constellation_points("bpsk")[0] == pytest.approx(1.0)
    psk = constellation_points("8psk")
    # phase index p carries label p ^ (p >> 1): 0,1,3,2,6,7,5,4
    order = [0, 1, 3, 2, 6, 7, 5, 4]
    np.testing.assert_allclose(psk[order], np.exp(2j * np.pi * np.arange(8) / 8), atol=1e-12)
    # 3GPP TS 38.211 5.1.3 QPSK: label b0 b1 -> ((1-2 b0) + j (1-2 b1)) / sqrt(2)
    np.testing.assert_allclose(constellation_points("qpsk"),
                               np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2))


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_slicer_is_the_minimum_distance_decision(modulation):
    g = torch.Generator().manual_seed(0)
    y = 1.3 * torch.randn(20_000, dtype=torch.complex64, generator=g)
    points = torch.as_tensor(constellation_points(modulation), dtype=torch.complex64)
    dist = (y[:, None] - points[None, :]).abs()
    chosen = dist.gather(1, HardSlicer(modulation)(y)[:, None])[:, 0]
    # equal to the minimum distance (indices may differ only at float32 ties)
    torch.testing.assert_close(chosen, dist.min(-1).values, rtol=0, atol=1e-6)
    assert (HardSlicer(modulation)(y) == dist.argmin(-1)).float().mean() > 0.999
    assert torch.equal(HardSlicer(modulation)(points), torch.arange(points.numel()))


def test_label_bits_msb_first():
    np.testing.assert_array_equal(label_bits(3)[6], [1, 1, 0])
