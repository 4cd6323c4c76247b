"""The docstring examples of semantic.quant run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "semantic.quant.quantizer",
    "semantic.quant.layers",
    "semantic.quant.model",
    "semantic.quant.scheme",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
