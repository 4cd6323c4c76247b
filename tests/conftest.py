"""Shared test fixtures: every test starts from seeded, restored global random state."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _seeded_global_state():
    """Seed Python, NumPy and torch before each test and restore their state afterwards."""
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is what tests may touch)
    torch_state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    random.seed(1234)
    np.random.seed(1234)  # noqa: NPY002
    torch.manual_seed(1234)
    yield
    random.setstate(py_state)
    np.random.set_state(np_state)  # noqa: NPY002
    torch.random.set_rng_state(torch_state)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``../shared`` folder (reference vectors, sample data); skip when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED
