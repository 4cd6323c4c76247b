"""Classifier-free guidance around an SDM-style denoiser (facts §12.7).

The network contract is ``model(x [B,3,H,W], t [B] original timesteps, y [B,L,H,W]) ->
[B,6,H,W]`` (channels 0..2 = ε̂, 3..5 = variance interpolation v); a super-resolution network
also takes ``low_res=[B,3,h,w]``. A network may offer ``precompute_condition(y, low_res=None)``
returning a cache used as ``model(x, t, cache=cache)``; the semantic map is fixed during
sampling, so SPADE then runs once per image batch instead of once per step.

Guidance (SDM / GESCO / SPIC):

- only when the scale ``s > 1.0`` (strict); otherwise one conditional pass;
- null condition = an all-zero map shaped like ``y`` (every channel, instance edges included);
  a super-resolution network keeps its low-res image in the null pass;
- ``ε̂ = ε̂_uncond + s · (ε̂_cond − ε̂_uncond)`` on the ε channels, variance channels from the
  conditional pass.

Example:
    >>> import torch
    >>> net = lambda x, t, y: torch.cat([x * y.mean(), x], dim=1)
    >>> den = GuidedDenoiser(net, guidance_scale=2.0)
    >>> cond = den.prepare(Condition(y=torch.ones(1, 4, 8, 8)))
    >>> den(torch.ones(1, 3, 8, 8), torch.tensor([999]), cond).shape
    torch.Size([1, 6, 8, 8])
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from torch import Tensor

__all__ = [
    "Condition",
    "Denoiser",
    "GuidedDenoiser",
    "ResidualClippedDenoiser",
    "classifier_free_guidance",
]


@dataclass(frozen=True)
class Condition:
    """What the receiver conditions on for one image batch.

    Attributes:
        y: [B, L, H, W] float semantic map (one-hot plus instance edges, possibly noisy).
        low_res: [B, 3, h, w] float in [-1, 1], the coarse image of a super-resolution
            receiver (kept in the null pass), or None.
        cache: ``model.precompute_condition(y, low_res)`` (set by :meth:`GuidedDenoiser.prepare`).
        null_cache: the same for the all-zero map (two-pass guidance).
        joint_cache: the same for ``cat([y, 0])`` (batched guidance).
    """

    y: Tensor
    low_res: Tensor | None = None
    cache: Any = None
    null_cache: Any = None
    joint_cache: Any = None

    @property
    def batch_size(self) -> int:
        return self.y.shape[0]

    def null(self) -> Condition:
        """The guidance null condition: all-zero map, same low-res image, no caches."""
        return Condition(y=torch.zeros_like(self.y), low_res=self.low_res)


class Denoiser(Protocol):
    """What a sampler calls once per step: ``(x_t, t_model, cond) -> model_output``.

    ``t_model`` is the [B] int64 tensor of original timesteps; the output is [B, 6, H, W]
    (or [B, 3, H, W] for a fixed-variance network). ``prepare`` builds per-batch caches.
    """

    def __call__(self, x: Tensor, t: Tensor, cond: Condition) -> Tensor: ...

    def prepare(self, cond: Condition) -> Condition: ...


def classifier_free_guidance(
    cond_output: Tensor, uncond_output: Tensor, guidance_scale: float, eps_channels: int = 3
) -> Tensor:
    """Combine conditional and unconditional outputs (§12.7).

    Args:
        cond_output: [B, C_out, H, W] output of the conditional pass.
        uncond_output: same shape, output of the null-condition pass.
        guidance_scale: s.
        eps_channels: number of leading ε channels (3 for RGB).

    Returns:
        [B, C_out, H, W]: ε channels ``uncond + s · (cond − uncond)``, the rest from
        ``cond_output``.
    """
    eps_c, rest = cond_output[:, :eps_channels], cond_output[:, eps_channels:]
    eps_u = uncond_output[:, :eps_channels]
    eps = eps_u + guidance_scale * (eps_c - eps_u)
    return torch.cat([eps, rest], dim=1)


class GuidedDenoiser:
    """An SDM network with classifier-free guidance, as a :class:`Denoiser`.

    Args:
        model: the network (see the module docstring for the call contract).
        guidance_scale: s; guidance runs only when ``s > 1.0`` (SDM's strict trigger).
        batched: run the conditional and null passes as one forward of batch 2B (faster on
            a GPU, twice the activation memory). The reference runs two separate passes; the
            results agree to float tolerance.
        use_cache: use ``model.precompute_condition`` when the model has it.
        autocast_dtype: run the network under ``torch.autocast`` in this dtype (e.g.
            ``torch.bfloat16`` on a GPU); outputs are returned as float32. None = the model's
            own precision.

    Call:
        ``denoiser(x [B,3,H,W], t [B] int64 original timesteps, cond: Condition)`` →
        [B, 6, H, W] guided output in the model's output dtype.
    """

    def __init__(
        self,
        model: Callable[..., Tensor],
        guidance_scale: float = 1.0,
        *,
        batched: bool = False,
        use_cache: bool = True,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.guidance_scale = float(guidance_scale)
        self.batched = batched
        self.use_cache = use_cache and callable(getattr(model, "precompute_condition", None))
        self.autocast_dtype = autocast_dtype

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)

    def _precompute(self, y: Tensor, low_res: Tensor | None) -> Any:
        with self._autocast(y.device):
            if low_res is None:
                return self.model.precompute_condition(y)  # type: ignore[attr-defined]
            return self.model.precompute_condition(y, low_res=low_res)  # type: ignore[attr-defined]

    def prepare(self, cond: Condition) -> Condition:
        """Precompute the condition caches needed by this denoiser (once per image batch).

        Returns ``cond`` unchanged when the model has no ``precompute_condition`` or caching
        is off.
        """
        if not self.use_cache:
            return cond
        if self.guided and self.batched:
            low = None if cond.low_res is None else torch.cat([cond.low_res, cond.low_res])
            joint = self._precompute(torch.cat([cond.y, torch.zeros_like(cond.y)]), low)
            return replace(cond, joint_cache=joint)
        cache = self._precompute(cond.y, cond.low_res)
        null = self._precompute(torch.zeros_like(cond.y), cond.low_res) if self.guided else None
        return replace(cond, cache=cache, null_cache=null)

    def _forward(
        self, x: Tensor, t: Tensor, y: Tensor, low_res: Tensor | None, cache: Any
    ) -> Tensor:
        with self._autocast(x.device):
            if cache is not None:
                out = self.model(x, t, cache=cache)
            elif low_res is None:
                out = self.model(x, t, y)
            else:
                out = self.model(x, t, y, low_res=low_res)
        return out if self.autocast_dtype is None else out.float()

    def __call__(self, x: Tensor, t: Tensor, cond: Condition) -> Tensor:
        if not self.guided:
            return self._forward(x, t, cond.y, cond.low_res, cond.cache)
        batch = x.shape[0]
        if self.batched:
            low = None if cond.low_res is None else torch.cat([cond.low_res, cond.low_res])
            both = self._forward(
                torch.cat([x, x]),
                torch.cat([t, t]),
                torch.cat([cond.y, torch.zeros_like(cond.y)]),
                low,
                cond.joint_cache,
            )
            out_cond, out_uncond = both[:batch], both[batch:]
        else:
            out_cond = self._forward(x, t, cond.y, cond.low_res, cond.cache)
            out_uncond = self._forward(
                x, t, torch.zeros_like(cond.y), cond.low_res, cond.null_cache
            )
        return classifier_free_guidance(
            out_cond, out_uncond, self.guidance_scale, eps_channels=x.shape[1]
        )


class ResidualClippedDenoiser:
    """A denoiser of a residual super-resolution chain whose x̂_0 is clipped in image space.

    A residual receiver diffuses ``r = k (x_0 - up(low_res))`` (``ReceiverTrainConfig.residual``,
    ``k = residual_scale``).
    Clipping x̂_0 to [-1, 1] is what keeps an ε-network's early, high-noise steps bounded
    (x̂_0 = (x_t - √(1-ᾱ_t) ε̂) / √ᾱ_t divides ε̂'s error by √ᾱ_t ≈ 0.006 at t = 999); for the
    residual the bound is the image's, ``k (-1 - up) <= r̂ <= k (1 - up)``. This wrapper clips r̂ so and
    returns the ε that the clipped r̂ implies, ε = (x_t - √ᾱ_t r̂) / √(1-ᾱ_t), with the
    variance channels unchanged; the sampler then runs with ``clip_denoised=False``.

    Args:
        denoiser: the wrapped denoiser (e.g. :class:`GuidedDenoiser`); its ``prepare`` is used.
        schedule: the *training* chain (the timesteps the denoiser receives index it).
        scale: k, the residual's scale.

    Call: like the wrapped denoiser: ``(x [B,3,H,W], t [B] original timesteps, cond)`` ->
    [B, 6, H, W] float32.
    """

    def __init__(self, denoiser: Callable[..., Tensor], schedule: Any, scale: float = 1.0) -> None:
        self.denoiser = denoiser
        self.scale = float(scale)
        self.alphas_cumprod = schedule.alphas_cumprod.to(torch.float64)

    def prepare(self, cond: Condition) -> Condition:
        prepare = getattr(self.denoiser, "prepare", None)
        return prepare(cond) if callable(prepare) else cond

    def __call__(self, x: Tensor, t: Tensor, cond: Condition) -> Tensor:
        from semantic.diffusion.unet import upsample_low_res

        if cond.low_res is None:
            raise ValueError("a residual chain needs the coarse image (cond.low_res)")
        out = self.denoiser(x, t, cond).float()
        channels = x.shape[1]
        abar = self.alphas_cumprod.to(x.device)[t].view(-1, 1, 1, 1)
        sqrt_a, sqrt_1ma = abar.sqrt(), (1.0 - abar).sqrt()
        xd = x.double()
        r0 = (xd - sqrt_1ma * out[:, :channels].double()) / sqrt_a
        offset = upsample_low_res(cond.low_res.double(), x.shape[-2:])
        r0 = torch.minimum(torch.maximum(r0, self.scale * (-1.0 - offset)),
                           self.scale * (1.0 - offset))
        eps = ((xd - sqrt_a * r0) / sqrt_1ma).float()
        return torch.cat([eps, out[:, channels:]], dim=1)
