"""The channel in the training loop: AWGN or Rayleigh block fading with perfect CSI.

It reproduces what ``phy.link.PhyLink.analog`` delivers for unit-power symbols on flat channels
(zero-forcing equalisation, effective noise variance ``N0 / |h|^2``) but is differentiable and
takes one SNR per example, so a batch can span an SNR range and both channel kinds. Evaluation
never uses it: the runner sends the symbols over the project's PHY.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.ones(2, 50000, dtype=torch.complex64)
    >>> x_hat, nv = train_channel(x, torch.tensor([10.0, 0.0]), torch.tensor([False, False]), g)
    >>> [round(float(v), 2) for v in (x_hat - x).abs().square().mean(1)]
    [0.1, 1.0]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

TRAIN_CHANNELS: tuple[str, ...] = ("awgn", "rayleigh", "mixed")


def _complex_normal(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """CN(0, 1) draws (unit variance), complex64."""
    re_im = torch.randn(*shape, 2, generator=generator) * math.sqrt(0.5)
    return torch.view_as_complex(re_im)


def draw_conditions(batch: int, snr_range_db: tuple[float, float], channel: str,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Per-example training conditions.

    Args:
        batch: B. snr_range_db: (low, high), SNR per channel use drawn uniformly in dB (equal
            ends: a single training SNR). channel: one of ``TRAIN_CHANNELS`` (``mixed``: each
            example AWGN or Rayleigh with probability 1/2).
    Returns:
        (float32 [B] SNR in dB, bool [B] block fading).
    """
    if channel not in TRAIN_CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(TRAIN_CHANNELS)}, got {channel!r}")
    low, high = snr_range_db
    snr_db = low + (high - low) * torch.rand(batch, generator=generator)
    if channel == "mixed":
        fading = torch.rand(batch, generator=generator) < 0.5
    else:
        fading = torch.full((batch,), channel == "rayleigh")
    return snr_db, fading


def train_channel(symbols: Tensor, snr_db: Tensor, fading: Tensor,
                  generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Send unit-power symbols; return the equalised symbols and their noise variance.

    Args:
        symbols: complex64 [B, N], unit mean power per row.
        snr_db: float [B] SNR per complex channel use (N0 = 10^(-snr/10)).
        fading: bool [B]: one Rayleigh coefficient h ~ CN(0, 1) per row (block fading), known
            to the receiver; False: AWGN.
        generator: CPU generator for noise and fading.
    Returns:
        (complex64 [B, N] equalised symbols x + n / h, float32 [B, N] noise variance N0 / |h|^2).
    """
    batch, num = symbols.shape
    n0 = torch.pow(10.0, -snr_db.float() / 10.0).unsqueeze(1)
    noise = _complex_normal((batch, num), generator) * n0.sqrt()
    h = _complex_normal((batch, 1), generator)
    h = torch.where(fading.unsqueeze(1), h, torch.ones_like(h))
    h = h.to(symbols.device)
    x_hat = symbols + noise.to(symbols.device) / h
    noise_var = (n0.to(symbols.device) / h.abs().square().clamp_min(1e-12)).expand(batch, num)
    return x_hat, noise_var
