"""A shared noise bank: N standard-normal tensors defined by a seed, generated on demand.

Diff-GO^n (Wanninayaka et al., arXiv 2412.06980) shares a pre-sampled bank of Gaussian noises
between transmitter and receiver, so that an index into the bank names the start noise of the
reverse diffusion. The published code holds 1000 tensors of 3x256x512 in RAM (about 1.6 GB).
Here entry ``i`` is a pure function of ``(seed, i, shape)``: a CPU ``torch.Generator`` seeded
with a 64-bit BLAKE2b hash of ``(seed, i)`` draws it. Both ends rebuild any entry in O(1), the
bank is never materialised, and ``size`` may be 2^40 or more. Distinct shapes give distinct
(unrelated) banks; the same ``(seed, size)`` and shape always give the same entries.

The index of an entry crosses the channel as ``index_bits = ceil(log2 size)`` bits, MSB first
(a bank of one entry needs no bits).

Example:
    >>> bank = NoiseBank(seed=7, size=2**40)
    >>> bank.index_bits
    40
    >>> e = bank.entry(123_456_789_012, (3, 4, 8))
    >>> e.shape, e.dtype, bool(torch.equal(e, bank.entry(123_456_789_012, (3, 4, 8))))
    (torch.Size([3, 4, 8]), torch.float32, True)
    >>> bank.decode_index(bank.encode_index(5)) == 5
    True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["NoiseBank"]

# Domain separation of the hash, so bank seeds never collide with other seeded streams.
_DOMAIN = b"semlink-noise-bank/1"


@dataclass(frozen=True)
class NoiseBank:
    """``size`` entries of i.i.d. N(0, 1) noise named by ``seed``.

    Args:
        seed: the bank's seed (shared once by transmitter and receiver), a non-negative int.
        size: number of entries N >= 1 (up to 2^62).
    """

    seed: int
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"bank seed must be a non-negative int, got {self.seed!r}")
        if not isinstance(self.size, int) or not 1 <= self.size <= 2**62:
            raise ValueError(f"bank size must be an int in 1..2^62, got {self.size!r}")

    @property
    def index_bits(self) -> int:
        """Bits that name one entry: ``ceil(log2 size)`` (0 for a one-entry bank)."""
        return (self.size - 1).bit_length()

    def entry_seed(self, index: int) -> int:
        """The 64-bit generator seed of entry ``index``."""
        index = self._check(index)
        digest = hashlib.blake2b(
            _DOMAIN + self.seed.to_bytes(8, "big") + index.to_bytes(8, "big"), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big")

    def entry(self, index: int, shape: Sequence[int]) -> Tensor:
        """Entry ``index`` drawn for ``shape``: float32 tensor of that shape on the CPU."""
        generator = torch.Generator().manual_seed(self.entry_seed(index))
        return torch.randn(tuple(int(s) for s in shape), generator=generator)

    def entries(self, indices: Iterable[int] | Tensor, shape: Sequence[int]) -> Tensor:
        """Entries ``indices`` for ``shape`` stacked: float32 [K, *shape] on the CPU."""
        if isinstance(indices, Tensor):
            indices = indices.reshape(-1).tolist()
        items = [self.entry(int(i), shape) for i in indices]
        if not items:
            return torch.empty((0, *shape))
        return torch.stack(items)

    def encode_index(self, index: int) -> bytes:
        """``index`` as ``index_bits`` bits, MSB first, zero-padded to whole bytes."""
        index = self._check(index)
        n = self.index_bits
        bits = np.array([(index >> (n - 1 - k)) & 1 for k in range(n)], dtype=np.uint8)
        return np.packbits(bits).tobytes()

    def decode_index(self, data: bytes) -> int | None:
        """Inverse of :meth:`encode_index`; None when the bytes are too short or name an index
        outside the bank (possible only when N is not a power of two)."""
        n = self.index_bits
        if len(data) < math.ceil(n / 8):
            return None
        bits = np.unpackbits(np.frombuffer(bytes(data), np.uint8))[:n]
        index = 0
        for b in bits.tolist():
            index = (index << 1) | int(b)
        return index if index < self.size else None

    def random_indices(self, count: int, generator: torch.Generator,
                       include: Sequence[int] = ()) -> list[int]:
        """``count`` distinct indices: ``include`` first, then uniform draws from the bank.

        With ``count >= size`` this is every index in order. Draws come from ``generator``
        (rejection of repeats, so a bank of 2^40 entries costs nothing).
        """
        if count < 1:
            raise ValueError(f"count must be positive, got {count}")
        if count >= self.size:
            return list(range(self.size))
        chosen = [self._check(i) for i in dict.fromkeys(include)][:count]
        seen = set(chosen)
        while len(chosen) < count:
            high = self.size
            draw = int(torch.randint(high, (1,), generator=generator, dtype=torch.int64))
            if draw not in seen:
                seen.add(draw)
                chosen.append(draw)
        return chosen

    def _check(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.size:
            raise IndexError(f"bank index {index} outside 0..{self.size - 1}")
        return index
