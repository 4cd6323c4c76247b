"""Event timing of the link-layer engine: a hand-computed case, M/D/1 closed forms, determinism.

These tests use the `AbstractBlockCodec` (outcomes from a BLER-vs-SNR function) so that the
subject is the event engine, not the PHY.
"""

from __future__ import annotations

import numpy as np
import pytest

from link.des import AbstractBlockCodec, FramePayload, LinkLayerConfig, LinkLayerSimulator
from link.des.metrics import read_csv


def _step_codec(threshold_db: float, k: int = 400, num_symbols: int = 500,
                combining: str = "chase") -> AbstractBlockCodec:
    """Blocks fail surely below ``threshold_db`` of effective SNR and pass surely above."""
    return AbstractBlockCodec(lambda s: (s < threshold_db).astype(float), k, num_symbols,
                              combining)


def _hand_case_config() -> LinkLayerConfig:
    return LinkLayerConfig.model_validate({
        "source": {"arrival": "periodic", "fps": 200.0, "deadline_s": 0.011},
        "air": {"mode": "symbol_rate", "symbol_rate_baud": 1e6, "symbols_per_slot": 1000},
        "fading": {"model": "awgn"},
        "harq": {"max_transmissions": 4, "combining": "chase", "num_processes": None,
                 "rx_processing_s": 0.5e-3, "feedback_delay_s": 0.5e-3},
        "compute": {"mode": "model", "seconds_per_image": 6e-3, "num_servers": 1},
    })


def test_hand_computed_event_times():
    # Slot 1 ms carrying 2 blocks of 500 symbols; frames of 3 blocks every 5 ms. At 10 dB every
    # first transmission fails (threshold 12 dB) and every chase-combined second one passes
    # (10 dB + 3.01 dB). Decode 0.5 ms after the slot, ACK/NACK 0.5 ms later; a NACK at a slot
    # start is served in that slot. Frame 0: slot 0 blocks 0,1 (NACK 2.0 ms), slot 1 block 2
    # (NACK 3.0), slot 2 blocks 0,1 again (decoded 3.5), slot 3 block 2 (decoded 4.5 ->
    # delivered), compute 4.5-10.5 ms. Frame 1 arrives at 5 ms: slots 5, 6, 7, 8 likewise,
    # delivered 9.5 ms, waits for the decoder until 10.5, done at 16.5 > 5 + 11 ms deadline.
    run = LinkLayerSimulator(_hand_case_config(), _step_codec(12.0))(
        [FramePayload((1200,))] * 2, snr_db=10.0, seed=3)
    ms = 1e-3
    tx = [(e.time_s, e.frame, e.block, e.attempt, e.slot) for e in run.events if e.event == "tx"]
    expected_tx = [
        (0.0, 0, 0, 1, 0), (0.0, 0, 1, 1, 0), (1 * ms, 0, 2, 1, 1),
        (2 * ms, 0, 0, 2, 2), (2 * ms, 0, 1, 2, 2), (3 * ms, 0, 2, 2, 3),
        (5 * ms, 1, 0, 1, 5), (5 * ms, 1, 1, 1, 5), (6 * ms, 1, 2, 1, 6),
        (7 * ms, 1, 0, 2, 7), (7 * ms, 1, 1, 2, 7), (8 * ms, 1, 2, 2, 8),
    ]
    assert [t[1:] for t in tx] == [t[1:] for t in expected_tx]
    assert [t[0] for t in tx] == pytest.approx([t[0] for t in expected_tx], abs=1e-12)

    decode = [(e.time_s, e.frame, e.block, e.ok) for e in run.events if e.event == "decode"]
    expected_decode = [
        (1.5 * ms, 0, 0, False), (1.5 * ms, 0, 1, False), (2.5 * ms, 0, 2, False),
        (3.5 * ms, 0, 0, True), (3.5 * ms, 0, 1, True), (4.5 * ms, 0, 2, True),
        (6.5 * ms, 1, 0, False), (6.5 * ms, 1, 1, False), (7.5 * ms, 1, 2, False),
        (8.5 * ms, 1, 0, True), (8.5 * ms, 1, 1, True), (9.5 * ms, 1, 2, True),
    ]
    assert [d[1:] for d in decode] == [d[1:] for d in expected_decode]
    assert [d[0] for d in decode] == pytest.approx([d[0] for d in expected_decode], abs=1e-12)

    feedback = [(e.time_s, e.event, e.frame, e.block) for e in run.events
                if e.event in ("ack", "nack")]
    assert [f[1:] for f in feedback[:3]] == [("nack", 0, 0), ("nack", 0, 1), ("nack", 0, 2)]
    assert [f[0] for f in feedback[:3]] == pytest.approx([2 * ms, 2 * ms, 3 * ms], abs=1e-12)

    f0, f1 = run.frames
    assert (f0.delivered_s, f0.compute_start_s, f0.decode_end_s) == pytest.approx(
        (4.5 * ms, 4.5 * ms, 10.5 * ms), abs=1e-12)
    assert (f1.delivered_s, f1.compute_start_s, f1.decode_end_s) == pytest.approx(
        (9.5 * ms, 10.5 * ms, 16.5 * ms), abs=1e-12)
    assert (f0.deadline_met, f1.deadline_met) == (True, False)
    assert (f0.latency_s, f1.latency_s) == pytest.approx((10.5 * ms, 11.5 * ms), abs=1e-12)

    m = run.metrics
    assert m.mean_transmissions_per_block == 2.0
    assert m.residual_bler == 0.0 and m.frame_error_rate == 0.0
    assert m.deadline_miss_rate == 0.5
    assert m.latency_p50_s == pytest.approx(11.0 * ms)
    # 2400 payload bits delivered between the first arrival (0) and the last delivery (9.5 ms)
    assert m.goodput_bps == pytest.approx(2400 / (9.5 * ms))


def test_harq_limit_gives_residual_errors_and_process_limit_delays():
    # Threshold never reached: every block uses max_transmissions and fails.
    cfg = _hand_case_config().model_copy(update={"harq": _hand_case_config().harq.model_copy(
        update={"max_transmissions": 3, "num_processes": 1})})
    run = LinkLayerSimulator(cfg, _step_codec(99.0))([FramePayload((800,))], 10.0, seed=0)
    assert run.metrics.residual_bler == 1.0
    assert run.metrics.mean_transmissions_per_block == 3.0
    # one HARQ process: block 1 is sent only after block 0's last NACK (3 rounds of 2 ms)
    first_tx_of_block1 = min(e.time_s for e in run.events if e.event == "tx" and e.block == 1)
    assert first_tx_of_block1 == pytest.approx(6e-3, abs=1e-12)
    assert run.frames[0].ok is False


def _md1_config(slotted: bool, rate_fps: float) -> LinkLayerConfig:
    return LinkLayerConfig.model_validate({
        "source": {"arrival": "poisson", "fps": rate_fps, "deadline_s": 1.0},
        "air": {"mode": "symbol_rate", "symbol_rate_baud": 1e6, "symbols_per_slot": 1000,
                "slotted": slotted},
        "harq": {"max_transmissions": 1, "combining": "none"},
    })


@pytest.mark.parametrize("slotted", [False, True])
def test_md1_waiting_time_matches_closed_form(slotted):
    # Poisson frames (rate 500/s), one block each, served in D = 1 ms by one channel: M/D/1
    # with rho = 0.5. Mean wait before transmission (Pollaczek-Khinchine):
    #   W = rho D / (2 (1 - rho)) = 0.5 ms.
    # Slotted (service only at slot starts) is M/D/1 with repeated vacations of one slot:
    #   W = rho D / (2 (1 - rho)) + D / 2 = 1.0 ms (decomposition, Fuhrmann & Cooper 1985).
    # An arrival finds the channel idle with probability 1 - rho (PASTA): W = 0 exactly then.
    rate, service_s, num = 500.0, 1e-3, 8_000
    codec = AbstractBlockCodec(lambda s: np.zeros_like(s), 100, 1000, "none")
    run = LinkLayerSimulator(_md1_config(slotted, rate), codec)(
        [FramePayload((100,))] * num, snr_db=10.0, seed=11)
    wait = np.array([f.first_tx_s - f.arrival_s for f in run.frames])
    latency = np.array([f.latency_s for f in run.frames])
    np.testing.assert_allclose(latency - wait, service_s, atol=1e-12)
    rho = rate * service_s
    expected = rho * service_s / (2 * (1 - rho)) + (service_s / 2 if slotted else 0.0)
    batches = wait[: num // 40 * 40].reshape(40, -1).mean(axis=1)  # batch means (correlation)
    stderr = batches.std(ddof=1) / np.sqrt(batches.size)
    assert stderr < 0.06 * expected
    assert abs(wait.mean() - expected) < 4 * stderr
    if not slotted:
        idle = (wait < 1e-12)[: num // 40 * 40].reshape(40, -1).mean(axis=1)
        idle_stderr = idle.std(ddof=1) / np.sqrt(idle.size)
        assert abs(idle.mean() - (1 - rho)) < 4 * idle_stderr


def test_same_seed_same_event_log(tmp_path):
    cfg = LinkLayerConfig.model_validate({
        "source": {"arrival": "poisson", "fps": 400.0},
        "air": {"mode": "symbol_rate", "symbol_rate_baud": 1e6, "symbols_per_slot": 1000},
        "fading": {"model": "jakes", "doppler_hz": 50.0},
        "harq": {"max_transmissions": 3, "combining": "chase", "feedback_delay_s": 1e-3},
    })

    def sigmoid_bler(snr_db):
        return 1.0 / (1.0 + np.exp(2.0 * (snr_db - 8.0)))

    def once(seed):
        codec = AbstractBlockCodec(sigmoid_bler, 400, 500, "chase")
        return LinkLayerSimulator(cfg, codec)([FramePayload((2000,))] * 30, 8.0, seed=seed)

    a, b, c = once(5), once(5), once(6)
    assert a.events == b.events and a.frames == b.frames
    assert a.events != c.events
    paths_a = a.write(tmp_path / "a")
    paths_b = b.write(tmp_path / "b")
    assert paths_a["events"].read_bytes() == paths_b["events"].read_bytes()
    rows = read_csv(paths_a["events"])
    assert len(rows) == len(a.events)
    assert {r["event"] for r in rows} >= {"arrival", "tx", "decode", "ack", "delivered",
                                          "compute_end"}
    # the log is in time order and the counts agree with the metrics
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times)
    assert sum(r["event"] == "tx" for r in rows) == a.metrics.block_transmissions
    assert sum(r["event"] == "nack" for r in rows) >= 1
