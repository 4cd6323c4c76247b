"""PSNR, SSIM and MS-SSIM against closed forms and a direct reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semantic.metrics.pixel import gaussian_window, ms_ssim, psnr, ssim


def test_psnr_known_values():
    a = torch.zeros(2, 3, 8, 8)
    b = a.clone()
    b[0] += 0.1  # MSE 0.01 -> 20 dB at data range 1
    b[1, :, :4] = 1.0  # half the pixels off by 1 -> MSE 0.5 -> 3.0103 dB
    out = psnr(a, b, data_range=1.0)
    assert out.dtype == torch.float64
    assert out[0].item() == pytest.approx(20.0, abs=1e-5)
    assert out[1].item() == pytest.approx(10 * math.log10(2.0), abs=1e-12)
    u8 = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    assert psnr(u8, u8 + 5).item() == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    assert psnr(u8, u8).item() == math.inf


def _reference_ssim(x: np.ndarray, y: np.ndarray, peak: float) -> float:
    """Direct SSIM of one channel: explicit 11x11 Gaussian-weighted window at every position."""
    g = gaussian_window().numpy()
    w = np.outer(g, g)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return float(np.mean(values))


def test_ssim_matches_direct_reference_and_is_one_for_identical_images():
    gen = np.random.default_rng(0)
    x = gen.random((2, 3, 16, 19))
    y = np.clip(x + gen.normal(0, 0.1, x.shape), 0, 1)
    out = ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=1.0)
    expected = [np.mean([_reference_ssim(x[b, c], y[b, c], 1.0) for c in range(3)]) for b in (0, 1)]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
    assert ssim(torch.from_numpy(x), torch.from_numpy(x)).numpy() == pytest.approx([1.0, 1.0])
    u8 = torch.from_numpy((x * 255).round().astype(np.uint8)).permute(0, 2, 3, 1)
    assert torch.allclose(ssim(u8, u8), torch.ones(2, dtype=torch.float64))


def test_gaussian_window_is_normalised_and_symmetric():
    g = gaussian_window()
    assert g.shape == (11,) and g.sum().item() == pytest.approx(1.0)
    assert torch.allclose(g, g.flip(0))
    assert g[6] / g[5] == pytest.approx(math.exp(-1 / (2 * 1.5**2)))


def test_ms_ssim_needs_large_images_and_orders_distortions():
    small = torch.rand(1, 3, 128, 256)
    assert ms_ssim(small, small) is None
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 1, 1, generator=gen) * 0.5 + 0.25
    x = (base + 0.2 * torch.rand(1, 3, 176, 176, generator=gen)).clamp(0, 1)
    light = (x + 0.02 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    heavy = (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    assert ms_ssim(x, x).item() == pytest.approx(1.0)
    assert 0 < ms_ssim(x, heavy).item() < ms_ssim(x, light).item() < 1.0
