"""SPADE condition cache: same outputs as the uncached path, batching, validation."""

from __future__ import annotations

import pytest
import torch

from semantic.diffusion.unet import ConditionCache, SDMUNet, UNetConfig


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks gain nothing from a second OpenMP thread, and on a busy 2-core machine two
    # spinning threads slow each call down several times (conftest restores the thread count).
    torch.set_num_threads(1)


def _config(**overrides) -> UNetConfig:
    base = dict(
        image_size=16,
        model_channels=32,
        num_res_blocks=1,
        channel_mult=(1, 1),
        num_label_channels=4,
        attention_resolutions=(2,),
        num_head_channels=16,
        spade_hidden=16,
    )
    return UNetConfig(**base | overrides)


def _randomized(model: SDMUNet) -> SDMUNet:
    # Zero-initialised output convs would make every output 0; give all weights some value.
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return model.eval()


def _map(batch: int, height: int, width: int, channels: int = 4) -> torch.Tensor:
    labels = torch.randint(0, channels, (batch, height, width))
    return torch.nn.functional.one_hot(labels, channels).permute(0, 3, 1, 2).float()


@pytest.fixture(scope="module")
def model():
    return _randomized(SDMUNet(_config()))


def test_cache_matches_uncached_path(model):
    x, t, y = torch.randn(3, 3, 16, 32), torch.tensor([0, 400, 999]), _map(3, 16, 32)
    with torch.no_grad():
        reference = model(x, t, y)
        cache = model.precompute_condition(y)
        cached = model(x, t, cache=cache)
    assert reference.abs().max() > 0.1
    assert (cached - reference).abs().max().item() <= 1e-6
    assert cache.batch_size == 3 and cache.image_hw == (16, 32)
    assert set(cache.modulations) == {name for name, _ in model.spade_sites}
    # 2 middle + 4 decoder SDMResBlocks + 1 up block, two SPADE layers each.
    assert len(cache.modulations) == 2 * (2 + 4 + 1)


def test_cache_shapes_follow_the_feature_resolution(model):
    cache = model.precompute_condition(_map(1, 16, 32))
    for name, downsample in model.spade_sites:
        mod = cache.modulations[name]
        assert mod.scale.shape[-2:] == (16 // downsample, 32 // downsample), name
        assert mod.scale.shape == mod.shift.shape
    assert dict(model.spade_sites)["output_blocks.1.2.out_norm"] == 1  # after the up block
    assert dict(model.spade_sites)["output_blocks.1.2.in_norm"] == 2


def test_null_condition_cache_broadcasts_over_the_batch(model):
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 700])
    zeros = torch.zeros(2, 4, 16, 16)
    with torch.no_grad():
        reference = model(x, t, zeros)
        full = model(x, t, cache=model.precompute_condition(zeros))
        single = model(x, t, cache=model.precompute_condition(zeros[:1]))
    assert (full - reference).abs().max().item() <= 1e-6
    # Convolution kernels may sum in another order for batch 1: equal to float32 rounding.
    assert (single - reference).abs().max().item() <= 1e-5


def test_concatenated_caches_serve_a_doubled_batch(model):
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([5, 500]), _map(2, 16, 16)
    with torch.no_grad():
        cond = model(x, t, y)
        null = model(x, t, torch.zeros_like(y))
        joint = ConditionCache.cat(
            [model.precompute_condition(y), model.precompute_condition(torch.zeros_like(y))]
        )
        both = model(torch.cat([x, x]), torch.cat([t, t]), cache=joint)
    assert (both[:2] - cond).abs().max().item() <= 1e-5
    assert (both[2:] - null).abs().max().item() <= 1e-5


def test_superres_cache_holds_the_upsampled_image():
    model = _randomized(SDMUNet(_config(in_channels=6, super_res=True)))
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([3, 300]), _map(2, 16, 16)
    low = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        reference = model(x, t, y, low_res=low)
        cache = model.precompute_condition(y, low_res=low)
        cached = model(x, t, cache=cache)
        null = model(x, t, cache=model.precompute_condition(torch.zeros_like(y), low))
        null_ref = model(x, t, torch.zeros_like(y), low)
    assert cache.low_res_upsampled is not None
    assert cache.low_res_upsampled.shape == (2, 3, 16, 16)
    assert (cached - reference).abs().max().item() <= 1e-6
    assert (null - null_ref).abs().max().item() <= 1e-6
    with pytest.raises(ValueError, match="low_res"):
        model(x, t, y)
    with pytest.raises(ValueError, match="low_res"):
        model.precompute_condition(y)


def test_gradients_flow_through_the_cache(model):
    y = _map(1, 16, 16)
    cache = model.precompute_condition(y)
    out = model(torch.randn(1, 3, 16, 16), torch.tensor([50]), cache=cache)
    out.square().mean().backward()
    spade = model.get_submodule("output_blocks.0.0.in_norm")
    assert spade.mlp_gamma.weight.grad is not None
    assert spade.mlp_gamma.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_call_validation(model):
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 2]), _map(2, 16, 16)
    cache = model.precompute_condition(y)
    with pytest.raises(ValueError, match="exactly one"):
        model(x, t, y, cache=cache)
    with pytest.raises(ValueError, match="exactly one"):
        model(x, t)
    with pytest.raises(ValueError, match="cache built"):
        model(torch.randn(2, 3, 16, 32), t, cache=cache)
    with pytest.raises(ValueError, match="cache batch"):
        model(torch.randn(4, 3, 16, 16), torch.zeros(4), cache=cache)
    with pytest.raises(ValueError, match="multiples"):
        model(torch.randn(2, 3, 15, 16), t, torch.zeros(2, 4, 15, 16))
    with pytest.raises(ValueError, match="channels"):
        model(x, t, torch.zeros(2, 5, 16, 16))
    with pytest.raises(ValueError, match="low_res"):
        model(x, t, y, low_res=torch.zeros(2, 3, 8, 8))


def test_scalar_timestep_and_rectangular_input(model):
    x, y = torch.randn(2, 3, 16, 48), _map(2, 16, 48)
    with torch.no_grad():
        scalar = model(x, 250, y)
        vector = model(x, torch.tensor([250, 250]), y)
    assert scalar.shape == (2, 6, 16, 48)
    assert torch.equal(scalar, vector)


def test_bf16_autocast_runs_close_to_float32(model):
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([100, 900]), _map(2, 16, 16)
    with torch.no_grad():
        reference = model(x, t, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cache = model.precompute_condition(y)
            low = model(x, t, cache=cache)
    assert low.dtype == torch.float32
    scale = reference.abs().max().item()
    assert (low - reference).abs().max().item() <= 0.05 * scale


def test_channels_last_model_gives_the_same_output(model):
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([100, 900]), _map(2, 16, 16)
    fast = _randomized(SDMUNet(model.config))
    fast.load_state_dict(model.state_dict())
    fast = fast.to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = model(x, t, y)
        out = fast(x, t, cache=fast.precompute_condition(y))
    assert (out - reference).abs().max().item() <= 1e-5
