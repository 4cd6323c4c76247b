"""Semantic runs over the discrete-event link layer (`link.semantic_link`).

Real schemes (separation needs no receiver; SPIC and GESCO get tiny random receivers or none
where only their transmitter is used), the real PHY (16-QAM, LDPC 1024/2048, CRC24A) and the
real event engine.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from link.channel_io import deliver
from link.config import ConfigError, parse_scenario
from link.des.config import LinkLayerConfig
from link.semantic_link import LINK_LAYER_COLUMNS, SemanticLinkLayer, with_compute_time
from phy.link import PhyLink
from phy.specs import ChannelSpec, CodingSpec
from semantic.codecs.payload import Payload, Stream
from semantic.schemes.base import SourceBatch, Transmission
from semantic.schemes.gesco import GescoConfig, GescoScheme
from semantic.schemes.separation import SeparationConfig, SeparationScheme
from tests.semantic_fixtures import ldpc_16qam_awgn_link, two_scenes

SIZE = (32, 64)
HARQ_OFF = {"harq": {"max_transmissions": 1}}


def _cfg(**sections) -> LinkLayerConfig:
    return LinkLayerConfig.model_validate(sections)


@pytest.fixture(scope="module")
def source() -> SourceBatch:
    return two_scenes(SIZE)


@pytest.fixture(scope="module")
def link() -> PhyLink:
    return ldpc_16qam_awgn_link()


@pytest.fixture(scope="module")
def tx_separation(source) -> Transmission:
    return SeparationScheme(SeparationConfig(qp=36)).transmit(source)


@pytest.fixture(scope="module")
def tx_gesco(source) -> Transmission:
    # Analog map plus a digital class-presence header: both paths in one transmission.
    return GescoScheme(GescoConfig(class_presence="sent"), receiver=None).transmit(source)


@pytest.mark.parametrize("which", ["tx_separation", "tx_gesco"])
def test_awgn_harq_off_high_snr_delivers_what_the_plain_path_delivers(which, request, link,
                                                                      source):
    tx = request.getfixturevalue(which)
    plain, plain_counts = deliver(tx, link, 30.0, SIZE, torch.Generator().manual_seed(0))
    out = SemanticLinkLayer(_cfg(**HARQ_OFF), link)(tx, 30.0, SIZE, seed=0)
    assert out.counts == plain_counts
    assert plain_counts.bit_errors == 0 and plain_counts.bits > 0
    assert set(out.delivered.digital) == set(plain.digital)
    for name, streams in plain.digital.items():
        assert out.delivered.digital[name] == streams  # bytes, CRC flags and counts
    assert set(out.delivered.analog) == set(plain.analog)
    for name, symbols in plain.analog.items():
        got = out.delivered.analog[name]
        assert got.shape == symbols.shape and got.dtype == symbols.dtype
        torch.testing.assert_close(out.delivered.analog_noise_var[name],
                                   plain.analog_noise_var[name], rtol=1e-5, atol=0)
    assert out.run.metrics.failed_blocks == 0


def test_same_seed_same_event_log_other_seed_differs(tx_separation, link):
    cfg = _cfg(fading={"model": "jakes", "doppler_hz": 50.0},
               harq={"max_transmissions": 4, "combining": "ir"},
               source={"fps": 60, "deadline_s": 0.05})
    layer = SemanticLinkLayer(cfg, link)
    a = layer(tx_separation, 8.0, SIZE, seed=11)
    b = layer(tx_separation, 8.0, SIZE, seed=11)
    c = layer(tx_separation, 8.0, SIZE, seed=12)
    assert a.run.events == b.run.events and a.run.frames == b.run.frames
    assert a.delivered.digital == b.delivered.digital and a.counts == b.counts
    assert a.run.events != c.run.events


def test_retransmissions_are_charged_in_channel_uses(tx_separation, link):
    cfg = _cfg(fading={"model": "iid"}, harq={"max_transmissions": 3, "combining": "chase"})
    out = SemanticLinkLayer(cfg, link)(tx_separation, 6.0, SIZE, seed=3)
    per_block = link.num_symbols_per_block
    transmissions = sum(1 for e in out.run.events if e.event == "tx" and e.block is not None)
    assert transmissions > out.counts.blocks  # Rayleigh at 6 dB: some blocks go again
    assert out.counts.digital_channel_uses == transmissions * per_block
    streams = [d for d in out.delivered.digital["image"] if d is not None]
    assert sum(d.channel_uses for d in streams) == transmissions * per_block
    assert sum(d.blocks for d in streams) == out.counts.blocks == out.run.metrics.num_blocks
    # Residual block errors are the blocks still failed after their last transmission.
    assert out.counts.block_errors == out.run.metrics.failed_blocks
    assert out.counts.stream_failures == sum(not d.ok for d in streams)
    columns = out.finish().columns()
    assert set(columns) == set(LINK_LAYER_COLUMNS)
    assert columns["mean_transmissions_per_block"] == pytest.approx(
        transmissions / out.counts.blocks)
    assert columns["blocks_per_phy_call"] > 1.0  # vectorised: many blocks per PHY call


def test_analog_streams_see_their_slot_and_carry_the_right_noise_variance(link):
    gen = torch.Generator().manual_seed(0)
    num_images, n = 6, 6000
    a = 2.0 * torch.randn(num_images, n, dtype=torch.complex64, generator=gen)
    b = 0.5 * torch.randn(num_images, n // 2, dtype=torch.complex64, generator=gen)
    payloads = [Payload.of(Stream.analog("a", n), Stream.analog("b", n // 2))] * num_images
    tx = Transmission(payloads, analog={"a": a, "b": b})
    snr_db = 10.0
    out = SemanticLinkLayer(_cfg(fading={"model": "iid"}), link)(tx, snr_db, SIZE, seed=5)
    assert out.counts.analog_channel_uses == num_images * (n + n // 2)
    assert out.counts.digital_channel_uses == 0
    n0 = 10.0 ** (-snr_db / 10.0)
    h = np.stack([f.analog_h for f in out.run.delivered])  # [B, n + n/2], per slot
    assert len(np.unique(np.round(h, 12))) > num_images  # several slots, several fades
    z = []
    for name, x, part in (("a", a, slice(0, n)), ("b", b, slice(n, None))):
        power = x.abs().square().mean(-1, keepdim=True).double().numpy()
        var = out.delivered.analog_noise_var[name].double().numpy()
        np.testing.assert_allclose(var, n0 * power / np.abs(h[:, part]) ** 2, rtol=1e-5)
        err = (out.delivered.analog[name] - x).numpy()
        z.append((np.abs(err) ** 2 / var).reshape(-1))
    z = np.concatenate(z)  # |CN(0, 1)|^2 is Exp(1): mean 1, standard deviation 1
    assert abs(z.mean() - 1.0) < 4.0 / math.sqrt(z.size)


def test_measured_compute_replays_the_engine_decoder_queue(tx_separation, link):
    common = {"source": {"fps": 200, "deadline_s": 0.02}, "harq": {"max_transmissions": 2}}
    latency = {}
    for servers in (1, 2):
        model = _cfg(**common, compute={"mode": "model", "seconds_per_image": 0.012,
                                        "num_servers": servers})
        measured = _cfg(**common, compute={"mode": "measured", "num_servers": servers})
        want = SemanticLinkLayer(model, link)(tx_separation, 20.0, SIZE, seed=1).finish()
        got = SemanticLinkLayer(measured, link)(tx_separation, 20.0, SIZE, seed=1).finish(0.012)
        assert got.run.frames == want.run.frames
        assert got.run.metrics == want.run.metrics
        assert Counter(got.run.events) == Counter(want.run.events)
        assert got.receiver_s_per_image == want.receiver_s_per_image == 0.012
        latency[servers] = [f.latency_s for f in want.run.frames]
    # Two frames 5 ms apart, 12 ms per image: with one decoder the second frame waits 7 ms.
    assert latency[1][1] == pytest.approx(latency[2][1] + 0.007)
    assert latency[1][0] == latency[2][0]
    again = with_compute_time(want.run, 0.0, 1)
    assert all(f.decode_end_s == f.delivered_s for f in again.frames)


_BASE = {"name": "t", "kind": "semantic", "schemes": ["separation"], "sweep": {"snr_db": [1]},
         "phy": {"modulation": "16qam",
                 "coding": {"type": "ldpc5g", "k": 1024, "n": 2048, "crc": "CRC24A"}}}


@pytest.mark.parametrize(("section", "phy", "key", "words"), [
    ({"harq": {"combinig": "ir"}}, None, "link_layer.harq.combinig", "did you mean 'combining'"),
    ({"air": {"num_prb": 1}}, None, "link_layer", "raise link_layer.air.num_prb"),
    ({}, {"coding": {"type": "ldpc5g", "k": 1024, "n": 2048}}, "link_layer", "phy.coding.crc"),
    ({}, {"channel": {"type": "rayleigh"}}, "link_layer", "phy.channel.type"),
    ({"fading": {"model": "jakes"}}, None, "link_layer.fading", "exactly one of doppler_hz"),
])
def test_bad_link_layer_is_a_one_line_config_error(section, phy, key, words):
    data = {**_BASE, "link_layer": section}
    if phy is not None:
        data["phy"] = {**_BASE["phy"], **phy}
    with pytest.raises(ConfigError) as info:
        parse_scenario(data, source="s.yaml")
    assert info.value.key == key and words in info.value.reason
    assert "\n" not in str(info.value)


def test_no_link_layer_section_keeps_point_ids():
    from link.sweep import expand_points

    plain = [p.point_id for p in expand_points(parse_scenario(_BASE))]
    assert [p.point_id for p in expand_points(parse_scenario({**_BASE, "link_layer": None}))] \
        == plain
    assert [p.point_id for p in expand_points(parse_scenario({**_BASE, "link_layer": {}}))] \
        != plain


# ------------------------------------------------------------------------- a whole semantic run


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    from semantic.diffusion.checkpoint import save_checkpoint
    from semantic.diffusion.unet import SDMUNet, UNetConfig
    from semantic.segmenter import Segmenter, SegmenterConfig, save_weights

    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_checkpoint(d / "sr.pt", SDMUNet(UNetConfig(
        image_size=32, model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
        attention_resolutions=(), num_head_channels=16, num_label_channels=19, in_channels=6,
        super_res=True, spade_hidden=16)))
    save_weights(Segmenter(SegmenterConfig(widths=(8, 8, 16, 16), blocks=(0, 1, 1, 1))),
                 d / "seg.pt")
    return {"sr": str(d / "sr.pt"), "seg": str(d / "seg.pt")}


def _run(tmp_path, models, link_layer):
    from link.report import write_run_report
    from link.semantic_report import metrics_rows, write_metrics_csv
    from link.semantic_run import prepare, run_semantic_points
    from link.store import ResultsStore
    from link.sweep import expand_points

    data = {"name": "tiny", "kind": "semantic", "seed": 3, "device": "cpu",
            "schemes": ["spic", "separation"],
            "data": {"source": "synthetic", "num_images": 2, "size": list(SIZE)},
            "phy": {"modulation": "16qam",
                    "coding": {"type": "ldpc5g", "k": 1024, "n": 2048, "crc": "CRC24A"}},
            "receiver": {"steps": 2, "superres_weights": models["sr"]},
            "separation": {"qp": 36}, "source_coding": {"qp": 36},
            "metrics": {"segmenter": models["seg"], "fid": False, "bootstrap_resamples": 20},
            "sweep": {"snr_db": [30]}}
    if link_layer is not None:
        data["link_layer"] = link_layer
    scenario = parse_scenario(data)
    points = expand_points(scenario)
    ctx = prepare(scenario, "cpu", lambda _msg: None)
    with ResultsStore(tmp_path / "store.sqlite") as store:
        run_semantic_points(ctx, points, store, lambda *a: None)
        if link_layer is None:  # the plots without a link layer are not under test here
            write_metrics_csv(tmp_path, metrics_rows(store))
        else:
            write_run_report(tmp_path, store, "tiny")  # what `simulate.py report` writes
        rows = {r.metrics["scheme"]: r.metrics for r in store.records()}
    return rows


def test_semantic_run_with_and_without_link_layer_agree_when_nothing_fails(tmp_path,
                                                                           tiny_models):
    from link.semantic_link import write_link_layer_report
    from link.semantic_report import metrics_rows, write_metrics_csv
    from link.semantic_run import METRICS_COLUMNS
    from link.store import ResultsStore

    plain = _run(tmp_path / "plain", tiny_models, None)
    layered_dir = tmp_path / "layered"
    layered = _run(layered_dir, tiny_models, {
        "source": {"fps": 30, "deadline_s": 0.1},
        "fading": {"model": "awgn"},
        "harq": {"max_transmissions": 4, "combining": "ir"},
        "compute": {"mode": "measured"}})
    assert METRICS_COLUMNS[-len(LINK_LAYER_COLUMNS):] == LINK_LAYER_COLUMNS
    for scheme in ("spic", "separation"):
        p, q = plain[scheme], layered[scheme]
        for key in ("bpp", "bpp_map", "bpp_image", "ber", "bler", "bits", "blocks",
                    "stream_failures", "miou", "psnr", "ssim", "channel_uses_per_pixel"):
            assert q[key] == p[key], (scheme, key)
        assert p["bits"] > 0 and p["stream_failures"] == 0
        assert all(c not in p for c in LINK_LAYER_COLUMNS)
        assert q["residual_bler"] == 0.0 and q["mean_transmissions_per_block"] == 1.0
        assert q["deadline_misses"] == round(q["deadline_miss_rate"] * 2)
        assert q["receiver_s_per_image"] > 0 and q["latency_p50_s"] > q["receiver_s_per_image"]
    # Without a link layer the new columns are empty.
    header, *lines = (tmp_path / "plain" / "metrics.csv").read_text().splitlines()
    assert header.split(",")[-len(LINK_LAYER_COLUMNS):] == list(LINK_LAYER_COLUMNS)
    assert all(line.endswith("," * len(LINK_LAYER_COLUMNS)) for line in lines)
    assert not (tmp_path / "plain" / "plots" / "latency_cdf.png").exists()
    # With one: logs per point and the latency CDF, rewritten identically from the store.
    logs = sorted(layered_dir.glob("link_layer/*/snr_30dB-*/*.csv"))
    assert [p.name for p in logs] == ["events.csv", "frames.csv"] * 2
    files = [*logs, layered_dir / "metrics.csv", layered_dir / "plots" / "latency_cdf.png"]
    before = {p: p.read_bytes() for p in files}
    for p in files:
        p.unlink()
    with ResultsStore(layered_dir / "store.sqlite") as store:
        rows = metrics_rows(store)
    write_metrics_csv(layered_dir, rows)
    write_link_layer_report(layered_dir, rows, "tiny")
    assert {p: p.read_bytes() for p in files} == before
    events = before[logs[0]].decode().splitlines()
    assert events[0].startswith("time_s,event,frame") and len(events) > 10


def test_a_link_with_its_own_fading_is_refused_as_a_config_error():
    link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=256, n=512, crc="CRC16"),
                   ChannelSpec(type="rayleigh"))
    with pytest.raises(ConfigError) as info:
        SemanticLinkLayer(_cfg(), link)
    assert info.value.key == "link_layer" and "phy.channel.type" in info.value.reason
