"""One guided reverse step against SDM's reference (``sdm_diffusion_vectors.pt`` ``step_test``).

Setting (facts §14): 1000-step linear schedule respaced "100", learned-range variance,
s = 2.0, clip_denoised, respaced t = [99, 40] (network sees [999, 404]); x_t and y from the
tiny UNet vector. Part 1 feeds the stored raw network outputs into our guidance + step math
(tests this package alone); part 2 runs the tiny SDM UNet through :class:`GuidedDenoiser`.
"""

from __future__ import annotations

import pytest
import torch

from semantic.diffusion.guidance import Condition, GuidedDenoiser, classifier_free_guidance
from semantic.diffusion.samplers import DDIMSampler, DDPMSampler
from semantic.diffusion.schedule import NoiseSchedule


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription on shared CPUs (conftest restores it)."""
    torch.set_num_threads(1)


TOL = 1e-6


@pytest.fixture(scope="module")
def step_test(shared_dir):
    path = shared_dir / "reference" / "sdm_diffusion_vectors.pt"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return torch.load(path, weights_only=True)["step_test"]


@pytest.fixture(scope="module")
def tiny(shared_dir):
    path = shared_dir / "reference" / "sdm_unet_tiny_vector.pt"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def ddpm():
    return DDPMSampler(NoiseSchedule.from_name("linear", 1000), respacing="100")


def _close(actual, expected, tol=TOL):
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol)


def test_model_timesteps_follow_the_timestep_map(step_test, ddpm):
    t = step_test["t_respaced"]
    assert torch.equal(ddpm.schedule.model_timesteps(t, 2), step_test["t_model"])


def test_guided_step_from_raw_outputs(step_test, tiny, ddpm):
    x_t, t = tiny["x"], step_test["t_respaced"]
    guided = classifier_free_guidance(step_test["raw_cond"], step_test["raw_uncond"], 2.0)
    mv = ddpm.schedule.p_mean_variance(guided, x_t, t, clip_denoised=True)
    _close(mv.mean, step_test["guided_mean"])
    _close(mv.log_variance, step_test["guided_log_variance"])
    _close(mv.pred_xstart, step_test["guided_pred_xstart"])

    plain = ddpm.schedule.p_mean_variance(step_test["raw_cond"], x_t, t, clip_denoised=True)
    _close(plain.mean, step_test["unguided_mean"])
    _close(plain.log_variance, step_test["unguided_log_variance"])
    _close(plain.pred_xstart, step_test["unguided_pred_xstart"])

    noise = step_test["noise"]
    _close(ddpm.step(guided, t, x_t, noise=noise).prev_sample, step_test["p_sample"])
    schedule = NoiseSchedule.from_name("linear", 1000)
    for eta, key in ((0.0, "ddim_eta0_sample"), (1.0, "ddim_eta1_sample")):
        ddim = DDIMSampler(schedule, respacing="100", eta=eta)
        _close(ddim.step(guided, t, x_t, noise=noise).prev_sample, step_test[key])


def test_guided_step_with_the_tiny_sdm_unet(step_test, tiny, ddpm):
    unet = pytest.importorskip(
        "semantic.diffusion.unet", reason="semantic.diffusion.unet (SDMUNet) is not available"
    )
    model = unet.SDMUNet(unet.UNetConfig.from_sdm_flags(tiny["config"], variant="gesco"))
    model.load_state_dict({k: v.float() for k, v in tiny["state_dict"].items()})
    model.eval()
    x_t, y, t = tiny["x"], tiny["y"], step_test["t_respaced"]
    t_model = ddpm.schedule.model_timesteps(t, 2)
    expected = classifier_free_guidance(step_test["raw_cond"], step_test["raw_uncond"], 2.0)
    ddim = DDIMSampler(NoiseSchedule.from_name("linear", 1000), "100", eta=0.0)
    # The reference path (two passes, live SPADE) and the fast one (one 2B pass, cached SPADE).
    with torch.no_grad():
        for batched, use_cache in ((False, False), (True, True)):
            den = GuidedDenoiser(model, 2.0, batched=batched, use_cache=use_cache)
            cond = den.prepare(Condition(y=y))
            out = den(x_t, t_model, cond)
            # Float32 UNet agreement is ~1e-5 (facts §14).
            _close(out, expected, 2e-5)
            mv = ddpm.schedule.p_mean_variance(out, x_t, t)
            _close(mv.mean, step_test["guided_mean"], 2e-5)
            _close(mv.log_variance, step_test["guided_log_variance"], 2e-5)
            # x̂_0 amplifies ε errors by √(1/ᾱ − 1) ≈ 157 at t = 999 (and s = 2 by 3).
            _close(mv.pred_xstart, step_test["guided_pred_xstart"], 157 * 3 * 2e-5)
            prev = ddim.step(out, t, x_t).prev_sample
            _close(prev, step_test["ddim_eta0_sample"], 157 * 3 * 2e-5)
