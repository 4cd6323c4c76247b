"""phy tests run torch single-threaded: on a shared 2-core machine, eager multi-threaded
torch slows down several-fold under contention (Sionna API notes, pitfall 19b). The
top-level autouse fixture restores the thread count after each test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
