"""The docstring examples of semantic.data run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "semantic.data",
    "semantic.data.labels",
    "semantic.data.scene",
    "semantic.data.synthetic",
    "semantic.data.maps",
    "semantic.data.preview",
    "semantic.data.transforms",
    "semantic.data.stats",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
