"""Monte-Carlo BER/BLER engine: stops on error counts, stores exact counts.

A point runs batches of ``batch_size`` blocks until **both** targets are met (bit errors >=
``target_bit_errors`` AND block errors >= ``target_block_errors``) or ``max_bits`` payload bits
have been simulated (the last batch is shortened so that no more than ``max_bits`` bits are
sent). Rates and confidence intervals are derived from the integer counts at the end.
A curve runs its points in order; point ``i`` draws from a generator seeded with
`point_seed` ``(seed, i)``, so every point is reproducible on its own and independent of the
others (and of how many points precede it).

Example:
    >>> from phy.ber import simulate_curve
    >>> from phy.link import PhyLink
    >>> points = simulate_curve(PhyLink("qpsk"), [0.0, 4.0], target_bit_errors=200,
    ...                         target_block_errors=10, max_bits=10**6, batch_size=200, seed=1)
    >>> [(p.ebno_db, p.bit_errors >= 200, p.bits <= 10**6) for p in points]
    [(0.0, True, True), (4.0, True, True)]
    >>> abs(points[0].ber - points[0].theory_ber) < 0.01
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from phy.link import ErrorCounts, PhyLink
from phy.stats import binomial_ci
from phy.theory import theory_ber

# Uncoded links: about this many bits per batch when no batch size is given.
_AUTO_UNCODED_BATCH_BITS = 2**20
_AUTO_CODED_BATCH_BLOCKS = 200


@dataclass(frozen=True)
class BerPoint:
    """Counts and derived rates of one Eb/N0 point.

    Attributes:
        ebno_db: Eb/N0 per payload bit (dB). esno_db: Es/N0 per data symbol (dB).
        bit_errors, bits, block_errors, blocks: exact counts.
        ber, bler: ``bit_errors / bits``, ``block_errors / blocks`` (nan when nothing ran).
        ber_ci_low, ber_ci_high, bler_ci_low, bler_ci_high: ``1 - alpha`` Clopper-Pearson
            intervals from the counts (the BER one ignores the correlation of bit errors inside
            a block, so it is optimistic for coded or block-fading links).
        theory_ber: closed-form BER (`phy.theory.theory_ber`), None where none applies.
        wall_s: wall-clock seconds of the point.
        stop_reason: "targets" or "max_bits".
    """

    ebno_db: float
    esno_db: float
    bit_errors: int
    bits: int
    block_errors: int
    blocks: int
    ber: float
    bler: float
    ber_ci_low: float
    ber_ci_high: float
    bler_ci_low: float
    bler_ci_high: float
    theory_ber: float | None
    wall_s: float
    stop_reason: str

    def as_row(self) -> dict[str, float | int | str | None]:
        """Flat dict (column -> value) for ber.csv writers."""
        return asdict(self)


def point_seed(seed: int, index: int) -> int:
    """Deterministic 63-bit seed of point ``index`` of a sweep with base ``seed``.

    Uses NumPy's SeedSequence (spawn key = index), so seeds of different points are
    statistically independent streams.

    Example:
        >>> point_seed(7, 0) == point_seed(7, 0) != point_seed(7, 1)
        True
    """
    state = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),)).generate_state(
        2, np.uint32
    )
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def default_batch_size(link: PhyLink) -> int:
    """Blocks per batch when none is given: ~1 Mbit uncoded, 200 blocks coded."""
    if link.is_coded:
        return _AUTO_CODED_BATCH_BLOCKS
    return max(1, _AUTO_UNCODED_BATCH_BITS // link.k)


def simulate_point(
    link: PhyLink,
    ebno_db: float,
    *,
    target_bit_errors: int = 1000,
    target_block_errors: int = 100,
    max_bits: int = 10**8,
    batch_size: int | None = None,
    generator: torch.Generator,
    alpha: float = 0.05,
    progress: Callable[[ErrorCounts], None] | None = None,
) -> BerPoint:
    """Simulate one Eb/N0 point until both error targets or ``max_bits`` are reached.

    Args:
        link: the `PhyLink` to simulate.
        ebno_db: Eb/N0 per payload bit (dB).
        target_bit_errors, target_block_errors: stop once both are reached.
        max_bits: stop after this many payload bits (the last batch is shortened).
        batch_size: blocks per batch (`default_batch_size` when None).
        generator: the only source of randomness.
        alpha: error probability of the confidence intervals.
        progress: called after every batch with the running totals (`ErrorCounts`).

    Returns:
        `BerPoint`.

    Example:
        >>> import torch
        >>> from phy.link import PhyLink
        >>> p = simulate_point(PhyLink("bpsk"), 4.0, target_bit_errors=100,
        ...                    target_block_errors=1, max_bits=10**6, batch_size=100,
        ...                    generator=torch.Generator().manual_seed(0))
        >>> p.stop_reason, p.blocks % 100, p.bits == p.blocks * 256
        ('targets', 0, True)
    """
    if max_bits < link.k:
        raise ValueError(f"max_bits={max_bits} is smaller than one block ({link.k} bits)")
    batch_size = batch_size or default_batch_size(link)
    max_blocks = max_bits // link.k
    bit_errors = bits = block_errors = blocks = 0
    start = time.perf_counter()
    while (bit_errors < target_bit_errors or block_errors < target_block_errors) and (
        blocks < max_blocks
    ):
        counts = link.count_errors(min(batch_size, max_blocks - blocks), ebno_db, generator)
        bit_errors += counts.bit_errors
        bits += counts.bits
        block_errors += counts.block_errors
        blocks += counts.blocks
        if progress is not None:
            progress(ErrorCounts(bit_errors, bits, block_errors, blocks))
    wall_s = time.perf_counter() - start
    reached = bit_errors >= target_bit_errors and block_errors >= target_block_errors
    ber_low, ber_high = binomial_ci(bit_errors, bits, alpha)
    bler_low, bler_high = binomial_ci(block_errors, blocks, alpha)
    reference = theory_ber(link.modulation, link.channel, ebno_db, link.coding)
    return BerPoint(
        ebno_db=float(ebno_db),
        esno_db=float(-10.0 * math.log10(float(link.noise_var(ebno_db)))),
        bit_errors=bit_errors,
        bits=bits,
        block_errors=block_errors,
        blocks=blocks,
        ber=bit_errors / bits if bits else math.nan,
        bler=block_errors / blocks if blocks else math.nan,
        ber_ci_low=ber_low,
        ber_ci_high=ber_high,
        bler_ci_low=bler_low,
        bler_ci_high=bler_high,
        theory_ber=None if reference is None else float(reference),
        wall_s=wall_s,
        stop_reason="targets" if reached else "max_bits",
    )


def simulate_curve(
    link: PhyLink,
    ebno_dbs: Sequence[float],
    *,
    target_bit_errors: int = 1000,
    target_block_errors: int = 100,
    max_bits: int = 10**8,
    batch_size: int | None = None,
    seed: int = 0,
    alpha: float = 0.05,
    stop_when_error_free: bool = False,
    progress: Callable[[int, ErrorCounts], None] | None = None,
) -> list[BerPoint]:
    """Simulate the points of ``ebno_dbs`` in order, point ``i`` seeded by ``point_seed(seed, i)``.

    Args:
        stop_when_error_free: skip the remaining points after a point with no bit error.
        progress: called as ``progress(point_index, running_counts)`` after every batch.
        Others: as in `simulate_point`.

    Returns:
        One `BerPoint` per simulated point (fewer when stopped early).
    """
    points: list[BerPoint] = []
    device = torch.device(link.device)
    for index, ebno_db in enumerate(ebno_dbs):
        generator = torch.Generator(device=device).manual_seed(point_seed(seed, index))
        callback = None if progress is None else (lambda c, i=index: progress(i, c))
        point = simulate_point(
            link,
            float(ebno_db),
            target_bit_errors=target_bit_errors,
            target_block_errors=target_block_errors,
            max_bits=max_bits,
            batch_size=batch_size,
            generator=generator,
            alpha=alpha,
            progress=callback,
        )
        points.append(point)
        if stop_when_error_free and point.bit_errors == 0:
            break
    return points
