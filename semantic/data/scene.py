"""Typed containers shared by every data source: one :class:`Scene`, a stacked :class:`SceneBatch`.

Example:
    >>> import numpy as np
    >>> s = Scene(np.zeros((2, 4, 3), np.uint8), np.zeros((2, 4), np.uint8),
    ...           np.zeros((2, 4), np.int32), index=7)
    >>> stack_scenes([s, s]).images.shape
    (2, 2, 4, 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


class DataError(ValueError):
    """A data source is missing or malformed; the message says what was expected where."""


@dataclass(frozen=True)
class Scene:
    """One image with its dense annotation.

    Attributes:
        image: uint8 [H, W, 3], RGB.
        labels: uint8 [H, W], class ids (trainIds 0..18 or labelIds 0..34); 255 = ignore.
        instances: int32 [H, W], 0 = no instance, otherwise a unique id per countable object
            (Cityscapes convention ``labelId * 1000 + k``).
        index: position of the scene in its source (split-global index for synthetic data).
    """

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    index: int


@dataclass(frozen=True)
class SceneBatch:
    """Scenes stacked along a leading batch axis.

    Attributes:
        images: uint8 [B, H, W, 3].
        labels: uint8 [B, H, W].
        instances: int32 [B, H, W].
        indices: int64 [B].
    """

    images: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


def stack_scenes(scenes: Iterable[Scene]) -> SceneBatch:
    """Stack scenes of equal size into a :class:`SceneBatch` (an empty input is an error)."""
    scenes = list(scenes)
    if not scenes:
        raise ValueError("stack_scenes needs at least one scene")
    return SceneBatch(
        images=np.stack([s.image for s in scenes]),
        labels=np.stack([s.labels for s in scenes]),
        instances=np.stack([s.instances for s in scenes]),
        indices=np.array([s.index for s in scenes], dtype=np.int64),
    )


def resolve_indices(selection: slice | Sequence[int] | np.ndarray | int, length: int) -> list[int]:
    """Turn a slice, an int or a sequence of ints into positions in ``range(length)``.

    Negative positions count from the end, as for a list; out-of-range positions raise IndexError.
    """
    if isinstance(selection, slice):
        return list(range(length))[selection]
    if isinstance(selection, (int, np.integer)):
        selection = [int(selection)]
    out = []
    for i in np.asarray(selection, dtype=np.int64).reshape(-1).tolist():
        j = i + length if i < 0 else i
        if not 0 <= j < length:
            raise IndexError(f"index {i} out of range for a data set of {length} scenes")
        out.append(j)
    return out
