"""The one contract every scheme passes (tiny random receivers, real codecs and PHY).

No test here branches on the scheme's name: each builder below only wires a scheme with its
tiny receiver, and every check is the same for all of them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from link.channel_io import deliver
from phy.link import PhyLink
from semantic.diffusion.receiver import DiffusionReceiver
from semantic.diffusion.unet import SDMUNet, UNetConfig
from semantic.jscc.model import JSCCCodec, JSCCConfig
from semantic.jscc.refiner import DiffusionRefiner, refiner_unet_config
from semantic.jscc.schemes import DeepJSCCScheme, DiffJSCCScheme
from semantic.quant.model import QuantConfig
from semantic.quant.scheme import quantize_gesco, synthetic_calibration_source
from semantic.schemes.base import SourceBatch
from semantic.schemes.diffgo import DiffgoConfig, DiffgoScheme
from semantic.schemes.gesco import GescoConfig, GescoScheme
from semantic.schemes.separation import SeparationConfig, SeparationScheme
from semantic.schemes.spic import SpicConfig, SpicScheme
from tests.semantic_fixtures import ldpc_16qam_awgn_link, two_scenes

SIZE = (32, 64)


def _receiver(labels: int, super_res: bool) -> DiffusionReceiver:
    torch.manual_seed(0)
    cfg = UNetConfig(image_size=32, model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                     attention_resolutions=(), num_head_channels=16, num_label_channels=labels,
                     in_channels=6 if super_res else 3, super_res=super_res, spade_hidden=16)
    return DiffusionReceiver(SDMUNet(cfg), steps=2, guidance_scale=1.5)


BUILDERS = {
    "gesco": lambda: GescoScheme(GescoConfig(), _receiver(20, False)),
    "gesco_presence_sent": lambda: GescoScheme(GescoConfig(class_presence="sent"),
                                               _receiver(20, False)),
    "spic": lambda: SpicScheme(SpicConfig(qp=36), _receiver(19, True)),
    "separation": lambda: SeparationScheme(SeparationConfig(qp=36)),
    "diffgo": lambda: DiffgoScheme(DiffgoConfig(bank_size=4, candidates=4, goal="psnr"),
                                   _receiver(20, False)),
    "qgesco": lambda: quantize_gesco(GescoScheme(GescoConfig(), _receiver(20, False)),
                                     QuantConfig("int8"), synthetic_calibration_source(SIZE, 2),
                                     num_timesteps=2),
    "deepjscc": lambda: DeepJSCCScheme(JSCCCodec(JSCCConfig(widths=(8, 8)))),
    **{name: (lambda oracle=oracle: DiffJSCCScheme(
        JSCCCodec(JSCCConfig(widths=(8, 8))),
        DiffusionRefiner(DiffusionReceiver(SDMUNet(refiner_unet_config(8, tiny=True)), steps=2,
                                           guidance_scale=1.0), residual_scale=4.0),
        oracle_start=oracle))
       for name, oracle in (("diffjscc", False), ("diffjscc_oracle_start", True))},
}


@pytest.fixture(scope="module")
def source() -> SourceBatch:
    return two_scenes(SIZE)


@pytest.fixture(scope="module")
def link() -> PhyLink:
    return ldpc_16qam_awgn_link()


@pytest.fixture(params=sorted(BUILDERS))
def scheme(request):
    return BUILDERS[request.param]()


def _run(scheme, source, link, snr_db, seed=0):
    tx = scheme.transmit(source)
    delivered, counts = deliver(tx, link, snr_db, source.size, torch.Generator().manual_seed(seed))
    return tx, counts, scheme.receive(delivered, torch.Generator().manual_seed(seed))


def test_transmission_is_itemised_and_nothing_is_free(scheme, source):
    tx = scheme.transmit(source)
    assert len(tx.payloads) == len(source)
    for payload in tx.payloads:
        assert payload.streams, "a scheme must send something"
        assert payload.total_bits > 0 or payload.total_channel_uses > 0
        for stream in payload.streams.values():
            if stream.kind == "digital":
                assert stream.data is not None and stream.num_bits > 0
    for name, symbols in tx.analog.items():
        per_image = [p.streams[name].channel_uses for p in tx.payloads]
        assert symbols.is_complex() and symbols.shape == (len(source), per_image[0])


def test_high_snr_reconstruction_shapes_and_flags(scheme, source, link):
    _, counts, rec = _run(scheme, source, link, 40.0)
    h, w = SIZE
    assert rec.images.shape == (len(source), h, w, 3) and rec.images.dtype == np.uint8
    if rec.maps is not None:
        assert rec.maps.shape == (len(source), h, w) and rec.maps.dtype == np.uint8
    assert counts.stream_failures == 0 and counts.bit_errors == 0
    for flag in rec.flags.values():
        assert flag.shape == (len(source),) and not flag.any()


def test_low_snr_never_crashes_and_failures_are_flagged(scheme, source, link):
    _, counts, rec = _run(scheme, source, link, -10.0)
    assert rec.images.shape[0] == len(source)
    if counts.blocks:
        assert counts.stream_failures > 0
        assert any(flag.any() for flag in rec.flags.values())


def test_same_seed_same_output(scheme, source, link):
    a = _run(scheme, source, link, 8.0, seed=3)[2]
    b = _run(scheme, source, link, 8.0, seed=3)[2]
    assert np.array_equal(a.images, b.images)
