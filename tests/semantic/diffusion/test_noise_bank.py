"""The shared noise bank: lazy, deterministic entries, index coding, candidate draws."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import semantic.diffusion.noise_bank as noise_bank_module
from semantic.diffusion.noise_bank import NoiseBank


def test_docstring_examples():
    result = doctest.testmod(noise_bank_module)
    assert result.attempted > 0 and result.failed == 0


def test_entry_is_a_function_of_seed_index_and_shape():
    bank = NoiseBank(seed=3, size=100)
    a = bank.entry(17, (3, 8, 16))
    assert a.shape == (3, 8, 16) and a.dtype == torch.float32
    # Unaffected by the global RNG or by other draws in between.
    torch.manual_seed(99)
    torch.randn(10)
    bank.entry(5, (3, 8, 16))
    assert torch.equal(a, NoiseBank(seed=3, size=100).entry(17, (3, 8, 16)))
    # A bank of another size shares its entries (the seed, not N, names them).
    assert torch.equal(a, NoiseBank(seed=3, size=2**40).entry(17, (3, 8, 16)))
    assert not torch.equal(a, bank.entry(18, (3, 8, 16)))
    assert not torch.equal(a, NoiseBank(seed=4, size=100).entry(17, (3, 8, 16)))
    stacked = bank.entries([17, 18], (3, 8, 16))
    assert stacked.shape == (2, 3, 8, 16) and torch.equal(stacked[0], a)
    assert torch.equal(bank.entries(torch.tensor([17]), (3, 8, 16))[0], a)


def test_huge_bank_is_never_materialised():
    bank = NoiseBank(seed=0, size=2**40)
    last = bank.entry(2**40 - 1, (3, 4, 4))
    assert last.shape == (3, 4, 4) and torch.isfinite(last).all()
    with pytest.raises(IndexError):
        bank.entry(2**40, (3, 4, 4))
    with pytest.raises(IndexError):
        bank.entry(-1, (3, 4, 4))


def test_entries_are_standard_normal():
    # 64 entries x 3072 values; the sample mean has std 1/sqrt(n), the variance ~sqrt(2/n).
    values = NoiseBank(seed=11, size=64).entries(range(64), (3, 32, 32)).flatten().double()
    n = values.numel()
    assert abs(float(values.mean())) < 4 / math.sqrt(n)
    assert abs(float(values.var()) - 1.0) < 4 * math.sqrt(2 / n)
    # Entries are uncorrelated with each other.
    a, b = NoiseBank(seed=11, size=64).entries([0, 1], (3, 32, 32)).flatten(1).double()
    assert abs(float((a * b).mean())) < 4 / math.sqrt(a.numel())


@pytest.mark.parametrize(("size", "bits"), [(1, 0), (2, 1), (3, 2), (16, 4), (17, 5),
                                            (1000, 10), (2**40, 40), (2**40 + 1, 41)])
def test_index_bits_is_ceil_log2(size, bits):
    bank = NoiseBank(seed=0, size=size)
    assert bank.index_bits == bits == (math.ceil(math.log2(size)) if size > 1 else 0)


@pytest.mark.parametrize("size", [2, 5, 16, 1000, 2**40])
def test_index_round_trip(size):
    bank = NoiseBank(seed=0, size=size)
    for index in {0, 1 % size, size // 3, size - 1}:
        data = bank.encode_index(index)
        assert len(data) == math.ceil(bank.index_bits / 8)
        assert bank.decode_index(data) == index


def test_index_coding_is_msb_first_and_rejects_out_of_range():
    bank = NoiseBank(seed=0, size=5)  # 3 bits
    assert bank.encode_index(4) == bytes([0b1000_0000])
    assert bank.encode_index(1) == bytes([0b0010_0000])
    assert bank.decode_index(bytes([0b1110_0000])) is None  # 7 >= 5
    assert bank.decode_index(b"") is None


def test_random_indices():
    bank = NoiseBank(seed=0, size=2**40)
    got = bank.random_indices(8, torch.Generator().manual_seed(1), include=(0,))
    assert got[0] == 0 and len(set(got)) == 8 and all(0 <= i < 2**40 for i in got)
    assert got == bank.random_indices(8, torch.Generator().manual_seed(1), include=(0,))
    assert got != bank.random_indices(8, torch.Generator().manual_seed(2), include=(0,))
    small = NoiseBank(seed=0, size=6)
    assert small.random_indices(10, torch.Generator()) == list(range(6))
    drawn = small.random_indices(5, torch.Generator().manual_seed(0), include=(3,))
    assert drawn[0] == 3 and len(set(drawn)) == 5


def test_bad_arguments():
    with pytest.raises(ValueError):
        NoiseBank(seed=-1, size=4)
    with pytest.raises(ValueError):
        NoiseBank(seed=0, size=0)
    with pytest.raises(ValueError):
        NoiseBank(seed=0, size=4).random_indices(0, torch.Generator())
