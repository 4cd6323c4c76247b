"""Samplers: determinism, closed-form recoveries, ODE convergence, starting from an image."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from semantic.diffusion.guidance import Condition
from semantic.diffusion.samplers import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverPP2M,
    last_index_at_or_below,
)
from semantic.diffusion.schedule import NoiseSchedule, respaced, space_timesteps


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription on shared CPUs (conftest restores it)."""
    torch.set_num_threads(1)


BASE = NoiseSchedule.from_name("linear", 1000)
SHAPE = (2, 3, 8, 8)


def _samplers():
    return {
        "ddpm": DDPMSampler(BASE, "10"),
        "ddim0": DDIMSampler(BASE, "ddim10", eta=0.0),
        "ddim1": DDIMSampler(BASE, "ddim10", eta=1.0),
        "dpm": DPMSolverPP2M(BASE, "logsnr10"),
    }


class SmallNet(nn.Module):
    """A random conv denoiser honouring the contract (x, t, y) -> [B, 6, H, W]."""

    def __init__(self, labels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3 + labels, 6, 3, padding=1)

    def forward(self, x, t, cond: Condition):
        h = self.conv(torch.cat([x, cond.y], 1))
        return torch.tanh(h) * (1 + t.float().view(-1, 1, 1, 1) / 1000)


class Oracle:
    """Predicts the exact noise of a known x0: ε = (x_t − √ᾱ x0) / √(1 − ᾱ), t original."""

    def __init__(self, x0: torch.Tensor) -> None:
        self.x0 = x0.double()
        self.timesteps: list[int] = []

    def __call__(self, x, t, cond):
        self.timesteps.append(int(t[0]))
        a = BASE.alphas_cumprod[t].view(-1, 1, 1, 1)
        eps = (x.double() - a.sqrt() * self.x0) / (1 - a).sqrt()
        return torch.cat([eps, torch.zeros_like(eps)], 1).float()


def _cond():
    return Condition(y=torch.zeros(SHAPE[0], 4, *SHAPE[2:]))


@pytest.mark.parametrize("name", ["ddpm", "ddim0", "ddim1", "dpm"])
def test_sampling_is_deterministic_for_a_generator(name):
    sampler = _samplers()[name]
    net = SmallNet()
    cond = Condition(y=torch.rand(SHAPE[0], 4, *SHAPE[2:]))

    def run(seed):
        return sampler.sample(net, SHAPE, cond, torch.Generator().manual_seed(seed)).images

    first, again, other = run(5), run(5), run(6)
    assert first.shape == SHAPE and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("name", ["ddpm", "ddim0", "ddim1", "dpm"])
def test_oracle_denoiser_recovers_the_clean_image(name):
    sampler = _samplers()[name]
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(SHAPE, generator=g) * 1.8 - 0.9
    oracle = Oracle(x0)
    out = sampler.sample(oracle, SHAPE, _cond(), g)
    # DDIM(η=0) follows x_t = √ᾱ x0 + √(1−ᾱ) ε exactly; every sampler's last step returns x̂_0.
    torch.testing.assert_close(out.images, x0, rtol=0, atol=2e-5)
    assert oracle.timesteps == sampler.schedule.timestep_map.flip(0).tolist()
    assert out.timesteps.tolist() == oracle.timesteps


def test_ddim_eta0_oracle_stays_on_the_forward_trajectory():
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(SHAPE, generator=g) * 1.8 - 0.9
    sampler = DDIMSampler(BASE, "50", eta=0.0)
    x_T = torch.randn(SHAPE, generator=g)
    a_top = sampler.schedule.alphas_cumprod[-1]
    eps = (x_T - a_top.sqrt() * x0) / (1 - a_top).sqrt()
    oracle = Oracle(x0)
    x = x_T
    for k in range(sampler.num_steps - 1, 20, -1):
        t_model = sampler.schedule.model_timesteps(k, SHAPE[0])
        x = sampler.step(oracle(x, t_model, None), k, x).prev_sample
    expected = sampler.schedule.q_sample(x0, 20, eps)
    torch.testing.assert_close(x, expected, rtol=0, atol=2e-5)


def test_per_sample_indices_match_scalar_steps():
    sampler = DDPMSampler(BASE, "100")
    x = torch.randn(2, 3, 4, 4)
    out = torch.randn(2, 6, 4, 4)
    noise = torch.randn(2, 3, 4, 4)
    both = sampler.step(out, torch.tensor([99, 0]), x, noise=noise).prev_sample
    first = sampler.step(out[:1], 99, x[:1], noise=noise[:1]).prev_sample
    last = sampler.step(out[1:], 0, x[1:], noise=noise[1:]).prev_sample
    torch.testing.assert_close(both, torch.cat([first, last]), rtol=0, atol=0)
    # No noise is added at chain index 0.
    mean = sampler.schedule.p_mean_variance(out[1:], x[1:], 0).mean
    torch.testing.assert_close(last, mean, rtol=0, atol=0)


class GaussianData:
    """Exact ε-predictor for data x0 ~ N(μ, s²) per pixel: ε̂ = σ (x − aμ) / (a²s² + σ²)."""

    def __init__(self, mu: float, std: float) -> None:
        self.mu, self.std = mu, std

    def __call__(self, x, t, cond):
        a2 = BASE.alphas_cumprod[t].view(-1, 1, 1, 1)
        var = a2 * self.std**2 + 1 - a2
        return ((1 - a2).sqrt() * (x.double() - a2.sqrt() * self.mu) / var).float()

    def ode_solution(self, x_T):
        """The probability-flow ODE keeps z = (x − aμ)/√(a²s² + σ²) fixed; the chain ends with
        x̂_0 at ᾱ_0 = 0.9999 (original step 0), so the exact discrete target is D(x at t=0)."""
        a_top, a0 = BASE.alphas_cumprod[999], BASE.alphas_cumprod[0]
        s2 = self.std**2
        z = (x_T.double() - a_top.sqrt() * self.mu) / (a_top * s2 + 1 - a_top).sqrt()
        return self.mu + a0.sqrt() * s2 * z / (a0 * s2 + 1 - a0).sqrt()


def _max_error(sampler, data, x_T, ref):
    out = sampler.sample(data, x_T.shape, _cond(), x_T=x_T)
    return float((out.images.double() - ref).abs().max())


def test_dpm_solver_converges_at_second_order_on_gaussian_data():
    data = GaussianData(mu=0.3, std=0.5)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    ref = data.ode_solution(x_T)
    steps = (10, 20, 40, 80)
    dpm = [_max_error(DPMSolverPP2M(BASE, f"logsnr{n}", clip_denoised=False), data, x_T, ref)
           for n in steps]  # fmt: skip
    ddim = [_max_error(DDIMSampler(BASE, f"logsnr{n}", clip_denoised=False), data, x_T, ref)
            for n in steps]  # fmt: skip
    assert all(b < a for a, b in itertools.pairwise(dpm)), dpm
    assert all(b < a for a, b in itertools.pairwise(ddim)), ddim
    assert all(p < d for p, d in zip(dpm, ddim)), (dpm, ddim)
    # Doubling the steps: ≈ ×1/4 for a second-order method, ≈ ×1/2 for DDIM (first order).
    assert dpm[-1] / dpm[-2] < 0.35
    assert 0.4 < ddim[-1] / ddim[-2] < 0.6
    assert dpm[-1] < 3e-3


def test_dpm_solver_and_ddim_agree_with_many_sdm_spaced_steps():
    data = GaussianData(mu=-0.2, std=0.4)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    ref = data.ode_solution(x_T)
    dpm = [_max_error(DPMSolverPP2M(BASE, str(n), clip_denoised=False), data, x_T, ref)
           for n in (40, 80, 160)]  # fmt: skip
    assert dpm[0] > dpm[1] > dpm[2]
    dpm_out = DPMSolverPP2M(BASE, "160", clip_denoised=False).sample(data, SHAPE, _cond(), x_T=x_T)
    ddim_out = DDIMSampler(BASE, None, clip_denoised=False).sample(data, SHAPE, _cond(), x_T=x_T)
    assert float((ddim_out.images.double() - ref).abs().max()) < 1e-2
    torch.testing.assert_close(dpm_out.images, ddim_out.images, rtol=0, atol=2e-2)


def test_start_from_an_image_at_an_intermediate_step():
    chain = respaced(BASE, space_timesteps(1000, "100"))
    start = last_index_at_or_below(chain, 200)  # SPIC: respacing "100", max_iter_time 200
    assert start == 19 and int(chain.timestep_map[start]) == 192
    sampler = DDPMSampler(BASE, "100")
    image = torch.rand(SHAPE) * 2 - 1
    seen = []

    def net(x, t, cond):
        seen.append((x.clone(), int(t[0])))
        return torch.zeros(x.shape[0], 6, *x.shape[2:])

    out = sampler.sample(
        net, SHAPE, _cond(), torch.Generator().manual_seed(2),
        start_step=start, start_image=image, noise_start_image=False,
    )  # fmt: skip
    assert len(seen) == start + 1 and seen[0][1] == 192 and seen[-1][1] == 0
    assert torch.equal(seen[0][0], image)
    assert out.timesteps.tolist() == [t for _, t in seen]

    seen.clear()
    sampler.sample(
        net, SHAPE, _cond(), torch.Generator().manual_seed(2), start_step=start, start_image=image
    )
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(seen[0][0], chain.q_sample(image, start, noise), rtol=0, atol=0)


def test_explicit_start_tensor_and_argument_checks():
    sampler = DDIMSampler(BASE, "ddim10")
    x_T = torch.randn(SHAPE)
    seen = []

    def net(x, t, cond):
        seen.append(x.clone())
        return torch.zeros(x.shape[0], 6, *x.shape[2:])

    sampler.sample(net, SHAPE, _cond(), x_T=x_T)
    assert torch.equal(seen[0], x_T)
    with pytest.raises(ValueError, match="start_step"):
        sampler.sample(net, SHAPE, _cond(), start_image=x_T)
    with pytest.raises(ValueError, match="not both"):
        sampler.sample(net, SHAPE, _cond(), x_T=x_T, start_image=x_T, start_step=3)
    with pytest.raises(ValueError, match="start_step"):
        sampler.sample(net, SHAPE, _cond(), start_step=10)
    with pytest.raises(ValueError, match="eta"):
        DDIMSampler(BASE, eta=-1.0)
