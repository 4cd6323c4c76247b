"""HARQ receivers: soft buffers, LLR combining and the block codecs the event engine calls.

A *block codec* turns one batch of transport-block transmissions (payload bits, attempt
number, channel coefficient, SNR) into outcomes (CRC flag, decided bits). The engine calls it
with every transmission whose channel state is known and whose outcome is due, so many blocks
go through the PHY per call. Two codecs:

* `PhyBlockCodec`: the real PHY (`phy.link.PhyLink`): encode the redundancy version, map,
  ``y = h x + w``, equalise, demap, combine the LLRs with the block's earlier transmissions in
  its soft buffer, LDPC-decode, check the CRC.

  - ``none``: each transmission decoded alone (plain ARQ with a CRC).
  - ``chase``: every transmission repeats redundancy version 0; the LLRs are added (maximum
    ratio combining of the bit metrics). For BPSK/QPSK the LLRs are linear in ``y``, so two
    equal-SNR copies decode exactly like one copy at twice the SNR (+3.01 dB).
  - ``ir``: transmission ``i`` sends redundancy version ``rv_sequence[i % len]`` (TS 38.212
    5.4.2.1, Table 5.4.2.1-2, ``I_LBRM = 0``); the soft buffer keeps one LLR row per version
    (repeats of a version are added) and the decoder combines the versions in the circular
    buffer (`PhyLink.decode` with ``rv``: Sionna 2.2's ``LDPC5GEncoder(rv=)`` and
    ``LDPC5GDecoder(harq_mode=True)``, or the fast decoder's equivalent).

* `AbstractBlockCodec`: a link-to-system abstraction: the block error probability is a given
  function of the effective SNR (``none``: this transmission's; ``chase``: the sum of the
  linear SNRs of all transmissions, i.e. MRC). Used for long latency studies and for tests
  whose subject is the timing, not the PHY.

Example:
    >>> import numpy as np, torch
    >>> from phy.link import PhyLink
    >>> from phy.specs import CodingSpec
    >>> codec = PhyBlockCodec(PhyLink("qpsk", CodingSpec(type="ldpc5g", k=128, n=256,
    ...                                                  crc="CRC16")), combining="chase")
    >>> batch = BlockBatch(keys=np.arange(4), bits=np.zeros((4, 112), np.uint8),
    ...                    attempt=np.ones(4, int), h=np.ones(4, complex), snr_db=10.0)
    >>> out = codec.transmit(batch, torch.Generator().manual_seed(0))
    >>> out.crc_ok.tolist(), out.bits_hat.shape
    ([True, True, True, True], (4, 112))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class BlockBatch:
    """Transmissions handed to a block codec in one call (``B`` rows).

    Attributes:
        keys: ``[B]`` int64, block ids (soft-buffer keys; at most one row per block).
        bits: ``[B, k]`` uint8 payload bits (0/1) of each block.
        attempt: ``[B]`` int, 1 for a first transmission, 2 for the first retransmission, ...
        h: ``[B]`` complex128, channel coefficient of the transmission.
        snr_db: mean Es/N0 per data symbol (dB); the instantaneous one is
            ``snr_db + 10 log10 |h|^2``.
    """

    keys: np.ndarray
    bits: np.ndarray
    attempt: np.ndarray
    h: np.ndarray
    snr_db: float


@dataclass(frozen=True)
class BlockOutcome:
    """Result of `BlockCodec.transmit`.

    Attributes:
        crc_ok: ``[B]`` bool, the block decoded with a valid CRC (after combining).
        bits_hat: ``[B, k]`` uint8 decided payload bits.
        rv: ``[B]`` int, redundancy version sent.
    """

    crc_ok: np.ndarray
    bits_hat: np.ndarray
    rv: np.ndarray


class BlockCodec(Protocol):
    """What the event engine needs from a receiver of transport blocks."""

    @property
    def payload_bits_per_block(self) -> int: ...

    @property
    def num_symbols_per_block(self) -> int: ...

    def prepare(self, keys: np.ndarray, bits: np.ndarray) -> None:
        """Optional work on new blocks before they are sent (e.g. encoding), ``bits [B, k]``."""
        ...

    def transmit(self, batch: BlockBatch, generator: torch.Generator) -> BlockOutcome: ...

    def release(self, keys: Sequence[int]) -> None: ...


def redundancy_versions(
    attempt: np.ndarray, combining: str, rv_sequence: Sequence[int]
) -> np.ndarray:
    """Redundancy version of each transmission: ``rv_sequence[(attempt - 1) % len]`` for IR,
    0 otherwise.

    Example:
        >>> redundancy_versions(np.array([1, 2, 3, 4, 5]), "ir", (0, 2, 3, 1)).tolist()
        [0, 2, 3, 1, 0]
    """
    attempt = np.asarray(attempt, dtype=np.int64)
    if combining != "ir":
        return np.zeros_like(attempt)
    seq = np.asarray(rv_sequence, dtype=np.int64)
    return seq[(attempt - 1) % seq.size]


class SoftBuffer:
    """Per-block LLR accumulators: ``[4, n]`` (one row per redundancy version) or ``[1, n]``.

    Args:
        n: coded bits per transmission.
        num_versions: 4 for incremental redundancy, 1 for chase combining.

    Example:
        >>> buf = SoftBuffer(n=3, num_versions=1)
        >>> buf.add([7], torch.zeros(1, dtype=torch.long), torch.ones(1, 3))
        >>> buf.add([7], torch.zeros(1, dtype=torch.long), torch.ones(1, 3))
        >>> buf.rows([7])[:, 0].tolist(), buf.versions(7)
        ([[2.0, 2.0, 2.0]], (0,))
    """

    def __init__(self, n: int, num_versions: int) -> None:
        self.n = n
        self.num_versions = num_versions
        self._llr: dict[int, torch.Tensor] = {}
        self._seen: dict[int, set[int]] = {}

    def __len__(self) -> int:
        return len(self._llr)

    def add(self, keys: Sequence[int], rv: torch.Tensor, llr: torch.Tensor) -> None:
        """Add ``llr [B, n]`` to the rows ``rv [B]`` of the blocks ``keys``."""
        for i, key in enumerate(keys):
            key, r = int(key), int(rv[i])
            row = self._llr.get(key)
            if row is None:
                row = self._llr[key] = llr.new_zeros(self.num_versions, self.n)
                self._seen[key] = set()
            row[r] += llr[i]
            self._seen[key].add(r)

    def rows(self, keys: Sequence[int]) -> torch.Tensor:
        """``[B, num_versions, n]`` accumulated LLRs of ``keys``."""
        return torch.stack([self._llr[int(k)] for k in keys])

    def versions(self, key: int) -> tuple[int, ...]:
        """Sorted redundancy versions received for ``key``."""
        return tuple(sorted(self._seen[int(key)]))

    def release(self, keys: Sequence[int]) -> None:
        """Free the buffers of finished blocks (unknown keys are ignored)."""
        for key in keys:
            self._llr.pop(int(key), None)
            self._seen.pop(int(key), None)


class PhyBlockCodec:
    """Block codec on a `phy.link.PhyLink` with a HARQ soft buffer (see the module docstring).

    Args:
        link: the PHY link (its channel spec is not used; the coefficient comes per batch).
        combining: "none", "chase" or "ir".
        rv_sequence: redundancy versions of transmissions 1, 2, ... (IR only).
        max_blocks_per_call: bound on the rows of one PHY call (memory).
    """

    def __init__(
        self,
        link,
        combining: str = "chase",
        rv_sequence: Sequence[int] = (0, 2, 3, 1),
        max_blocks_per_call: int = 4096,
    ) -> None:
        if combining not in ("none", "chase", "ir"):
            raise ValueError(f"unknown combining {combining!r}; valid: none, chase, ir")
        if combining == "ir":
            if not link.is_coded:
                raise ValueError("incremental redundancy needs an LDPC code")
            try:
                link.encode(torch.zeros(1, link.k), rv=sorted(set(rv_sequence)))
            except ValueError as exc:
                raise ValueError(f"incremental redundancy is not available: {exc}") from exc
        self.link = link
        self.combining = combining
        self.rv_sequence = tuple(int(v) for v in rv_sequence)
        self.max_blocks_per_call = int(max_blocks_per_call)
        self.soft = SoftBuffer(link.n, 4 if combining == "ir" else 1)
        # Coded bits of every block in flight, encoded once at its first transmission.
        self._versions = sorted(set(self.rv_sequence)) if combining == "ir" else [0]
        self._codewords: dict[int, torch.Tensor] = {}
        self.num_calls = 0

    @property
    def payload_bits_per_block(self) -> int:
        return self.link.k

    @property
    def num_symbols_per_block(self) -> int:
        return self.link.num_symbols_per_block

    def transmit(self, batch: BlockBatch, generator: torch.Generator) -> BlockOutcome:
        """Send, combine and decode every row of ``batch`` (chunks of max_blocks_per_call)."""
        rows = len(batch.keys)
        crc_ok = np.zeros(rows, dtype=bool)
        bits_hat = np.zeros((rows, self.link.k), dtype=np.uint8)
        rv = redundancy_versions(batch.attempt, self.combining, self.rv_sequence)
        for start in range(0, rows, self.max_blocks_per_call):
            part = slice(start, min(rows, start + self.max_blocks_per_call))
            ok, decided = self._transmit_chunk(
                batch.keys[part], batch.bits[part], rv[part], batch.h[part], batch.snr_db,
                generator)
            crc_ok[part], bits_hat[part] = ok, decided
        return BlockOutcome(crc_ok=crc_ok, bits_hat=bits_hat, rv=rv)

    def prepare(self, keys: np.ndarray, bits: np.ndarray) -> None:
        """Encode new blocks in one call (their codewords are cached until `release`)."""
        for start in range(0, len(keys), self.max_blocks_per_call):
            part = slice(start, start + self.max_blocks_per_call)
            payload = torch.from_numpy(np.ascontiguousarray(bits[part])).to(torch.float32)
            self._coded(keys[part], payload)

    def release(self, keys: Sequence[int]) -> None:
        self.soft.release(keys)
        for key in keys:
            self._codewords.pop(int(key), None)

    def _coded(self, keys: np.ndarray, payload: torch.Tensor) -> torch.Tensor:
        """``[B, V, n]`` coded bits of every redundancy version in use, cached per block."""
        missing = [i for i, key in enumerate(keys) if int(key) not in self._codewords]
        if missing:
            if self.combining == "ir":
                fresh = self.link.encode(payload[missing], rv=self._versions)
            else:
                fresh = self.link.encode(payload[missing]).unsqueeze(1)
            fresh = fresh.to(torch.uint8).cpu()
            for j, i in enumerate(missing):
                self._codewords[int(keys[i])] = fresh[j].clone()
        return torch.stack([self._codewords[int(key)] for key in keys]).float()

    def _transmit_chunk(self, keys, bits, rv, h, snr_db, generator):
        link = self.link
        self.num_calls += 1
        payload = torch.from_numpy(np.ascontiguousarray(bits)).to(torch.float32)
        rv_t = torch.from_numpy(rv)
        coded = self._coded(keys, payload)  # [B, V, n]
        pick = torch.as_tensor([self._versions.index(int(r)) for r in rv])
        coded = coded[torch.arange(len(rv)), pick]
        noise_var = 10.0 ** (-float(snr_db) / 10.0)
        llr = link.llr_with_coefficient(coded, noise_var, torch.from_numpy(h), generator)
        if self.combining == "none":
            self.soft.release(keys)
        self.soft.add(keys, rv_t, llr.float().cpu())

        decided = torch.zeros(len(keys), link.k)
        crc_ok = torch.zeros(len(keys), dtype=torch.bool)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(self.soft.versions(key), []).append(i)
        for versions, idx in groups.items():
            buf = self.soft.rows(keys[idx])  # [b, R, n]
            if versions == (0,):
                b_hat, ok = link.decode(buf[:, 0])
            else:
                b_hat, ok = link.decode(buf[:, list(versions)], rv=list(versions))
            decided[idx] = b_hat.float().cpu()
            if ok is None:  # no CRC: genie detection (a real receiver could not tell)
                ok = (b_hat.cpu() == payload[idx]).all(-1)
            crc_ok[idx] = ok.cpu()
        return crc_ok.numpy(), decided.to(torch.uint8).numpy()


class AbstractBlockCodec:
    """Link-to-system abstraction: block errors drawn from ``bler(effective_snr_db)``.

    Args:
        bler_of_snr_db: vectorised map ``[B] float (dB) -> [B] block error probability``.
        payload_bits_per_block, num_symbols_per_block: the transport-block geometry.
        combining: "none" (this transmission's SNR) or "chase" (MRC: linear SNRs added).

    The decided bits are the sent bits when the block passes, and the sent bits with every bit
    flipped when it fails (a failed block counts all its bits as errors).

    Example:
        >>> codec = AbstractBlockCodec(lambda s: (s < 3.0).astype(float), 100, 50, "chase")
        >>> b = BlockBatch(keys=np.array([0]), bits=np.zeros((1, 100), np.uint8),
        ...                attempt=np.array([1]), h=np.ones(1, complex), snr_db=1.0)
        >>> g = torch.Generator().manual_seed(0)
        >>> first = codec.transmit(b, g).crc_ok.tolist()
        >>> b2 = BlockBatch(b.keys, b.bits, np.array([2]), b.h, 1.0)
        >>> first, codec.transmit(b2, g).crc_ok.tolist()  # 1 dB, then 1 dB + 3.01 dB
        ([False], [True])
    """

    def __init__(
        self,
        bler_of_snr_db: Callable[[np.ndarray], np.ndarray],
        payload_bits_per_block: int,
        num_symbols_per_block: int,
        combining: str = "chase",
    ) -> None:
        if combining not in ("none", "chase"):
            raise ValueError(f"AbstractBlockCodec supports combining none or chase, "
                             f"got {combining!r}")
        self.bler_of_snr_db = bler_of_snr_db
        self._k = int(payload_bits_per_block)
        self._num_symbols = int(num_symbols_per_block)
        self.combining = combining
        self._snr_sum: dict[int, float] = {}
        self.num_calls = 0

    @property
    def payload_bits_per_block(self) -> int:
        return self._k

    @property
    def num_symbols_per_block(self) -> int:
        return self._num_symbols

    def prepare(self, keys: np.ndarray, bits: np.ndarray) -> None:
        """Nothing to prepare."""

    def transmit(self, batch: BlockBatch, generator: torch.Generator) -> BlockOutcome:
        self.num_calls += 1
        gain = np.abs(batch.h) ** 2
        snr = 10.0 ** (batch.snr_db / 10.0) * gain
        if self.combining == "chase":
            for i, key in enumerate(batch.keys):
                total = self._snr_sum.get(int(key), 0.0) + float(snr[i])
                self._snr_sum[int(key)] = snr[i] = total
        with np.errstate(divide="ignore"):
            snr_eff_db = 10.0 * np.log10(snr)
        p = np.asarray(self.bler_of_snr_db(snr_eff_db), dtype=np.float64)
        u = torch.rand(len(batch.keys), generator=generator, dtype=torch.float64).numpy()
        ok = u >= p
        bits_hat = np.where(ok[:, None], batch.bits, 1 - batch.bits).astype(np.uint8)
        return BlockOutcome(crc_ok=ok, bits_hat=bits_hat, rv=np.zeros(len(ok), dtype=np.int64))

    def release(self, keys: Sequence[int]) -> None:
        for key in keys:
            self._snr_sum.pop(int(key), None)
