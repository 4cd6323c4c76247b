"""Discrete-event link layer on SimPy: frames, transport blocks, slots, time-varying fading,
HARQ (chase / incremental redundancy) and receiver compute; see ``docs/link_layer.md``.

The names below load on first use, so that the scenario schema can import
``link.des.config`` without importing torch and SimPy.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "AbstractBlockCodec": "link.des.harq",
    "DeliveredFrame": "link.des.engine",
    "EventRecord": "link.des.metrics",
    "FramePayload": "link.des.engine",
    "FrameRecord": "link.des.metrics",
    "LinkLayerConfig": "link.des.config",
    "LinkLayerMetrics": "link.des.metrics",
    "LinkLayerRun": "link.des.engine",
    "LinkLayerSimulator": "link.des.engine",
    "PhyBlockCodec": "link.des.harq",
    "check_against_link": "link.des.config",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'link.des' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
