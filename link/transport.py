"""Digital transport: byte streams -> CRC-protected transport blocks -> ``PhyLink`` -> bytes.

A stream of ``num_bits`` bits is cut into ``ceil(num_bits / k)`` transport blocks of ``k``
payload bits (the link's ``k``: the LDPC information length minus its CRC); the last block is
zero-padded. Every block of every stream in a call goes through the PHY in a few vectorised
batches, never one call per block. A stream is delivered intact only when every one of its
blocks passes its CRC; the receiver gets the decoded bytes either way, plus the flag, and the
scheme's policy decides what to do with a failed stream.

SNR: ``snr_db`` is Es/N0 per complex data symbol (the SNR per channel use of a unit-energy
constellation); the Eb/N0 handed to the link is derived from it and the link's spectral
efficiency, so digital and analog streams of one point see the same noise power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DeliveredStream:
    """What the receiver gets for one digital stream.

    Attributes:
        data: decoded bytes (same length as sent), possibly corrupted when ``ok`` is False.
        ok: every transport block passed its CRC (without a CRC: no block had a bit error,
            which a real receiver could not know; links used here always carry a CRC).
        blocks / block_errors: transport blocks sent / failed.
        bits / bit_errors: payload bits sent / wrong after decoding.
        channel_uses: complex data symbols spent on the stream (padding included).
    """

    data: bytes
    ok: bool
    blocks: int
    block_errors: int
    bits: int
    bit_errors: int
    channel_uses: int


def ebno_for_snr(link, snr_db: float) -> float:
    """Eb/N0 (dB, per payload bit) that gives Es/N0 = ``snr_db`` per data symbol on ``link``."""
    return snr_db - 10.0 * math.log10(link.bits_per_symbol_effective) + link.ofdm_overhead_db


def num_blocks(link, num_bits: int) -> int:
    return max(1, math.ceil(num_bits / link.k))


def channel_uses(link, num_bits: int) -> int:
    """Complex data symbols needed to carry ``num_bits`` payload bits on ``link``."""
    return num_blocks(link, num_bits) * link.num_symbols_per_block


class DigitalTransport:
    """Send byte streams over a ``PhyLink`` as CRC-checked transport blocks.

    Args:
        link: a ``phy.link.PhyLink`` (with ``coding.crc`` set so failures are detectable).
        max_blocks_per_call: PHY batch size bound (memory).

    Example:
        >>> import torch
        >>> from phy.link import PhyLink
        >>> from phy.specs import CodingSpec
        >>> link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=256, n=512, crc="CRC24A",
        ...                                   decoder="sionna"))
        >>> out = DigitalTransport(link).send([b"hello", b"x" * 100], 20.0,
        ...                                  torch.Generator().manual_seed(0))
        >>> [(d.data[:5], d.ok, d.blocks) for d in out]
        [(b'hello', True, 1), (b'xxxxx', True, 4)]
    """

    def __init__(self, link, max_blocks_per_call: int = 2048):
        self.link = link
        self.max_blocks_per_call = max_blocks_per_call

    def send(self, streams: Sequence[bytes], snr_db: float, generator: torch.Generator,
             num_bits: Sequence[int] | None = None) -> list[DeliveredStream]:
        """Deliver each stream; ``num_bits[i]`` (default ``8*len``) bits of stream i are sent."""
        k = self.link.k
        sizes = [8 * len(s) if num_bits is None else int(num_bits[i])
                 for i, s in enumerate(streams)]
        counts = [num_blocks(self.link, n) for n in sizes]
        total = sum(counts)
        payload = np.zeros((total, k), dtype=np.uint8)
        row = 0
        for data, n, c in zip(streams, sizes, counts):
            bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n]
            flat = payload[row:row + c].reshape(-1)
            flat[:n] = bits
            row += c
        sent = torch.from_numpy(payload).float()
        decoded = torch.empty_like(sent)
        crc_ok = torch.ones(total, dtype=torch.bool)
        ebno_db = ebno_for_snr(self.link, snr_db)
        for start in range(0, total, self.max_blocks_per_call):
            stop = min(total, start + self.max_blocks_per_call)
            out = self.link(sent[start:stop], ebno_db, generator)
            decoded[start:stop] = out.bits_hat.cpu()
            if out.crc_ok is not None:
                crc_ok[start:stop] = out.crc_ok.cpu()
        wrong = (decoded != sent).sum(dim=1)
        if out.crc_ok is None:
            crc_ok = wrong == 0
        decoded_u8 = decoded.to(torch.uint8).numpy()
        result, row = [], 0
        for data, n, c in zip(streams, sizes, counts):
            bits = decoded_u8[row:row + c].reshape(-1)[:n]
            nbytes = len(data)
            padded = np.zeros(8 * nbytes, dtype=np.uint8)
            padded[:n] = bits
            errors = int((bits != payload[row:row + c].reshape(-1)[:n]).sum())
            failed = int((~crc_ok[row:row + c]).sum())
            result.append(DeliveredStream(
                data=np.packbits(padded).tobytes(), ok=failed == 0, blocks=c,
                block_errors=failed, bits=n, bit_errors=errors,
                channel_uses=c * self.link.num_symbols_per_block))
            row += c
        return result
