"""Post-training quantisation of the diffusion receiver (the ``qgesco`` scheme).

Modules: :mod:`~semantic.quant.quantizer` (uniform quantisers and range search),
:mod:`~semantic.quant.layers` (the quantised conv/linear layer and its backends),
:mod:`~semantic.quant.calibration` (noise-aware calibration along the sampling trajectory),
:mod:`~semantic.quant.model` (quantising a UNet/receiver, memory and bit-operation accounting),
:mod:`~semantic.quant.scheme` (the ``qgesco`` scheme and its builder). See ``docs/qgesco.md``.
"""
