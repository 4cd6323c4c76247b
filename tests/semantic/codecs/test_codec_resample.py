"""SPIC-style downscaling (area / antialiased bicubic) and bicubic upsampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semantic.codecs import coarse_size, downscale, upscale
from tests.semantic.codecs.inputs import smooth_image


def test_coarse_size() -> None:
    assert coarse_size(128, 256, 4) == (32, 64)
    assert coarse_size(128, 256, 3) == (43, 85)
    assert coarse_size(5, 7, 16) == (1, 1)
    with pytest.raises(ValueError, match=">= 1"):
        coarse_size(8, 8, 0.5)


def test_area_downscale_is_the_block_mean() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    expected = image.reshape(4, 2, 6, 2, 3).astype(np.float64).mean(axis=(1, 3))
    small = downscale(image, 2)
    assert small.shape == (4, 6, 3) and small.dtype == np.uint8
    # torch averages in float32 before rounding; ties may round either way
    assert np.abs(small.astype(np.float64) - expected).max() <= 0.5 + 1e-4


def test_constant_images_stay_constant() -> None:
    image = np.full((32, 48, 3), 77, np.uint8)
    for method in ("area", "bicubic"):
        small = downscale(image, 4, method=method)
        assert small.shape == (8, 12, 3) and (small == 77).all()
    assert (upscale(np.full((8, 12, 3), 200, np.uint8), (32, 48)) == 200).all()


def _keys_weights(distance: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys (1981) cubic convolution kernel."""
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d**2 + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _resize_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Bicubic interpolation matrix, half-pixel centres, edge samples replicated."""
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        source = (i + 0.5) * n_in / n_out - 0.5
        base = int(np.floor(source))
        for tap in range(base - 1, base + 3):
            matrix[i, min(max(tap, 0), n_in - 1)] += _keys_weights(np.array(source - tap))
    return matrix


def _torch_resize(image: np.ndarray, size: tuple[int, int], **kwargs) -> np.ndarray:
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=size, **kwargs)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _assert_close(actual: np.ndarray, reference: np.ndarray) -> None:
    """Equal up to float32-vs-float64 rounding ties."""
    assert actual.shape == reference.shape and actual.dtype == np.uint8
    difference = np.abs(actual.astype(np.int16) - reference)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99


def test_upscale_matches_a_keys_bicubic_reference() -> None:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    rows, cols = _resize_matrix(13, 6), _resize_matrix(11, 5)
    reference = np.einsum("ij,jkc,lk->ilc", rows, small.astype(np.float64), cols)
    _assert_close(upscale(small, (13, 11)), np.clip(np.round(reference), 0, 255))


@pytest.mark.parametrize(("shape", "factor"), [((128, 256, 3), 4), ((37, 61, 3), 2.5)])
def test_resampling_matches_torch(shape: tuple[int, int, int], factor: float) -> None:
    """Independent reference: PyTorch's area, antialiased bicubic and bicubic resizing."""
    image = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    size = coarse_size(shape[0], shape[1], factor)
    area = downscale(image, factor, method="area")
    _assert_close(area, _torch_resize(image, size, mode="area"))
    _assert_close(
        downscale(image, factor, method="bicubic"),
        _torch_resize(image, size, mode="bicubic", antialias=True, align_corners=False),
    )
    _assert_close(
        upscale(area, shape[:2]),
        _torch_resize(area, shape[:2], mode="bicubic", align_corners=False),
    )


def test_upscale_clips_overshoot() -> None:
    edge = np.zeros((4, 4), np.uint8)
    edge[:, 2:] = 255
    big = upscale(edge, (8, 8))  # bicubic overshoots at a hard edge: clipped, not wrapped
    assert big.shape == (8, 8) and big.dtype == np.uint8
    # column 1 is -0.035 * 255 before clipping (Keys weight at distance 1.75), column 6 is
    # 255 * 1.035; column 3 is 255 * (w(0.75) + w(1.75)) = 57.8
    assert (big[:, :2] == 0).all() and (big[:, 6:] == 255).all()
    assert (big[:, 3] == 58).all() and (big[:, 4] == 197).all()


def test_round_trip_quality_improves_with_smaller_factor() -> None:
    image = smooth_image(64, 128, seed=3)

    def error(factor: int) -> float:
        back = upscale(downscale(image, factor), (64, 128))
        return float(np.mean((back.astype(float) - image) ** 2))

    assert error(2) < error(4) < error(8)


def test_grey_and_identity() -> None:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert downscale(grey, 2).shape == (4, 4)
    np.testing.assert_array_equal(downscale(grey, 1), grey)
    np.testing.assert_array_equal(upscale(grey, (8, 8)), grey)
    with pytest.raises(ValueError, match="uint8"):
        downscale(grey.astype(np.float32), 2)
