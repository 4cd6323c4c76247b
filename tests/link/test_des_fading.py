"""Fading processes: marginal statistics and the Clarke/Jakes autocorrelation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from link.des.config import FadingConfig
from link.des.fading import (
    GaussMarkovRayleigh,
    IidRayleigh,
    JakesSumOfSinusoids,
    NoFading,
    build_fading,
    jakes_autocorrelation,
)


def test_jakes_autocorrelation_reference_values():
    # J0 at its first zero 2.404826 and at 1: 0.765198 (Abramowitz & Stegun, table 9.1)
    assert float(jakes_autocorrelation(2.404826 / (2 * math.pi), 1.0)) == pytest.approx(0.0,
                                                                                      abs=1e-6)
    assert float(jakes_autocorrelation(1.0 / (2 * math.pi * 10.0), 10.0)) == pytest.approx(
        0.7651977, abs=1e-6)


def test_no_fading_and_iid():
    rng = np.random.default_rng(0)
    assert np.all(NoFading().realise(rng).at(np.arange(5.0)) == 1.0)
    h = IidRayleigh().realise(rng).at(np.zeros(40_000))
    n = h.size
    assert abs(np.mean(np.abs(h) ** 2) - 1.0) < 4 * math.sqrt(1.0 / n)
    # Rayleigh: P(|h|^2 < x) = 1 - exp(-x); neighbours uncorrelated
    p = 1 - math.exp(-0.1)
    assert abs(np.mean(np.abs(h) ** 2 < 0.1) - p) < 4 * math.sqrt(p * (1 - p) / n)
    corr = np.mean(h[1:] * np.conj(h[:-1]))
    assert abs(corr) < 4 * math.sqrt(1.0 / n)


def test_sum_of_sinusoids_ensemble_autocorrelation_is_j0():
    doppler, num = 50.0, 6000
    lags = np.array([0.0, 1e-3, 2.5e-3, 4.8e-3, 7.65e-3, 12e-3])  # through J0's first zero
    model = JakesSumOfSinusoids(doppler, num_sinusoids=64)
    rng = np.random.default_rng(1)
    t0 = 0.37  # any start time: the process is stationary
    h = np.stack([model.realise(rng).at(t0 + lags) for _ in range(num)])  # [num, L]
    acf = np.mean(h * np.conj(h[:, :1]), axis=0)
    expected = jakes_autocorrelation(lags, doppler)
    # Var Re(h1 h0*) = (1 + rho^2) / 2 <= 1 for CN(0, 1) pairs
    tol = 4 * math.sqrt(1.0 / num)
    np.testing.assert_allclose(acf.real, expected, atol=tol)
    np.testing.assert_allclose(acf.imag, 0.0, atol=tol)
    power = np.abs(h[:, 0]) ** 2
    p = 1 - math.exp(-0.1)
    assert abs(np.mean(power < 0.1) - p) < 4 * math.sqrt(p * (1 - p) / num)


def test_sum_of_sinusoids_is_deterministic_per_realisation():
    model = JakesSumOfSinusoids(10.0)
    a = model.realise(np.random.default_rng(3)).at(np.linspace(0, 1, 7))
    b = model.realise(np.random.default_rng(3)).at(np.linspace(0, 1, 7))
    np.testing.assert_array_equal(a, b)


def test_gauss_markov_lag_one_is_j0_and_decays_geometrically():
    doppler, slot = 100.0, 0.5e-3
    model = GaussMarkovRayleigh(doppler, slot)
    rho = float(jakes_autocorrelation(slot, doppler))
    assert model.rho == pytest.approx(rho)
    n = 60_000
    h = model.realise(np.random.default_rng(2)).at(np.arange(n) * slot)
    assert abs(np.mean(np.abs(h) ** 2) - 1.0) < 0.05
    for lag in (1, 4):
        est = np.mean(h[lag:] * np.conj(h[:-lag])).real
        # effective sample size of an AR(1) with coefficient rho^2 (for |h|^2 products)
        tol = 4 * math.sqrt((1 + rho**2) / (1 - rho**2) / n)
        assert est == pytest.approx(rho**lag, abs=tol)
    # between grid points the continuous-time extension keeps the process consistent
    half = model.realise(np.random.default_rng(4)).at(np.array([0.0, slot / 2, slot]))
    assert half.shape == (3,)


def test_gauss_markov_rejects_fast_fading_and_time_reversal():
    with pytest.raises(ValueError, match="jakes"):
        GaussMarkovRayleigh(doppler_hz=1000.0, slot_s=1e-3)  # J0(2 pi) < 0
    real = GaussMarkovRayleigh(10.0, 1e-3).realise(np.random.default_rng(0))
    real.at(np.array([1.0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        real.at(np.array([0.5]))


def test_build_fading():
    assert isinstance(build_fading(FadingConfig(), 1e-3), NoFading)
    assert isinstance(build_fading(FadingConfig(model="iid"), 1e-3), IidRayleigh)
    jakes = build_fading(FadingConfig(model="jakes", coherence_time_s=0.0423), 1e-3)
    assert jakes.doppler_hz == pytest.approx(10.0)
    gm = build_fading(FadingConfig(model="gauss_markov", doppler_hz=20.0), 1e-3)
    assert gm.rho == pytest.approx(float(jakes_autocorrelation(1e-3, 20.0)))
