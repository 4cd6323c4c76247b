"""Closed-form and numerically exact references: uncoded BER, capacity, finite-length bounds.

All SNRs are in dB and named for what they are: ``ebno_db`` is Eb/N0 per information bit,
``esno_db`` Es/N0 per symbol, ``snr_db`` the SNR per complex channel use (= Es/N0 for
unit-energy symbols). Fading is flat with E|h|^2 = 1 and perfect CSI at the receiver; for
uncoded BER only the marginal distribution of |h|^2 matters, so block and fast fading have
the same BER.

Uncoded BER (Gray labels, symbol-ML detection, which is what `phy.modulation.HardSlicer`
implements):

* BPSK/QPSK: ``Q(sqrt(2 Eb/N0))``.
* Square M-QAM: the exact expression of Cho & Yoon, IEEE Trans. Commun. 50(7), 2002, eq. (16),
  a weighted sum of ``erfc(sqrt(c * Eb/N0))`` terms.
* M-PSK (8-PSK): exact. The probability that the received phase falls ``j`` decision sectors
  away from the sent one is computed from Craig's form ``P(theta in [psi, pi]) =
  1/(2 pi) * int_0^{pi - psi} exp(-Es/N0 sin^2(psi) / sin^2(phi)) dphi`` (Craig, MILCOM 1991;
  Simon & Alouini, *Digital Communication over Fading Channels*, 2nd ed., ch. 8), and the
  bit errors are the Hamming distances between the Gray labels of the sent and decided
  points, averaged over all sent points. The finite integral is evaluated by 256-point
  Gauss-Legendre quadrature (smooth integrand; relative error far below 1e-9 for BER > 1e-12).
* Fading: every ``exp(-s * gamma)`` inside the Craig-form integrals is averaged with the
  moment generating function of the instantaneous SNR (Simon & Alouini's MGF approach):
  Rayleigh ``1/(1 + s g)``, Rician ``(1+K)/(1+K+s g) exp(-K s g/(1+K+s g))``. For Rayleigh
  BPSK/QPSK/QAM this reduces to the closed form ``E[erfc(sqrt(c gamma))] = 1 -
  sqrt(c g/(1 + c g))``, which is used directly.

Example:
    >>> from phy.theory import uncoded_ber
    >>> round(uncoded_ber("bpsk", 0.0), 6)
    0.07865
    >>> round(uncoded_ber("16qam", 10.0), 6)
    0.001754
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc, exp1
from scipy.stats import norm

from phy.modulation import num_bits_per_symbol
from phy.specs import ChannelSpec, CodingSpec

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(256)
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(160)
_GH_WEIGHTS = _GH_WEIGHTS / np.sqrt(2 * np.pi)  # expectation over a standard normal

FADING_MODELS: tuple[str, ...] = ("awgn", "rayleigh", "rician")
DISPERSIONS: tuple[str, ...] = ("biawgn", "gaussian")


def db2lin(x_db):
    """10 ** (x_db / 10), elementwise."""
    return np.power(10.0, np.asarray(x_db, dtype=np.float64) / 10.0)


def q_function(x):
    """Gaussian tail probability ``Q(x) = P(N(0,1) > x)``."""
    return 0.5 * erfc(np.asarray(x, dtype=np.float64) / math.sqrt(2.0))


def _scalar_or_array(value: np.ndarray, like) -> float | np.ndarray:
    return float(value) if np.ndim(like) == 0 else value


def _mgf(fading: str, rician_k_db: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``M(s, gbar) = E[exp(-s * gbar * |h|^2)]`` with ``E|h|^2 = 1``."""
    if fading == "awgn":
        return lambda s, g: np.exp(-s * g)
    if fading == "rayleigh":
        return lambda s, g: 1.0 / (1.0 + s * g)
    kf = float(db2lin(rician_k_db))

    def rician(s, g):
        d = 1.0 + kf + s * g
        return (1.0 + kf) / d * np.exp(-kf * s * g / d)

    return rician


def _craig_integral(upper, coeff, mgf, gbar) -> np.ndarray:
    """``1/(2 pi) int_0^upper M(coeff / sin^2(phi), gbar) dphi`` by Gauss-Legendre."""
    upper = np.asarray(upper, dtype=np.float64)[..., None]
    phi = 0.5 * upper * (_GL_NODES + 1.0)
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        s = np.asarray(coeff, dtype=np.float64)[..., None] / np.sin(phi) ** 2
        values = mgf(s, np.asarray(gbar, dtype=np.float64)[..., None])
    return 0.5 * upper[..., 0] * np.sum(_GL_WEIGHTS * values, axis=-1) / (2.0 * np.pi)


def _erfc_mean(c: float, gbar: np.ndarray, fading: str, rician_k_db: float) -> np.ndarray:
    """``E[erfc(sqrt(c * gbar * |h|^2))]`` for the fading model."""
    if fading == "awgn":
        return erfc(np.sqrt(c * gbar))
    if fading == "rayleigh":
        x = c * gbar
        return 1.0 - np.sqrt(x / (1.0 + x))
    # erfc(sqrt(x)) = (2/pi) int_0^{pi/2} exp(-x / sin^2 phi) dphi  (Craig's form)
    return 4.0 * _craig_integral(np.pi / 2, c, _mgf(fading, rician_k_db), gbar)


@cache
def _qam_terms(num_points: int) -> tuple[tuple[float, float], ...]:
    """Cho-Yoon weights and erfc arguments: BER = sum w * erfc(sqrt(c * Eb/N0))."""
    sqrt_m = math.isqrt(num_points)
    m = int(math.log2(num_points))
    half_bits = int(math.log2(sqrt_m))
    base = 3.0 * m / (2.0 * (num_points - 1))
    terms: dict[int, float] = {}
    for kk in range(1, half_bits + 1):
        for i in range(int((1 - 2.0**-kk) * sqrt_m)):
            scale = i * 2 ** (kk - 1) / sqrt_m
            weight = (-1) ** math.floor(scale) * (2 ** (kk - 1) - math.floor(scale + 0.5))
            terms[i] = terms.get(i, 0.0) + weight / sqrt_m / half_bits
    return tuple((w, (2 * i + 1) ** 2 * base) for i, w in sorted(terms.items()) if w != 0.0)


@cache
def _psk_hamming_profile(num_bits: int) -> np.ndarray:
    """Mean Hamming distance between the Gray labels of points ``j`` sectors apart."""
    m = 2**num_bits
    p = np.arange(m)
    gray = p ^ (p >> 1)
    dist = np.zeros(m)
    for j in range(m):
        diff = gray ^ gray[(p + j) % m]
        dist[j] = np.mean([bin(int(d)).count("1") for d in diff])
    return dist


def _psk_ber(num_bits: int, ebno: np.ndarray, fading: str, rician_k_db: float) -> np.ndarray:
    m = 2**num_bits
    esno = ebno * num_bits
    mgf = _mgf(fading, rician_k_db)

    def tail(psi: float) -> np.ndarray:  # P(received phase in [psi, pi])
        return _craig_integral(np.pi - psi, math.sin(psi) ** 2, mgf, esno)

    bounds = [tail((2 * j - 1) * np.pi / m) for j in range(1, m // 2 + 1)]
    profile = _psk_hamming_profile(num_bits)
    ber = np.zeros_like(esno)
    for j in range(1, m // 2):
        ber = ber + (bounds[j - 1] - bounds[j]) * (profile[j] + profile[m - j])
    ber = ber + 2.0 * bounds[-1] * profile[m // 2]
    return ber / num_bits


def uncoded_ber(
    modulation: str, ebno_db, fading: str = "awgn", rician_k_db: float = 6.0
) -> float | np.ndarray:
    """Exact uncoded BER of a Gray-labelled constellation (see the module notes).

    Args:
        modulation: one of `phy.specs.MODULATIONS`.
        ebno_db: Eb/N0 per bit in dB, scalar or array.
        fading: "awgn", "rayleigh" or "rician" (flat, E|h|^2 = 1, perfect CSI).
        rician_k_db: Rician K factor in dB (rician only).

    Returns:
        BER, a float for scalar input, else a float64 array of the input's shape.

    Example:
        >>> round(uncoded_ber("qpsk", 0.0, fading="rayleigh"), 5)
        0.14645
    """
    if fading not in FADING_MODELS:
        raise ValueError(f"unknown fading {fading!r}; valid: {', '.join(FADING_MODELS)}")
    m = num_bits_per_symbol(modulation)
    ebno = db2lin(ebno_db)
    if modulation == "8psk":
        ber = _psk_ber(m, ebno, fading, rician_k_db)
    elif modulation in ("bpsk", "qpsk"):
        ber = 0.5 * _erfc_mean(1.0, ebno, fading, rician_k_db)
    else:
        ber = sum(w * _erfc_mean(c, ebno, fading, rician_k_db) for w, c in _qam_terms(2**m))
    return _scalar_or_array(np.asarray(ber, dtype=np.float64), ebno_db)


def psk_ber(num_bits: int, ebno_db, fading: str = "awgn", rician_k_db: float = 6.0):
    """Exact BER of Gray-labelled 2**num_bits-PSK (num_bits >= 2); same conventions as
    `uncoded_ber`. ``psk_ber(2, x)`` equals the QPSK closed form, a check of the method."""
    if num_bits < 2:
        raise ValueError("psk_ber needs num_bits >= 2 (use uncoded_ber('bpsk', ...))")
    return _scalar_or_array(_psk_ber(num_bits, db2lin(ebno_db), fading, rician_k_db), ebno_db)


def theory_ber(
    modulation: str,
    channel: ChannelSpec | None,
    ebno_db,
    coding: CodingSpec | None = None,
) -> float | np.ndarray | None:
    """Reference BER of an uncoded link, or None where no closed form applies.

    None for coded links and for the TDL/OFDM channel (frequency-selective, estimated CSI).
    ``channel=None`` means AWGN.

    Example:
        >>> from phy.specs import ChannelSpec, CodingSpec
        >>> theory_ber("qpsk", ChannelSpec(type="tdl"), 3.0) is None
        True
        >>> round(theory_ber("bpsk", None, 0.0), 5)
        0.07865
    """
    if coding is not None and coding.type != "none":
        return None
    channel = channel if channel is not None else ChannelSpec()
    if channel.type == "tdl":
        return None
    return uncoded_ber(modulation, ebno_db, fading=channel.type, rician_k_db=channel.rician_k_db)


# --------------------------------------------------------------------------- capacity


def capacity_awgn(snr_db) -> float | np.ndarray:
    """Shannon capacity ``log2(1 + SNR)`` in bits per complex channel use."""
    return _scalar_or_array(np.log2(1.0 + db2lin(snr_db)), snr_db)


def capacity_rayleigh_ergodic(snr_db) -> float | np.ndarray:
    """Ergodic capacity of flat Rayleigh fading with receiver CSI, bits per complex use:
    ``E[log2(1 + SNR |h|^2)] = log2(e) exp(1/SNR) E1(1/SNR)`` (Lee, 1990).

    Example:
        >>> round(capacity_rayleigh_ergodic(0.0), 3)
        0.86
    """
    x = 1.0 / db2lin(snr_db)
    with np.errstate(over="ignore", invalid="ignore"):
        exact = np.exp(x) * exp1(x)
    # e^x E1(x) ~ 1/x - 1/x^2 + 2/x^3 for large x (where exp overflows)
    asym = 1.0 / x - 1.0 / x**2 + 2.0 / x**3
    value = np.where(x > 500.0, asym, exact) / math.log(2.0)
    return _scalar_or_array(np.asarray(value, dtype=np.float64), snr_db)


def _biawgn_moments(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Capacity and dispersion (bits, bits^2) of BPSK +-1 in real noise of variance 1/rho.

    The information density is ``1 - log2(1 + exp(-L))`` with the LLR ``L ~ N(2 rho, 4 rho)``
    given the sent symbol; its mean and variance are taken by Gauss-Hermite quadrature.
    """
    rho = np.asarray(rho, dtype=np.float64)[..., None]
    llr = 2.0 * rho + 2.0 * np.sqrt(rho) * _GH_NODES
    loss = np.logaddexp(0.0, -llr) / math.log(2.0)
    mean = np.sum(_GH_WEIGHTS * loss, axis=-1)
    second = np.sum(_GH_WEIGHTS * loss**2, axis=-1)
    return 1.0 - mean, np.maximum(second - mean**2, 0.0)


def capacity_biawgn(esno_db) -> float | np.ndarray:
    """Capacity of the binary-input AWGN channel in bits per BPSK symbol (real channel use),
    ``esno_db`` = Es/N0 of the BPSK symbol (noise N0/2 per real dimension).

    Example:
        >>> round(capacity_biawgn(-2.82), 3)
        0.5
    """
    cap, _ = _biawgn_moments(2.0 * db2lin(esno_db))
    return _scalar_or_array(cap, esno_db)


def shannon_limit_ebno_db(rate: float, channel_input: str = "gaussian") -> float:
    """Smallest Eb/N0 (dB) for reliable communication at ``rate``.

    Args:
        rate: "gaussian": bits per complex channel use, limit ``(2**rate - 1)/rate``;
            "binary": bits per BPSK symbol (a binary code of rate ``rate`` on BPSK/Gray QPSK).
        channel_input: "gaussian" or "binary".

    Example:
        >>> round(shannon_limit_ebno_db(0.5, "binary"), 2)
        0.19
    """
    if channel_input == "gaussian":
        return 10.0 * math.log10((2.0**rate - 1.0) / rate)
    if channel_input != "binary":
        raise ValueError("channel_input must be 'gaussian' or 'binary'")
    if not 0.0 < rate < 1.0:
        raise ValueError("a binary input carries a rate in (0, 1)")
    esno_db = brentq(lambda x: float(capacity_biawgn(x)) - rate, -40.0, 40.0, xtol=1e-10)
    return esno_db - 10.0 * math.log10(rate)


# ---------------------------------------------------------------- finite block length


def _normal_approx_arg(ebno_db, k: int, n: int, dispersion: str) -> np.ndarray:
    """``(n C - k + 0.5 log2 n) / sqrt(n V)``: the BLER is ``Q`` of this."""
    if dispersion not in DISPERSIONS:
        raise ValueError(f"unknown dispersion {dispersion!r}; valid: {', '.join(DISPERSIONS)}")
    if not 0 < k < n:
        raise ValueError(f"need 0 < k < n, got k={k}, n={n}")
    rho = 2.0 * (k / n) * db2lin(ebno_db)
    if dispersion == "biawgn":
        cap, disp = _biawgn_moments(rho)
    else:
        cap = 0.5 * np.log2(1.0 + rho)
        disp = rho * (rho + 2.0) / (2.0 * (rho + 1.0) ** 2) * (1.0 / math.log(2.0)) ** 2
    # the dispersion underflows to 0 at high SNR, where the BLER is 0 anyway
    return (n * cap - k + 0.5 * math.log2(n)) / np.sqrt(np.maximum(n * disp, 1e-300))


def normal_approx_bler(
    ebno_db, k: int, n: int, dispersion: str = "biawgn"
) -> float | np.ndarray:
    """Normal approximation of the best achievable BLER of an (n, k) code over AWGN.

    Polyanskiy, Poor & Verdu, IEEE Trans. IT 56(5), 2010, eq. (296):
    ``k ~= n C - sqrt(n V) Qinv(eps) + 0.5 log2 n``, solved for ``eps``:
    ``eps ~= Q((n C - k + 0.5 log2 n) / sqrt(n V))``.

    The code is binary with ``n`` coded bits sent over ``n`` real BPSK dimensions (BPSK, or
    Gray QPSK = two BPSK per complex symbol), at ``Eb/N0`` per information bit, so the SNR per
    real dimension is ``2 (k/n) Eb/N0``.

    Args:
        ebno_db: Eb/N0 in dB (scalar or array).
        k: information bits; n: coded bits (real channel uses).
        dispersion: "biawgn" (capacity and dispersion of the binary-input AWGN channel: the
            right benchmark for a binary code on BPSK/QPSK) or "gaussian" (Gaussian input:
            ``C = 0.5 log2(1+P)``, ``V = P(P+2)/(2(P+1)^2) log2(e)^2`` per real dimension).

    Returns:
        BLER estimate, float for scalar input.

    Example:
        >>> 0.0 < normal_approx_bler(2.0, 512, 1024) < 0.01
        True
    """
    return _scalar_or_array(q_function(_normal_approx_arg(ebno_db, k, n, dispersion)), ebno_db)


def normal_approx_ebno_db(
    target_bler: float, k: int, n: int, dispersion: str = "biawgn"
) -> float:
    """Eb/N0 (dB) at which `normal_approx_bler` equals ``target_bler``.

    Example:
        >>> x = normal_approx_ebno_db(1e-2, 512, 1024)
        >>> round(float(normal_approx_bler(x, 512, 1024)), 6)
        0.01
    """
    if not 0.0 < target_bler < 1.0:
        raise ValueError("target_bler must be in (0, 1)")

    threshold = float(norm.isf(target_bler))
    return float(
        brentq(lambda x: float(_normal_approx_arg(x, k, n, dispersion)) - threshold,
               -10.0, 30.0, xtol=1e-9)
    )
