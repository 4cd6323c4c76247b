"""Closed forms against known numbers and against independent numerical integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import erfc, i0e

from phy.specs import ChannelSpec, CodingSpec
from phy.theory import (
    capacity_awgn,
    capacity_biawgn,
    capacity_rayleigh_ergodic,
    normal_approx_bler,
    normal_approx_ebno_db,
    psk_ber,
    q_function,
    shannon_limit_ebno_db,
    theory_ber,
    uncoded_ber,
)

# Exact values quoted (3 significant digits) in the Sionna 2.2 API notes, section 3a.
TABLE = [
    ("16qam", "awgn", 0, 1.41e-01),
    ("16qam", "awgn", 6, 2.79e-02),
    ("16qam", "awgn", 10, 1.75e-03),
    ("16qam", "awgn", 12, 1.39e-04),
    ("64qam", "awgn", 0, 2.00e-01),
    ("64qam", "awgn", 8, 5.23e-02),
    ("64qam", "awgn", 12, 9.72e-03),
    ("16qam", "rayleigh", 0, 1.98e-01),
    ("16qam", "rayleigh", 12, 2.83e-02),
    ("64qam", "rayleigh", 12, 5.44e-02),
    ("qpsk", "rayleigh", 4, 7.71e-02),
]


def test_bpsk_at_0db():
    assert uncoded_ber("bpsk", 0.0) == pytest.approx(7.865e-2, rel=1e-4)
    assert uncoded_ber("qpsk", 0.0) == pytest.approx(0.5 * erfc(1.0), rel=1e-12)


@pytest.mark.parametrize(("mod", "fading", "ebno_db", "expected"), TABLE)
def test_table_values(mod, fading, ebno_db, expected):
    assert uncoded_ber(mod, ebno_db, fading) == pytest.approx(expected, rel=5e-3)


def test_16qam_matches_textbook_expression():
    # Exact Gray 16-QAM: (3 erfc(a) + 2 erfc(3a) - erfc(5a)) / 8 with a = sqrt(0.4 Eb/N0).
    ebno = 10 ** (np.array([0.0, 5.0, 11.0]) / 10)
    a = np.sqrt(0.4 * ebno)
    expected = (3 * erfc(a) + 2 * erfc(3 * a) - erfc(5 * a)) / 8
    np.testing.assert_allclose(uncoded_ber("16qam", [0.0, 5.0, 11.0]), expected, rtol=1e-12)


def test_qpsk_via_the_psk_formula_equals_the_closed_form():
    ebno_db = np.array([-2.0, 3.0, 9.0])
    for fading in ("awgn", "rayleigh", "rician"):
        np.testing.assert_allclose(
            psk_ber(2, ebno_db, fading), uncoded_ber("qpsk", ebno_db, fading), rtol=1e-9
        )


def _phase_pdf(theta: float, esno: float) -> float:
    """Density of the received phase of a unit symbol at angle 0 in CN noise (Proakis 5.2)."""
    c = math.cos(theta)
    return (math.exp(-esno) / (2 * math.pi)
            + math.sqrt(esno / math.pi) * c * math.exp(-esno * math.sin(theta) ** 2)
            * 0.5 * erfc(-math.sqrt(esno) * c))


@pytest.mark.parametrize("ebno_db", [0.0, 6.0, 11.0])
def test_8psk_exact_against_phase_density_integration(ebno_db):
    esno = 3 * 10 ** (ebno_db / 10)
    gray = [p ^ (p >> 1) for p in range(8)]
    sector = [quad(_phase_pdf, (2 * j - 1) * math.pi / 8, (2 * j + 1) * math.pi / 8,
                   args=(esno,), epsabs=1e-15)[0] for j in range(8)]
    ber = sum(sector[j] * bin(gray[p] ^ gray[(p + j) % 8]).count("1")
              for p in range(8) for j in range(8)) / (8 * 3)
    assert uncoded_ber("8psk", ebno_db) == pytest.approx(ber, rel=1e-7)


def test_8psk_approaches_nearest_neighbour_approximation():
    ebno = 10 ** 1.4
    approx = (2 / 3) * q_function(math.sqrt(2 * 3 * ebno) * math.sin(math.pi / 8))
    assert uncoded_ber("8psk", 14.0) == pytest.approx(approx, rel=2e-2)
    assert uncoded_ber("8psk", 14.0) > approx  # the approximation drops far-sector terms


@pytest.mark.parametrize("mod", ["bpsk", "16qam", "8psk"])
def test_rician_against_direct_average_over_the_rice_density(mod):
    k_db, ebno_db = 6.0, 8.0
    kf = 10 ** (k_db / 10)

    def pdf(g):  # |h|^2 with E = 1: noncentral chi-square (Rice amplitude), scaled Bessel
        x = 2 * math.sqrt(kf * (1 + kf) * g)
        return (1 + kf) * math.exp(-kf - (1 + kf) * g + x) * i0e(x)

    def integrand(g):
        return pdf(g) * uncoded_ber(mod, ebno_db + 10 * math.log10(max(g, 1e-300)))

    expected = quad(integrand, 0, 30, limit=200, epsabs=1e-12)[0]
    assert uncoded_ber(mod, ebno_db, "rician", k_db) == pytest.approx(expected, rel=1e-5)


def test_rician_limits():
    for mod in ("qpsk", "64qam", "8psk"):
        assert uncoded_ber(mod, 10.0, "rician", -60.0) == pytest.approx(
            uncoded_ber(mod, 10.0, "rayleigh"), rel=1e-5)
        assert uncoded_ber(mod, 10.0, "rician", 60.0) == pytest.approx(
            uncoded_ber(mod, 10.0, "awgn"), rel=1e-3)


def test_theory_ber_dispatch():
    assert theory_ber("qpsk", ChannelSpec(type="tdl"), 5.0) is None
    assert theory_ber("qpsk", None, 5.0, CodingSpec(type="ldpc5g", k=100, n=200)) is None
    assert theory_ber("16qam", ChannelSpec(type="rayleigh", fading="fast"), 6.0) == (
        uncoded_ber("16qam", 6.0, "rayleigh"))
    np.testing.assert_allclose(theory_ber("bpsk", None, [0.0, 1.0]),
                               uncoded_ber("bpsk", [0.0, 1.0]))


def test_capacities():
    assert capacity_awgn(0.0) == pytest.approx(1.0)
    expected = quad(lambda g: math.log2(1 + g) * math.exp(-g), 0, np.inf)[0]
    assert capacity_rayleigh_ergodic(0.0) == pytest.approx(expected, rel=1e-9)
    assert capacity_rayleigh_ergodic(-60.0) == pytest.approx(1e-6 / math.log(2), rel=1e-4)
    # BI-AWGN: 1 bit at high SNR, below the Gaussian-input capacity everywhere
    assert capacity_biawgn(20.0) == pytest.approx(1.0, abs=1e-9)
    assert capacity_biawgn(0.0) < 0.5 * math.log2(1 + 2.0)


def test_shannon_limits():
    assert shannon_limit_ebno_db(1.0) == pytest.approx(0.0, abs=1e-12)
    assert shannon_limit_ebno_db(1e-6) == pytest.approx(10 * math.log10(math.log(2)), abs=1e-4)
    # BI-AWGN rate 1/2 limit, 0.187 dB (e.g. Richardson & Urbanke, Modern Coding Theory)
    assert shannon_limit_ebno_db(0.5, "binary") == pytest.approx(0.187, abs=2e-3)


def test_biawgn_dispersion_against_direct_integration():
    rho = 1.3  # SNR per real dimension
    mu = 2 * rho

    def loss(t, power):
        return math.log2(1 + math.exp(-(mu + math.sqrt(2 * mu) * t))) ** power * math.exp(
            -t * t / 2) / math.sqrt(2 * math.pi)

    m1 = quad(loss, -40, 40, args=(1,))[0]
    m2 = quad(loss, -40, 40, args=(2,))[0]
    cap, disp = 1 - m1, m2 - m1**2
    k, n = 400, 1000
    ebno_db = 10 * math.log10(rho / (2 * k / n))
    expected = q_function((n * cap - k + 0.5 * math.log2(n)) / math.sqrt(n * disp))
    assert normal_approx_bler(ebno_db, k, n) == pytest.approx(float(expected), rel=1e-6)


def test_normal_approximation_behaviour():
    k, n = 512, 1024
    x = normal_approx_ebno_db(1e-2, k, n)
    assert normal_approx_bler(x, k, n) == pytest.approx(1e-2, rel=1e-6)
    # finite length costs SNR, less so for longer codes, and tends to the Shannon limit
    limit = shannon_limit_ebno_db(0.5, "binary")
    assert x > normal_approx_ebno_db(1e-2, 4096, 8192) > limit
    assert normal_approx_ebno_db(1e-2, 500_000, 1_000_000) == pytest.approx(limit, abs=0.03)
    # Gaussian input is a better channel input than BPSK
    assert normal_approx_ebno_db(1e-2, k, n, "gaussian") < x
    bler = normal_approx_bler(np.array([0.0, 1.0, 2.0]), k, n)
    assert np.all(np.diff(bler) < 0)
