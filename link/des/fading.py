"""Flat block-fading processes that evolve over time (one coefficient per transmission).

A fading *model* holds structure (Doppler, slot length); `realise(rng)` draws one
realisation, whose ``at(times_s)`` returns the complex coefficients at the query instants.
All models have ``E|h|^2 = 1``.

* `NoFading`: ``h = 1`` (AWGN, the degenerate case).
* `IidRayleigh`: ``CN(0, 1)``, independent for every queried instant (i.i.d. block fading).
* `JakesSumOfSinusoids`: ``h(t) = M^-1/2 sum_m exp(j(2 pi f_D t cos a_m + p_m))`` with the
  arrival angles ``a_m`` and phases ``p_m`` i.i.d. uniform on [0, 2 pi). Its ensemble
  autocorrelation ``E[h(t + tau) h*(t)] = E[exp(j 2 pi f_D tau cos a)] = J0(2 pi f_D tau)`` is
  exactly Clarke's (Clarke 1968; Jakes 1974) for every M, and at any instant ``h`` is a sum of M
  i.i.d. unit phasors (CN(0, 1) as M grows; M = 64 by default). It is defined in continuous
  time, so unslotted transmissions are handled too. One realisation is not ergodic: its time
  averages match the ensemble only to O(1/sqrt(M)) (Pop & Beaulieu, IEEE Trans. Commun. 2001).
* `GaussMarkovRayleigh`: first-order autoregression (Gauss-Markov) on the slot grid,
  ``h[n+1] = rho h[n] + sqrt(1 - rho^2) w[n]`` with ``rho = J0(2 pi f_D T_slot)``: exact
  Rayleigh marginals and the Jakes correlation at a lag of one slot, but an exponential
  ``rho^n`` beyond it; between grid points the continuous-time version ``rho^(dt / T_slot)``
  is used. Needs ``f_D T_slot < 0.383`` (before the first zero of J0).

Example:
    >>> import numpy as np
    >>> model = JakesSumOfSinusoids(doppler_hz=100.0)
    >>> h = model.realise(np.random.default_rng(0)).at(np.array([0.0, 1e-3, 2e-3]))
    >>> h.shape, h.dtype
    ((3,), dtype('complex128'))
    >>> round(float(jakes_autocorrelation(1e-3, 100.0)), 4)  # J0(0.2 pi)
    0.9037
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from scipy.special import j0

from link.des.config import FadingConfig

_J0_FIRST_ZERO = 2.404825557695773


def jakes_autocorrelation(lag_s: float | np.ndarray, doppler_hz: float) -> np.ndarray:
    """Clarke/Jakes autocorrelation ``J0(2 pi f_D tau)`` of unit-power Rayleigh fading."""
    return j0(2.0 * math.pi * doppler_hz * np.asarray(lag_s, dtype=np.float64))


def _cn01(rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    """CN(0, 1) samples (complex128)."""
    return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) * math.sqrt(0.5)


class FadingRealisation(Protocol):
    """One drawn channel: ``at(times_s [T] float) -> [T] complex128``."""

    def at(self, times_s: np.ndarray) -> np.ndarray: ...


class FadingModel(Protocol):
    """Structure of a fading process; ``realise`` draws one realisation."""

    def realise(self, rng: np.random.Generator) -> FadingRealisation: ...


class _Ones:
    def at(self, times_s: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(times_s), dtype=np.complex128)


class NoFading:
    """``h = 1`` at every instant (AWGN)."""

    def realise(self, rng: np.random.Generator) -> FadingRealisation:
        return _Ones()


class _Iid:
    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def at(self, times_s: np.ndarray) -> np.ndarray:
        return _cn01(self._rng, np.shape(times_s))


class IidRayleigh:
    """Rayleigh block fading, a fresh ``CN(0, 1)`` coefficient for every queried instant."""

    def realise(self, rng: np.random.Generator) -> FadingRealisation:
        return _Iid(rng)


class _SumOfSinusoids:
    def __init__(self, doppler_hz: float, angles: np.ndarray, phases: np.ndarray) -> None:
        self._omega = 2.0 * math.pi * doppler_hz * np.cos(angles)  # [M] rad/s
        self._phases = phases
        self._scale = 1.0 / math.sqrt(angles.size)

    def at(self, times_s: np.ndarray) -> np.ndarray:
        t = np.asarray(times_s, dtype=np.float64)
        phase = t[..., None] * self._omega + self._phases
        return np.exp(1j * phase).sum(-1) * self._scale


class JakesSumOfSinusoids:
    """Clarke/Jakes Rayleigh fading by a sum of ``num_sinusoids`` random-angle sinusoids.

    Args:
        doppler_hz: maximum Doppler shift ``f_D = v f_c / c`` (Hz), >= 0.
        num_sinusoids: M, the number of scatterers.
    """

    def __init__(self, doppler_hz: float, num_sinusoids: int = 64) -> None:
        if doppler_hz < 0 or num_sinusoids < 1:
            raise ValueError("need doppler_hz >= 0 and num_sinusoids >= 1")
        self.doppler_hz = float(doppler_hz)
        self.num_sinusoids = int(num_sinusoids)

    def realise(self, rng: np.random.Generator) -> FadingRealisation:
        angles = rng.uniform(0.0, 2.0 * math.pi, self.num_sinusoids)
        phases = rng.uniform(0.0, 2.0 * math.pi, self.num_sinusoids)
        return _SumOfSinusoids(self.doppler_hz, angles, phases)


class _GaussMarkov:
    def __init__(self, rho_per_slot: float, slot_s: float, rng: np.random.Generator) -> None:
        self._log_rho = math.log(rho_per_slot)
        self._slot_s = slot_s
        self._rng = rng
        self._t: float | None = None
        self._h = complex(_cn01(rng, 1)[0])

    def at(self, times_s: np.ndarray) -> np.ndarray:
        t = np.asarray(times_s, dtype=np.float64)
        out = np.empty(t.shape, dtype=np.complex128)
        for i, ti in enumerate(t.reshape(-1)):
            if self._t is None:
                self._t = float(ti)
            dt = float(ti) - self._t
            if dt < -1e-12:
                raise ValueError("GaussMarkovRayleigh is queried in non-decreasing time order")
            if dt > 0:
                rho = math.exp(self._log_rho * dt / self._slot_s)
                w = complex(_cn01(self._rng, 1)[0])
                self._h = rho * self._h + math.sqrt(max(0.0, 1.0 - rho * rho)) * w
                self._t = float(ti)
            out.reshape(-1)[i] = self._h
        return out


class GaussMarkovRayleigh:
    """First-order Gauss-Markov Rayleigh fading on a slot grid (see the module docstring).

    Args:
        doppler_hz: maximum Doppler shift (Hz).
        slot_s: grid step; the lag-one correlation is ``J0(2 pi f_D slot_s)``.
    """

    def __init__(self, doppler_hz: float, slot_s: float) -> None:
        rho = float(jakes_autocorrelation(slot_s, doppler_hz))
        if not 2.0 * math.pi * doppler_hz * slot_s < _J0_FIRST_ZERO:
            raise ValueError(
                f"f_D T_slot = {doppler_hz * slot_s:.3f} is past the first zero of J0 (0.383): "
                "the AR(1) model cannot follow fading this fast; use model 'jakes' or 'iid'")
        self.doppler_hz = float(doppler_hz)
        self.slot_s = float(slot_s)
        self.rho = min(rho, 1.0 - 1e-15)

    def realise(self, rng: np.random.Generator) -> FadingRealisation:
        return _GaussMarkov(self.rho, self.slot_s, rng)


def build_fading(config: FadingConfig, slot_s: float) -> FadingModel:
    """The fading model named by ``config`` (``slot_s``: the AR(1) grid step).

    Example:
        >>> cfg = FadingConfig(model="jakes", coherence_time_s=0.0423)
        >>> build_fading(cfg, 5e-4).doppler_hz
        10.0
    """
    if config.model == "awgn":
        return NoFading()
    if config.model == "iid":
        return IidRayleigh()
    if config.model == "jakes":
        return JakesSumOfSinusoids(config.resolved_doppler_hz, config.num_sinusoids)
    return GaussMarkovRayleigh(config.resolved_doppler_hz, slot_s)
