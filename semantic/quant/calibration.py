"""Noise-aware calibration: layer activations recorded along the receiver's own sampling runs.

After Q-Diffusion (Li et al., ICCV 2023: calibration samples spread uniformly over the sampling
trajectory) and Q-GESCO (Pignata et al., arXiv 2410.02491: maps corrupted by the channel at
several SNRs). Here:

1. :func:`calibration_maps`: scenes of the **train** split are sent through GESCO's transmitter
   and the scenario's channel (or GESCO's published corruption) at a few SNRs, image ``i`` at
   ``snr_db[i % len(snr_db)]``, and turned into the receiver's condition exactly as at test time
   (un-pairing, optional presence mask, FDS pool).
2. :func:`collect_statistics`: the full-precision receiver samples images for those maps; hooks
   on every ``Conv1d``/``Conv2d``/``Linear`` record the exact min/max and a random subsample of
   the layer's inputs and outputs at ``num_timesteps`` chain steps spread evenly from the first
   (noisiest) to the last step, in **both** classifier-free guidance passes (conditional and
   all-zero map). SPADE convolutions run once per batch and map (the condition cache), so they
   are recorded for both maps whatever the timestep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from semantic.quant.layers import QUANTISABLE

__all__ = ["CalibrationData", "TensorStats", "calibration_maps", "collect_statistics",
           "trajectory_timesteps"]


@dataclass
class TensorStats:
    """Running statistics of one tensor stream (a layer's input or output).

    Attributes:
        min, max: exact extremes seen. calls: how many tensors were seen.
        samples: float32 chunks, each a random subsample of one tensor.
        timesteps: model timesteps at which tensors were seen (-1: condition cache).
    """

    min: float = float("inf")
    max: float = float("-inf")
    calls: int = 0
    samples: list[Tensor] = field(default_factory=list)
    timesteps: set[int] = field(default_factory=set)

    def update(self, x: Tensor, timestep: int, per_call: int, generator: torch.Generator) -> None:
        flat = x.detach().float().reshape(-1).cpu()
        self.min = min(self.min, float(flat.min()))
        self.max = max(self.max, float(flat.max()))
        self.calls += 1
        self.timesteps.add(timestep)
        if flat.numel() > per_call:
            flat = flat[torch.randint(flat.numel(), (per_call,), generator=generator)]
        self.samples.append(flat.clone())

    def values(self) -> Tensor:
        """float32 [N] all subsampled values."""
        return torch.cat(self.samples) if self.samples else torch.zeros(0)


@dataclass
class CalibrationData:
    """Per-layer statistics of a calibration run.

    Attributes:
        inputs, outputs: qualified layer name -> :class:`TensorStats`.
        timesteps: the model timesteps selected for recording (chain order).
        snr_db: SNR (or GESCO label) of each calibration map.
        num_maps: number of calibration maps.
    """

    inputs: dict[str, TensorStats]
    outputs: dict[str, TensorStats]
    timesteps: tuple[int, ...]
    snr_db: tuple[float, ...] = ()
    num_maps: int = 0


def trajectory_timesteps(receiver, num_timesteps: int) -> tuple[int, ...]:
    """``num_timesteps`` model timesteps spread evenly over the receiver's sampling chain.

    Args:
        receiver: a ``DiffusionReceiver`` (its sampler's respaced chain).
        num_timesteps: how many (capped at the chain length).
    Returns:
        original-indexing timesteps from the noisiest step to the last one.
    """
    chain = receiver.sampler.schedule.timestep_map.tolist()
    n = min(int(num_timesteps), len(chain))
    idx = np.unique(np.round(np.linspace(0, len(chain) - 1, n)).astype(int))
    return tuple(int(chain[i]) for i in sorted(idx, reverse=True))


def calibration_maps(scheme, source, snr_db: Sequence[float], generator: torch.Generator,
                     link=None) -> Tensor:
    """Receiver conditions of ``source``'s maps sent through the channel at a few SNRs.

    Args:
        scheme: a ``GescoScheme`` (its transmitter and ``condition``/``corrupt_compat``).
        source: ``SourceBatch`` of calibration scenes (train split).
        snr_db: SNRs per channel use (physical ``link``) or GESCO labels (``link=None``).
        generator: channel randomness.
        link: a ``phy.link.PhyLink`` for the physical channel; None for ``gesco_compat``.
    Returns:
        float32 [B, L, H, W]: image ``i`` received at ``snr_db[i % len(snr_db)]``.
    """
    from link.channel_io import deliver

    if not snr_db:
        raise ValueError("calibration needs at least one SNR")
    tx = scheme.transmit(source)
    maps = None
    for k, snr in enumerate(snr_db):
        if link is None:
            y = scheme.corrupt_compat(tx, float(snr), generator)
        else:
            delivered, _ = deliver(tx, link, float(snr), source.size, generator)
            y, _ = scheme.condition(delivered)
        if maps is None:
            maps = torch.empty_like(y)
        maps[k::len(snr_db)] = y[k::len(snr_db)]
    assert maps is not None
    return maps


def _quantisable(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, QUANTISABLE)}


@torch.no_grad()
def collect_statistics(receiver, maps: Tensor, num_timesteps: int, generator: torch.Generator,
                       samples_per_call: int = 2048, seed: int = 0) -> CalibrationData:
    """Sample with ``receiver`` on ``maps`` and record every quantisable layer's activations.

    Args:
        receiver: the full-precision ``DiffusionReceiver`` (its ``unet`` is hooked, then left
            unchanged).
        maps: float [N, L, H, W] calibration conditions (:func:`calibration_maps`).
        num_timesteps: chain steps to record (:func:`trajectory_timesteps`).
        generator: the sampling chain's random source.
        samples_per_call: values kept per recorded tensor (exact min/max use all values).
        seed: seed of the subsampling generator.
    Returns:
        :class:`CalibrationData` with inputs and outputs of every layer that ran.
    """
    unet = receiver.unet
    selected = trajectory_timesteps(receiver, num_timesteps)
    wanted = set(selected)
    pick = torch.Generator().manual_seed(seed)
    inputs: dict[str, TensorStats] = {}
    outputs: dict[str, TensorStats] = {}
    # -1 outside a forward: the condition cache (SPADE convolutions), computed once per map.
    state = {"t": -1}
    handles = []

    def pre_unet(_module, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timesteps"]
        t = torch.as_tensor(t).reshape(-1)
        state["t"] = int(t[0])

    def post_unet(_module, _args, _kwargs, _out):
        state["t"] = -1

    def make_hook(name: str):
        def hook(_module, args, out):
            t = state["t"]
            if t != -1 and t not in wanted:
                return
            inputs.setdefault(name, TensorStats()).update(args[0], t, samples_per_call, pick)
            outputs.setdefault(name, TensorStats()).update(out, t, samples_per_call, pick)
        return hook

    handles.append(unet.register_forward_pre_hook(pre_unet, with_kwargs=True))
    handles.append(unet.register_forward_hook(post_unet, with_kwargs=True))
    for name, module in _quantisable(unet).items():
        handles.append(module.register_forward_hook(make_hook(name)))
    try:
        receiver.generate(maps, generator)
    finally:
        for handle in handles:
            handle.remove()
    return CalibrationData(inputs, outputs, selected, num_maps=int(maps.shape[0]))
