"""deepjscc / diffjscc: power normalisation, channel-use accounting, training channel, resume,
the oracle label and the DDIM inversion of the oracle mode, config errors, shipped codec."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import semantic.jscc.channel as channel_mod
import semantic.jscc.model as model_mod
import semantic.jscc.refiner as refiner_mod
import semantic.jscc.schemes as schemes_mod
import semantic.jscc.training as training_mod
from link.channel_io import deliver
from link.config import ConfigError, parse_scenario
from phy.link import PhyLink
from phy.specs import ChannelSpec
from semantic.data.synthetic import SyntheticStreetScenes
from semantic.diffusion.receiver import DiffusionReceiver
from semantic.diffusion.schedule import NoiseSchedule
from semantic.diffusion.unet import SDMUNet
from semantic.jscc.channel import draw_conditions, train_channel
from semantic.jscc.model import JSCCCodec, JSCCConfig, codec_checkpoint, load_codec
from semantic.jscc.refiner import DiffusionRefiner, refiner_condition, refiner_unet_config
from semantic.jscc.schemes import DeepJSCCScheme, DiffJSCCScheme
from semantic.jscc.training import JSCCTrainConfig, train_codec
from semantic.schemes.base import SourceBatch, images_to_model

SIZE = (32, 64)
SHIPPED_CODEC = Path("semantic/weights/jscc_deepjscc_64x128.pt")


@pytest.fixture(scope="module")
def source() -> SourceBatch:
    b = SyntheticStreetScenes(size=SIZE, seed=0).batch([1_000_000, 1_000_001, 1_000_002])
    return SourceBatch(b.images, b.labels, b.instances, np.asarray(b.indices))


def _tiny_codec(cupp: float = 0.25) -> JSCCCodec:
    return JSCCCodec(JSCCConfig(channel_uses_per_pixel=cupp, widths=(8, 8))).eval()


def _tiny_refiner(latent_channels: int = 8, steps: int = 2) -> DiffusionRefiner:
    rx = DiffusionReceiver(SDMUNet(refiner_unet_config(latent_channels, tiny=True)), steps=steps,
                           guidance_scale=1.0)
    return DiffusionRefiner(rx, residual_scale=4.0)


@pytest.mark.parametrize("module", [model_mod, channel_mod, refiner_mod, schemes_mod,
                                    training_mod])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("cupp", [0.125, 0.25, 0.5])
def test_symbols_are_unit_power_and_counted(source, cupp):
    scheme = DeepJSCCScheme(_tiny_codec(cupp))
    tx = scheme.transmit(source)
    h, w = SIZE
    symbols = tx.analog["latent"]
    assert symbols.dtype == torch.complex64
    assert symbols.shape == (len(source), int(cupp * h * w))
    power = symbols.abs().square().mean(dim=1)
    assert torch.allclose(power, torch.ones_like(power), atol=1e-5)
    for payload in tx.payloads:
        assert payload.total_bits == 0
        assert payload.channel_uses("latent") == symbols.shape[1]
        assert payload.channel_uses_per_pixel(h, w) == pytest.approx(cupp)
    link = PhyLink("qpsk", channel=ChannelSpec(type="awgn"))
    _, counts = deliver(tx, link, 10.0, SIZE, torch.Generator().manual_seed(0))
    assert counts.analog_channel_uses == len(source) * cupp * h * w
    assert counts.bits == 0 and counts.digital_channel_uses == 0


def test_bandwidth_must_fit_the_latent_grid():
    with pytest.raises(ValueError, match=r"multiple of 0\.03125"):
        JSCCConfig(channel_uses_per_pixel=1 / 6)
    assert JSCCConfig(channel_uses_per_pixel=0.5).latent_channels == 16
    assert JSCCConfig(channel_uses_per_pixel=1 / 8, num_downsamples=3).latent_channels == 16


def test_noise_free_latent_round_trip():
    codec = _tiny_codec()
    x = torch.rand(2, 3, *SIZE) * 2 - 1
    s = codec.encode(x)
    latent, snr = codec.received_latent(s, torch.full(s.shape, 1e-9), SIZE)
    z = codec.encoder(x)
    z = z / z.flatten(1).square().mean(1).mul(2).sqrt().view(-1, 1, 1, 1)
    assert torch.allclose(latent, z, atol=1e-5)
    assert torch.allclose(snr, torch.full_like(snr, 50.0 / 20.0))


def test_training_channel_statistics():
    # Noise power against N0 with a tolerance of 6 standard errors of a chi-square mean.
    n = 200_000
    g = torch.Generator().manual_seed(1)
    x = torch.ones(2, n, dtype=torch.complex64)
    snr = torch.tensor([3.0, 3.0])
    x_hat, nv = train_channel(x, snr, torch.tensor([False, True]), g)
    n0 = 10 ** (-0.3)
    awgn_power = float((x_hat[0] - x[0]).abs().square().mean())
    assert abs(awgn_power - n0) < 6 * n0 / math.sqrt(n)
    assert torch.allclose(nv[0], torch.full((n,), n0))
    # Block fading: one coefficient per row, so the effective noise variance is constant and the
    # equalised noise has that variance.
    assert torch.unique(nv[1]).numel() == 1
    fade_power = float((x_hat[1] - x[1]).abs().square().mean())
    assert abs(fade_power - float(nv[1, 0])) < 6 * float(nv[1, 0]) / math.sqrt(n)


def test_draw_conditions_range_and_mix():
    g = torch.Generator().manual_seed(0)
    snr, fading = draw_conditions(4000, (-2.0, 20.0), "mixed", g)
    assert float(snr.min()) >= -2.0 and float(snr.max()) <= 20.0
    assert 0.45 < float(fading.float().mean()) < 0.55
    snr, fading = draw_conditions(5, (7.0, 7.0), "awgn", g)
    assert torch.all(snr == 7.0) and not fading.any()
    with pytest.raises(ValueError, match="awgn, rayleigh, mixed"):
        draw_conditions(2, (0.0, 1.0), "rician", g)


def _train_config(**kw) -> JSCCTrainConfig:
    base = dict(codec={"widths": [8, 8]}, num_steps=4, batch_size=2, checkpoint_every=2,
                data={"size": [32, 64], "pool_size": 4}, seed=3)
    return JSCCTrainConfig(**{**base, **kw})


def test_training_resume_gives_the_uninterrupted_weights(tmp_path):
    straight = train_codec(_train_config(), tmp_path / "a", progress=False)
    first = train_codec(_train_config(num_steps=2), tmp_path / "b", progress=False)
    assert first.step == 2
    resumed = train_codec(_train_config(), tmp_path / "b", progress=False)
    assert (straight.step, resumed.start_step, resumed.step) == (4, 2, 4)
    a = torch.load(straight.codec_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.codec_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="cannot resume"):
        train_codec(_train_config(learning_rate=0.5), tmp_path / "b", progress=False)


def test_oracle_mode_is_labelled_and_needs_its_transmit(source):
    codec = _tiny_codec()
    honest = DiffJSCCScheme(codec, _tiny_refiner())
    oracle = DiffJSCCScheme(codec, _tiny_refiner(), oracle_start=True)
    assert honest.report_name == "diffjscc"
    assert oracle.report_name == "diffjscc_oracle_start" == oracle.name
    tx = honest.transmit(source)
    delivered, _ = deliver(tx, PhyLink("qpsk"), 10.0, SIZE, torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="oracle_start"):
        oracle.receive(delivered, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="sampler: ddim"):
        parse_scenario({"name": "t", "kind": "semantic", "schemes": ["diffjscc"],
                        "sweep": {"snr_db": [0]},
                        "jscc": {"oracle_start": True, "sampler": "ddpm"}})


class _PointMassNet(torch.nn.Module):
    """The exact ε-predictor of a data set holding one image ``r`` (so DDIM is invertible)."""

    def __init__(self, target: torch.Tensor, latent_channels: int):
        super().__init__()
        self.config = refiner_unet_config(latent_channels, tiny=True)
        self.register_buffer("target", target)
        self.register_buffer("acp", NoiseSchedule.from_name("linear", 1000).alphas_cumprod.float())

    def forward(self, x, t, y, low_res=None):
        ab = self.acp[t.long()].view(-1, 1, 1, 1)
        return (x - ab.sqrt() * self.target) / (1 - ab).sqrt()


def test_oracle_start_inverts_the_original(source):
    # With the exact denoiser of a point mass, DDIM inversion followed by DDIM sampling returns
    # the original: the oracle start carries the original image to the receiver.
    codec = _tiny_codec()
    x = images_to_model(source.images)
    symbols = codec.encode(x)
    latent, plane = codec.received_latent(symbols, torch.full(symbols.shape, 0.1), SIZE)
    coarse = codec.decode_latent(latent, plane).detach()
    target = ((x - coarse) * 4.0).clamp(-1, 1)
    original = coarse + target / 4.0
    rx = DiffusionReceiver(_PointMassNet(target, 8), steps=10, guidance_scale=1.0)
    refiner = DiffusionRefiner(rx, residual_scale=4.0)
    y = refiner_condition(latent.detach(), plane, SIZE)
    x_T = refiner.invert(original, coarse, y)
    out = refiner.refine(coarse, y, torch.Generator().manual_seed(0), x_T=x_T)
    assert torch.allclose(out, original.clamp(-1, 1), atol=1e-3)
    assert not torch.allclose(x_T, target, atol=0.1)


def test_builder_errors_name_the_key(tmp_path):
    from link.semantic_run import build_scheme

    path = tmp_path / "codec.pt"
    torch.save(codec_checkpoint(_tiny_codec(), half=True), path)
    assert load_codec(path).config.latent_channels == 8

    def scenario(**jscc):
        return parse_scenario({"name": "t", "kind": "semantic", "schemes": ["deepjscc"],
                               "sweep": {"snr_db": [0]}, "data": {"size": [32, 64]},
                               "jscc": {"codec_weights": str(path), **jscc}})

    assert isinstance(build_scheme("deepjscc", scenario(), "cpu", None), DeepJSCCScheme)
    with pytest.raises(ConfigError) as err:
        build_scheme("deepjscc", scenario(channel_uses_per_pixel=0.5), "cpu", None)
    assert err.value.key == "jscc.channel_uses_per_pixel"
    with pytest.raises(ConfigError) as err:
        build_scheme("deepjscc", scenario(codec_weights=str(tmp_path / "missing.pt")), "cpu", None)
    assert err.value.key == "jscc.codec_weights"
    with pytest.raises(ConfigError) as err:
        build_scheme("diffjscc", scenario(refiner_weights=str(tmp_path / "no.pt")), "cpu", None)
    assert err.value.key == "jscc.refiner_weights"

    from semantic.diffusion.export import sha256_of
    from semantic.diffusion.training import EMA_EXPORT_FORMAT

    def save_refiner(codec_sha: str) -> str:
        cfg = refiner_unet_config(8, tiny=True)
        out = tmp_path / f"refiner_{codec_sha[:4]}.pt"
        torch.save({"format": EMA_EXPORT_FORMAT, "unet_config": cfg.to_dict(),
                    "state_dict": SDMUNet(cfg).state_dict(),
                    "train_config": {"data": {"residual_scale": 4.0, "codec_sha256": codec_sha}}},
                   out)
        return str(out)

    with pytest.raises(ConfigError) as err:
        build_scheme("diffjscc", scenario(refiner_weights=save_refiner("0" * 64)), "cpu", None)
    assert err.value.key == "jscc.refiner_weights" and "another codec" in err.value.reason
    good = save_refiner(sha256_of(path))
    assert build_scheme("diffjscc", scenario(refiner_weights=good), "cpu", None
                        ).report_name == "diffjscc"
    oracle = build_scheme("diffjscc", scenario(refiner_weights=good, oracle_start=True), "cpu",
                          None)
    assert oracle.report_name == "diffjscc_oracle_start"


def test_jscc_section_does_not_change_other_scenarios_point_ids():
    from link.sweep import expand_points

    base = {"name": "t", "kind": "semantic", "schemes": ["separation"], "sweep": {"snr_db": [0]}}
    a = expand_points(parse_scenario(base))
    b = expand_points(parse_scenario({**base, "jscc": {"steps": 3}}))
    assert [p.point_id for p in a] == [p.point_id for p in b]
    c = expand_points(parse_scenario({**base, "schemes": ["deepjscc"], "jscc": {"steps": 3}}))
    d = expand_points(parse_scenario({**base, "schemes": ["deepjscc"]}))
    assert [p.point_id for p in c] != [p.point_id for p in d]


def test_shipped_codec_degrades_gracefully():
    # The shipped deep-JSCC codec: PSNR rises with SNR on AWGN, with no cliff between steps.
    codec = load_codec(SHIPPED_CODEC)
    b = SyntheticStreetScenes(size=(64, 128), seed=0).batch(range(1_000_000, 1_000_004))
    src = SourceBatch(b.images, b.labels, b.instances, np.asarray(b.indices))
    scheme = DeepJSCCScheme(codec)
    tx = scheme.transmit(src)
    link = PhyLink("qpsk", channel=ChannelSpec(type="awgn"))
    psnrs = []
    for snr in (-2.0, 5.0, 15.0):
        delivered, _ = deliver(tx, link, snr, src.size, torch.Generator().manual_seed(0))
        out = scheme.receive(delivered, torch.Generator()).images.astype(np.float64)
        mse = np.mean((out - src.images.astype(np.float64)) ** 2)
        psnrs.append(10 * np.log10(255.0**2 / mse))
    assert psnrs[0] < psnrs[1] < psnrs[2]
    assert psnrs[0] > 12.0
