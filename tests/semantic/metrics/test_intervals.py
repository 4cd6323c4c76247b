"""Percentile-bootstrap intervals: contain the estimate, are seeded, shrink with n."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semantic.metrics.intervals import (
    bootstrap_mean_ci,
    bootstrap_miou_ci,
    resample_counts,
)
from semantic.metrics.miou import confusion_per_image, miou_from_confusion


def test_mean_interval_contains_the_mean_and_is_deterministic_for_a_seed():
    values = torch.from_numpy(np.random.default_rng(0).normal(30.0, 2.0, 80))
    a = bootstrap_mean_ci(values, generator=11, n_resamples=1000)
    b = bootstrap_mean_ci(values, generator=torch.Generator().manual_seed(11), n_resamples=1000)
    c = bootstrap_mean_ci(values, generator=12, n_resamples=1000)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.estimate == pytest.approx(float(values.mean()))
    assert a.low < a.estimate < a.high
    # The percentile interval of a mean is close to mean ± 1.96 s / sqrt(n).
    half_width = 1.96 * float(values.std()) / np.sqrt(len(values))
    assert (a.high - a.low) / 2 == pytest.approx(half_width, rel=0.15)


def test_resample_counts_are_draws_with_replacement():
    counts = resample_counts(5, 200, 0)
    assert counts.shape == (200, 5)
    assert torch.all(counts.sum(1) == 5)
    assert counts.max() > 1  # some image appears twice somewhere
    assert torch.equal(counts, resample_counts(5, 200, 0))


def test_interval_matches_an_explicit_resampling_loop():
    values = np.random.default_rng(1).random(17)
    ci = bootstrap_mean_ci(values, generator=5, n_resamples=300)
    draws = torch.randint(0, 17, (300, 17), generator=torch.Generator().manual_seed(5)).numpy()
    means = np.array([values[row].mean() for row in draws])
    low, high = np.quantile(means, [0.025, 0.975])
    assert ci.low == pytest.approx(low, abs=1e-12)
    assert ci.high == pytest.approx(high, abs=1e-12)


def test_miou_interval_recomputes_the_pooled_miou_of_each_resample():
    gen = np.random.default_rng(2)
    target = torch.from_numpy(gen.integers(0, 4, (12, 6, 6)))
    noise = torch.from_numpy(gen.random((12, 6, 6)) < 0.3)
    pred = torch.where(noise, torch.from_numpy(gen.integers(0, 4, (12, 6, 6))), target)
    conf = confusion_per_image(pred, target, 4)
    ci = bootstrap_miou_ci(conf, generator=3, n_resamples=400)
    assert ci.estimate == pytest.approx(float(miou_from_confusion(conf.sum(0))))
    assert ci.low <= ci.estimate <= ci.high
    draws = torch.randint(0, 12, (400, 12), generator=torch.Generator().manual_seed(3))
    stats = np.array([float(miou_from_confusion(conf[row].sum(0))) for row in draws])
    low, high = np.quantile(stats, [0.025, 0.975])
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-12)
    assert ci == bootstrap_miou_ci(conf, generator=3, n_resamples=400)


def test_non_finite_values_are_rejected():
    with pytest.raises(ValueError):
        bootstrap_mean_ci(np.array([1.0, np.nan]))


def test_binomial_ci_is_the_phy_implementation():
    from phy.stats import binomial_ci as phy_binomial_ci
    from semantic.metrics import binomial_ci

    assert binomial_ci is phy_binomial_ci
    low, high = binomial_ci(5, 100, method="wilson")
    assert low < 0.05 < high
