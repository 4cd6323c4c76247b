"""SPIC-style resampling around a lossy image codec.

SPIC codes a *coarse*, downscaled image with BPG and lets the receiver upsample it before the
diffusion model refines it. Here the transmitter downscales with an antialiasing filter and
the receiver upsamples with bicubic interpolation; both ends know ``factor`` and the original
size from the configuration.

- ``area`` downscaling: each output pixel is the mean of the input pixels its footprint
  overlaps (``[floor(i*n/m), ceil((i+1)*n/m))``, like ``torch`` ``adaptive_avg_pool2d``).
- ``bicubic`` downscaling: the Keys cubic kernel (a = -0.5) stretched by the scale factor
  and normalised: antialiased, the same filter as PIL and ``torch`` ``antialias=True``.
- upsampling: Keys bicubic (a = -0.75), half-pixel centres (``align_corners=False``), edge
  samples replicated, then rounded and clipped to ``uint8``.

Separable filters are applied as small matrices in NumPy (float64), so results do not depend
on thread counts.

Example:
    >>> image = np.full((128, 256, 3), 100, np.uint8)
    >>> small = downscale(image, 4)
    >>> small.shape, upscale(small, (128, 256)).shape
    ((32, 64, 3), (128, 256, 3))
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

DOWNSCALE_METHODS = ("area", "bicubic")
# Keys (1981) cubic convolution parameter: -0.75 for interpolation (PyTorch, OpenCV), -0.5 for
# the antialiasing filter (PIL, PyTorch antialias=True)
_UPSAMPLE_A = -0.75
_ANTIALIAS_A = -0.5


def coarse_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """Size of the coarse image: ``round(H / factor) x round(W / factor)``, at least 1x1."""
    if factor < 1:
        raise ValueError(f"downscaling factor must be >= 1, got {factor}")
    return max(1, round(height / factor)), max(1, round(width / factor))


def downscale(image: np.ndarray, factor: float, method: str = "area") -> np.ndarray:
    """Downscale ``uint8 [H, W, C]`` (or ``[H, W]``) by ``factor`` with antialiasing.

    Returns ``uint8`` of size :func:`coarse_size` with the same channels.
    """
    if method not in DOWNSCALE_METHODS:
        raise ValueError(f"method must be one of {DOWNSCALE_METHODS}, got {method!r}")
    image = _check(image)
    size = coarse_size(image.shape[0], image.shape[1], factor)
    return _apply(image, method, size)


def upscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic upsampling of ``uint8 [h, w, C]`` (or ``[h, w]``) to ``size = (H, W)``."""
    image = _check(image)
    height, width = (int(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return _apply(image, "upsample", (height, width))


def _keys(distance: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d**2 + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _bicubic_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``[n_out, n_in]`` interpolation matrix; taps beyond the edge use the edge sample."""
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        source = (i + 0.5) * n_in / n_out - 0.5
        base = math.floor(source)
        for tap in range(base - 1, base + 3):
            matrix[i, min(max(tap, 0), n_in - 1)] += _keys(np.array(source - tap), _UPSAMPLE_A)
    return matrix


def _area_matrix(n_out: int, n_in: int) -> np.ndarray:
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        start, stop = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


def _antialiased_bicubic_matrix(n_out: int, n_in: int) -> np.ndarray:
    scale = max(n_in / n_out, 1.0)
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * n_in / n_out
        lo, hi = max(0, math.floor(centre - 2 * scale)), min(n_in, math.ceil(centre + 2 * scale))
        taps = np.arange(lo, hi)
        weights = _keys((taps + 0.5 - centre) / scale, _ANTIALIAS_A)
        matrix[i, lo:hi] = weights / weights.sum()
    return matrix


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected uint8 [H, W] or [H, W, C], got {image.dtype} {image.shape}")
    return image


def _apply(image: np.ndarray, filter_name: str, size: tuple[int, int]) -> np.ndarray:
    planes = image.reshape(image.shape[0], image.shape[1], -1).astype(np.float64)
    rows = _axis_taps(filter_name, size[0], image.shape[0])
    cols = _axis_taps(filter_name, size[1], image.shape[1])
    out = _filter_axis(_filter_axis(planes, rows, axis=0), cols, axis=1)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out.reshape(out.shape[0], out.shape[1], *image.shape[2:])


_FILTERS = {
    "upsample": _bicubic_matrix,
    "area": _area_matrix,
    "bicubic": _antialiased_bicubic_matrix,
}


@lru_cache(maxsize=64)
def _axis_taps(filter_name: str, n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and weights of the non-zero entries of each row of the filter matrix."""
    matrix = _FILTERS[filter_name](n_out, n_in)
    num_taps = max(1, int((matrix != 0).sum(axis=1).max()))
    index = np.zeros((n_out, num_taps), np.intp)
    weight = np.zeros((n_out, num_taps))
    for i, row in enumerate(matrix):
        (nonzero,) = np.nonzero(row)
        index[i, : len(nonzero)] = nonzero
        weight[i, : len(nonzero)] = row[nonzero]
    return index, weight


def _filter_axis(planes: np.ndarray, taps: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """Apply a separable filter along ``axis`` as a gather of its few taps per output sample.

    Elementwise NumPy instead of a matrix product: a BLAS product starts worker threads,
    which costs more than the filtering itself at these sizes on a loaded machine.
    """
    index, weight = taps
    moved = np.moveaxis(planes, axis, 0)
    out = np.zeros((index.shape[0], *moved.shape[1:]))
    for k in range(index.shape[1]):
        out += weight[:, k, None, None] * moved[index[:, k]]
    return np.moveaxis(out, 0, axis)
