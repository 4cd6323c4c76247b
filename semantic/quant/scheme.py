"""``qgesco``: GESCO with a post-training-quantised receiver (after Q-GESCO, arXiv 2410.02491).

The transmitter, the channel and the map conditioning are GESCO's (a ``GescoScheme`` is
composed, not subclassed); only the receiver's UNet differs: int8 per-channel weights and,
optionally, 8-bit activations calibrated on the project's own receiver runs (train-split maps
through the same channel at a few SNRs, several timesteps, both guidance passes; see
:mod:`semantic.quant.calibration`). ``receiver_precision`` says what ran, e.g. ``W8A8-int8``
(real int8 kernels) or ``W8A8-simulated`` (fake quantisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from semantic.quant.calibration import CalibrationData, calibration_maps, collect_statistics
from semantic.quant.model import (
    MemoryReport,
    QuantConfig,
    precision_label,
    quantize_receiver,
    weight_memory,
)
from semantic.schemes.base import Delivered, Reconstruction, SourceBatch, Transmission

#: Q-GESCO's calibration SNR labels (``--cali_snr`` set), used on the ``gesco_compat`` channel.
COMPAT_CALIBRATION_LABELS: tuple[float, ...] = (1.0, 10.0, 20.0, 100.0)
#: Default calibration SNRs per channel use on physical channels.
PHYSICAL_CALIBRATION_SNR_DB: tuple[float, ...] = (0.0, 10.0, 20.0)


@dataclass(frozen=True)
class QuantizationSummary:
    """What was quantised and how, for reports.

    Attributes:
        receiver_precision: label such as ``W8A8-int8`` or ``W8A8-simulated``.
        memory_ratio: quantised / float32 stored bytes of the UNet.
        memory: the quantised UNet's :class:`MemoryReport`. float_bytes: the float UNet's bytes.
        calibration_timesteps: model timesteps recorded (empty without activation quantisation).
        calibration_snr_db: SNR (or GESCO label) of each calibration map.
    """

    receiver_precision: str
    memory_ratio: float
    memory: MemoryReport
    float_bytes: int
    calibration_timesteps: tuple[int, ...]
    calibration_snr_db: tuple[float, ...]


class QGescoScheme:
    """GESCO's transmitter and conditioning with a quantised diffusion receiver.

    Args:
        gesco: a ``GescoScheme`` whose receiver is already quantised.
        summary: :class:`QuantizationSummary` of that receiver.
    """

    name = "qgesco"
    uses_generative_receiver = True

    def __init__(self, gesco, summary: QuantizationSummary):
        self.gesco = gesco
        self.summary = summary
        self.receiver_precision = summary.receiver_precision

    @property
    def receiver(self):
        return self.gesco.receiver

    def transmit(self, source: SourceBatch) -> Transmission:
        return self.gesco.transmit(source)

    def corrupt_compat(self, transmission: Transmission, snr_label: float,
                       generator: torch.Generator) -> torch.Tensor:
        return self.gesco.corrupt_compat(transmission, snr_label, generator)

    def condition(self, delivered: Delivered):
        return self.gesco.condition(delivered)

    def receive(self, delivered: Delivered, generator: torch.Generator,
                y: torch.Tensor | None = None) -> Reconstruction:
        return self.gesco.receive(delivered, generator, y=y)


def quantize_gesco(gesco, config: QuantConfig, calibration_source: SourceBatch | None = None,
                   snr_db: Sequence[float] = PHYSICAL_CALIBRATION_SNR_DB, link=None,
                   num_timesteps: int = 5, seed: int = 0) -> QGescoScheme:
    """Calibrate (if activations are quantised) and quantise a ``GescoScheme``'s receiver.

    Args:
        gesco: the float ``GescoScheme`` (left unchanged).
        config: quantisation recipe.
        calibration_source: train-split scenes for calibration (needed with activation bits).
        snr_db: calibration SNRs per channel use (``link`` given) or GESCO labels (``link``
            None, the ``gesco_compat`` corruption).
        link: the ``PhyLink`` whose channel the calibration maps cross (None: an AWGN link,
            or GESCO's published corruption when ``gesco.compat``).
        num_timesteps: chain steps recorded per sampling run.
        seed: seeds the calibration channel, chain and subsampling.
    Returns:
        :class:`QGescoScheme`.

    Example:
        >>> from semantic.diffusion.receiver import DiffusionReceiver
        >>> from semantic.diffusion.unet import SDMUNet, UNetConfig
        >>> from semantic.schemes.gesco import GescoConfig, GescoScheme
        >>> cfg = UNetConfig(image_size=32, model_channels=32, num_res_blocks=1,
        ...                  channel_mult=(1, 1), num_head_channels=16, num_label_channels=20,
        ...                  spade_hidden=16)
        >>> g = GescoScheme(GescoConfig(), DiffusionReceiver(SDMUNet(cfg), steps=2))
        >>> q = quantize_gesco(g, QuantConfig("weight_only", 8, None))
        >>> q.receiver_precision, round(q.summary.memory_ratio, 2)
        ('W8A32-weight_only', 0.26)
    """
    from semantic.schemes.gesco import GescoScheme

    receiver = gesco.receiver
    calibration: CalibrationData | None = None
    snrs: tuple[float, ...] = ()
    if config.needs_calibration:
        if calibration_source is None:
            raise ValueError("activation quantisation needs calibration scenes")
        snrs = tuple(float(s) for s in snr_db)
        if link is None and not gesco.compat:
            from phy.link import PhyLink
            from phy.specs import ChannelSpec, CodingSpec

            link = PhyLink("qpsk", CodingSpec(type="none", k=2), ChannelSpec(type="awgn"))
        gen = torch.Generator().manual_seed(seed)
        maps = calibration_maps(gesco, calibration_source, snrs, gen, link)
        calibration = collect_statistics(receiver, maps, num_timesteps,
                                         torch.Generator().manual_seed(seed + 1), seed=seed + 2)
        calibration.snr_db = tuple(snrs[i % len(snrs)] for i in range(len(calibration_source)))
    qreceiver = quantize_receiver(receiver, config, calibration)
    memory = weight_memory(qreceiver.unet)
    float_bytes = weight_memory(receiver.unet).total_bytes
    summary = QuantizationSummary(
        receiver_precision=precision_label(config),
        memory_ratio=memory.total_bytes / float_bytes,
        memory=memory,
        float_bytes=float_bytes,
        calibration_timesteps=calibration.timesteps if calibration else (),
        calibration_snr_db=calibration.snr_db if calibration else (),
    )
    qgesco = GescoScheme(gesco.config, qreceiver, compat=gesco.compat)
    return QGescoScheme(qgesco, summary)


def synthetic_calibration_source(size: tuple[int, int], num_images: int, seed: int = 0
                                 ) -> SourceBatch:
    """The first ``num_images`` scenes of the synthetic **train** split at ``size``."""
    from semantic.data.synthetic import SyntheticStreetScenes

    gen = SyntheticStreetScenes(size=size, seed=seed)
    batch = gen.batch(gen.split("train", num_images).indices)
    return SourceBatch(batch.images, batch.labels, batch.instances, np.asarray(batch.indices))


def build_qgesco(scenario, device: str, source: SourceBatch | None = None) -> QGescoScheme:
    """The ``qgesco`` builder used by ``link.semantic_run.build_scheme``.

    Loads the float map receiver of ``scenario.receiver``, builds GESCO as the ``gesco``
    builder does, draws ``qgesco.calibration_images`` scenes of the data source's **train**
    split (never the evaluated images), sends them through the scenario's channel at
    ``qgesco.calibration_snr_db`` and quantises. Errors name the offending key.
    """
    from link.config import ConfigError
    from semantic.data import build_dataset
    from semantic.diffusion.receiver import load_receiver
    from semantic.schemes.gesco import GescoConfig, GescoScheme
    from semantic.schemes.gesco_channel import GESCO_SNR_LABEL_TO_SIGMA

    q = scenario.qgesco
    r = scenario.receiver
    try:
        config = QuantConfig(backend=q.backend, weight_bits=q.weight_bits,
                             activation_bits=q.activation_bits,
                             activation_range=q.activation_range, percentile=q.percentile,
                             reduce_range=q.reduce_range)
    except ValueError as exc:
        raise ConfigError(str(exc), key="qgesco") from None
    compat = scenario.phy.channel.type == "gesco_compat"
    snrs: tuple[float, ...] = tuple(q.calibration_snr_db) if q.calibration_snr_db is not None \
        else (COMPAT_CALIBRATION_LABELS if compat else PHYSICAL_CALIBRATION_SNR_DB)
    if config.needs_calibration and compat:
        bad = [s for s in snrs if s not in GESCO_SNR_LABEL_TO_SIGMA]
        if bad:
            raise ConfigError(f"gesco_compat calibrates at GESCO's SNR labels "
                              f"{sorted(GESCO_SNR_LABEL_TO_SIGMA)}, got {bad}",
                              key="qgesco.calibration_snr_db")
    path = r.map_weights
    if not Path(path).is_file():
        raise ConfigError(f"{path}: file not found (train it with: python simulate.py train "
                          "receiver --config scenarios/train/...)", key="receiver.map_weights")
    receiver = load_receiver(path, "cpu" if q.backend == "int8" else device, sampler=r.sampler,
                             steps=r.steps, guidance_scale=r.guidance_scale,
                             batch_size=r.batch_size)
    g = scenario.gesco
    gesco = GescoScheme(GescoConfig(class_presence=g.class_presence, pool=g.pool,
                                    instance_edges=g.instance_edges), receiver, compat=compat)
    link = None
    calib_source = None
    if config.needs_calibration:
        if not compat:
            from link.ber_run import build_phy_link

            link = build_phy_link(scenario.phy, device)
        d = scenario.data
        try:
            ds = build_dataset(d.source, d.root, "train", num_images=q.calibration_images,
                               size=tuple(d.size), seed=d.seed)
        except ValueError as exc:
            raise ConfigError(f"calibration data: {exc}", key="data.root") from None
        batch = ds.batch(slice(0, min(q.calibration_images, len(ds))))
        calib_source = SourceBatch(batch.images, batch.labels, batch.instances,
                                   np.asarray(batch.indices))
    return quantize_gesco(gesco, config, calib_source, snrs, link,
                          num_timesteps=q.calibration_timesteps, seed=q.calibration_seed)
