"""Confidence intervals for error counts (binomial proportions).

Example:
    >>> from phy.stats import binomial_ci
    >>> low, high = binomial_ci(0, 20)
    >>> (low, round(high, 4))
    (0.0, 0.1684)
"""

from __future__ import annotations

import math

from scipy.stats import beta, norm

CI_METHODS: tuple[str, ...] = ("clopper-pearson", "wilson")


def binomial_ci(
    k: int, n: int, alpha: float = 0.05, method: str = "clopper-pearson"
) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` confidence interval of a binomial proportion ``k / n``.

    Args:
        k: number of events (errors), ``0 <= k <= n``.
        n: number of trials; ``n == 0`` gives the uninformative ``(0.0, 1.0)``.
        alpha: error probability of the interval, in (0, 1).
        method: "clopper-pearson" (exact, Beta quantiles: at least ``1 - alpha`` coverage)
            or "wilson" (score interval, Wilson 1927; closer to nominal coverage on average).

    Returns:
        ``(low, high)`` as Python floats in [0, 1].

    Note: bit errors inside one block are correlated (burst errors after decoding, a shared
    fade in block fading), so an interval on BER computed from bit counts is too narrow
    there; block counts (BLER) are independent trials.

    Example:
        >>> [round(v, 4) for v in binomial_ci(81, 263, method="wilson")]
        [0.2553, 0.3662]
    """
    if method not in CI_METHODS:
        raise ValueError(f"unknown CI method {method!r}; valid: {', '.join(CI_METHODS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    if method == "clopper-pearson":
        # Clopper & Pearson (1934): Beta(k, n-k+1) and Beta(k+1, n-k) quantiles.
        low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
        return low, high
    z = float(norm.ppf(1 - alpha / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
