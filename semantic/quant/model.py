"""Post-training quantisation of an SDM UNet and of the diffusion receiver built on it.

:func:`quantize_unet` copies a float UNet and replaces every ``Conv1d``/``Conv2d``/``Linear``
(SPADE convolutions, attention qkv/proj_out, time-embedding MLP and per-block time projections,
input and output convolutions) by a :class:`~semantic.quant.layers.QuantLayer`. Everything
else (GroupNorm affine parameters, the attention matrix products, element-wise ops) stays
float32. :func:`quantize_receiver` plugs the quantised UNet into a copy of a
``DiffusionReceiver`` with the same sampler, steps and guidance.

Accounting helpers, all measured on the models themselves:

* :func:`weight_memory`: bytes of every stored parameter (quantised levels at their bit width,
  per-channel scales, biases, activation quantisers, and the float parameters that stay).
* :func:`bit_operations`: MACs of one full image generation (``semantic.diffusion.flops``:
  ``steps`` x guidance passes of the cached step + the condition caches) weighted by the bit
  widths of the two operands each multiplier really sees (BOPs = MACs x b_w x b_a; float32
  operands count 32 bits, so ``weight_only``, which multiplies dequantised float weights, keeps
  the float32 cost).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from semantic.diffusion.guidance import GuidedDenoiser
from semantic.quant.calibration import CalibrationData
from semantic.quant.layers import BACKENDS, QUANTISABLE, QuantLayer
from semantic.quant.quantizer import RANGE_METHODS, fit_activation_range

__all__ = [
    "BitOperations",
    "MemoryReport",
    "QuantConfig",
    "bit_operations",
    "precision_label",
    "quantize_receiver",
    "quantize_unet",
    "weight_memory",
]


@dataclass(frozen=True)
class QuantConfig:
    """How to quantise.

    Attributes:
        backend: one of ``BACKENDS`` (see :mod:`semantic.quant.layers`).
        weight_bits: 8 for ``int8``/``weight_only``; 2..8 for ``fake_quant``.
        activation_bits: None (float activations) or 2..8; ``int8`` needs 8, ``weight_only``
            None.
        activation_range: one of ``RANGE_METHODS``. percentile: for ``percentile``.
        reduce_range: activation inputs use ``2^(bits-1)`` levels (needed by the x86 int8
            kernels on CPUs without VNNI; ``None`` = on for ``int8``, off otherwise).
    """

    backend: str = "int8"
    weight_bits: int = 8
    activation_bits: int | None = 8
    activation_range: str = "mse"
    percentile: float = 99.99
    reduce_range: bool | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.activation_range not in RANGE_METHODS:
            raise ValueError(f"activation_range must be one of {RANGE_METHODS}")
        if self.backend in ("int8", "weight_only") and self.weight_bits != 8:
            raise ValueError(f"backend {self.backend} needs weight_bits 8")
        if self.backend == "int8" and self.activation_bits != 8:
            raise ValueError("backend int8 needs activation_bits 8")
        if self.backend == "weight_only" and self.activation_bits is not None:
            raise ValueError("backend weight_only needs activation_bits null")

    @property
    def uses_reduce_range(self) -> bool:
        return self.backend == "int8" if self.reduce_range is None else bool(self.reduce_range)

    @property
    def needs_calibration(self) -> bool:
        return self.activation_bits is not None


def precision_label(config: QuantConfig) -> str:
    """The ``receiver_precision`` label of results, e.g. ``W8A8-int8``, ``W8A8-simulated``.

    Example:
        >>> precision_label(QuantConfig("fake_quant", 8, None))
        'W8A32-simulated'
    """
    act = 32 if config.activation_bits is None else config.activation_bits
    rr = "-reduce_range" if config.activation_bits is not None and config.uses_reduce_range else ""
    kind = {"int8": "int8", "weight_only": "weight_only", "fake_quant": "simulated"}
    return f"W{config.weight_bits}A{act}{rr}-{kind[config.backend]}"


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def quantize_unet(unet: nn.Module, config: QuantConfig,
                  calibration: CalibrationData | None = None) -> nn.Module:
    """A quantised copy of ``unet`` (the input is not modified).

    Args:
        unet: a float ``SDMUNet`` (any module works: its conv/linear layers are replaced).
        config: the quantisation recipe.
        calibration: statistics from :func:`~semantic.quant.calibration.collect_statistics`
            on this float ``unet``; required when ``config.activation_bits`` is set.
    Returns:
        the quantised copy (eval mode, CPU). A layer that never ran during calibration (e.g.
        GESCO's unused encoder ``spade_norm``) is quantised weight-only in float backends and
        cannot run in the ``int8`` backend (it is never called).
    """
    if config.needs_calibration and calibration is None:
        raise ValueError("activation quantisation needs calibration statistics")
    model = copy.deepcopy(unet).cpu().eval()
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, QUANTISABLE)]
    for name, layer in layers:
        qin = qout = None
        backend = config.backend
        if config.needs_calibration:
            assert calibration is not None and config.activation_bits is not None
            stats_in = calibration.inputs.get(name)
            stats_out = calibration.outputs.get(name)
            if stats_in is None or stats_out is None:
                backend = "weight_only" if config.backend == "int8" else config.backend
            else:
                bits = config.activation_bits
                qin = fit_activation_range(stats_in.values(), stats_in.min, stats_in.max, bits,
                                           config.activation_range, config.percentile,
                                           reduce_range=config.uses_reduce_range)
                # Outputs are requantised to full-range u8 by the kernel and then dequantised:
                # no int16 product follows, so no reduced range.
                qout = fit_activation_range(stats_out.values(), stats_out.min, stats_out.max,
                                            bits, config.activation_range, config.percentile)
        _set_submodule(model, name, QuantLayer(layer, backend, config.weight_bits, qin, qout))
    return model


def quantize_receiver(receiver, config: QuantConfig,
                      calibration: CalibrationData | None = None):
    """A copy of a ``DiffusionReceiver`` whose UNet is quantised (sampler, steps and guidance
    unchanged; the ``int8`` backend runs on the CPU; no bf16/fp16 autocast on a GPU)."""
    qunet = quantize_unet(receiver.unet, config, calibration)
    device = "cpu" if config.backend == "int8" else receiver.device
    out = copy.copy(receiver)
    out.unet = qunet.to(device, memory_format=torch.channels_last).eval()
    out.device = device
    den = receiver.denoiser
    # No autocast: the quantised layers define their own arithmetic (float32 around them).
    out.denoiser = GuidedDenoiser(out.unet, den.guidance_scale, batched=den.batched,
                                  use_cache=den.use_cache, autocast_dtype=None)
    return out


@dataclass(frozen=True)
class MemoryReport:
    """Stored bytes of a model's parameters.

    Attributes:
        total_bytes: everything the model stores (float tensors at 4 bytes per value).
        quantised_bytes: the part held by quantised layers (levels, scales, bias, quantisers).
        float_bytes: parameters left in float32 (normalisation affine parameters).
        num_quantised_layers: layers replaced.
    """

    total_bytes: int
    quantised_bytes: int
    float_bytes: int
    num_quantised_layers: int


def weight_memory(model: nn.Module) -> MemoryReport:
    """Count the stored bytes of ``model`` (float parameters and buffers counted at 4 bytes).

    Example:
        >>> m = nn.Sequential(nn.Linear(64, 64))
        >>> weight_memory(m).total_bytes == 4 * (64 * 64 + 64)
        True
    """
    quant = [m for m in model.modules() if isinstance(m, QuantLayer)]
    quant_bytes = sum(m.storage_bytes for m in quant)
    inside = {id(t) for m in quant for t in m.buffers()}
    float_bytes = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in inside:
            float_bytes += 4 * t.numel()
    return MemoryReport(quant_bytes + float_bytes, quant_bytes, float_bytes, len(quant))


@dataclass(frozen=True)
class BitOperations:
    """Arithmetic cost of one image generation.

    Attributes:
        macs: multiply-accumulates per image (all sampling steps, guidance passes, caches).
        bops: bit operations per image, ``sum(MACs x b_w x b_a)``.
        float_macs: MACs still computed with float32 operands (e.g. attention products).
    """

    macs: float
    bops: float
    float_macs: float


def bit_operations(float_unet: nn.Module, quant_unet: nn.Module | None, height: int, width: int,
                   steps: int, guided: bool) -> BitOperations:
    """MACs and BOPs of generating one image at ``height x width``.

    Args:
        float_unet: the float ``SDMUNet`` (MACs are counted on it with forward hooks).
        quant_unet: its quantised copy (bit widths read from its layers), or None for float32.
        steps: sampling steps. guided: two passes per step (classifier-free guidance).
    """
    from semantic.diffusion.flops import count_condition_macs, count_forward_macs

    cfg = float_unet.config
    device = next(float_unet.parameters()).device
    x = torch.zeros(1, cfg.image_channels, height, width, device=device)
    y = torch.zeros(1, cfg.num_label_channels, height, width, device=device)
    low = torch.zeros(1, cfg.image_channels, height // 2, width // 2, device=device) \
        if cfg.super_res else None
    passes = 2 if guided else 1
    cache = float_unet.precompute_condition(y, low)
    step = count_forward_macs(float_unet, x, torch.tensor([500], device=device), cache=cache)
    cond = count_condition_macs(float_unet, y, low)
    per_module: dict[str, float] = {}
    for name, macs in step.by_module.items():
        per_module[name] = per_module.get(name, 0.0) + steps * passes * macs
    for name, macs in cond.by_module.items():
        per_module[name] = per_module.get(name, 0.0) + passes * macs
    bits: dict[str, tuple[int, int]] = {}
    if quant_unet is not None:
        for name, module in quant_unet.named_modules():
            if isinstance(module, QuantLayer):
                if module.backend == "weight_only":
                    bits[name] = (32, 32)
                else:
                    act = module.input_quant.bits if module.input_quant is not None else 32
                    bits[name] = (module.weight_bits, act)
    bops = float_macs = 0.0
    for name, macs in per_module.items():
        w, a = bits.get(name, (32, 32))
        bops += macs * w * a
        if (w, a) == (32, 32):
            float_macs += macs
    return BitOperations(sum(per_module.values()), bops, float_macs)
