"""Uniform quantisers: per-output-channel symmetric weights, per-tensor asymmetric activations.

Weights (every ``Conv1d``/``Conv2d``/``Linear`` of the receiver): for output channel ``o`` with
``b`` bits, ``s_o = max|W_o| / (2^(b-1) - 1)`` and ``q = clamp(round(W / s_o), -(2^(b-1)-1),
2^(b-1)-1)`` stored as int8; the zero point is 0 (symmetric), so ``|W - s_o q| <= s_o / 2``
element-wise (the bound the tests check).

Activations: one affine range per tensor, ``q = clamp(round(x / s) + z, 0, levels - 1)`` with
``levels = 2^b`` (or ``2^(b-1)`` with ``reduce_range``, what PyTorch's x86/fbgemm int8 kernels
need on CPUs without VNNI: their u8 x s8 pair products are summed in saturating int16). The range
``[lo, hi]`` always contains 0 (so zero padding is exact) and comes from calibration samples by
one of three rules (``RANGE_METHODS``): ``minmax`` (the observed extremes), ``percentile`` (the
``p``-th and ``(100-p)``-th percentiles) or ``mse`` (the clipping of ``[min, max]``, scaled by
``alpha`` on a grid, that minimises the mean squared quantisation error of the samples, the
range search of Q-Diffusion's / BRECQ's activation initialisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

RANGE_METHODS: tuple[str, ...] = ("mse", "percentile", "minmax")

__all__ = [
    "RANGE_METHODS",
    "ActivationQuant",
    "QuantizedWeight",
    "fit_activation_range",
    "quantize_weight",
]


@dataclass(frozen=True)
class QuantizedWeight:
    """A weight tensor quantised per output channel (axis 0), symmetric.

    Attributes:
        values: int8 [O, ...] integer levels in ``[-(2^(bits-1)-1), 2^(bits-1)-1]``.
        scale: float32 [O] step per output channel.
        bits: bit width of the levels (2..8); storage is int8, memory is counted at ``bits``.
    """

    values: Tensor
    scale: Tensor
    bits: int

    def dequantize(self) -> Tensor:
        """float32 [O, ...] = ``scale[o] * values[o]``."""
        shape = (-1,) + (1,) * (self.values.ndim - 1)
        return self.values.float() * self.scale.reshape(shape)

    @property
    def storage_bytes(self) -> int:
        """Bytes of the levels packed at ``bits`` each plus one float32 scale per channel."""
        return math.ceil(self.values.numel() * self.bits / 8) + 4 * self.scale.numel()


def quantize_weight(weight: Tensor, bits: int = 8) -> QuantizedWeight:
    """Symmetric per-output-channel quantisation of a weight tensor.

    Args:
        weight: float [O, ...] (conv [O, I, k...] or linear [O, I]).
        bits: 2..8.
    Returns:
        :class:`QuantizedWeight`; an all-zero channel gets scale 1 and levels 0.

    Example:
        >>> w = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
        >>> q = quantize_weight(w, 8)
        >>> q.values.tolist(), round(float(q.scale[0]) * 127, 6)
        ([[64, -127], [0, 0]], 1.0)
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"weight bits must be in 2..8, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().float()
    amax = w.reshape(w.shape[0], -1).abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    shape = (-1,) + (1,) * (w.ndim - 1)
    values = torch.clamp(torch.round(w / scale.reshape(shape)), -qmax, qmax).to(torch.int8)
    return QuantizedWeight(values.contiguous(), scale.contiguous(), bits)


@dataclass(frozen=True)
class ActivationQuant:
    """Per-tensor affine activation quantiser (unsigned levels ``0 .. levels-1``).

    Attributes:
        scale: step (> 0). zero_point: integer level of 0.0. bits: nominal width.
        levels: number of levels used (``2^bits``, or ``2^(bits-1)`` with reduce_range).
    """

    scale: float
    zero_point: int
    bits: int
    levels: int

    @property
    def quant_max(self) -> int:
        return self.levels - 1

    @classmethod
    def from_range(cls, lo: float, hi: float, bits: int, reduce_range: bool = False
                   ) -> ActivationQuant:
        """The quantiser of ``[min(lo, 0), max(hi, 0)]`` (0 exactly representable)."""
        if not 2 <= bits <= 8:
            raise ValueError(f"activation bits must be in 2..8, got {bits}")
        levels = 2 ** (bits - 1) if reduce_range else 2**bits
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = max((hi - lo) / (levels - 1), 1e-8)
        zero_point = int(min(max(round(-lo / scale), 0), levels - 1))
        return cls(float(scale), zero_point, bits, levels)

    def fake(self, x: Tensor) -> Tensor:
        """Quantise-dequantise ``x`` (same shape and dtype)."""
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, 0,
                                                     self.quant_max)


def _mse_of(samples: Tensor, lo: float, hi: float, bits: int, reduce_range: bool) -> float:
    quant = ActivationQuant.from_range(lo, hi, bits, reduce_range)
    return float((quant.fake(samples) - samples).pow(2).mean())


def fit_activation_range(samples: Tensor, observed_min: float, observed_max: float, bits: int,
                         method: str = "mse", percentile: float = 99.99,
                         reduce_range: bool = False, grid: int = 40) -> ActivationQuant:
    """Choose an activation quantiser from calibration samples.

    Args:
        samples: float [N] values drawn from the calibration activations.
        observed_min, observed_max: exact extremes over all calibration activations.
        bits: activation bits. method: one of ``RANGE_METHODS``.
        percentile: upper percentile for ``percentile`` (the lower one is ``100 - p``).
        reduce_range: use ``2^(bits-1)`` levels (see the module docstring).
        grid: number of clipping factors ``alpha`` in ``(0, 1]`` tried by ``mse``.
    Returns:
        :class:`ActivationQuant`.

    Example:
        >>> x = torch.linspace(-1, 3, 1001)
        >>> q = fit_activation_range(x, -1.0, 3.0, 8, "minmax")
        >>> round(q.scale * 255, 6), q.zero_point
        (4.0, 64)
    """
    if method not in RANGE_METHODS:
        raise ValueError(f"method must be one of {RANGE_METHODS}, got {method!r}")
    if method == "minmax" or samples.numel() == 0:
        return ActivationQuant.from_range(observed_min, observed_max, bits, reduce_range)
    samples = samples.float().flatten()
    if method == "percentile":
        qs = torch.tensor([1 - percentile / 100, percentile / 100], dtype=samples.dtype)
        lo, hi = torch.quantile(samples, qs).tolist()
        return ActivationQuant.from_range(lo, hi, bits, reduce_range)
    best, best_err = (observed_min, observed_max), math.inf
    for k in range(grid, 0, -1):
        alpha = k / grid
        lo, hi = alpha * observed_min, alpha * observed_max
        err = _mse_of(samples, lo, hi, bits, reduce_range)
        if err < best_err:
            best, best_err = (lo, hi), err
    return ActivationQuant.from_range(best[0], best[1], bits, reduce_range)
