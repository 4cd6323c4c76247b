"""Binomial confidence intervals against Beta quantiles and published examples."""

from __future__ import annotations

import pytest
from scipy.stats import beta

from phy.stats import binomial_ci

# Newcombe, "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Stat. Med. 17 (1998), Table II: Wilson score (method 3) and exact
# Clopper-Pearson (method 5) 95% intervals.
NEWCOMBE = [
    # k, n, wilson, clopper-pearson
    (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
    (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
    (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
    (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
]


@pytest.mark.parametrize(("k", "n", "wilson", "exact"), NEWCOMBE)
def test_matches_newcombe_table(k, n, wilson, exact):
    assert binomial_ci(k, n, method="wilson") == pytest.approx(wilson, abs=6e-5)
    assert binomial_ci(k, n, method="clopper-pearson") == pytest.approx(exact, abs=6e-5)


@pytest.mark.parametrize(("k", "n", "alpha"), [(7, 1000, 0.05), (100, 20000, 0.01), (3, 3, 0.1)])
def test_clopper_pearson_is_beta_quantiles(k, n, alpha):
    low, high = binomial_ci(k, n, alpha)
    assert low == pytest.approx(beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0, rel=1e-12)
    expected_high = beta.ppf(1 - alpha / 2, k + 1, n - k) if k < n else 1.0
    assert high == pytest.approx(expected_high, rel=1e-12)


def test_edges_and_errors():
    assert binomial_ci(0, 0) == (0.0, 1.0)
    assert binomial_ci(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        binomial_ci(6, 5)
    with pytest.raises(ValueError, match="wilson"):
        binomial_ci(1, 5, method="agresti")
