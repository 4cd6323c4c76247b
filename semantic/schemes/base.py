"""Types shared by every scheme: what a transmitter emits and what a receiver returns.

A scheme is a small object with two verbs (see ARCHITECTURE.md):

* ``transmit(source: SourceBatch) -> Transmission``: per image, an itemised ``Payload``
  (digital streams as bytes, analog streams counted in channel uses) plus the analog symbols.
* ``receive(delivered: Delivered) -> Reconstruction``: regenerated images, the map the receiver
  conditioned on, and per-image flags (e.g. a stream that failed its CRC).

The runner (``link.semantic_run``) sits between the two: it carries digital streams over the
PHY as CRC-checked LDPC transport blocks and analog symbols over the same channel at the same
SNR, so every scheme is measured on identical channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from link.transport import DeliveredStream
from semantic.codecs.payload import Payload


@dataclass(frozen=True)
class SourceBatch:
    """Images with their ground-truth maps.

    Attributes:
        images: uint8 [B, H, W, 3]. labels: uint8 [B, H, W] trainIds (255 = ignore).
        instances: int32 [B, H, W] (0 = no instance). indices: int [B] data-set indices.
    """

    images: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    indices: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class Transmission:
    """What the transmitter puts on the air for a batch.

    Attributes:
        payloads: one itemised ``Payload`` per image (bits and channel uses, nothing free).
        analog: stream name -> complex64 [B, N] symbols (unnormalised; the channel normalises
            each row to unit power and counts N channel uses per image).
        state: transmitter-side values a scheme's receiver may not use but reports need
            (e.g. the chosen quantiser); never read by ``receive``.
    """

    payloads: list[Payload]
    analog: Mapping[str, torch.Tensor] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)

    def digital_streams(self) -> list[str]:
        names: list[str] = []
        for payload in self.payloads:
            for name, stream in payload.streams.items():
                if stream.kind == "digital" and name not in names:
                    names.append(name)
        return names


@dataclass(frozen=True)
class Delivered:
    """What reaches the receiver.

    Attributes:
        digital: stream name -> per-image ``DeliveredStream`` (bytes + CRC flag + counts);
            images without that stream have ``None``.
        analog: stream name -> complex64 [B, N] equalised symbols (rescaled to the sent power).
        analog_noise_var: stream name -> float32 [B, N] effective noise variance per symbol.
        snr_db: the point's SNR (per channel use), for receivers that use it.
    """

    digital: Mapping[str, list[DeliveredStream | None]]
    analog: Mapping[str, torch.Tensor]
    analog_noise_var: Mapping[str, torch.Tensor]
    snr_db: float
    size: tuple[int, int]


@dataclass(frozen=True)
class Reconstruction:
    """What the receiver produces.

    Attributes:
        images: uint8 [B, H, W, 3] regenerated images.
        maps: uint8 [B, H, W] the map the receiver conditioned on (255 where it had none), or
            None for schemes without a map.
        flags: name -> bool [B] per-image events (e.g. ``map_failed``, ``image_failed``).
    """

    images: np.ndarray
    maps: np.ndarray | None
    flags: Mapping[str, np.ndarray] = field(default_factory=dict)


class Scheme(Protocol):
    """The contract every scheme satisfies (checked by ``tests/semantic/schemes``)."""

    name: str
    uses_generative_receiver: bool

    def transmit(self, source: SourceBatch) -> Transmission: ...

    def receive(self, delivered: Delivered, generator: torch.Generator) -> Reconstruction: ...


def images_to_model(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float32 [B, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def model_to_images(x: torch.Tensor) -> np.ndarray:
    """float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3] (rounded, clipped)."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()
