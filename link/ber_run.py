"""``kind: ber`` runs: build one ``PhyLink`` per configuration and Monte-Carlo each Eb/N0 point.

Each point is simulated with its own generator seeded from (scenario seed, point id), so the
result of a point does not depend on which other points ran before it (resume and parallel
executors give identical numbers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from link.config import PhyConfig
from link.store import PointRecord, ResultsStore
from link.sweep import Point

BER_COLUMNS: tuple[str, ...] = (
    "channel", "modulation", "num_bits_per_symbol", "code", "k", "n", "code_rate", "ebno_db",
    "esno_db", "bit_errors", "bits", "block_errors", "blocks", "ber", "bler", "ber_ci_low",
    "ber_ci_high", "bler_ci_low", "bler_ci_high", "theory_ber",
    # Extra columns (the contract allows more after the first twenty).
    "fading", "csi", "tdl_model", "decoder", "num_iter", "point_id", "seed",
)


def build_phy_link(phy: PhyConfig, device: str):
    """Translate the validated ``phy`` section into a ``phy.link.PhyLink``."""
    from phy.link import PhyLink
    from phy.specs import ChannelSpec, CodingSpec, OfdmSpec

    coding = CodingSpec(type=phy.coding.type, k=phy.coding.k, n=phy.coding.n,
                        decoder=phy.coding.decoder, num_iter=phy.coding.num_iter,
                        cn_update=phy.coding.cn_update, crc=phy.coding.crc)
    channel = ChannelSpec(**phy.channel.model_dump())
    ofdm = None
    if phy.channel.type == "tdl":
        o = phy.ofdm
        ofdm = OfdmSpec(num_ofdm_symbols=o.num_ofdm_symbols, fft_size=o.fft_size,
                        subcarrier_spacing_hz=o.subcarrier_spacing_hz,
                        cyclic_prefix_length=o.cyclic_prefix_length,
                        num_guard_carriers=tuple(o.num_guard_carriers), dc_null=o.dc_null,
                        pilot_ofdm_symbol_indices=tuple(o.pilot_ofdm_symbol_indices))
    return PhyLink(phy.modulation, coding, channel, ofdm, device=device)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def ber_row(point: Point, link: Any, result: Any) -> dict[str, Any]:
    """The ``ber.csv`` row of one finished point (counts are exact integers)."""
    phy = point.config.phy
    tdl = phy.channel.type == "tdl"
    return {
        "channel": phy.channel.type,
        "modulation": phy.modulation,
        "num_bits_per_symbol": int(link.num_bits_per_symbol),
        "code": phy.coding.type,
        "k": int(link.k),
        "n": int(link.n),
        "code_rate": float(link.code_rate),
        "ebno_db": float(point.snr_value),
        "esno_db": float(result.esno_db),
        "bit_errors": int(result.bit_errors),
        "bits": int(result.bits),
        "block_errors": int(result.block_errors),
        "blocks": int(result.blocks),
        "ber": float(result.ber),
        "bler": float(result.bler),
        "ber_ci_low": float(result.ber_ci_low),
        "ber_ci_high": float(result.ber_ci_high),
        "bler_ci_low": float(result.bler_ci_low),
        "bler_ci_high": float(result.bler_ci_high),
        "theory_ber": _finite_or_none(result.theory_ber),
        "fading": phy.channel.fading if phy.channel.type in ("rayleigh", "rician") else "",
        "csi": phy.channel.csi if tdl else "perfect",
        "tdl_model": phy.channel.tdl_model if tdl else "",
        "decoder": getattr(link, "decoder_name", phy.coding.decoder) if phy.coding.type != "none"
        else "",
        "num_iter": phy.coding.num_iter if phy.coding.type != "none" else "",
        "point_id": point.point_id,
        "seed": point.seed,
    }


def run_ber_points(points: list[Point], store: ResultsStore, device: str,
                   on_point: Callable[[Point, dict[str, Any], float], None] | None = None) -> int:
    """Simulate every point not yet in ``store``; returns how many ran.

    Links are built once per configuration and reused for its SNR points.
    """
    from phy.ber import simulate_point

    done = store.finished_ids()
    links: dict[int, Any] = {}
    ran = 0
    for point in points:
        if point.point_id in done:
            continue
        if point.config_index not in links:
            links[point.config_index] = build_phy_link(point.config.phy, device)
        link = links[point.config_index]
        ber = point.config.ber
        generator = torch.Generator(device=device).manual_seed(point.seed)
        t0 = time.perf_counter()
        result = simulate_point(link, point.snr_value,
                                target_bit_errors=ber.target_bit_errors,
                                target_block_errors=ber.target_block_errors,
                                max_bits=ber.max_bits, batch_size=ber.batch_size,
                                generator=generator)
        wall = time.perf_counter() - t0
        row = ber_row(point, link, result)
        store.put(PointRecord(point.point_id, point.order, point.config_index, point.seed,
                              point.resolved, row, device, wall))
        ran += 1
        if on_point is not None:
            on_point(point, row, wall)
    return ran
