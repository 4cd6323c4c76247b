"""The discrete-event link layer: frames, transport blocks, slots, HARQ and receiver compute.

SimPy processes (plain generator functions) run in an `simpy.Environment` created per call;
all state of a run lives in one `_Run` object, so nothing is global:

* ``_source``: frames arrive (periodic or Poisson); each digital stream is cut into transport
  blocks of ``k`` payload bits (the last one zero-padded), each analog stream becomes a run of
  channel uses; both join the transmit queue.
* ``_air`` (transmitter, scheduler and air interface): one transmission per slot. At a slot
  start it first lets every event of the same instant (arrivals, feedback) happen, then fills
  the slot's ``capacity_symbols``: NACKed blocks first (in feedback order), then the queue in
  arrival order (blocks while a HARQ process is free; analog symbols fill any room left). The
  channel coefficient of the slot is drawn from the fading realisation at the slot start.
* ``_receiver`` (one per transmission): decodes ``rx_processing_s`` after the transmission
  ends, then the ACK/NACK reaches the transmitter ``feedback_delay_s`` later.
* ``_compute``: a delivered frame (every block final, every analog symbol received) queues for
  one of ``num_servers`` semantic decoders and occupies it for the compute time.

Vectorised PHY: outcomes are computed lazily. Every block transmission joins a pending list
when it is sent (its channel coefficient is known then); the list is flushed through the block
codec in one call only when an outcome is needed: at an ACK/NACK instant (the transmitter
decides on a retransmission), or at a decode instant that may complete a frame (every block of
the frame decoded or final). A call therefore carries every block sent since the previous one:
all blocks of a slot (several slots at the start of a burst) with HARQ, whole frames without.
A frame's blocks are encoded in one call when the frame arrives (`BlockCodec.prepare`). A
retransmission is never in the list with its own earlier copy (it is only sent after that
copy's feedback). Decode events carry their own decode instants, whatever the flush time; the
log is sorted by time.

Times are seconds; ``snr_db`` is the mean Es/N0 per data symbol (``E|h|^2 = 1``); a
transmission's instantaneous SNR is ``snr_db + 10 log10 |h|^2``.

Example:
    >>> import numpy as np
    >>> from link.des.config import LinkLayerConfig
    >>> from link.des.harq import AbstractBlockCodec
    >>> cfg = LinkLayerConfig.model_validate({"source": {"fps": 250},
    ...     "air": {"mode": "symbol_rate", "symbol_rate_baud": 1e6, "symbols_per_slot": 1000}})
    >>> codec = AbstractBlockCodec(lambda s: np.zeros_like(s), 400, 500)  # never fails
    >>> run = LinkLayerSimulator(cfg, codec)([FramePayload((1000,))] * 3, snr_db=10.0, seed=0)
    >>> # a frame every 4 ms, 3 blocks of 500 symbols each, 2 blocks per 1 ms slot
    >>> [round(f.latency_s * 1e3, 3) for f in run.frames], run.metrics.residual_bler
    ([2.0, 2.0, 2.0], 0.0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simpy
import torch

from link.des.config import LinkLayerConfig
from link.des.fading import FadingModel, build_fading
from link.des.harq import BlockBatch, BlockCodec, redundancy_versions
from link.des.metrics import (
    EventRecord,
    FrameRecord,
    LinkLayerMetrics,
    compute_metrics,
    write_events_csv,
    write_frames_csv,
)

# Slot-boundary tolerance, as a fraction of a slot (float times of events that coincide).
_SLOT_TOL = 1e-9


@dataclass(frozen=True)
class FramePayload:
    """What one frame (image) asks the link to carry.

    Attributes:
        digital_bits: one entry per digital stream: a bit count (random payload bits are
            drawn) or a ``[num_bits]`` uint8 0/1 array.
        analog: channel uses of the analog streams (an int), or the ``[N]`` complex symbols
            themselves (normalised to unit mean power on air, returned equalised).
    """

    digital_bits: tuple[int | np.ndarray, ...] = ()
    analog: int | np.ndarray = 0


@dataclass(frozen=True)
class DeliveredFrame:
    """What the receiver hands to the semantic decoder for one frame.

    Attributes:
        frame: frame index.
        bits_hat: per digital stream, ``[num_bits]`` uint8 decided bits.
        stream_ok: per digital stream, every block passed its CRC.
        analog_h: ``[N]`` complex128, channel coefficient seen by each analog symbol.
        analog_hat: ``[N]`` complex equalised symbols (input scale), or None when only a
            count of channel uses was given.
        analog_noise_var: ``[N]`` float64 noise variance of ``analog_hat``, or None.
    """

    frame: int
    bits_hat: tuple[np.ndarray, ...]
    stream_ok: tuple[bool, ...]
    analog_h: np.ndarray
    analog_hat: np.ndarray | None
    analog_noise_var: np.ndarray | None


@dataclass(frozen=True)
class LinkLayerRun:
    """Everything one simulated point produced.

    Attributes:
        events: the event log, in the order events happened.
        frames: one `FrameRecord` per frame (arrival, delivery, decode end, latency, ...).
        delivered: per frame, what the semantic decoder receives (None unless
            ``keep_data``).
        metrics: per-point summary (latency percentiles, goodput, residual BLER, ...).
        num_phy_calls: block-codec calls made (vectorisation: blocks per call =
            transmissions / calls).
    """

    events: tuple[EventRecord, ...]
    frames: tuple[FrameRecord, ...]
    delivered: tuple[DeliveredFrame, ...] | None
    metrics: LinkLayerMetrics
    num_phy_calls: int

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``events.csv`` and ``frames.csv`` into ``folder``; returns their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"events": folder / "events.csv", "frames": folder / "frames.csv"}
        write_events_csv(self.events, paths["events"])
        write_frames_csv(self.frames, paths["frames"])
        return paths


# ------------------------------------------------------------------------------ run state


@dataclass(eq=False)
class _Block:
    id: int
    frame: int
    stream: int
    index: int
    bits: np.ndarray  # [k] uint8, zero-padded
    num_bits: int  # payload bits of the stream inside this block
    attempts: int = 0
    state: str = "queued"  # queued, on_air, decoded, failed (awaiting feedback), final
    ok: bool = False
    bits_hat: np.ndarray | None = None


@dataclass(eq=False)
class _Analog:
    frame: int
    total: int
    sent: int = 0


@dataclass(eq=False)
class _Frame:
    id: int
    arrival_s: float
    deadline_s: float
    blocks: list[_Block]
    stream_sizes: list[int]
    analog_total: int
    analog_symbols: np.ndarray | None
    blocks_left: int
    analog_left: int
    analog_h: np.ndarray
    settled: int = 0  # blocks decoded (outcome not yet looked at) or final
    undigested: list = field(default_factory=list)
    transmissions: int = 0
    channel_uses: int = 0
    first_tx_s: float = math.nan
    delivered_s: float = math.nan
    compute_start_s: float = math.nan
    decode_end_s: float = math.nan
    analog_hat: np.ndarray | None = None
    analog_noise_var: np.ndarray | None = None


@dataclass(eq=False)
class _Tx:
    frame: _Frame
    slot: int
    start_s: float
    h: complex
    block: _Block | None = None
    attempt: int = 0
    rv: int = 0
    offset: int = 0  # analog: first symbol
    length: int = 0  # analog: symbols
    end_s: float = math.nan
    decode_s: float = math.nan
    ok: bool | None = None
    digested: bool = False


@dataclass(eq=False)
class _Run:
    env: simpy.Environment
    config: LinkLayerConfig
    codec: BlockCodec
    snr_db: float
    compute_time_s: float
    keep_data: bool
    fading: object
    generator: torch.Generator
    bits_rng: np.random.Generator
    new: deque = field(default_factory=deque)
    retx: deque = field(default_factory=deque)
    pending: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    events: list = field(default_factory=list)
    in_flight: int = 0
    next_block_id: int = 0
    wake: simpy.Event | None = None
    decoders: simpy.Resource | None = None
    num_phy_calls: int = 0
    num_transmissions: int = 0

    # ------------------------------------------------------------- source side

    def admit(self, index: int, payload: FramePayload, now: float) -> _Frame:
        k = self.codec.payload_bits_per_block
        blocks, sizes = [], []
        for stream, data in enumerate(payload.digital_bits):
            if isinstance(data, np.ndarray):
                bits = np.asarray(data).reshape(-1)
                if bits.size and (bits.min() < 0 or bits.max() > 1):
                    raise ValueError(f"frame {index}, stream {stream}: bits must be 0/1")
                bits = bits.astype(np.uint8)
            else:
                bits = self.bits_rng.integers(0, 2, int(data), dtype=np.uint8)
            sizes.append(bits.size)
            count = math.ceil(bits.size / k)
            padded = np.zeros(count * k, dtype=np.uint8)
            padded[: bits.size] = bits
            for i in range(count):
                blocks.append(_Block(
                    id=self.next_block_id, frame=index, stream=stream, index=i,
                    bits=padded[i * k:(i + 1) * k],
                    num_bits=max(0, min(k, bits.size - i * k))))
                self.next_block_id += 1
        analog_symbols = None
        if isinstance(payload.analog, np.ndarray):
            analog_symbols = np.asarray(payload.analog).reshape(-1).astype(np.complex128)
            analog_total = analog_symbols.size
        else:
            analog_total = int(payload.analog)
        frame = _Frame(
            id=index, arrival_s=now, deadline_s=now + self.config.source.deadline_s,
            blocks=blocks, stream_sizes=sizes, analog_total=analog_total,
            analog_symbols=analog_symbols, blocks_left=len(blocks), analog_left=analog_total,
            analog_h=np.ones(analog_total, dtype=np.complex128))
        self.frames.append(frame)
        if blocks:
            self.codec.prepare(np.array([b.id for b in blocks], dtype=np.int64),
                               np.stack([b.bits for b in blocks]))
        self.events.append(EventRecord(now, "arrival", index))
        self.new.extend(blocks)
        if analog_total:
            self.new.append(_Analog(frame=index, total=analog_total))
        if not blocks and not analog_total:
            self.deliver(frame, now)
        self.notify()
        return frame

    def notify(self) -> None:
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    # ------------------------------------------------------------- transmitter side

    @property
    def harq_on(self) -> bool:
        return self.config.harq.max_transmissions > 1

    def process_free(self) -> bool:
        limit = self.config.harq.num_processes
        return not self.harq_on or limit is None or self.in_flight < limit

    def can_send(self) -> bool:
        if self.retx:
            return True
        if not self.new:
            return False
        return isinstance(self.new[0], _Analog) or self.process_free()

    def next_start(self, now: float) -> tuple[float, int]:
        """Start time and slot index of the next transmission opportunity at or after now."""
        if not self.config.air.slotted:  # the "slot" is the transmission's sequence number
            return now, self.num_transmissions
        slot_s = self.config.air.slot_s
        index = math.ceil(now / slot_s - _SLOT_TOL)
        return index * slot_s, index

    def transmit(self, start_s: float, slot: int) -> tuple[list[_Tx], float]:
        """Fill one transmission; returns its transmissions and end time."""
        air = self.config.air
        self.num_transmissions += 1
        capacity, per_block = air.capacity_symbols, self.codec.num_symbols_per_block
        h = complex(self.fading.at(np.array([start_s]))[0])
        txs: list[_Tx] = []
        used = 0
        while self.retx and used + per_block <= capacity:
            txs.append(self._block_tx(self.retx.popleft(), slot, start_s, h))
            used += per_block
        while self.new and used < capacity:
            item = self.new[0]
            if isinstance(item, _Block):
                if used + per_block > capacity or not self.process_free():
                    break
                self.new.popleft()
                if self.harq_on:
                    self.in_flight += 1
                txs.append(self._block_tx(item, slot, start_s, h))
                used += per_block
            else:
                take = min(item.total - item.sent, capacity - used)
                frame = self.frames[item.frame]
                txs.append(_Tx(frame=frame, slot=slot, start_s=start_s, h=h,
                               offset=item.sent, length=take))
                frame.analog_h[item.sent:item.sent + take] = h
                item.sent += take
                used += take
                if item.sent == item.total:
                    self.new.popleft()
        if air.slotted:
            end_s = (slot + 1) * air.slot_s
        else:
            end_s = start_s + used / air.symbol_rate_baud
        gain_db = 10.0 * math.log10(max(abs(h) ** 2, 1e-300))
        for tx in txs:
            tx.end_s = end_s
            frame = tx.frame
            if math.isnan(frame.first_tx_s):
                frame.first_tx_s = start_s
            frame.transmissions += tx.block is not None
            frame.channel_uses += tx.length if tx.block is None else per_block
            b = tx.block
            self.events.append(EventRecord(
                start_s, "tx", frame.id, None if b is None else b.stream,
                None if b is None else b.index, tx.attempt if b is not None else None, slot,
                tx.rv if b is not None else None, tx.length if b is None else per_block,
                self.snr_db + gain_db))
            if b is not None:
                self.pending.append(tx)
        return txs, end_s

    def _block_tx(self, block: _Block, slot: int, start_s: float, h: complex) -> _Tx:
        block.attempts += 1
        block.state = "on_air"
        harq = self.config.harq
        rv = int(redundancy_versions(np.array([block.attempts]), harq.combining,
                                     harq.rv_sequence)[0])
        return _Tx(frame=self.frames[block.frame], slot=slot, start_s=start_s, h=h,
                   block=block, attempt=block.attempts, rv=rv)

    # ------------------------------------------------------------- receiver side

    def resolve(self) -> None:
        """Send every pending transmission through the block codec in one call."""
        if not self.pending:
            return
        txs, self.pending = self.pending, []
        batch = BlockBatch(
            keys=np.array([t.block.id for t in txs], dtype=np.int64),
            bits=np.stack([t.block.bits for t in txs]),
            attempt=np.array([t.attempt for t in txs], dtype=np.int64),
            h=np.array([t.h for t in txs], dtype=np.complex128),
            snr_db=self.snr_db)
        out = self.codec.transmit(batch, self.generator)
        self.num_phy_calls += 1
        for i, tx in enumerate(txs):
            tx.ok = bool(out.crc_ok[i])
            tx.block.bits_hat = out.bits_hat[i]

    def on_decoded(self, txs: list[_Tx], now: float) -> None:
        """Decode instant of ``txs``. Outcomes are looked at only when they matter now: when a
        frame may be complete (every block decoded or final, every analog symbol received);
        otherwise they wait for the ACK/NACK instant, so that more slots share a PHY call."""
        touched: dict[int, _Frame] = {}
        for tx in txs:
            frame, b = tx.frame, tx.block
            tx.decode_s = now
            if b is None:
                self._receive_analog(tx)
                self.events.append(EventRecord(now, "decode", frame.id, symbols=tx.length))
                frame.analog_left -= tx.length
            else:
                b.state = "decoded"
                frame.settled += 1
                frame.undigested.append(tx)
            touched[frame.id] = frame
        for frame in touched.values():
            if frame.settled == len(frame.blocks) and frame.analog_left == 0:
                if frame.undigested:
                    self.resolve()
                    for tx in frame.undigested:
                        self._digest(tx)
                    frame.undigested = []
                if frame.blocks_left == 0 and math.isnan(frame.delivered_s):
                    self.deliver(frame, now)

    def _digest(self, tx: _Tx) -> None:
        """Apply a decoded transmission's outcome to its block (logged at its decode time)."""
        if tx.digested:
            return
        if tx.ok is None:
            raise RuntimeError("internal: a transmission was digested before the PHY ran")
        tx.digested = True
        frame, b = tx.frame, tx.block
        self.events.append(EventRecord(tx.decode_s, "decode", frame.id, b.stream, b.index,
                                       tx.attempt, tx.slot, tx.rv, ok=tx.ok))
        if tx.ok or b.attempts >= self.config.harq.max_transmissions:
            b.state, b.ok = "final", tx.ok
            self.codec.release([b.id])
            frame.blocks_left -= 1
        else:
            b.state = "failed"
            frame.settled -= 1

    def on_feedback(self, txs: list[_Tx], now: float) -> None:
        """ACK/NACK of ``txs`` reach the transmitter."""
        self.resolve()
        for tx in txs:
            b = tx.block
            if b is None:
                continue
            self._digest(tx)
            self.events.append(EventRecord(now, "ack" if tx.ok else "nack", tx.frame.id,
                                           b.stream, b.index, tx.attempt, tx.slot, tx.rv,
                                           ok=tx.ok))
            if b.state == "final":
                self.in_flight -= 1
            else:
                self.retx.append(b)
        for tx in txs:
            if tx.block is not None and tx in tx.frame.undigested:
                tx.frame.undigested.remove(tx)
        self.notify()

    def _receive_analog(self, tx: _Tx) -> None:
        frame = tx.frame
        if frame.analog_symbols is None:
            return
        if frame.analog_hat is None:
            x = frame.analog_symbols
            frame.analog_hat = np.zeros_like(x)
            frame.analog_noise_var = np.zeros(x.size)
        x = frame.analog_symbols
        power = max(float(np.mean(np.abs(x) ** 2)), np.finfo(np.float64).tiny)
        part = slice(tx.offset, tx.offset + tx.length)
        no = 10.0 ** (-self.snr_db / 10.0)
        w = torch.randn(tx.length, generator=self.generator, dtype=torch.complex128).numpy()
        h = tx.h if abs(tx.h) > 0 else complex(np.finfo(np.float64).tiny)
        y = h * x[part] / math.sqrt(power) + math.sqrt(no) * w
        frame.analog_hat[part] = y / h * math.sqrt(power)
        frame.analog_noise_var[part] = no / abs(h) ** 2 * power

    def deliver(self, frame: _Frame, now: float) -> None:
        frame.delivered_s = now
        ok = all(b.ok for b in frame.blocks)
        self.events.append(EventRecord(now, "delivered", frame.id, ok=ok))
        self.env.process(_compute(self.env, self, frame))


# ------------------------------------------------------------------------------ processes


def _source(env: simpy.Environment, run: _Run, payloads: Sequence[FramePayload],
            arrivals_s: np.ndarray):
    for index, (payload, t) in enumerate(zip(payloads, arrivals_s)):
        if t > env.now:
            yield env.timeout(float(t) - env.now)
        run.admit(index, payload, float(t))


def _air(env: simpy.Environment, run: _Run):
    while True:
        if not run.can_send():
            run.wake = env.event()
            yield run.wake
            run.wake = None
        start_s, slot = run.next_start(env.now)
        if start_s > env.now:
            yield env.timeout(start_s - env.now)
        # Let every event of this instant (arrivals, feedback) happen before the slot is filled.
        yield env.timeout(0)
        if not run.can_send():
            continue
        txs, end_s = run.transmit(start_s, slot)
        env.process(_receiver(env, run, txs, end_s))
        yield env.timeout(max(0.0, end_s - env.now))


def _receiver(env: simpy.Environment, run: _Run, txs: list[_Tx], end_s: float):
    harq = run.config.harq
    decode_s = end_s + harq.rx_processing_s
    yield env.timeout(max(0.0, decode_s - env.now))
    run.on_decoded(txs, decode_s)
    if any(tx.block is not None for tx in txs):
        if run.harq_on:
            feedback_s = decode_s + harq.feedback_delay_s
            if harq.feedback_delay_s > 0:
                yield env.timeout(max(0.0, feedback_s - env.now))
            run.on_feedback(txs, feedback_s)


def _compute(env: simpy.Environment, run: _Run, frame: _Frame):
    with run.decoders.request() as request:
        yield request
        frame.compute_start_s = env.now
        run.events.append(EventRecord(env.now, "compute_start", frame.id))
        yield env.timeout(run.compute_time_s)
        frame.decode_end_s = env.now
    met = frame.decode_end_s <= frame.deadline_s + 1e-12
    run.events.append(EventRecord(env.now, "compute_end", frame.id, ok=met))


# ------------------------------------------------------------------------------ simulator


def arrival_times(config: LinkLayerConfig, num_frames: int, rng: np.random.Generator
                  ) -> np.ndarray:
    """Frame arrival instants (s): ``i / fps`` or a Poisson process of rate ``fps``.

    Example:
        >>> cfg = LinkLayerConfig.model_validate({"source": {"fps": 4}})
        >>> arrival_times(cfg, 3, np.random.default_rng(0)).tolist()
        [0.0, 0.25, 0.5]
    """
    src = config.source
    if src.arrival == "periodic":
        return np.arange(num_frames, dtype=np.float64) / src.fps
    return np.cumsum(rng.exponential(1.0 / src.fps, num_frames))


class LinkLayerSimulator:
    """One link-layer point: structure in the constructor, data and conditions in the call.

    Args:
        config: the `LinkLayerConfig`.
        codec: a block codec (`link.des.harq.PhyBlockCodec` over a `PhyLink`, or the
            `AbstractBlockCodec`); its combining must match ``config.harq.combining``.

    Call ``sim(payloads, snr_db, seed, compute_time_s=None, keep_data=False)``:
        payloads: one `FramePayload` per frame. snr_db: mean Es/N0 per data symbol (dB).
        seed: int; arrivals, payload bits, fading and noise all derive from it, so the same
        seed gives the same event log. compute_time_s: the semantic decoder's measured time
        per image (required when ``compute.mode == "measured"``). keep_data: return the
        decoded bits / symbols per frame (`DeliveredFrame`).
        Returns `LinkLayerRun`.
    """

    def __init__(self, config: LinkLayerConfig, codec: BlockCodec) -> None:
        need, have = codec.num_symbols_per_block, config.air.capacity_symbols
        if need > have:
            raise ValueError(f"a transport block needs {need} symbols but a slot carries {have}")
        combining = getattr(codec, "combining", config.harq.combining)
        if config.harq.max_transmissions > 1 and combining != config.harq.combining:
            raise ValueError(f"codec combines with {combining!r} but harq.combining is "
                             f"{config.harq.combining!r}")
        self.config = config
        self.codec = codec
        self.fading_model: FadingModel = build_fading(config.fading, config.air.slot_s)

    def __call__(
        self,
        payloads: Sequence[FramePayload],
        snr_db: float,
        seed: int,
        compute_time_s: float | None = None,
        keep_data: bool = False,
    ) -> LinkLayerRun:
        cfg = self.config
        if cfg.compute.mode == "measured":
            if compute_time_s is None or compute_time_s < 0:
                raise ValueError("compute.mode 'measured' needs compute_time_s >= 0 at call time")
            per_image = float(compute_time_s)
        else:
            if compute_time_s is not None:
                raise ValueError("compute_time_s is only taken with compute.mode 'measured'")
            per_image = cfg.compute.seconds_per_image
        arrival_rng, fading_rng, bits_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
        env = simpy.Environment()
        run = _Run(
            env=env, config=cfg, codec=self.codec, snr_db=float(snr_db),
            compute_time_s=per_image, keep_data=keep_data,
            fading=self.fading_model.realise(fading_rng),
            generator=torch.Generator().manual_seed(seed), bits_rng=bits_rng)
        run.decoders = simpy.Resource(env, capacity=cfg.compute.num_servers)
        arrivals = arrival_times(cfg, len(payloads), arrival_rng)
        env.process(_source(env, run, payloads, arrivals))
        env.process(_air(env, run))
        env.run()
        unfinished = [f.id for f in run.frames if math.isnan(f.decode_end_s)]
        if unfinished or len(run.frames) != len(payloads):
            raise RuntimeError(f"internal: frames {unfinished[:5]} never finished")
        events = tuple(sorted(run.events, key=lambda e: e.time_s))
        frames = tuple(_frame_record(f) for f in run.frames)
        delivered = tuple(_delivered(f) for f in run.frames) if keep_data else None
        return LinkLayerRun(
            events=events, frames=frames, delivered=delivered,
            metrics=compute_metrics(frames), num_phy_calls=run.num_phy_calls)


def _frame_record(frame: _Frame) -> FrameRecord:
    failed = sum(not b.ok for b in frame.blocks)
    errors = 0
    for b in frame.blocks:
        n = b.num_bits
        if n and b.bits_hat is not None:
            errors += int(np.count_nonzero(b.bits_hat[:n] != b.bits[:n]))
    latency = frame.decode_end_s - frame.arrival_s
    return FrameRecord(
        frame=frame.id, arrival_s=frame.arrival_s, deadline_s=frame.deadline_s,
        num_blocks=len(frame.blocks), failed_blocks=failed,
        block_transmissions=frame.transmissions, payload_bits=sum(frame.stream_sizes),
        ok_payload_bits=sum(b.num_bits for b in frame.blocks if b.ok), bit_errors=errors,
        analog_symbols=frame.analog_total, channel_uses=frame.channel_uses,
        first_tx_s=frame.first_tx_s, delivered_s=frame.delivered_s,
        compute_start_s=frame.compute_start_s, decode_end_s=frame.decode_end_s,
        latency_s=latency, ok=failed == 0,
        deadline_met=bool(frame.decode_end_s <= frame.deadline_s + 1e-12))


def _delivered(frame: _Frame) -> DeliveredFrame:
    bits_hat, ok = [], []
    for stream, size in enumerate(frame.stream_sizes):
        blocks = [b for b in frame.blocks if b.stream == stream]
        decided = np.concatenate([np.zeros(0, dtype=np.uint8)] + [
            b.bits_hat if b.bits_hat is not None else np.zeros_like(b.bits) for b in blocks])
        bits_hat.append(decided[:size])
        ok.append(all(b.ok for b in blocks))
    return DeliveredFrame(
        frame=frame.id, bits_hat=tuple(bits_hat), stream_ok=tuple(ok),
        analog_h=frame.analog_h, analog_hat=frame.analog_hat,
        analog_noise_var=frame.analog_noise_var)
