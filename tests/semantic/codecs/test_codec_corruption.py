"""Property test: damaged bytes never crash a decoder nor yield a wrong-shaped array.

For every codec, 1000 seeded corruptions of a valid 32x64 encoding (random bit flips across
the stream, bit flips in the first 64 bytes where the headers live, truncations, overwritten
byte runs). Each decode must return without raising, and either ``ok`` with an array of
exactly the expected shape and dtype, or not ``ok`` with no array and an error message.
"""

from __future__ import annotations

import numpy as np
import pytest

from semantic.codecs import IMAGE_CODECS, MAP_CODECS, build_image_codec, build_map_codec
from tests.semantic.codecs.inputs import blocky_labels, smooth_image

NUM_CASES = 1000
CODECS = [("map", name) for name in sorted(MAP_CODECS)] + [
    ("image", name) for name in sorted(IMAGE_CODECS)
]


def corrupt(data: bytes, case: int, rng: np.random.Generator) -> bytes:
    """One seeded corruption of ``data``; the kind cycles with ``case``."""
    damaged = bytearray(data)
    kind = case % 4
    if kind == 0:  # random bit flips anywhere
        for bit in rng.integers(0, 8 * len(damaged), rng.integers(1, 17)):
            damaged[bit >> 3] ^= 1 << (bit & 7)
    elif kind == 1:  # bit flips in the headers
        for bit in rng.integers(0, 8 * min(len(damaged), 64), rng.integers(1, 4)):
            damaged[bit >> 3] ^= 1 << (bit & 7)
    elif kind == 2:  # truncation (possibly to nothing)
        damaged = damaged[: rng.integers(0, len(damaged))]
    else:  # a run of random bytes
        start = rng.integers(0, len(damaged))
        run = rng.integers(1, 33)
        damaged[start : start + run] = rng.integers(0, 256, run, dtype=np.uint8).tobytes()
    return bytes(damaged)


@pytest.mark.parametrize(("kind", "name"), CODECS)
def test_corrupted_bytes_are_reported_not_raised(kind: str, name: str) -> None:
    if kind == "map":
        codec = build_map_codec(name, num_classes=19)
        original = blocky_labels(32, 64, num_classes=19, seed=0)
    else:
        codec = build_image_codec(name)
        original = smooth_image(32, 64, seed=0)
    shape = original.shape
    data = codec.encode(original)
    assert codec.decode(data, shape).ok
    rng = np.random.default_rng([len(name), *name.encode(), int(kind == "map")])
    num_failed = 0
    for case in range(NUM_CASES):
        damaged = corrupt(data, case, rng)
        result = codec.decode(damaged, shape)
        if result.ok:
            assert result.error is None
            assert isinstance(result.array, np.ndarray)
            assert result.array.shape == shape and result.array.dtype == np.uint8
        else:
            assert result.array is None and isinstance(result.error, str) and result.error
            num_failed += 1
        if len(damaged) == 0:
            assert not result.ok
    # the guards do detect damage: every truncated-header and most other cases fail
    assert num_failed > NUM_CASES // 4
