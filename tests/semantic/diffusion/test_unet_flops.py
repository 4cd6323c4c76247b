"""MAC counter: hand counts for single layers, FlopCounterMode cross-check, cache split."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from semantic.diffusion.flops import (
    count_condition_macs,
    count_forward_macs,
    count_module_macs,
    estimate_macs,
    time_forward,
)
from semantic.diffusion.nn_blocks import AttentionBlock
from semantic.diffusion.unet import SDMUNet, UNetConfig


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks gain nothing from a second OpenMP thread, and on a busy 2-core machine two
    # spinning threads slow each call down several times (conftest restores the thread count).
    torch.set_num_threads(1)


def _tiny() -> UNetConfig:
    return UNetConfig(
        image_size=16,
        model_channels=32,
        num_res_blocks=1,
        channel_mult=(1, 2),
        num_label_channels=5,
        attention_resolutions=(2,),
        num_head_channels=16,
        spade_hidden=24,
    )


def test_single_conv_hand_count():
    conv = nn.Conv2d(6, 10, 3, padding=1)
    count = count_module_macs(conv, torch.zeros(3, 6, 7, 9))
    assert count.total == 3 * 10 * 7 * 9 * (6 * 3 * 3)
    assert count.by_category["conv"] == count.total
    strided = count_module_macs(nn.Conv2d(4, 8, 1, stride=2), torch.zeros(1, 4, 8, 8))
    assert strided.total == 8 * 4 * 4 * 4


def test_attention_hand_count():
    channels, tokens, batch, head_ch = 64, 6 * 10, 2, 16
    block = AttentionBlock(channels, num_head_channels=head_ch)
    count = count_module_macs(block, torch.zeros(batch, channels, 6, 10))
    qkv = batch * tokens * 3 * channels * channels
    proj = batch * tokens * channels * channels
    # Per head: QKᵀ is T×T dots of length d, AV is T×d sums of length T.
    matmul = batch * (channels // head_ch) * 2 * tokens * tokens * head_ch
    assert count.by_category["attention_proj"] == qkv + proj
    assert count.by_category["attention_matmul"] == matmul
    assert count.total == qkv + proj + matmul


@pytest.mark.parametrize("use_cache", [False, True])
def test_total_equals_half_of_flop_counter_mode(use_cache):
    model = SDMUNet(_tiny()).eval()
    x, t = torch.randn(2, 3, 16, 32), torch.tensor([1, 500])
    y = torch.zeros(2, 5, 16, 32)
    cache = model.precompute_condition(y) if use_cache else None
    args = (x, t, None if use_cache else y)
    count = count_forward_macs(model, *args, cache=cache)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args, cache=cache)
    assert 2 * count.total == counter.get_total_flops()
    assert count.batch_size == 2 and count.per_image == count.total / 2


def test_cache_moves_exactly_the_spade_convs_out_of_the_step():
    model = SDMUNet(_tiny()).eval()
    x, t, y = torch.randn(1, 3, 16, 16), torch.tensor([9]), torch.rand(1, 5, 16, 16)
    full = count_forward_macs(model, x, t, y)
    cache = model.precompute_condition(y)
    cached = count_forward_macs(model, x, t, cache=cache)
    condition = count_condition_macs(model, y)
    assert full.by_category["spade_conv"] > 0
    assert cached.by_category["spade_conv"] == 0
    assert condition.total == condition.by_category["spade_conv"] == full.by_category["spade_conv"]
    assert full.total == cached.total + condition.total
    assert all(".in_norm." in k or ".out_norm." in k for k in condition.by_module)
    # One SPADE at full resolution by hand: shared L→hidden conv + γ and β convs hidden→C.
    name = "output_blocks.3.0.out_norm"
    spade_macs = sum(v for k, v in condition.by_module.items() if k.startswith(name + "."))
    assert spade_macs == 16 * 16 * 9 * (5 * 24 + 2 * 24 * 32)


def test_meta_estimate_equals_a_real_count():
    config = _tiny()
    real = count_forward_macs(
        SDMUNet(config), torch.zeros(1, 3, 16, 32), torch.tensor([0]), torch.zeros(1, 5, 16, 32)
    )
    meta = estimate_macs(config, 16, 32, use_cache=False)
    assert meta.total == real.total and meta.by_category == real.by_category


@pytest.mark.parametrize(
    ("factory", "size", "max_cached_gmac"),
    [
        (UNetConfig.small_cpu_map, (64, 128), 0.6),
        (UNetConfig.small_cpu_superres, (64, 128), 0.6),
        (UNetConfig.small_cpu_map, (128, 256), 1.3),
    ],
)
def test_small_receivers_fit_the_compute_budget(factory, size, max_cached_gmac):
    config = factory(size)
    cached = estimate_macs(config, *size, use_cache=True)
    full = estimate_macs(config, *size, use_cache=False)
    assert cached.by_category["spade_conv"] == 0
    assert 0.2 < cached.gmac_per_image <= max_cached_gmac
    assert full.gmac_per_image <= 4.0 * max_cached_gmac
    assert max(config.attention_resolutions) == config.size_multiple  # coarsest level only
    assert len(config.attention_resolutions) == 1


def test_time_forward_reports_positive_times_and_restores_threads():
    before = torch.get_num_threads()
    timing = time_forward(_tiny(), 16, 16, batch_size=1, threads=1, repeats=1)
    assert timing.threads == 1 and torch.get_num_threads() == before
    assert min(timing.cached_ms, timing.uncached_ms, timing.condition_ms) > 0
    assert timing.cached_cpu_ms >= 0
