"""Semantic runs over the discrete-event link layer (`link.des`): the scenario's ``link_layer``.

Without a ``link_layer`` section a semantic point crosses the channel in one shot
(`link.channel_io.deliver`). With one, `SemanticLinkLayer` carries the same ``Transmission``
through `link.des.LinkLayerSimulator` instead and hands the scheme the same `Delivered` and
`ChannelCounts`, so schemes are unchanged:

* every image is a frame (periodic at ``fps`` or Poisson, with a deadline);
* its digital streams (in ``Transmission.digital_streams()`` order) are cut into CRC-checked
  LDPC transport blocks of the PHY's ``k`` payload bits; many blocks go through the PHY per call
  (`link.des.harq.PhyBlockCodec`); HARQ (chase / IR) up to ``max_transmissions``;
* the flat fading of every slot comes from `link.des.fading` (AWGN, i.i.d., Jakes, Gauss-Markov);
* analog streams take channel uses in slots, see their slot's coefficient, are sent once and come
  back equalised and rescaled, with their noise variance ``N0 P / |h|^2`` (``P``: the row's mean
  power, as in `phy.link.PhyLink.analog`).

Counts: a stream's ``channel_uses`` are its block *transmissions* times the symbols per block,
so retransmissions are charged; ``blocks`` / ``block_errors`` are the stream's blocks and the
blocks still failed after the last transmission (residual); bits and bit errors are the payload
bits after HARQ. ``bpp`` is unchanged (what the source coder produced).

Receiver compute enters the latency after the link: ``compute.mode: model`` uses
``seconds_per_image``; ``measured`` uses the wall time of ``scheme.receive`` per image on the
run's device, known only after the link delivered, so the link runs first and the FCFS decoder
queue is then replayed with the measured time (`with_compute_time`, which reproduces the
engine's ``_compute`` process; checked against it in the tests). Measured times make the
compute events, latencies and deadline misses vary from run to run; the link events do not.

Example:
    >>> import numpy as np, torch
    >>> from link.des.config import LinkLayerConfig
    >>> from phy.link import PhyLink
    >>> from phy.specs import CodingSpec
    >>> from semantic.codecs.payload import Payload, Stream
    >>> from semantic.schemes.base import Transmission
    >>> link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=256, n=512, crc="CRC24A"))
    >>> cfg = LinkLayerConfig.model_validate({"source": {"fps": 40},
    ...     "harq": {"max_transmissions": 1},
    ...     "compute": {"mode": "model", "seconds_per_image": 0.01}})
    >>> tx = Transmission([Payload.of(Stream.digital("image", b"hello" * 20))] * 2)  # 800 bits
    >>> out = SemanticLinkLayer(cfg, link)(tx, snr_db=20.0, size=(8, 8), seed=0)
    >>> d = out.delivered.digital["image"][1]
    >>> d.data[:5], d.ok, d.blocks, out.counts.blocks, out.counts.digital_channel_uses
    (b'hello', True, 4, 8, 2048)
    >>> result = out.finish()
    >>> [round(f.latency_s * 1e3, 2) for f in result.run.frames]  # one 0.5 ms slot + 10 ms compute
    [10.5, 10.5]
"""

from __future__ import annotations

import base64
import heapq
import math
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from link.channel_io import ChannelCounts
from link.des.config import LinkLayerConfig, check_against_link
from link.des.engine import FramePayload, LinkLayerRun, LinkLayerSimulator
from link.des.harq import PhyBlockCodec
from link.des.metrics import EventRecord, compute_metrics
from link.errors import ConfigError
from link.transport import DeliveredStream
from semantic.schemes.base import Delivered, Transmission

# Columns appended to metrics.csv by semantic runs with a link layer (empty without one).
LINK_LAYER_COLUMNS: tuple[str, ...] = (
    "latency_mean_s", "latency_p50_s", "latency_p95_s", "latency_p99_s", "goodput_bps",
    "residual_bler", "mean_transmissions_per_block", "deadline_miss_rate", "deadline_misses",
    "receiver_s_per_image", "blocks_per_phy_call",
)

# The ``channel`` column of a link-layer point names the fading the link layer draws.
_CHANNEL_NAMES = {"awgn": "awgn", "iid": "rayleigh_iid", "jakes": "rayleigh_jakes",
                  "gauss_markov": "rayleigh_gauss_markov"}

_DEADLINE_TOL_S = 1e-12  # as in link.des.engine


def channel_name(config: LinkLayerConfig) -> str:
    """``channel`` column of a link-layer point: ``awgn``, ``rayleigh_jakes``, ..."""
    return _CHANNEL_NAMES[config.fading.model]


# ------------------------------------------------------------------------------ validation


def check_scenario_link_layer(config: LinkLayerConfig, phy: Any, kind: str) -> None:
    """Raise ``ValueError`` (one line, naming the key to change) when the scenario's
    ``link_layer`` cannot run with its ``phy`` section; called at load time.

    Args:
        config: the validated ``link_layer`` section.
        phy: the validated ``phy`` section (`link.config.PhyConfig`).
        kind: the scenario kind (only ``semantic`` runs have frames).
    """
    from link.des.fading import build_fading
    from phy.modulation import num_bits_per_symbol

    if kind != "semantic":
        raise ValueError("a link_layer section needs kind 'semantic' (frames are images)")
    if phy.channel.type != "awgn":
        raise ValueError(f"with a link_layer section the fading is link_layer.fading: set "
                         f"phy.channel.type to 'awgn' (got {phy.channel.type!r})")
    need = math.ceil(phy.coding.n / num_bits_per_symbol(phy.modulation))  # as PhyLink
    have = config.air.capacity_symbols
    if need > have:
        raise ValueError(f"a transport block needs {need} symbols but a slot carries {have}: "
                         "raise link_layer.air.num_prb / air.symbols_per_slot, or lower "
                         "phy.coding.n")
    if config.harq.max_transmissions > 1 and phy.coding.crc is None:
        raise ValueError("HARQ (harq.max_transmissions > 1) needs a CRC: set phy.coding.crc")
    if config.harq.combining == "ir" and phy.coding.type != "ldpc5g":
        raise ValueError("harq.combining 'ir' needs phy.coding.type 'ldpc5g'")
    build_fading(config.fading, config.air.slot_s)  # e.g. Gauss-Markov past the zero of J0


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class LinkLayerResult:
    """A point's link-layer outcome with the receiver compute in its latencies.

    Attributes:
        run: the `link.des.LinkLayerRun` (events, frame records, metrics).
        receiver_s_per_image: semantic decoding time per image that entered the latencies.
        deadline_s: the frames' deadline (s after arrival).
    """

    run: LinkLayerRun
    receiver_s_per_image: float
    deadline_s: float

    def columns(self) -> dict[str, float | int | None]:
        """The `LINK_LAYER_COLUMNS` of this point (None where undefined, e.g. no blocks)."""
        m = self.run.metrics

        def finite(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        calls = self.run.num_phy_calls
        return {
            "latency_mean_s": finite(m.latency_mean_s),
            "latency_p50_s": finite(m.latency_p50_s),
            "latency_p95_s": finite(m.latency_p95_s),
            "latency_p99_s": finite(m.latency_p99_s),
            "goodput_bps": finite(m.goodput_bps),
            "residual_bler": finite(m.residual_bler),
            "mean_transmissions_per_block": finite(m.mean_transmissions_per_block),
            "deadline_miss_rate": m.deadline_miss_rate,
            "deadline_misses": m.deadline_misses,
            "receiver_s_per_image": self.receiver_s_per_image,
            "blocks_per_phy_call": m.block_transmissions / calls if calls else None,
        }

    def stored(self) -> dict[str, Any]:
        """What the store keeps to rewrite the logs and plots: the event log and frame table
        as compressed CSV text, and the latencies."""
        with tempfile.TemporaryDirectory() as tmp:
            paths = self.run.write(tmp)
            texts = {name: _pack(Path(p).read_bytes()) for name, p in paths.items()}
        return {"events_csv": texts["events"], "frames_csv": texts["frames"],
                "latency_s": [float(f.latency_s) for f in self.run.frames],
                "deadline_s": self.deadline_s}


def _pack(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def _unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text))


def with_compute_time(run: LinkLayerRun, seconds_per_image: float, num_servers: int
                      ) -> LinkLayerRun:
    """Replay the semantic decoders' queue of ``run`` with another compute time per image.

    The link events are kept; ``compute_start`` / ``compute_end`` events, the frames' compute
    start, decode end, latency and deadline flag, and the metrics are recomputed. Frames are
    served first come first served in delivery order by ``num_servers`` decoders, as the
    engine's ``_compute`` process does (with a deterministic service time the n-th frame starts
    at ``max(delivery_n, end_(n - servers))``). The log stays sorted by time; at one instant
    the compute events follow the link events (the engine may interleave such ties otherwise).

    Args:
        run: a finished `LinkLayerRun`.
        seconds_per_image: compute time of one frame (s), >= 0.
        num_servers: decoders working in parallel.
    Returns:
        A new `LinkLayerRun`.
    """
    if seconds_per_image < 0 or not math.isfinite(seconds_per_image):
        raise ValueError(f"seconds_per_image must be finite and >= 0, got {seconds_per_image}")
    order = [e.frame for e in run.events if e.event == "delivered"]
    frames = {f.frame: f for f in run.frames}
    free = [0.0] * num_servers  # instants the decoders become free (a heap)
    timed: dict[int, tuple[float, float]] = {}
    for index in order:
        start = max(frames[index].delivered_s, heapq.heappop(free))
        end = start + seconds_per_image
        heapq.heappush(free, end)
        timed[index] = (start, end)
    new_frames, compute_events = [], []
    for f in run.frames:
        start, end = timed[f.frame]
        met = bool(end <= f.deadline_s + _DEADLINE_TOL_S)
        new_frames.append(replace(f, compute_start_s=start, decode_end_s=end,
                                  latency_s=end - f.arrival_s, deadline_met=met))
    for index in order:
        start, end = timed[index]
        compute_events.append(EventRecord(start, "compute_start", index))
        compute_events.append(EventRecord(end, "compute_end", index,
                                          ok=bool(end <= frames[index].deadline_s
                                                  + _DEADLINE_TOL_S)))
    kept = [e for e in run.events if e.event not in ("compute_start", "compute_end")]
    events = tuple(sorted(kept + compute_events, key=lambda e: e.time_s))
    frames_out = tuple(new_frames)
    return LinkLayerRun(events=events, frames=frames_out, delivered=run.delivered,
                        metrics=compute_metrics(frames_out), num_phy_calls=run.num_phy_calls)


@dataclass(frozen=True)
class LinkLayerDelivery:
    """What `SemanticLinkLayer` returns for one batch at one SNR.

    Attributes:
        delivered: the scheme's `Delivered` (as `link.channel_io.deliver` builds it).
        counts: exact `ChannelCounts` (retransmissions included in the channel uses).
        run: the link-layer run (compute at the modelled time, or 0 s in ``measured`` mode
            until `finish` gets the measured time).
        config: the link-layer section.
    """

    delivered: Delivered
    counts: ChannelCounts
    run: LinkLayerRun
    config: LinkLayerConfig

    def finish(self, measured_s_per_image: float | None = None) -> LinkLayerResult:
        """The point's result once the receiver ran: in ``measured`` mode its wall time per
        image (required) enters the latencies; in ``model`` mode the argument is ignored."""
        compute = self.config.compute
        deadline = self.config.source.deadline_s
        if compute.mode == "model":
            return LinkLayerResult(self.run, compute.seconds_per_image, deadline)
        if measured_s_per_image is None:
            raise ValueError("compute.mode 'measured' needs the receiver's time per image")
        run = with_compute_time(self.run, float(measured_s_per_image), compute.num_servers)
        return LinkLayerResult(run, float(measured_s_per_image), deadline)


# ------------------------------------------------------------------------------ the bridge


def _stream_bits(data: bytes, num_bits: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:num_bits]


def _final_outcomes(events: Sequence[EventRecord]) -> tuple[dict, dict]:
    """Per (frame, stream): block transmissions, and per (frame, stream, block) the outcome of
    the block's last decode (its final state)."""
    transmissions: dict[tuple[int, int], int] = defaultdict(int)
    last_ok: dict[tuple[int, int, int], bool] = {}
    for e in events:
        if e.stream is None:
            continue
        if e.event == "tx":
            transmissions[(e.frame, e.stream)] += 1
        elif e.event == "decode":
            last_ok[(e.frame, e.stream, e.block)] = bool(e.ok)
    return transmissions, last_ok


class SemanticLinkLayer:
    """Carry a scheme's ``Transmission`` over the discrete-event link layer.

    Args:
        config: the scenario's ``link_layer`` section (`link.des.LinkLayerConfig`).
        link: a `phy.link.PhyLink` with an AWGN channel (the fading is the link layer's) and a
            CRC when HARQ is on.
        max_blocks_per_call: bound on the blocks of one PHY call (memory).

    Call ``layer(transmission, snr_db, size, seed)``:
        transmission: the scheme's output for B images (one frame each).
        snr_db: mean Es/N0 per complex channel use (dB), digital and analog alike.
        size: (H, W) of the images. seed: int; arrivals, fading, noise derive from it.
        Returns `LinkLayerDelivery`.
    """

    def __init__(self, config: LinkLayerConfig, link, max_blocks_per_call: int = 4096) -> None:
        self.config = config
        self.link = link
        self.max_blocks_per_call = int(max_blocks_per_call)
        harq = config.harq
        combining = harq.combining if harq.max_transmissions > 1 else "none"
        try:
            check_against_link(config, link)
            # Built once here so that a code without redundancy versions fails now.
            PhyBlockCodec(link, combining, harq.rv_sequence, self.max_blocks_per_call)
        except ValueError as exc:  # a ConfigError is a ValueError too
            raise ConfigError(str(exc), key="link_layer") from None
        self._combining = combining

    def __call__(self, transmission: Transmission, snr_db: float, size: tuple[int, int],
                 seed: int) -> LinkLayerDelivery:
        cfg = self.config
        num_images = len(transmission.payloads)
        digital_names = transmission.digital_streams()
        analog_names = list(transmission.analog)
        # Per image: the digital streams it carries, in a fixed order (the engine's stream ids).
        carried: list[list[str]] = [
            [n for n in digital_names if n in p.streams] for p in transmission.payloads]
        sent_bits = [[_stream_bits(p.streams[n].data, p.streams[n].num_bits) for n in names]
                     for p, names in zip(transmission.payloads, carried)]
        # Analog rows, each normalised to unit mean power (as PhyLink.analog does per row),
        # concatenated per image; the powers scale the equalised symbols back.
        rows, powers, lengths = [], {}, {}
        for name in analog_names:
            x = transmission.analog[name].detach().cpu().to(torch.complex128).numpy()
            if x.ndim != 2 or x.shape[0] != num_images:
                raise ValueError(f"analog stream {name!r}: expected [{num_images}, N], got "
                                 f"{tuple(x.shape)}")
            p = np.maximum(np.mean(np.abs(x) ** 2, axis=1), np.finfo(np.float64).tiny)
            rows.append(x / np.sqrt(p)[:, None])
            powers[name], lengths[name] = p, x.shape[1]
        payloads = []
        for i in range(num_images):
            analog = (np.concatenate([r[i] for r in rows]) if rows
                      else np.zeros(0, dtype=np.complex128))
            payloads.append(FramePayload(digital_bits=tuple(sent_bits[i]),
                                         analog=analog if analog.size else 0))
        codec = PhyBlockCodec(self.link, self._combining, cfg.harq.rv_sequence,
                              self.max_blocks_per_call)
        measured = cfg.compute.mode == "measured"
        run = LinkLayerSimulator(cfg, codec)(payloads, float(snr_db), int(seed),
                                             compute_time_s=0.0 if measured else None,
                                             keep_data=True)
        delivered, counts = self._delivered(transmission, run, carried, sent_bits, powers,
                                            lengths, float(snr_db), size)
        return LinkLayerDelivery(delivered, counts, run, cfg)

    def _delivered(self, transmission, run, carried, sent_bits, powers, lengths, snr_db, size):
        k, per_block = self.link.k, self.link.num_symbols_per_block
        transmissions, last_ok = _final_outcomes(run.events)
        num_images = len(transmission.payloads)
        digital: dict[str, list[DeliveredStream | None]] = {
            n: [None] * num_images for n in transmission.digital_streams()}
        counts = ChannelCounts()
        for i, frame in enumerate(run.delivered):
            for j, name in enumerate(carried[i]):
                bits, bits_hat = sent_bits[i][j], frame.bits_hat[j]
                nbytes = len(transmission.payloads[i].streams[name].data)
                padded = np.zeros(8 * nbytes, dtype=np.uint8)
                padded[:bits.size] = bits_hat
                blocks = math.ceil(bits.size / k)
                failed = sum(not last_ok[(i, j, b)] for b in range(blocks))
                errors = int(np.count_nonzero(bits_hat != bits))
                uses = transmissions[(i, j)] * per_block
                digital[name][i] = DeliveredStream(
                    data=np.packbits(padded).tobytes(), ok=bool(frame.stream_ok[j]),
                    blocks=blocks, block_errors=failed, bits=int(bits.size), bit_errors=errors,
                    channel_uses=uses)
                counts += ChannelCounts(int(bits.size), errors, blocks, failed, uses, 0,
                                        int(not frame.stream_ok[j]))
        analog, noise_var = {}, {}
        offset = 0
        for name, n in lengths.items():
            part = slice(offset, offset + n)
            hat = np.stack([f.analog_hat[part] for f in run.delivered])
            var = np.stack([f.analog_noise_var[part] for f in run.delivered])
            p = powers[name][:, None]
            analog[name] = torch.from_numpy((hat * np.sqrt(p)).astype(np.complex64))
            noise_var[name] = torch.from_numpy((var * p).astype(np.float32))
            counts += ChannelCounts(analog_channel_uses=num_images * n)
            offset += n
        return Delivered(digital=digital, analog=analog, analog_noise_var=noise_var,
                         snr_db=snr_db, size=size), counts


# ------------------------------------------------------------------------------ reports


def log_folder(row: dict[str, Any]) -> str:
    """``link_layer/<scheme>/snr_<x>dB-<id>`` of a metrics row (relative to the run dir)."""
    return f"link_layer/{row['scheme']}/snr_{float(row['snr_db']):g}dB-{row['point_id'][:8]}"


def write_link_layer_logs(run_dir: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """``events.csv`` and ``frames.csv`` of every link-layer point, from the stored rows."""
    from link.results import atomic_write_bytes

    written = []
    for row in rows:
        stored = row.get("_link_layer")
        if not stored:
            continue
        folder = Path(run_dir) / log_folder(row)
        for name in ("events", "frames"):
            written.append(atomic_write_bytes(folder / f"{name}.csv",
                                              _unpack(stored[f"{name}_csv"])))
    return written


def plot_latency_cdfs(run_dir: Path, rows: list[dict[str, Any]], title: str = "") -> list[Path]:
    """``plots/latency_cdf.png|pdf``: one panel per scheme, one CDF per SNR (ms, or s past
    10 s), deadline dashed; nothing when no point ran a link layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from link.des.plots import empirical_cdf
    from link.report import _save

    by_scheme: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("_link_layer"):
            by_scheme[row["scheme"]].append(row)
    if not by_scheme:
        return []
    fig, axes = plt.subplots(1, len(by_scheme), figsize=(3.4 * len(by_scheme) + 0.4, 2.6),
                             squeeze=False, constrained_layout=True)
    for ax, (scheme, srows) in zip(axes[0], by_scheme.items()):
        srows = sorted(srows, key=lambda r: (r["snr_db"], r["point_id"]))
        longest = max(max(r["_link_layer"]["latency_s"]) for r in srows)
        scale, unit = (1e3, "ms") if longest < 10.0 else (1.0, "s")
        for idx, row in enumerate(srows):
            x, p = empirical_cdf(row["_link_layer"]["latency_s"])
            ax.step(x * scale, p, where="post", lw=1, color=f"C{idx % 10}",
                    label=f"{row['snr_db']:g} dB")
        deadlines = sorted({r["_link_layer"]["deadline_s"] for r in srows})
        for d in deadlines:
            ax.axvline(d * scale, color="k", ls="--", lw=0.8)
        ax.set_title(scheme, fontsize=8)
        ax.set_xlabel(f"frame latency ({unit})", fontsize=7)
        ax.set_ylabel("P(latency <= x)", fontsize=7)
        ax.set_ylim(0.0, 1.02)
        spread = [v for r in srows for v in r["_link_layer"]["latency_s"] if v > 0]
        if spread and max(spread) > 50 * min(spread):  # link (ms) and receiver (s) scales
            ax.set_xscale("log")
        ax.tick_params(labelsize=6)
        ax.grid(True, lw=0.3, alpha=0.6)
        ax.legend(fontsize=6, title="SNR", title_fontsize=6)
    if title:
        fig.suptitle(f"{title}: latency (deadline dashed)", fontsize=8)
    plots = Path(run_dir) / "plots"
    written = [_save(fig, plots / f"latency_cdf.{ext}") for ext in ("png", "pdf")]
    plt.close(fig)
    return written


def write_link_layer_report(run_dir: Path, rows: list[dict[str, Any]], title: str = ""
                            ) -> list[Path]:
    """Event logs, frame tables and the latency CDF of a semantic run (empty without a link
    layer)."""
    return [*write_link_layer_logs(run_dir, rows), *plot_latency_cdfs(run_dir, rows, title)]
