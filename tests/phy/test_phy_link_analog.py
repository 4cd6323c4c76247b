"""Analog path: power normalisation, SNR per channel use, equalisation, fading structure."""

from __future__ import annotations

import math

import pytest
import torch

from phy.link import PhyLink
from phy.specs import ChannelSpec


def _gaussian_symbols(rows: int, cols: int, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(rows, cols, dtype=torch.complex64, generator=g)


def test_awgn_noise_variance_is_power_over_snr():
    x = _gaussian_symbols(4, 50_000, scale=3.0, seed=0)
    snr_db = torch.tensor([0.0, 10.0, 20.0, 30.0])
    out = PhyLink("qpsk").analog(x, snr_db, torch.Generator().manual_seed(1))
    power = x.abs().square().mean(-1)
    torch.testing.assert_close(out.power, power)
    expected = power / 10 ** (snr_db / 10)
    torch.testing.assert_close(out.noise_var_eff[:, 0], expected)
    mse = (out.symbols_hat - x).abs().square().mean(-1)
    # |noise|^2 is exponential: relative std of the mean 1/sqrt(N)
    assert torch.all((mse / expected - 1).abs() < 4 / math.sqrt(x.shape[1]))
    assert torch.all(out.h == 1) and out.h.shape == x.shape
    assert out.symbols_hat.dtype == torch.complex64 and out.noise_var_eff.dtype == torch.float32


@pytest.mark.parametrize("fading", ["block", "fast"])
@pytest.mark.parametrize("kind", ["rayleigh", "rician"])
def test_flat_fading_structure_and_unbiased_equalisation(kind, fading):
    link = PhyLink("qpsk", channel=ChannelSpec(type=kind, fading=fading, rician_k_db=3.0))
    x = _gaussian_symbols(2000, 64, scale=1.0, seed=2)
    out = link.analog(x, 15.0, torch.Generator().manual_seed(3))
    per_row_spread = (out.h - out.h[:, :1]).abs().amax(-1)
    if fading == "block":
        assert torch.all(per_row_spread == 0)
    else:
        assert torch.all(per_row_spread > 0)
    gain = out.h.abs().square()
    n = gain.numel() if fading == "fast" else gain.shape[0]
    assert abs(gain.mean().item() - 1.0) < 6 / math.sqrt(n)  # E|h|^2 = 1
    torch.testing.assert_close(out.noise_var_eff, out.power[:, None] / 10**1.5 / gain)
    z = ((out.symbols_hat - x).abs().square() / out.noise_var_eff).mean()
    assert abs(z.item() - 1.0) < 4 / math.sqrt(x.numel())


def test_rician_los_component():
    kf = 10 ** (10.0 / 10)
    link = PhyLink("qpsk", channel=ChannelSpec(type="rician", fading="fast", rician_k_db=10.0))
    out = link.analog(torch.ones(100, 1000, dtype=torch.complex64), 20.0,
                      torch.Generator().manual_seed(5))
    amplitude = out.h.abs()
    # |h| concentrates around the LoS amplitude sqrt(K/(K+1)); scattered power 1/(K+1)
    assert abs(amplitude.square().mean().item() - 1.0) < 0.01
    assert abs((amplitude.square().var()).item() - (1 + 2 * kf) / (kf + 1) ** 2) < 0.005


def test_tdl_analog_with_perfect_csi_is_unbiased():
    link = PhyLink("qpsk", channel=ChannelSpec(type="tdl"))
    x = _gaussian_symbols(64, 1000, scale=0.5, seed=6)  # 1000 symbols span 2 slots
    out = link.analog(x, 10.0, torch.Generator().manual_seed(7))
    assert out.symbols_hat.shape == x.shape and out.h.shape == x.shape
    z = ((out.symbols_hat - x).abs().square() / out.noise_var_eff).mean()
    assert abs(z.item() - 1.0) < 0.05
    # perfect CSI: the effective noise is N0 / |h|^2 on each data resource element
    torch.testing.assert_close(out.noise_var_eff, out.power[:, None] * 0.1 / out.h.abs().square(),
                               rtol=1e-3, atol=1e-6)


def test_tdl_analog_with_ls_csi_is_worse_than_perfect():
    x = _gaussian_symbols(32, 768, scale=1.0, seed=8)
    mse = {}
    for csi in ("perfect", "ls"):
        link = PhyLink("qpsk", channel=ChannelSpec(type="tdl", csi=csi))
        out = link.analog(x, 15.0, torch.Generator().manual_seed(9))
        mse[csi] = (out.symbols_hat - x).abs().square().mean().item()
    assert math.isfinite(mse["ls"]) and mse["ls"] > 1.2 * mse["perfect"] > 0
