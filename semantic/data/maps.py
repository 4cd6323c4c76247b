"""Semantic-map tensors fed to the networks: one-hot labels and instance edges (SDM/GESCO §11).

Example:
    >>> import numpy as np, torch
    >>> inst = np.array([[1, 1, 2], [1, 1, 2]])
    >>> instance_edges(inst).astype(int).tolist()
    [[0, 1, 1], [0, 1, 1]]
    >>> one_hot(torch.tensor([[[0, 255]]]), 2)[0, :, 0].tolist()
    [[1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import numpy as np
import torch

from semantic.data.labels import IGNORE_INDEX


def instance_edges(instances):
    """Instance boundaries: True where a pixel's id differs from any of its 4 neighbours.

    Both pixels of every differing horizontal or vertical pair are marked; border pixels only
    compare their existing neighbours (SDM/GESCO ``get_edges``).

    Args:
        instances: integer array [..., H, W] (NumPy array or torch tensor).

    Returns:
        bool [..., H, W] of the same kind (NumPy in, NumPy out; torch in, torch out).
    """
    if isinstance(instances, torch.Tensor):
        edge = torch.zeros(instances.shape, dtype=torch.bool, device=instances.device)
    else:
        instances = np.asarray(instances)
        edge = np.zeros(instances.shape, dtype=bool)
    dx = instances[..., :, 1:] != instances[..., :, :-1]
    dy = instances[..., 1:, :] != instances[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge


def one_hot(labels, num_classes: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """One-hot encode a label map; ignored pixels get all-zero vectors.

    Args:
        labels: integer [B, H, W] (tensor or array) with values 0..num_classes-1 or ignore_index.
        num_classes: number of channels C.
        ignore_index: label value that becomes all zeros.

    Returns:
        float32 tensor [B, C, H, W] on the input's device.

    Raises:
        ValueError: a label outside 0..C-1 that is not ``ignore_index``.
    """
    lab = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    lab = lab.long()
    valid = lab != ignore_index
    if bool(((lab < 0) | (lab >= num_classes))[valid].any()):
        raise ValueError(f"labels must lie in 0..{num_classes - 1} or equal {ignore_index}")
    safe = torch.where(valid, lab, torch.zeros_like(lab))
    out = torch.zeros((*lab.shape[:-2], num_classes, *lab.shape[-2:]), dtype=torch.float32,
                      device=lab.device)
    out.scatter_(-3, safe.unsqueeze(-3), 1.0)
    out *= valid.unsqueeze(-3)
    return out


def semantic_map(
    labels,
    num_classes: int,
    instances=None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """The SDM-style conditioning map: one-hot labels, plus instance edges as the last channel.

    Args:
        labels: integer [B, H, W]. instances: integer [B, H, W] or None (no edge channel).

    Returns:
        float32 [B, C, H, W], or [B, C + 1, H, W] when ``instances`` is given.
    """
    out = one_hot(labels, num_classes, ignore_index)
    if instances is None:
        return out
    inst = instances if isinstance(instances, torch.Tensor) else torch.as_tensor(np.asarray(instances))
    edges = instance_edges(inst.to(out.device)).to(torch.float32).unsqueeze(-3)
    return torch.cat([out, edges], dim=-3)
