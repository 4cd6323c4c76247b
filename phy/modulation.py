"""Constellations by name (Gray labelled, unit energy) and an exact hard-decision slicer.

Labels follow Sionna's convention: the label of point ``i`` is the binary form of ``i``,
most significant bit first. "bpsk" is Sionna's ``pam`` with one bit (label 0 -> +1), the QAMs
are Sionna's 3GPP TS 38.211 5.1 Gray-labelled ``qam``, and "8psk" is a ``custom``
constellation whose phase index ``p`` (angle ``2*pi*p/8``) carries the reflected Gray label
``p ^ (p >> 1)``, so neighbouring points differ in one bit.

Example:
    >>> import torch
    >>> from phy.modulation import HardSlicer, constellation_points, num_bits_per_symbol
    >>> num_bits_per_symbol("16qam")
    4
    >>> slicer = HardSlicer("8psk")
    >>> pts = torch.as_tensor(constellation_points("8psk"), dtype=torch.complex64)
    >>> bool((slicer(pts * 0.9) == torch.arange(8)).all())
    True
"""

from __future__ import annotations

import numpy as np
import torch
from sionna.phy.mapping import Constellation, pam, qam

from phy.specs import MODULATIONS, check_name

_BITS = {"bpsk": 1, "qpsk": 2, "8psk": 3, "16qam": 4, "64qam": 6, "256qam": 8}


def num_bits_per_symbol(modulation: str) -> int:
    """Bits carried by one symbol of ``modulation`` (one of `MODULATIONS`)."""
    check_name(modulation, MODULATIONS, "modulation")
    return _BITS[modulation]


def _psk_points(num_bits: int) -> np.ndarray:
    """Unit-energy M-PSK points indexed by Gray label: label ``p ^ (p >> 1)`` at phase ``p``."""
    m = 2**num_bits
    phase_index = np.arange(m)
    labels = phase_index ^ (phase_index >> 1)
    points = np.empty(m, dtype=np.complex128)
    points[labels] = np.exp(2j * np.pi * phase_index / m)
    return points


def constellation_points(modulation: str) -> np.ndarray:
    """Constellation points indexed by label.

    Returns:
        ``[2**m]`` complex128, unit average energy.
    """
    m = num_bits_per_symbol(modulation)
    if modulation == "8psk":
        return _psk_points(m)
    # Sionna's integer-valued grids, normalised in float64 (its own tables are float32).
    points = (pam(1, normalize=False) if modulation == "bpsk" else qam(m, normalize=False))
    points = points.astype(np.complex128)
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


def make_constellation(
    modulation: str, precision: str = "single", device: str = "cpu"
) -> Constellation:
    """Sionna `Constellation` for ``modulation`` with the labels described in the module."""
    m = num_bits_per_symbol(modulation)
    if modulation == "bpsk":
        return Constellation("pam", 1, precision=precision, device=device)
    if modulation == "8psk":
        return Constellation(
            "custom", m, points=_psk_points(m), precision=precision, device=device
        )
    return Constellation("qam", m, precision=precision, device=device)


def label_bits(num_bits: int) -> np.ndarray:
    """``[2**num_bits, num_bits]`` uint8 table of labels' bits, MSB first."""
    labels = np.arange(2**num_bits)
    shifts = np.arange(num_bits - 1, -1, -1)
    return ((labels[:, None] >> shifts[None, :]) & 1).astype(np.uint8)


class HardSlicer:
    """Nearest-constellation-point (symbol ML) decisions, vectorised, returning labels.

    QAM/BPSK: the points form a uniform grid, so the nearest point is the nearest level per
    real dimension; M-PSK: the nearest point is the nearest phase. Both are exactly the
    minimum-distance decision (ties have probability zero), i.e. the decision that the
    closed-form BER expressions assume. Apply it to equalised symbols ``y / h``: for a flat
    channel with known ``h``, ``|y - h x|^2 = |h|^2 |y/h - x|^2``.

    Args:
        modulation: one of `MODULATIONS`.
        device: where the lookup tables live.

    Call:
        y: ``[...]`` complex symbols. Returns ``[...]`` int64 labels in ``[0, 2**m)``.

    Example:
        >>> import torch
        >>> HardSlicer("qpsk")(torch.tensor([0.3 + 0.1j, -2.0 - 5.0j])).tolist() == [
        ...     int(torch.as_tensor(constellation_points("qpsk")).sub(0.3 + 0.1j).abs().argmin()),
        ...     int(torch.as_tensor(constellation_points("qpsk")).sub(-2 - 5j).abs().argmin())]
        True
    """

    def __init__(self, modulation: str, device: str = "cpu") -> None:
        self.modulation = modulation
        points = constellation_points(modulation)
        self.num_points = points.size
        self._psk = modulation == "8psk"
        if self._psk:
            phase_index = np.rint(np.angle(points) / (2 * np.pi / self.num_points)).astype(int)
            table = np.empty(self.num_points, dtype=np.int64)
            table[phase_index % self.num_points] = np.arange(self.num_points)
        else:
            re_levels = np.unique(np.round(points.real, 12))
            im_levels = np.unique(np.round(points.imag, 12))
            self._re0, self._re_step, self._n_re = _grid(re_levels)
            self._im0, self._im_step, self._n_im = _grid(im_levels)
            re_idx = np.rint((points.real - self._re0) / self._re_step).astype(int)
            im_idx = np.rint((points.imag - self._im0) / self._im_step).astype(int)
            table = np.empty(self._n_re * self._n_im, dtype=np.int64)
            table[re_idx * self._n_im + im_idx] = np.arange(self.num_points)
        self._table = torch.as_tensor(table, device=device)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        if self._psk:
            sector = 2 * torch.pi / self.num_points
            idx = torch.round(torch.angle(y) / sector).long().remainder(self.num_points)
            return self._table[idx]
        re = torch.round((y.real - self._re0) / self._re_step).clamp_(0, self._n_re - 1)
        im = torch.round((y.imag - self._im0) / self._im_step).clamp_(0, self._n_im - 1)
        return self._table[(re * self._n_im + im).long()]


def _grid(levels: np.ndarray) -> tuple[float, float, int]:
    """(first level, spacing, count) of a uniform grid of levels; spacing 1 for one level."""
    if levels.size == 1:
        return float(levels[0]), 1.0, 1
    steps = np.diff(levels)
    if not np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12):
        raise ValueError("constellation levels are not uniformly spaced")
    return float(levels[0]), float(steps[0]), int(levels.size)
