"""Pixel-fidelity metrics in torch: PSNR, SSIM and MS-SSIM, one value per image.

Image convention (the same as ``semantic.metrics.fid``): a uint8 tensor is [B, H, W, 3] with
data range 255; a float tensor is [B, C, H, W] with the data range given by ``data_range``
(1.0 for images in [0, 1], 255.0 for float images on the 0..255 scale). Computation is float64.

SSIM follows Wang et al., "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004, in the form used by pytorch-msssim (and by skimage's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=L)``): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, "valid"
filtering (no padding), the SSIM map averaged over the image, computed per RGB channel and
averaged over channels. The MATLAB reference ``ssim.m`` additionally works on luminance and
downsamples large images first; this implementation does neither.

MS-SSIM follows Wang, Simoncelli & Bovik, "Multi-scale structural similarity", Asilomar 2003:
5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling between
scales (pytorch-msssim form: contrast-structure terms clamped at 0, odd sides zero-padded). It needs the smallest
scale to hold one 11x11 window, i.e. min(H, W) > 10 * 2**4 = 160; smaller images give None.

LPIPS is not provided: it needs pretrained AlexNet/VGG backbone weights, which the project
does not ship.

Example:
    >>> import torch
    >>> a = torch.zeros(1, 3, 16, 16)
    >>> round(float(psnr(a, a + 0.1, data_range=1.0)[0]), 4)  # 10 log10(1 / 0.01)
    20.0
    >>> float(ssim(a + 0.5, a + 0.5)[0])
    1.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["MS_SSIM_WEIGHTS", "ms_ssim", "psnr", "ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Scale weights of Wang et al. 2003, finest scale first."""

_WINDOW_SIZE = 11
_WINDOW_SIGMA = 1.5
_K1 = 0.01
_K2 = 0.03


def _to_float_nchw(images: torch.Tensor, data_range: float | None) -> tuple[torch.Tensor, float]:
    if images.dtype == torch.uint8:
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"uint8 images must be [B, H, W, 3], got {tuple(images.shape)}")
        return images.permute(0, 3, 1, 2).to(torch.float64), 255.0
    if not images.dtype.is_floating_point:
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"float images must be [B, C, H, W], got {tuple(images.shape)}")
    return images.to(torch.float64), 1.0 if data_range is None else float(data_range)


def _pair(
    a: torch.Tensor, b: torch.Tensor, data_range: float | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    x, range_a = _to_float_nchw(a, data_range)
    y, range_b = _to_float_nchw(b, data_range)
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if range_a != range_b:
        raise ValueError("compare images of the same dtype (uint8 with uint8, float with float)")
    return x, y.to(x.device), range_a


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, ``10 log10(L^2 / MSE)`` in dB.

    Args:
        a, b: uint8 [B, H, W, 3] or float [B, C, H, W] images.
        data_range: L for float images (default 1.0); uint8 images always use 255.

    Returns:
        float64 [B]; +inf for identical images.
    """
    x, y, peak = _pair(a, b, data_range)
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(peak**2 / mse)


def gaussian_window(size: int = _WINDOW_SIZE, sigma: float = _WINDOW_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian, float64 [size], centred on the middle tap."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    window = torch.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering per channel, 'valid' (no padding): [B,C,H,W] -> smaller."""
    channels = x.shape[1]
    size = window.numel()
    w_h = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    w_w = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(x, w_h, groups=channels), w_w, groups=channels)


def _ssim_terms(
    x: torch.Tensor, y: torch.Tensor, peak: float, window: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and mean contrast-structure term, each [B, C]."""
    c1 = (_K1 * peak) ** 2
    c2 = (_K2 * peak) ** 2
    mu_x = _filter_valid(x, window)
    mu_y = _filter_valid(y, window)
    var_x = _filter_valid(x * x, window) - mu_x**2
    var_y = _filter_valid(y * y, window) - mu_y**2
    cov_xy = _filter_valid(x * y, window) - mu_x * mu_y
    cs_map = (2 * cov_xy + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs_map).mean(dim=(2, 3)), cs_map.mean(dim=(2, 3))


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float | None = None) -> torch.Tensor:
    """Structural similarity per image (Gaussian 11x11, sigma 1.5; channel mean).

    Args:
        a, b: uint8 [B, H, W, 3] or float [B, C, H, W] images, both sides >= 11.
        data_range: L for float images (default 1.0); uint8 images always use 255.

    Returns:
        float64 [B], 1.0 for identical images.
    """
    x, y, peak = _pair(a, b, data_range)
    if min(x.shape[-2:]) < _WINDOW_SIZE:
        raise ValueError(f"SSIM needs images of at least {_WINDOW_SIZE}x{_WINDOW_SIZE}")
    window = gaussian_window().to(x.device)
    ssim_per_channel, _ = _ssim_terms(x, y, peak, window)
    return ssim_per_channel.mean(dim=1)


def ms_ssim(
    a: torch.Tensor, b: torch.Tensor, data_range: float | None = None
) -> torch.Tensor | None:
    """Multi-scale SSIM per image (5 scales), or None when min(H, W) <= 160.

    Args:
        a, b: uint8 [B, H, W, 3] or float [B, C, H, W] images.
        data_range: L for float images (default 1.0); uint8 images always use 255.

    Returns:
        float64 [B], or None if the image is too small for 5 scales of an 11x11 window.
    """
    x, y, peak = _pair(a, b, data_range)
    levels = len(MS_SSIM_WEIGHTS)
    if min(x.shape[-2:]) <= (_WINDOW_SIZE - 1) * 2 ** (levels - 1):
        return None
    window = gaussian_window().to(x.device)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=x.device)
    cs_terms = []
    for level in range(levels):
        ssim_per_channel, cs = _ssim_terms(x, y, peak, window)
        if level < levels - 1:
            cs_terms.append(torch.relu(cs))
            # pytorch-msssim's pooling: odd sides are zero-padded by one on each side.
            padding = (x.shape[-2] % 2, x.shape[-1] % 2)
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    terms = torch.stack([*cs_terms, torch.relu(ssim_per_channel)], dim=0)  # [levels, B, C]
    per_channel = torch.prod(terms ** weights.view(-1, 1, 1), dim=0)
    return per_channel.mean(dim=1)
