"""Per-frame records, per-point link-layer metrics and the CSV event log.

The metric names are the columns that join ``metrics.csv`` of a semantic run (see
`LinkLayerMetrics.row`). Counts are kept next to the rates so confidence intervals can be
computed from them.

Definitions (per point):

* latency: from a frame's arrival to the end of its semantic decoding, ``decode_end_s -
  arrival_s``; p50/p95/p99 by linear interpolation between order statistics.
* goodput: payload bits of blocks that passed their CRC, divided by the active time from the
  first arrival to the last delivery.
* residual BLER: blocks still failed after the last allowed transmission / blocks.
* mean transmissions per block: block transmissions / blocks.
* deadline-miss rate: frames whose decoding ended after ``arrival + deadline_s`` / frames.
* frame error rate: frames with at least one failed block / frames.

Example:
    >>> r = FrameRecord(frame=0, arrival_s=0.0, deadline_s=0.1, num_blocks=2, failed_blocks=0,
    ...                 block_transmissions=3, payload_bits=100, ok_payload_bits=100,
    ...                 bit_errors=0, analog_symbols=0, channel_uses=300, first_tx_s=0.0,
    ...                 delivered_s=0.004, compute_start_s=0.004, decode_end_s=0.005,
    ...                 latency_s=0.005, ok=True, deadline_met=True)
    >>> m = compute_metrics([r])
    >>> m.latency_p50_s, m.mean_transmissions_per_block, m.goodput_bps
    (0.005, 1.5, 25000.0)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np


class EventRecord(NamedTuple):
    """One row of the event log (None where a column does not apply).

    ``event``: arrival, tx, decode, ack, nack, delivered, compute_start, compute_end. ``ok``:
    decode/ack outcome, delivered = every block passed, compute_end = deadline met.
    ``snr_db``: instantaneous Es/N0 of a transmission. ``symbols``: channel uses sent.
    """

    time_s: float
    event: str
    frame: int
    stream: int | None = None
    block: int | None = None
    attempt: int | None = None
    slot: int | None = None
    rv: int | None = None
    symbols: int | None = None
    snr_db: float | None = None
    ok: bool | None = None


@dataclass(frozen=True)
class FrameRecord:
    """One frame's timeline and counts (times in seconds; NaN where a step never happened)."""

    frame: int
    arrival_s: float
    deadline_s: float
    num_blocks: int
    failed_blocks: int
    block_transmissions: int
    payload_bits: int
    ok_payload_bits: int
    bit_errors: int
    analog_symbols: int
    channel_uses: int
    first_tx_s: float
    delivered_s: float
    compute_start_s: float
    decode_end_s: float
    latency_s: float
    ok: bool
    deadline_met: bool


@dataclass(frozen=True)
class LinkLayerMetrics:
    """Per-point summary of a link-layer run (see the module docstring for definitions)."""

    num_frames: int
    num_blocks: int
    latency_mean_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    goodput_bps: float
    residual_bler: float
    residual_ber: float
    mean_transmissions_per_block: float
    deadline_miss_rate: float
    frame_error_rate: float
    failed_blocks: int
    block_transmissions: int
    deadline_misses: int
    channel_uses_per_frame: float

    def row(self) -> dict[str, float | int]:
        """Flat mapping of column name -> value, for ``metrics.csv``."""
        return asdict(self)


def compute_metrics(frames: Sequence[FrameRecord]) -> LinkLayerMetrics:
    """Summarise frame records into `LinkLayerMetrics`."""
    if not frames:
        raise ValueError("no frames to summarise")
    latency = np.array([f.latency_s for f in frames], dtype=np.float64)
    p50, p95, p99 = (float(v) for v in np.percentile(latency, [50, 95, 99]))
    blocks = sum(f.num_blocks for f in frames)
    failed = sum(f.failed_blocks for f in frames)
    transmissions = sum(f.block_transmissions for f in frames)
    bits = sum(f.payload_bits for f in frames)
    errors = sum(f.bit_errors for f in frames)
    misses = sum(not f.deadline_met for f in frames)
    start = min(f.arrival_s for f in frames)
    end = max(f.delivered_s for f in frames)
    ok_bits = sum(f.ok_payload_bits for f in frames)
    span = end - start
    nan = math.nan
    return LinkLayerMetrics(
        num_frames=len(frames),
        num_blocks=blocks,
        latency_mean_s=float(latency.mean()),
        latency_p50_s=p50,
        latency_p95_s=p95,
        latency_p99_s=p99,
        goodput_bps=ok_bits / span if span > 0 else nan,
        residual_bler=failed / blocks if blocks else nan,
        residual_ber=errors / bits if bits else nan,
        mean_transmissions_per_block=transmissions / blocks if blocks else nan,
        deadline_miss_rate=misses / len(frames),
        frame_error_rate=sum(not f.ok for f in frames) / len(frames),
        failed_blocks=failed,
        block_transmissions=transmissions,
        deadline_misses=misses,
        channel_uses_per_frame=sum(f.channel_uses for f in frames) / len(frames),
    )


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def write_events_csv(events: Sequence[EventRecord], path: str | Path) -> None:
    """Write the event log (``EventRecord`` rows) to ``path`` (empty cell = not applicable)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(EventRecord._fields)
        for event in events:
            writer.writerow([_cell(v) for v in event])


def write_frames_csv(frames: Sequence[FrameRecord], path: str | Path) -> None:
    """Write one row per frame to ``path``."""
    names = [f.name for f in fields(FrameRecord)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for frame in frames:
            writer.writerow([_cell(getattr(frame, n)) for n in names])


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Read a CSV written here back as a list of string mappings (for tests and reports)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
