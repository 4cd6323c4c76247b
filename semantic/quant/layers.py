"""Quantised drop-in replacements of ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.Linear``.

One module, :class:`QuantLayer`, stores a layer's weight as int8 levels with one float32 scale
per output channel (:class:`~semantic.quant.quantizer.QuantizedWeight`) and a float32 bias; the
float weight is not kept. Its ``backend`` decides how it computes (``BACKENDS``):

* ``int8``: really in reduced precision, with PyTorch's quantized CPU kernels (x86/fbgemm):
  ``quantize_per_tensor`` of the input with the calibrated input quantiser, the int8 conv or
  linear kernel (u8 activations x s8 per-channel weights, int32 accumulation, requantised to u8
  with the calibrated output quantiser), then ``dequantize`` back to float32. CPU only.
* ``weight_only``: the int8 levels are dequantised on every call and the layer computes in
  float32 (memory saved, arithmetic unchanged).
* ``fake_quant``: simulated quantisation in float32: fake-quantised input, dequantised weight,
  fake-quantised output, the same arithmetic the ``int8`` kernels perform up to rounding of
  the requantisation (results computed this way are labelled *simulated*).

The ``weight`` attribute (a property) is the dequantised float32 weight, so code that reads a
layer's ``weight.dtype`` (the UNet picks its compute dtype that way) keeps working.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semantic.quant.quantizer import ActivationQuant, QuantizedWeight, quantize_weight

BACKENDS: tuple[str, ...] = ("int8", "weight_only", "fake_quant")
QUANTISABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)

__all__ = ["BACKENDS", "QUANTISABLE", "QuantLayer"]


def _int8_engine() -> None:
    """Select the x86 quantized engine (fbgemm as fallback) once; raise if neither exists."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            if torch.backends.quantized.engine != engine:
                torch.backends.quantized.engine = engine
            return
    raise RuntimeError(f"no x86/fbgemm quantized engine in this PyTorch build ({engines})")


class QuantLayer(nn.Module):
    """A quantised conv/linear layer.

    Args:
        layer: the float ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Linear`` to replace (read once;
            its float weight is not kept).
        backend: one of ``BACKENDS``.
        weight_bits: 2..8 (``int8`` and ``weight_only`` need 8).
        input_quant, output_quant: activation quantisers of the layer's input and output
            (``None`` = float); ``int8`` needs both, ``weight_only`` takes neither.

    Call: same input and output shapes and dtype (float32) as the replaced layer.

    Example:
        >>> conv = nn.Conv2d(4, 8, 3, padding=1)
        >>> q = QuantLayer(conv, "weight_only")
        >>> x = torch.randn(2, 4, 6, 6)
        >>> bool((q(x) - conv(x)).abs().max() < 0.05)
        True
    """

    def __init__(self, layer: nn.Module, backend: str, weight_bits: int = 8,
                 input_quant: ActivationQuant | None = None,
                 output_quant: ActivationQuant | None = None):
        super().__init__()
        if not isinstance(layer, QUANTISABLE):
            raise TypeError(f"cannot quantise {type(layer).__name__}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend in ("int8", "weight_only") and weight_bits != 8:
            raise ValueError(f"backend {backend!r} stores 8-bit weights; got weight_bits "
                             f"{weight_bits}")
        if backend == "int8" and (input_quant is None or output_quant is None):
            raise ValueError("the int8 backend needs calibrated input and output quantisers")
        if backend == "weight_only" and (input_quant or output_quant):
            raise ValueError("the weight_only backend takes no activation quantisers")
        self.backend = backend
        self.kind = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Linear: "linear"}[type(layer)]
        self.input_quant = input_quant
        self.output_quant = output_quant
        if self.kind != "linear":
            self.stride, self.padding = layer.stride, layer.padding
            self.dilation, self.groups = layer.dilation, layer.groups
            if isinstance(self.padding, str) or layer.padding_mode != "zeros":
                raise ValueError("only explicit zero padding is supported")
        qweight = quantize_weight(layer.weight, weight_bits)
        self.weight_bits = weight_bits
        self.register_buffer("weight_int8", qweight.values)
        self.register_buffer("weight_scale", qweight.scale)
        bias = None if layer.bias is None else layer.bias.detach().float().clone()
        self.register_buffer("bias", bias)
        self._packed = self._pack() if backend == "int8" else None

    # ----------------------------------------------------------------- storage
    @property
    def quantized_weight(self) -> QuantizedWeight:
        return QuantizedWeight(self.weight_int8, self.weight_scale, self.weight_bits)

    @property
    def weight(self) -> Tensor:
        """float32 dequantised weight (shape of the replaced layer's weight)."""
        return self.quantized_weight.dequantize().to(self.weight_scale.device)

    @property
    def storage_bytes(self) -> int:
        """Weight levels at ``weight_bits`` + per-channel scales + float32 bias + the two
        activation quantisers (float32 scale + int32 zero point each)."""
        bias = 0 if self.bias is None else 4 * self.bias.numel()
        acts = 8 * ((self.input_quant is not None) + (self.output_quant is not None))
        return self.quantized_weight.storage_bytes + bias + acts

    @property
    def precision(self) -> str:
        """``W8A8``-style label of what this layer's operands are."""
        act = self.input_quant.bits if self.input_quant is not None else 32
        return f"W{self.weight_bits}A{act}"

    def _pack(self):
        _int8_engine()
        values = self.weight_int8.contiguous()
        scale = self.weight_scale.double()
        zeros = torch.zeros(values.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # PyTorch 2.13 marks its quantized-tensor constructors deprecated; they still work.
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch._make_per_channel_quantized_tensor(values, scale, zeros, 0)
        ops = torch.ops.quantized
        if self.kind == "linear":
            return ops.linear_prepack(qweight, self.bias)
        if self.kind == "conv1d":
            return ops.conv1d_prepack(qweight, self.bias, list(self.stride), list(self.padding),
                                      list(self.dilation), self.groups)
        return ops.conv2d_prepack(qweight, self.bias, list(self.stride), list(self.padding),
                                  list(self.dilation), self.groups)

    # ----------------------------------------------------------------- compute
    def _float_op(self, x: Tensor, weight: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        weight = weight.to(x.dtype)
        if self.kind == "linear":
            return F.linear(x, weight, bias)
        conv = F.conv1d if self.kind == "conv1d" else F.conv2d
        return conv(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _int8_op(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            raise RuntimeError("the int8 backend runs on the CPU only")
        qin, qout = self.input_quant, self.output_quant
        assert qin is not None and qout is not None
        if torch.backends.quantized.engine not in ("x86", "fbgemm"):
            _int8_engine()
        ops = torch.ops.quantized
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            qx = torch.quantize_per_tensor(x.float(), qin.scale, qin.zero_point, torch.quint8)
            if qin.quant_max < 255:
                # quint8 saturates at 255; a reduced range must stop at its own top level so
                # that the kernels' int16 pair sums cannot saturate (clamped on the u8 levels).
                qx = torch.clamp(qx, max=(qin.quant_max - qin.zero_point) * qin.scale)
            if self.kind == "linear":
                flat = qx.reshape(-1, qx.shape[-1])
                qy = ops.linear(flat, self._packed, qout.scale, qout.zero_point)
                qy = qy.reshape(*x.shape[:-1], qy.shape[-1])
            elif self.kind == "conv1d":
                qy = ops.conv1d(qx, self._packed, qout.scale, qout.zero_point)
            else:
                qy = ops.conv2d(qx, self._packed, qout.scale, qout.zero_point)
            return qy.dequantize()

    def forward(self, x: Tensor) -> Tensor:
        if self.backend == "int8":
            return self._int8_op(x).to(x.dtype)
        if self.input_quant is not None:
            x = self.input_quant.fake(x)
        out = self._float_op(x, self.weight)
        if self.output_quant is not None:
            out = self.output_quant.fake(out)
        return out

    def extra_repr(self) -> str:
        shape = tuple(self.weight_int8.shape)
        return f"{self.kind}, weight={shape}, backend={self.backend}, {self.precision}"
