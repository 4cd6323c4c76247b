"""Post-training quantisation of the receiver (semantic.quant): quantisers, backends,
calibration, accounting and the qgesco configuration. Tiny random networks only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from link.config import ConfigError, parse_scenario
from semantic.diffusion.receiver import DiffusionReceiver
from semantic.diffusion.unet import SDMUNet, UNetConfig
from semantic.quant.calibration import collect_statistics, trajectory_timesteps
from semantic.quant.layers import QuantLayer
from semantic.quant.model import (
    QuantConfig,
    bit_operations,
    precision_label,
    quantize_unet,
    weight_memory,
)
from semantic.quant.quantizer import ActivationQuant, fit_activation_range, quantize_weight

SIZE = (32, 64)
LABELS = 8


def _config() -> UNetConfig:
    return UNetConfig(image_size=32, model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                      attention_resolutions=(2,), num_head_channels=16,
                      num_label_channels=LABELS, spade_hidden=16)


def _maps(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, LABELS, (n, *SIZE), generator=gen)
    y = nn.functional.one_hot(labels, LABELS).permute(0, 3, 1, 2).float()
    return y + 0.1 * torch.randn(y.shape, generator=gen)


@pytest.fixture(scope="module")
def receiver() -> DiffusionReceiver:
    torch.manual_seed(0)
    return DiffusionReceiver(SDMUNet(_config()), steps=4, guidance_scale=1.5)


@pytest.fixture(scope="module")
def calibration(receiver):
    return collect_statistics(receiver, _maps(2), 3, torch.Generator().manual_seed(1))


def _forward(unet: nn.Module, seed: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, *SIZE, generator=gen)
    with torch.no_grad():
        cache = unet.precompute_condition(_maps(2, seed=seed))
        return unet(x, torch.tensor([700, 100]), cache=cache)


# ------------------------------------------------------------------------- quantisers
@pytest.mark.parametrize("bits", [8, 4])
def test_per_channel_weight_error_is_at_most_half_a_step(bits):
    w = torch.randn(16, 8, 3, 3) * torch.logspace(-3, 1, 16)[:, None, None, None]
    w[3] = 0.0
    q = quantize_weight(w, bits)
    qmax = 2 ** (bits - 1) - 1
    assert q.values.dtype == torch.int8 and q.scale.shape == (16,)
    assert int(q.values.abs().max()) == qmax
    err = (q.dequantize() - w).abs()
    assert torch.all(err <= q.scale[:, None, None, None] / 2 * (1 + 1e-6))
    assert torch.equal(q.dequantize()[3], torch.zeros(8, 3, 3))
    # Per-channel scales follow each channel's own range (a per-tensor step would not).
    amax = w.reshape(16, -1).abs().amax(1)
    assert torch.allclose(q.scale, torch.where(amax > 0, amax / qmax, torch.ones(16)))


def test_activation_range_contains_zero_and_mse_beats_minmax_on_outliers():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20000, generator=gen)
    x[:3] = torch.tensor([40.0, -35.0, 38.0])
    minmax = fit_activation_range(x, float(x.min()), float(x.max()), 8, "minmax")
    mse = fit_activation_range(x, float(x.min()), float(x.max()), 8, "mse")
    err = [float((q.fake(x) - x).pow(2).mean()) for q in (minmax, mse)]
    assert err[1] < err[0]
    positive = ActivationQuant.from_range(0.5, 2.0, 8)
    assert positive.zero_point == 0 and float(positive.fake(torch.zeros(1))) == 0.0
    rr = ActivationQuant.from_range(-1.0, 1.0, 8, reduce_range=True)
    assert rr.quant_max == 127


# ------------------------------------------------------------------------- calibration
def test_calibration_collects_every_layer_at_the_chosen_timesteps_in_both_passes(
        receiver, calibration):
    chosen = trajectory_timesteps(receiver, 3)
    chain = receiver.sampler.schedule.timestep_map.tolist()
    assert calibration.timesteps == chosen and len(chosen) == 3
    assert chosen[0] == max(chain) and chosen[-1] == min(chain)
    layers = {n for n, m in receiver.unet.named_modules()
              if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)}
    assert set(calibration.inputs) == layers
    first_conv = calibration.inputs["input_blocks.0.0"]
    # One batch: 3 recorded steps x 2 guidance passes (conditional and null map).
    assert first_conv.timesteps == set(chosen) and first_conv.calls == 3 * 2
    spade = calibration.inputs["middle_block.0.in_norm.mlp_shared.0"]
    assert spade.timesteps == {-1} and spade.calls == 2
    assert spade.min == 0.0 or spade.min < 0  # null-map pass recorded (all zeros)
    assert first_conv.values().numel() > 0 and first_conv.min < first_conv.max


# ------------------------------------------------------------------------- backends
def test_quantised_output_stays_close_to_float32(receiver, calibration):
    ref = _forward(receiver.unet)
    for cfg, bound in ((QuantConfig("weight_only", 8, None), 0.02),
                       (QuantConfig("fake_quant", 8, 8), 0.15),
                       (QuantConfig("int8"), 0.15)):
        out = _forward(quantize_unet(receiver.unet, cfg, calibration))
        rel = float((out - ref).norm() / ref.norm())
        assert rel < bound, (cfg.backend, rel)


def test_int8_kernels_match_fake_quant(receiver, calibration):
    fake = quantize_unet(receiver.unet, QuantConfig("fake_quant", 8, 8, reduce_range=True),
                         calibration)
    real = quantize_unet(receiver.unet, QuantConfig("int8"), calibration)
    real_layers = {n: m for n, m in real.named_modules() if isinstance(m, QuantLayer)}
    assert real_layers and all(m.backend == "int8" for m in real_layers.values())
    inputs = {}

    def record(name):
        def hook(_module, args, _out):
            inputs.setdefault(name, args[0].detach().clone())
        return hook

    handles = [m.register_forward_hook(record(n))
               for n, m in fake.named_modules() if isinstance(m, QuantLayer)]
    a, b, ref = _forward(fake), _forward(real), _forward(receiver.unet)
    for h in handles:
        h.remove()
    assert set(inputs) == set(real_layers)
    fake_layers = dict(fake.named_modules())
    for name, x in inputs.items():
        step = real_layers[name].output_quant.scale
        with torch.no_grad():
            diff = (fake_layers[name](x) - real_layers[name](x)).abs()
        # Same input: the int8 kernel and the simulation agree to one output level, and
        # disagree (rounding of the requantisation) on a tiny fraction of the outputs.
        assert float(diff.max()) <= 1.001 * step, name
        assert float((diff > step / 2).float().mean()) < 1e-3, name
    # End to end, the rounding differences propagate like quantisation noise but stay
    # no larger than the simulated quantisation error itself.
    assert float((a - b).norm()) < float((a - ref).norm())


def test_int8_layer_really_uses_quantized_kernels():
    conv = nn.Conv2d(16, 32, 3, padding=1)
    q = QuantLayer(conv, "int8", 8, ActivationQuant.from_range(-3, 3, 8, True),
                   ActivationQuant.from_range(-5, 5, 8))
    assert isinstance(q._packed, torch.ScriptObject)  # fbgemm/x86 prepacked int8 weight
    x = torch.randn(2, 16, 8, 8)
    out = q(x)
    assert out.dtype == torch.float32 and out.shape == (2, 32, 8, 8)
    # The output lies on the output quantiser's grid: the kernel requantised it to u8.
    levels = out / q.output_quant.scale + q.output_quant.zero_point
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    assert not any(p.dtype == torch.float32 and p.ndim == 4 for p in q.buffers())


def test_same_seed_same_calibration_and_quantised_output(receiver, calibration):
    again = collect_statistics(receiver, _maps(2), 3, torch.Generator().manual_seed(1))
    for name, stats in calibration.inputs.items():
        other = again.inputs[name]
        assert (stats.min, stats.max, stats.calls) == (other.min, other.max, other.calls)
        assert torch.equal(stats.values(), other.values())
    a = quantize_unet(receiver.unet, QuantConfig("int8"), calibration)
    b = quantize_unet(receiver.unet, QuantConfig("int8"), again)
    assert torch.equal(_forward(a), _forward(b)) and torch.equal(_forward(a), _forward(a))


# ------------------------------------------------------------------------- accounting
def test_weight_memory_is_counted_exactly_and_meets_the_goal():
    torch.manual_seed(0)
    unet = SDMUNet(UNetConfig.small_cpu_map((64, 128)))
    qunet = quantize_unet(unet, QuantConfig("weight_only", 8, None))
    float_bytes = 4 * sum(p.numel() for p in unet.parameters())
    assert weight_memory(unet).total_bytes == float_bytes
    expected = 0
    for m in unet.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear):
            expected += m.weight.numel() + 4 * m.weight.shape[0] + 4 * m.bias.numel()
        elif isinstance(m, nn.GroupNorm) and m.affine:
            expected += 4 * (m.weight.numel() + m.bias.numel())
    report = weight_memory(qunet)
    assert report.total_bytes == expected
    assert report.total_bytes / float_bytes <= 0.26


def test_bit_operations_weight_macs_by_operand_bits(receiver, calibration):
    h, w = SIZE
    fp = bit_operations(receiver.unet, None, h, w, steps=4, guided=True)
    assert fp.bops == 32 * 32 * fp.macs and fp.float_macs == fp.macs
    wo = bit_operations(receiver.unet, quantize_unet(receiver.unet,
                                                     QuantConfig("weight_only", 8, None)),
                        h, w, steps=4, guided=True)
    assert wo.bops == fp.bops  # dequantised weights: float32 arithmetic
    q = bit_operations(receiver.unet, quantize_unet(receiver.unet, QuantConfig("int8"),
                                                    calibration), h, w, steps=4, guided=True)
    assert q.macs == fp.macs and 0 < q.float_macs < fp.macs  # attention products stay float
    assert q.bops == pytest.approx(64 * (q.macs - q.float_macs) + 1024 * q.float_macs)


def test_labels_say_simulated_for_fake_quant():
    assert precision_label(QuantConfig("fake_quant", 8, 8)) == "W8A8-simulated"
    assert precision_label(QuantConfig("int8")) == "W8A8-reduce_range-int8"
    assert precision_label(QuantConfig("weight_only", 8, None)) == "W8A32-weight_only"
    with pytest.raises(ValueError, match="int8"):
        QuantConfig("int8", 8, None)


# ------------------------------------------------------------------------- configuration
def _scenario(**qgesco):
    return parse_scenario({"name": "q", "kind": "semantic", "schemes": ["gesco", "qgesco"],
                           "sweep": {"snr_db": [10]}, "qgesco": qgesco})


def test_qgesco_section_validates_with_named_keys():
    assert _scenario().qgesco.backend == "int8"
    assert _scenario(backend="weight_only", activation_bits=None).qgesco.activation_bits is None
    with pytest.raises(ConfigError, match=r"qgesco\.activation_bits"):
        _scenario(backend="int8", activation_bits=None)
    with pytest.raises(ConfigError, match=r"qgesco\.weight_bits"):
        _scenario(backend="weight_only", weight_bits=4, activation_bits=None)
    with pytest.raises(ConfigError, match=r"qgesco\.backend"):
        _scenario(backend="int4")


def test_calibration_maps_cross_the_channel_at_each_snr_round_robin():
    import numpy as np

    from semantic.data.synthetic import SyntheticStreetScenes
    from semantic.quant.calibration import calibration_maps
    from semantic.schemes.base import SourceBatch
    from semantic.schemes.gesco import GescoConfig, GescoScheme

    b = SyntheticStreetScenes(size=SIZE, seed=0).batch([0, 1, 2, 3])
    source = SourceBatch(b.images, b.labels, b.instances, np.asarray(b.indices))
    scheme = GescoScheme(GescoConfig(), receiver=None, compat=True)
    clean = scheme.corrupt_compat(scheme.transmit(source), 100, torch.Generator())
    maps = calibration_maps(scheme, source, [100, 1], torch.Generator().manual_seed(0))
    assert torch.equal(maps[0::2], clean[0::2])  # label 100: no noise
    assert not torch.equal(maps[1::2], clean[1::2])  # label 1: sigma 0.9


def test_builder_rejects_non_label_calibration_snrs_on_gesco_compat():
    from semantic.quant.scheme import build_qgesco

    scenario = parse_scenario({
        "name": "q", "kind": "semantic", "schemes": ["qgesco"], "sweep": {"snr_db": [10]},
        "phy": {"channel": {"type": "gesco_compat"}},
        "qgesco": {"calibration_snr_db": [3.0]}})
    with pytest.raises(ConfigError, match=r"qgesco\.calibration_snr_db"):
        build_qgesco(scenario, "cpu")
