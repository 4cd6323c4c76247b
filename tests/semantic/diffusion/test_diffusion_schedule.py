"""Noise schedules and respacing against SDM's reference vectors and closed forms."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch

import semantic.diffusion.guidance as guidance_module
import semantic.diffusion.samplers as samplers_module
import semantic.diffusion.schedule as schedule_module
import semantic.diffusion.training as training_module
from semantic.diffusion.schedule import (
    NoiseSchedule,
    logsnr_timesteps,
    respaced,
    select_timesteps,
    space_timesteps,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription on shared CPUs (conftest restores it)."""
    torch.set_num_threads(1)


RESPACING_SPECS = ("1000", "250", "100", "50", "25", "ddim25", "ddim50", "ddim100", "10,10,5")


@pytest.fixture(scope="module")
def vectors(shared_dir):
    path = shared_dir / "reference" / "sdm_diffusion_vectors.pt"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize(
    ("name", "steps", "key"),
    [
        ("linear", 1000, "betas_linear_1000"),
        ("linear", 100, "betas_linear_100"),
        ("cosine", 1000, "betas_cosine_1000"),
    ],
)
def test_betas_match_reference(vectors, name, steps, key):
    betas = NoiseSchedule.from_name(name, steps).betas
    assert betas.dtype == torch.float64
    torch.testing.assert_close(betas, vectors[key], rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", RESPACING_SPECS)
def test_respacing_matches_reference(vectors, spec):
    ref = vectors["respacing"][spec]
    base = NoiseSchedule.from_name("linear", 1000)
    chain = respaced(base, space_timesteps(1000, spec))
    assert torch.equal(chain.timestep_map, ref["timestep_map"])
    for field in ("betas", "alphas_cumprod", "posterior_log_variance_clipped"):
        torch.testing.assert_close(getattr(chain, field), ref[field], rtol=1e-12, atol=1e-12)


def test_space_timesteps_rules():
    # Half-to-even rounding: stride 999/99 puts the 7th step at round(60.54...) = 61 (facts §12.6).
    assert space_timesteps(1000, "100")[:11] == [0, 10, 20, 30, 40, 50, 61, 71, 81, 91, 101]
    assert space_timesteps(1000, "ddim25") == list(range(0, 1000, 40))
    # Sections: 1000 = 334 + 333 + 333; one step per section takes just the section start.
    assert space_timesteps(1000, "1,1,1") == [0, 334, 667]
    assert space_timesteps(10, "3") == [0, 4, 9]  # positions 0, 4.5 → 4 (even), 9
    assert space_timesteps(1000, [5, 1, 5]) == [1, 5]
    with pytest.raises(ValueError, match="integer stride"):
        space_timesteps(1000, "ddim3000")
    with pytest.raises(ValueError, match="section"):
        space_timesteps(10, "11")


def test_linear_schedule_closed_forms():
    s = NoiseSchedule.from_name("linear", 1000)
    betas = np.linspace(1e-4, 0.02, 1000)
    acp = np.cumprod(1 - betas)
    assert math.isclose(float(s.alphas_cumprod[-1]), acp[-1], rel_tol=1e-12)
    assert math.isclose(float(s.alphas_cumprod[-1]), 4.036e-5, rel_tol=1e-3)
    assert float(s.alphas_cumprod_prev[0]) == 1.0
    t = 500
    post_var = betas[t] * (1 - acp[t - 1]) / (1 - acp[t])
    assert math.isclose(float(s.posterior_variance[t]), post_var, rel_tol=1e-12)
    assert float(s.posterior_log_variance_clipped[0]) == float(s.posterior_log_variance_clipped[1])
    coef1 = betas[t] * math.sqrt(acp[t - 1]) / (1 - acp[t])
    coef2 = (1 - acp[t - 1]) * math.sqrt(1 - betas[t]) / (1 - acp[t])
    assert math.isclose(float(s.posterior_mean_coef1[t]), coef1, rel_tol=1e-12)
    assert math.isclose(float(s.posterior_mean_coef2[t]), coef2, rel_tol=1e-12)


def test_respaced_chain_keeps_alphas_cumprod_and_composes():
    base = NoiseSchedule.from_name("linear", 1000)
    chain = respaced(base, space_timesteps(1000, "50"))
    kept = chain.timestep_map
    torch.testing.assert_close(chain.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-12, atol=0)
    # Respacing a respaced chain composes the timestep maps.
    sub = respaced(chain, [0, 10, 49])
    assert sub.timestep_map.tolist() == [0, int(kept[10]), 999]
    torch.testing.assert_close(sub.alphas_cumprod, base.alphas_cumprod[sub.timestep_map])


def test_q_sample_and_predict_xstart_invert_each_other():
    s = respaced(NoiseSchedule.from_name("linear", 1000), space_timesteps(1000, "25"))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 3, 4, 4, generator=g) * 2 - 1
    noise = torch.randn(3, 3, 4, 4, generator=g)
    t = torch.tensor([0, 12, 24])
    x_t = s.q_sample(x0, t, noise)
    a = s.alphas_cumprod[t].view(-1, 1, 1, 1)
    expected = (a.sqrt() * x0.double() + (1 - a).sqrt() * noise.double()).float()
    torch.testing.assert_close(x_t, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(s.predict_xstart(x_t, t, noise), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s.eps_from_xstart(x_t, t, x0), noise, rtol=1e-3, atol=1e-3)


def test_p_mean_variance_learned_range_limits_and_fixed_variance():
    s = NoiseSchedule.from_name("linear", 1000)
    x_t = torch.randn(2, 3, 4, 4)
    eps = torch.randn(2, 3, 4, 4)
    t = 700
    upper = s.p_mean_variance(torch.cat([eps, torch.ones_like(eps)], 1), x_t, t)
    lower = s.p_mean_variance(torch.cat([eps, -torch.ones_like(eps)], 1), x_t, t)
    fixed = s.p_mean_variance(eps, x_t, t)
    torch.testing.assert_close(upper.log_variance, torch.full_like(x_t, math.log(s.betas[t])))
    torch.testing.assert_close(
        lower.log_variance, torch.full_like(x_t, float(s.posterior_log_variance_clipped[t]))
    )
    torch.testing.assert_close(fixed.log_variance, lower.log_variance)
    torch.testing.assert_close(fixed.variance, torch.exp(fixed.log_variance))
    # The mean does not depend on the variance channels.
    torch.testing.assert_close(upper.mean, lower.mean)
    assert upper.mean.dtype == torch.float32
    big = s.p_mean_variance(torch.cat([-50 * torch.ones_like(eps), eps], 1), x_t, 999)
    assert float(big.pred_xstart.abs().max()) == 1.0
    with pytest.raises(ValueError, match="channels"):
        s.p_mean_variance(torch.zeros(2, 5, 4, 4), x_t, t)


def test_chain_index_validation():
    s = NoiseSchedule.from_name("linear", 100)
    with pytest.raises(IndexError):
        s.gather(s.betas, 100, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="tensor"):
        s.gather(s.betas, torch.tensor([1, 2, 3]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule.from_name("quadratic", 10)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        NoiseSchedule.from_name("linear", 10)  # β would reach 2.0


def test_logsnr_timesteps_are_uniform_in_log_snr():
    base = NoiseSchedule.from_name("linear", 1000)
    for n in (2, 10, 50, 200):
        steps = logsnr_timesteps(base, n)
        assert len(steps) == n == len(set(steps))
        assert steps[0] == 0 and steps[-1] == 999 and steps == sorted(steps)
    steps = logsnr_timesteps(base, 10)
    acp = base.alphas_cumprod[steps]
    lam = 0.5 * torch.log(acp / (1 - acp))
    gaps = lam[:-1] - lam[1:]
    assert float(gaps.max() - gaps.min()) < 0.1 * float(gaps.mean())
    assert select_timesteps(base, "logsnr10") == steps
    assert select_timesteps(base, "100") == space_timesteps(1000, "100")


@pytest.mark.parametrize(
    "module", [schedule_module, guidance_module, samplers_module, training_module]
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
