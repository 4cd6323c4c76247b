"""The diffusion receiver: a denoiser, a sampler and guidance composed into one object.

``DiffusionReceiver(unet, sampler="ddim", steps=20, guidance_scale=1.5)`` regenerates images
from a semantic map (and, for super-resolution receivers, a coarse image). Structure (network,
sampler, number of steps, guidance) is fixed at construction; a call takes the condition and a
generator, so the same seed gives the same images. SPADE modulations are computed once per batch
and reused at every step (``GuidedDenoiser`` builds the cache).

Example:
    >>> import torch
    >>> from semantic.diffusion.unet import SDMUNet, UNetConfig, upsample_low_res
    >>> cfg = UNetConfig(image_size=16, model_channels=32, num_res_blocks=1,
    ...                  channel_mult=(1, 1), attention_resolutions=(), num_head_channels=16,
    ...                  num_label_channels=4)
    >>> rx = DiffusionReceiver(SDMUNet(cfg), steps=3)
    >>> y = torch.zeros(2, 4, 16, 16); y[:, 0] = 1
    >>> rx.generate(y, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from semantic.diffusion.guidance import Condition, GuidedDenoiser, ResidualClippedDenoiser
from semantic.diffusion.samplers import DDIMSampler, DDPMSampler, DPMSolverPP2M
from semantic.diffusion.schedule import NoiseSchedule
from semantic.diffusion.unet import SDMUNet, UNetConfig, upsample_low_res

SAMPLERS: tuple[str, ...] = ("ddim", "ddpm", "dpmpp2m")


def _respacing(sampler: str, steps: int) -> str:
    # DDIM follows SDM's "ddimN" stride; DPM-Solver++ needs log-SNR spacing to be accurate
    # at few steps (see samplers.py); DDPM uses the evenly respaced chain.
    return {"ddim": f"ddim{steps}", "dpmpp2m": f"logsnr{steps}", "ddpm": str(steps)}[sampler]


class DiffusionReceiver:
    """Regenerate images from maps with a conditional diffusion model.

    Args:
        unet: the denoiser (``SDMUNet``), already loaded.
        sampler: one of ``SAMPLERS``.
        steps: number of sampling steps (respaced from the training chain).
        guidance_scale: classifier-free guidance ``s`` (SDM: applied only when ``s > 1``).
        eta: DDIM eta (0 = deterministic given x_T).
        noise_schedule, diffusion_steps: the training chain the network was trained on.
        device: where sampling runs.
        batch_size: images per sampling batch (memory bound).
        residual: the network was trained on ``x0 - up(low_res)`` (super-res only; see
            ``ReceiverTrainConfig.residual``): the sample is that detail, ``up(low_res)`` is
            added back, and x̂_0 is clipped in image space inside the chain
            (:class:`~semantic.diffusion.guidance.ResidualClippedDenoiser`).
        residual_scale: k of a residual chain (it samples ``k (x0 - up(low_res))``).
    """

    def __init__(self, unet: SDMUNet, sampler: str = "ddim", steps: int = 20,
                 guidance_scale: float = 1.5, eta: float = 0.0, noise_schedule: str = "linear",
                 diffusion_steps: int = 1000, device: str = "cpu", batch_size: int = 16,
                 residual: bool = False, residual_scale: float = 1.0):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if steps <= 0:
            raise ValueError(f"steps must be positive, got {steps}")
        # channels-last makes the small receivers' narrow convolutions 1.5-3x faster on the CPU.
        self.unet = unet.to(device, memory_format=torch.channels_last).eval()
        self.config: UNetConfig = unet.config
        self.device = device
        self.batch_size = batch_size
        self.steps = steps
        self.sampler_name = sampler
        if residual and not self.config.super_res:
            raise ValueError("residual receivers need a super-resolution UNet")
        self.residual = residual
        self.residual_scale = float(residual_scale)
        schedule = NoiseSchedule.from_name(noise_schedule, diffusion_steps)
        respacing = _respacing(sampler, steps)
        clip = not residual
        if sampler == "ddim":
            self.sampler = DDIMSampler(schedule, respacing, eta=eta, clip_denoised=clip)
        elif sampler == "ddpm":
            self.sampler = DDPMSampler(schedule, respacing, clip_denoised=clip)
        else:
            self.sampler = DPMSolverPP2M(schedule, respacing, clip_denoised=clip)
        on_gpu = str(device).startswith("cuda")
        self.denoiser = GuidedDenoiser(
            self.unet, guidance_scale, batched=on_gpu,
            autocast_dtype=torch.bfloat16 if on_gpu else None)
        if residual:
            self.denoiser = ResidualClippedDenoiser(self.denoiser, schedule, residual_scale)

    @property
    def super_res(self) -> bool:
        return bool(self.config.super_res)

    @torch.no_grad()
    def generate(self, y: Tensor, generator: torch.Generator, low_res: Tensor | None = None,
                 x_T: Tensor | None = None) -> Tensor:
        """Sample images for maps ``y``.

        Args:
            y: float [B, L, H, W] conditioning map (one-hot classes, edge channel if the model
                has one; an all-zero map asks for an unconditional image).
            generator: the random source of the whole chain (CPU generator).
            low_res: float [B, 3, h, w] coarse image in [-1, 1] (super-resolution models).
            x_T: optional start noise [B, 3, H, W] (e.g. from a shared noise bank).
        Returns:
            float [B, 3, H, W] in [-1, 1] on the CPU.
        """
        if self.super_res and low_res is None:
            raise ValueError("this receiver needs the coarse image (low_res)")
        out = []
        for start in range(0, y.shape[0], self.batch_size):
            stop = min(start + self.batch_size, y.shape[0])
            yb = y[start:stop].to(self.device)
            cond = Condition(y=yb, low_res=None if low_res is None
                             else low_res[start:stop].to(self.device))
            shape = (stop - start, 3, yb.shape[-2], yb.shape[-1])
            x0 = None if x_T is None else x_T[start:stop].to(self.device)
            # Draw the chain's noise on the CPU generator, whatever the device.
            if x0 is None:
                x0 = torch.randn(shape, generator=generator).to(self.device)
            result = self.sampler.sample(self.denoiser, shape, cond, generator, x_T=x0)
            images = result.images.float()
            if self.residual:
                images = (images / self.residual_scale
                          + upsample_low_res(cond.low_res.float(), shape[-2:]))
            out.append(images.clamp(-1, 1).cpu())
        return torch.cat(out)


def load_receiver(path: str | os.PathLike, device: str = "cpu", **options: Any
                  ) -> DiffusionReceiver:
    """Build a receiver from a shipped EMA export or a project UNet checkpoint.

    Both formats are read with ``torch.load(weights_only=True)``; the checkpoint carries the UNet
    config that built it (and, for EMA exports, the training config's schedule).
    """
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "state_dict" not in data:
        raise ValueError(f"{path}: not a receiver checkpoint (no state_dict)")
    config_dict = data.get("unet_config") or data.get("config")
    if not isinstance(config_dict, dict):
        raise ValueError(f"{path}: the checkpoint carries no UNet config")
    unet = SDMUNet(UNetConfig.from_dict(config_dict))
    unet.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    train = data.get("train_config") or {}
    options.setdefault("noise_schedule", train.get("noise_schedule", "linear"))
    options.setdefault("residual", bool(train.get("residual", False)))
    options.setdefault("residual_scale", float(train.get("residual_scale", 1.0)))
    options.setdefault("diffusion_steps", train.get("diffusion_steps", 1000))
    return DiffusionReceiver(unet, device=device, **options)
