"""GESCO's published semantic-map channel (``channel.type: gesco_compat``), reproduced exactly.

GESCO (Grassucci et al., arXiv 2306.04321; ispamm/GESCO ``image_sample.py::preprocess_input_FDS``)
does not model a physical channel: it adds real Gaussian noise, with a standard deviation looked
up from an *SNR label*, to the one-hot channels of the classes present in the image plus the
instance-edge channel, then filters the noisy maps with a 3x3 average pool followed by a 3x3 max
pool ("fast denoising semantic" block). Absent-class channels stay exactly zero, so the receiver
is told for free which classes are present. The x axis of such results is GESCO's SNR *label*,
not a physical SNR; physical channels live in ``phy/`` and are never mixed with these labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# SNR label -> noise standard deviation (GESCO image_sample.py SNR_DICT; the source calls it "var").
GESCO_SNR_LABEL_TO_SIGMA: dict[int, float] = {
    100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9,
}


def gesco_sigma(snr_label: float) -> float:
    """Noise std of a GESCO SNR label; only the eight published labels exist.

    Example:
        >>> gesco_sigma(10)
        0.36
    """
    key = int(snr_label)
    if key != snr_label or key not in GESCO_SNR_LABEL_TO_SIGMA:
        valid = ", ".join(str(k) for k in sorted(GESCO_SNR_LABEL_TO_SIGMA))
        raise ValueError(f"GESCO SNR label must be one of {valid}, got {snr_label!r}")
    return GESCO_SNR_LABEL_TO_SIGMA[key]


def fds_pool(maps: torch.Tensor) -> torch.Tensor:
    """GESCO's denoising pool: 3x3 average (zero padding counted) then 3x3 max (padding ignored).

    Args:
        maps: float [B, C, H, W].
    Returns:
        float [B, C, H, W].
    """
    avg = F.avg_pool2d(maps, kernel_size=3, stride=1, padding=1, count_include_pad=True)
    return F.max_pool2d(avg, kernel_size=3, stride=1, padding=1)


def present_channels(y: torch.Tensor) -> torch.Tensor:
    """Bool [B, L]: channels holding at least one 1; the last (instance-edge) channel always counts.

    Args:
        y: float [B, L, H, W] one-hot map with the edge channel last.
    """
    present = (y == 1).flatten(2).any(dim=2)
    present[:, -1] = True
    return present


def gesco_compat_channel(y: torch.Tensor, snr_label: float, generator: torch.Generator | None = None,
                         noise: list[torch.Tensor] | None = None, pool: bool = True) -> torch.Tensor:
    """Corrupt a one-hot map exactly as GESCO's sampling code does.

    For every image, ``randn(n_present, H, W) * sigma`` is drawn (in that shape, so a generator
    seeded like GESCO's global seed reproduces its numbers) and added to the present channels;
    the result is filtered by ``fds_pool`` (GESCO hard-codes it) and absent channels are zero.

    Args:
        y: float [B, L, H, W], one-hot classes then the instance-edge channel.
        snr_label: one of GESCO's labels (1, 5, 10, 15, 20, 25, 30, 100).
        generator: random generator for the noise.
        noise: optional per-image noise tensors [n_present, H, W] to add instead of drawing
            (already scaled; used to replay published vectors).
        pool: apply the FDS pool (GESCO always does).
    Returns:
        float [B, L, H, W], the map the receiver conditions on.

    Example:
        >>> y = torch.zeros(1, 3, 4, 4); y[0, 0] = 1
        >>> out = gesco_compat_channel(y, 100)
        >>> bool(out[0, 1].abs().max() == 0)   # absent class stays zero
        True
    """
    sigma = gesco_sigma(snr_label)
    present = present_channels(y)
    out = torch.zeros_like(y)
    for b in range(y.shape[0]):
        idx = torch.nonzero(present[b]).flatten()
        kept = y[b, idx]
        if noise is not None:
            added = noise[b].to(kept)
        else:
            added = torch.randn(kept.shape, generator=generator, dtype=kept.dtype,
                                device=kept.device) * sigma
        noisy = kept + added
        out[b, idx] = fds_pool(noisy[None])[0] if pool else noisy
    return out
