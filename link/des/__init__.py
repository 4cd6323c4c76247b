"""Discrete-event link layer on SimPy: frames, transport blocks, slots, time-varying fading,
HARQ (chase / incremental redundancy) and receiver compute; see ``docs/link_layer.md``."""

from link.des.config import LinkLayerConfig, check_against_link
from link.des.engine import DeliveredFrame, FramePayload, LinkLayerRun, LinkLayerSimulator
from link.des.harq import AbstractBlockCodec, PhyBlockCodec
from link.des.metrics import EventRecord, FrameRecord, LinkLayerMetrics

__all__ = [
    "AbstractBlockCodec",
    "DeliveredFrame",
    "EventRecord",
    "FramePayload",
    "FrameRecord",
    "LinkLayerConfig",
    "LinkLayerMetrics",
    "LinkLayerRun",
    "LinkLayerSimulator",
    "PhyBlockCodec",
    "check_against_link",
]
