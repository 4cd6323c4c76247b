"""``kind: ber`` runs: Monte-Carlo each Eb/N0 point of a sweep through an executor.

A point travels as a `BerTask` (plain data: the configuration's ``phy`` and ``ber`` sections, the
Eb/N0 value and the point seed), so any executor (in process, a process pool, Ray tasks) can run
`compute_ber_point` on it. Each point draws from its own generator seeded from (scenario seed,
point id), and a worker reuses built links from a per-process cache keyed by the ``phy`` section,
so the row of a point does not depend on which other points ran before it or where: resume and
every executor give bit-identical numbers. The calling process is the only writer of the store.

Example:
    >>> from link.config import parse_scenario
    >>> from link.sweep import expand_points
    >>> s = parse_scenario({"name": "t", "kind": "ber", "phy": {"modulation": "bpsk"},
    ...     "sweep": {"ebno_db": [4.0]}, "ber": {"max_bits": 20000, "batch_size": 10}})
    >>> row, wall_s = compute_ber_point(ber_task(expand_points(s)[0], "cpu"))
    >>> row["ebno_db"], row["bits"], row["bits"] == row["blocks"] * row["k"], wall_s > 0
    (4.0, 19456, True, True)
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from link.config import BerConfig, PhyConfig
from link.store import PointRecord, ResultsStore
from link.sweep import Point, canonical_json

if TYPE_CHECKING:
    from link.executors import Executor

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


@dataclass(frozen=True)
class BerTask:
    """One BER point as plain, picklable data: what a worker process or a Ray task receives.

    Attributes:
        point_id: the point's stable id (`link.sweep.Point.point_id`).
        seed: the point's seed, derived from (scenario seed, point id).
        ebno_db: Eb/N0 per payload bit (dB).
        phy: the configuration's resolved ``phy`` section (JSON-compatible dict).
        ber: its ``ber`` section (stopping rule and batch size).
        device: torch device the point runs on ("cpu", "cuda").
    """

    point_id: str
    seed: int
    ebno_db: float
    phy: dict[str, Any]
    ber: dict[str, Any]
    device: str


def ber_task(point: Point, device: str) -> BerTask:
    """The `BerTask` of ``point`` on ``device``."""
    config = point.config
    return BerTask(point.point_id, point.seed, float(point.snr_value),
                   config.phy.model_dump(mode="json"), config.ber.model_dump(mode="json"), device)


# Links built in this process, keyed by (phy section, device); small LRU so long grids stay bounded.
_LINK_CACHE: OrderedDict[str, Any] = OrderedDict()
_LINK_CACHE_SIZE = 16


def cached_phy_link(phy: PhyConfig, device: str):
    """``build_phy_link(phy, device)``, reused across calls in this process.

    A `PhyLink` keeps no state between calls (all randomness comes from the caller's generator),
    so sharing one between points does not change any number.
    """
    key = canonical_json({"phy": phy.model_dump(mode="json"), "device": device})
    link = _LINK_CACHE.get(key)
    if link is None:
        link = build_phy_link(phy, device)
        _LINK_CACHE[key] = link
        while len(_LINK_CACHE) > _LINK_CACHE_SIZE:
            _LINK_CACHE.popitem(last=False)
    else:
        _LINK_CACHE.move_to_end(key)
    return link


def compute_ber_point(task: BerTask) -> tuple[dict[str, Any], float]:
    """Simulate one point; a pure function of ``task`` (safe to run in any process).

    Returns:
        (the ``ber.csv`` row of the point, wall-clock seconds of its Monte-Carlo loop; the
        link build is not counted).
    """
    from phy.ber import simulate_point

    phy = PhyConfig.model_validate(task.phy)
    ber = BerConfig.model_validate(task.ber)
    link = cached_phy_link(phy, task.device)
    generator = torch.Generator(device=task.device).manual_seed(task.seed)
    t0 = time.perf_counter()
    result = simulate_point(link, task.ebno_db, target_bit_errors=ber.target_bit_errors,
                            target_block_errors=ber.target_block_errors,
                            max_bits=ber.max_bits, batch_size=ber.batch_size,
                            generator=generator)
    wall_s = time.perf_counter() - t0
    return ber_row(phy, link, result, task), wall_s


def ber_row(phy: PhyConfig, link: Any, result: Any, task: BerTask) -> dict[str, Any]:
    """The ``ber.csv`` row of one finished point (counts are exact integers)."""
    tdl = phy.channel.type == "tdl"
    return {
        "channel": phy.channel.type,
        "modulation": phy.modulation,
        "num_bits_per_symbol": int(link.num_bits_per_symbol),
        "code": phy.coding.type,
        "k": int(link.k),
        "n": int(link.n),
        "code_rate": float(link.code_rate),
        "ebno_db": float(task.ebno_db),
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
        "point_id": task.point_id,
        "seed": task.seed,
    }


def run_ber_points(points: list[Point], store: ResultsStore, device: str,
                   on_point: Callable[[Point, dict[str, Any], float], None] | None = None,
                   executor: Executor | None = None) -> int:
    """Simulate every point not yet in ``store`` on ``executor``; returns how many ran.

    Points run wherever the executor puts them (in process when it is None); this process
    commits each one to the store, in one transaction, as soon as its result arrives, so a
    killed run loses at most the points still running.
    """
    from link.executors import LocalExecutor

    done = store.finished_ids()
    todo = [p for p in points if p.point_id not in done]
    executor = executor if executor is not None else LocalExecutor()
    tasks = [ber_task(p, device) for p in todo]
    ran = 0
    for index, (row, wall_s) in executor.imap_unordered(compute_ber_point, tasks):
        point = todo[index]
        store.put(PointRecord(point.point_id, point.order, point.config_index, point.seed,
                              point.resolved, row, tasks[index].device, wall_s))
        ran += 1
        if on_point is not None:
            on_point(point, row, wall_s)
    return ran
