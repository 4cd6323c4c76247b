"""End-to-end link-layer runs on the real PHY: correlated fading, IR HARQ, delivered data,
analog streams, call contract, plots, the demonstration and the docstring examples."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from link.des import (
    AbstractBlockCodec,
    FramePayload,
    LinkLayerConfig,
    LinkLayerSimulator,
    PhyBlockCodec,
)
from link.des.demo import run_demo
from link.des.plots import empirical_cdf, plot_latency_cdf
from phy.link import PhyLink
from phy.specs import CodingSpec

CONFIG = {
    "source": {"arrival": "periodic", "fps": 100.0, "deadline_s": 0.02},
    "air": {"mode": "ofdm", "subcarrier_spacing_khz": 30, "num_prb": 10},  # 1440 symbols
    "fading": {"model": "jakes", "doppler_hz": 20.0},
    "harq": {"max_transmissions": 4, "combining": "ir", "rx_processing_s": 5e-4,
             "feedback_delay_s": 5e-4},
    "compute": {"mode": "model", "seconds_per_image": 2e-3},
}


@pytest.fixture(scope="module")
def link() -> PhyLink:
    return PhyLink("qpsk", CodingSpec(type="ldpc5g", k=128, n=256, crc="CRC16", decoder="fast"))


def _payloads(num_frames: int, seed: int = 0) -> list[FramePayload]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_frames):
        known = rng.integers(0, 2, 500, dtype=np.uint8)
        analog = (rng.standard_normal(300) + 1j * rng.standard_normal(300)) * 3.0
        out.append(FramePayload(digital_bits=(2000, known), analog=analog))
    return out


def test_phy_run_with_jakes_fading_and_incremental_redundancy(link):
    cfg = LinkLayerConfig.model_validate(CONFIG)
    payloads = _payloads(5)

    def once():
        sim = LinkLayerSimulator(cfg, PhyBlockCodec(link, "ir", cfg.harq.rv_sequence))
        return sim(payloads, snr_db=3.0, seed=4, keep_data=True)

    run = once()
    assert once().events == run.events  # same seed, same log

    m = run.metrics
    blocks_per_frame = -(-2000 // link.k) + -(-500 // link.k)
    assert m.num_blocks == 5 * blocks_per_frame
    tx = [e for e in run.events if e.event == "tx" and e.block is not None]
    assert len(tx) == m.block_transmissions
    assert m.mean_transmissions_per_block > 1.0  # fades at 3 dB need retransmissions
    # IR: transmission i carries redundancy version (0, 2, 3, 1)[i - 1]
    assert all(e.rv == (0, 2, 3, 1)[e.attempt - 1] for e in tx)
    # the instantaneous SNR follows the slot's fading coefficient
    snrs = {e.slot: e.snr_db for e in tx}
    assert np.ptp(list(snrs.values())) > 3.0
    assert len(set(snrs)) < len(tx)  # several blocks share a slot (and its coefficient)
    assert run.num_phy_calls < len(tx)  # many blocks per PHY call

    for frame, sent, got in zip(run.frames, payloads, run.delivered):
        assert got.bits_hat[0].shape == (2000,) and got.bits_hat[1].shape == (500,)
        if got.stream_ok[1]:
            np.testing.assert_array_equal(got.bits_hat[1], sent.digital_bits[1])
        if frame.ok:
            assert frame.bit_errors == 0
        assert frame.latency_s >= frame.decode_end_s - frame.delivered_s
        assert frame.channel_uses == frame.block_transmissions * link.num_symbols_per_block + 300
    # analog symbols: equalised estimate whose error matches the reported noise variance
    err = np.concatenate([np.abs(d.analog_hat - p.analog) ** 2 / d.analog_noise_var
                          for d, p in zip(run.delivered, payloads)])
    assert err.size == 5 * 300
    assert abs(err.mean() - 1.0) < 4 * 1.0 / np.sqrt(err.size)
    h = run.delivered[0].analog_h
    assert h.shape == (300,) and not np.allclose(np.abs(h), 1.0)


def test_call_contract(link):
    cfg = LinkLayerConfig.model_validate(CONFIG)
    with pytest.raises(ValueError, match="combines with 'chase'"):
        LinkLayerSimulator(cfg, PhyBlockCodec(link, "chase"))
    with pytest.raises(ValueError, match="slot carries"):
        LinkLayerSimulator(cfg, AbstractBlockCodec(np.zeros_like, 100, 5000, "none"))
    measured = LinkLayerConfig.model_validate(
        {**CONFIG, "compute": {"mode": "measured"}, "harq": {"max_transmissions": 1}})
    sim = LinkLayerSimulator(measured, AbstractBlockCodec(np.zeros_like, 100, 100, "none"))
    with pytest.raises(ValueError, match="compute_time_s"):
        sim([FramePayload((100,))], 10.0, seed=0)
    run = sim([FramePayload((100,))] * 2, 10.0, seed=0, compute_time_s=0.015)
    assert [f.decode_end_s - f.compute_start_s for f in run.frames] == pytest.approx(
        [0.015, 0.015])
    modelled = LinkLayerSimulator(LinkLayerConfig(),
                                  AbstractBlockCodec(np.zeros_like, 100, 100, "chase"))
    with pytest.raises(ValueError, match="only taken"):
        modelled([FramePayload((100,))], 10.0, seed=0, compute_time_s=0.1)
    # a frame with nothing to send is delivered at its arrival; an empty stream has no block
    empty = modelled([FramePayload(), FramePayload((0,))], 10.0, seed=0, keep_data=True)
    assert [f.latency_s for f in empty.frames] == [0.0, 0.0]
    assert empty.metrics.num_blocks == 0
    assert empty.delivered[1].bits_hat[0].shape == (0,) and empty.delivered[1].stream_ok == (True,)
    with pytest.raises(ValueError, match="0/1"):
        modelled([FramePayload((np.array([0, 2]),))], 10.0, seed=0)


def test_latency_cdf_plot(tmp_path):
    x, p = empirical_cdf([0.3, 0.1, 0.2])
    assert x.tolist() == [0.1, 0.2, 0.3] and p.tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    paths = plot_latency_cdf({"a": [0.01, 0.02], "b": [0.015]}, tmp_path / "plots" / "cdf",
                             deadline_s=0.018)
    assert [q.name for q in paths] == ["cdf.png", "cdf.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_demo_over_correlated_rayleigh_with_harq(tmp_path):
    points = run_demo(snr_db=(2.0, 30.0), payload_bits=(3000,), num_frames=4, k=128, n=256,
                      crc="CRC16", seed=1, out_dir=tmp_path)
    low, high = points
    assert high.metrics.residual_bler == 0.0
    assert high.metrics.mean_transmissions_per_block < low.metrics.mean_transmissions_per_block
    assert low.metrics.latency_p50_s >= high.metrics.latency_p50_s
    row = low.row()
    assert {"snr_db", "latency_p95_s", "goodput_bps", "residual_bler",
            "mean_transmissions_per_block", "deadline_miss_rate",
            "blocks_per_phy_call"} <= set(row)
    assert (tmp_path / "snr_2dB" / "events.csv").is_file()
    assert (tmp_path / "snr_30dB" / "frames.csv").is_file()


@pytest.mark.parametrize("module", ["config", "fading", "harq", "engine", "metrics", "plots", "demo"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"link.des.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
