"""Classifier-free guidance: trigger, null condition, formula, batching and condition caches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semantic.diffusion.guidance import Condition, GuidedDenoiser, classifier_free_guidance
from semantic.diffusion.samplers import DDIMSampler
from semantic.diffusion.schedule import NoiseSchedule


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription on shared CPUs (conftest restores it)."""
    torch.set_num_threads(1)


class RecordingNet(nn.Module):
    """Stand-in for the SDM UNet contract, recording how it is called.

    Output depends on x, t, y and (optionally) low_res, per sample, so batching is exact up to
    float rounding. ``precompute_condition`` returns the map through a conv (like SPADE).
    """

    def __init__(self, labels: int = 4, super_res: bool = False) -> None:
        super().__init__()
        self.super_res = super_res
        self.cond_conv = nn.Conv2d(labels, 8, 3, padding=1)
        self.body = nn.Conv2d(3 + 8 + (3 if super_res else 0), 6, 3, padding=1)
        self.calls: list[dict] = []
        self.precomputed = 0

    def precompute_condition(self, y, low_res=None):
        self.precomputed += 1
        return {"features": self.cond_conv(y), "low_res": low_res}

    def forward(self, x, t, y=None, low_res=None, *, cache=None):
        self.calls.append(
            {"batch": x.shape[0], "y": None if y is None else y.clone(), "cache": cache,
             "low_res": low_res}
        )  # fmt: skip
        if cache is not None:
            features, low_res = cache["features"], cache["low_res"]
        else:
            features = self.cond_conv(y)
        parts = [x, features]
        if self.super_res:
            parts.append(F.interpolate(low_res, size=x.shape[-2:], mode="bilinear"))
        h = self.body(torch.cat(parts, 1))
        return h * (1 + t.float().view(-1, 1, 1, 1) / 1000)


def _inputs(batch=2, labels=4, size=8):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 3, size, size, generator=g)
    y = F.one_hot(torch.randint(labels, (batch, size, size), generator=g), labels)
    return x, y.permute(0, 3, 1, 2).float(), torch.tensor([999, 404][:batch])


@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0])
def test_no_guidance_at_or_below_one_is_a_single_conditional_pass(scale):
    net = RecordingNet()
    x, y, t = _inputs()
    den = GuidedDenoiser(net, scale, use_cache=False)
    out = den(x, t, Condition(y=y))
    assert len(net.calls) == 1
    assert torch.equal(net.calls[0]["y"], y)
    torch.testing.assert_close(out, net(x, t, y), rtol=0, atol=0)


def test_guidance_just_above_one_runs_two_passes():
    net = RecordingNet()
    x, y, t = _inputs()
    GuidedDenoiser(net, 1.0 + 1e-6, use_cache=False)(x, t, Condition(y=y))
    assert len(net.calls) == 2


def test_guided_output_formula_and_null_condition():
    net = RecordingNet()
    x, y, t = _inputs()
    out = GuidedDenoiser(net, 2.5, use_cache=False)(x, t, Condition(y=y))
    cond_call, null_call = net.calls
    assert torch.equal(cond_call["y"], y)
    assert null_call["y"].shape == y.shape and not null_call["y"].any()
    with torch.no_grad():
        cond_out, null_out = net(x, t, y), net(x, t, torch.zeros_like(y))
    torch.testing.assert_close(
        out[:, :3], null_out[:, :3] + 2.5 * (cond_out[:, :3] - null_out[:, :3])
    )
    torch.testing.assert_close(out[:, 3:], cond_out[:, 3:], rtol=0, atol=0)
    manual = classifier_free_guidance(cond_out, null_out, 2.5)
    torch.testing.assert_close(out, manual, rtol=0, atol=0)


def test_super_res_null_pass_keeps_the_low_res_image():
    net = RecordingNet(super_res=True)
    x, y, t = _inputs()
    low = torch.rand(2, 3, 4, 4) * 2 - 1
    cond = Condition(y=y, low_res=low)
    assert torch.equal(cond.null().low_res, low) and not cond.null().y.any()
    GuidedDenoiser(net, 2.0, use_cache=False)(x, t, cond)
    assert all(torch.equal(call["low_res"], low) for call in net.calls)


@pytest.mark.parametrize("super_res", [False, True])
def test_batched_and_cached_guidance_match_two_separate_passes(super_res):
    net = RecordingNet(super_res=super_res)
    x, y, t = _inputs()
    low = torch.rand(2, 3, 4, 4) * 2 - 1 if super_res else None
    reference = GuidedDenoiser(net, 2.0, use_cache=False)(x, t, Condition(y=y, low_res=low))
    for batched in (False, True):
        for use_cache in (False, True):
            net.calls.clear()
            den = GuidedDenoiser(net, 2.0, batched=batched, use_cache=use_cache)
            cond = den.prepare(Condition(y=y, low_res=low))
            out = den(x, t, cond)
            torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
            assert [c["batch"] for c in net.calls] == ([4] if batched else [2, 2])
            assert all((c["cache"] is not None) == use_cache for c in net.calls)


def test_sampler_prepares_the_condition_once_per_batch():
    net = RecordingNet()
    x, y, _ = _inputs()
    sampler = DDIMSampler(NoiseSchedule.from_name("linear", 1000), respacing="ddim5")
    with torch.no_grad():
        sampler.sample(GuidedDenoiser(net, 2.0), x.shape, Condition(y=y), torch.Generator())
    assert net.precomputed == 2  # the map and the all-zero map, once each
    assert len(net.calls) == 10 and all(c["cache"] is not None for c in net.calls)
    net.precomputed = 0
    with torch.no_grad():
        den = GuidedDenoiser(net, 2.0, batched=True)
        sampler.sample(den, x.shape, Condition(y=y), torch.Generator())
    assert net.precomputed == 1


def test_plain_callable_without_cache_support():
    def net(x, t, y):
        return torch.cat([x * y.mean((1, 2, 3), keepdim=True), torch.zeros_like(x)], 1)

    x, y, t = _inputs()
    den = GuidedDenoiser(net, 3.0)
    cond = den.prepare(Condition(y=y))
    assert cond.cache is None
    out = den(x, t, cond)
    expected_eps = 3.0 * x * y.mean((1, 2, 3), keepdim=True)  # null pass gives 0
    torch.testing.assert_close(out[:, :3], expected_eps)


def test_autocast_runs_in_reduced_precision_and_returns_float32():
    net = RecordingNet()
    x, y, t = _inputs()
    reference = GuidedDenoiser(net, 2.0)(x, t, GuidedDenoiser(net, 2.0).prepare(Condition(y=y)))
    den = GuidedDenoiser(net, 2.0, autocast_dtype=torch.bfloat16)
    with torch.no_grad():
        out = den(x, t, den.prepare(Condition(y=y)))
    assert out.dtype == torch.float32
    assert not torch.equal(out, reference)  # really computed in bfloat16
    torch.testing.assert_close(out, reference, rtol=0, atol=0.1)
