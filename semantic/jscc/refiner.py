"""The ``diffjscc`` receiver: a conditional diffusion model that refines the JSCC decoder's image.

The received JSCC latent conditions an SDM UNet (``semantic.diffusion.unet``) through SPADE:
the LMMSE-scaled latent, bilinearly upsampled to the image size, plus one plane with the
effective SNR (dB / 20). The network is the super-resolution variant, so it also sees the deep-JSCC
decoder's image ``x_jscc`` at full resolution. It is trained (with the project's receiver
trainer, ε-prediction, MSE loss) on the *residual* ``r = residual_scale * (x - x_jscc)``, so the
chain starts from Gaussian noise and refines the decoder's output rather than regenerating the
scene: the output is ``x_jscc + r_hat / residual_scale``.

``oracle_start`` (Diff_JSCC's "start from X_T"): the chain starts from the DDIM inversion of the
*original* residual, which needs the original image at the receiver. It is an oracle, offered
only to reproduce the published mode, and labelled as such wherever it is reported.

Example:
    >>> from semantic.diffusion.receiver import DiffusionReceiver
    >>> from semantic.diffusion.unet import SDMUNet
    >>> rx = DiffusionReceiver(SDMUNet(refiner_unet_config(8, tiny=True)), steps=2,
    ...                        guidance_scale=1.0)
    >>> refiner = DiffusionRefiner(rx, residual_scale=4.0)
    >>> y = refiner_condition(torch.zeros(1, 8, 8, 16), torch.ones(1, 1, 8, 16), (32, 64))
    >>> refiner.refine(torch.zeros(1, 3, 32, 64), y, torch.Generator().manual_seed(0)).shape
    torch.Size([1, 3, 32, 64])
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from semantic.diffusion.guidance import Condition
from semantic.diffusion.receiver import DiffusionReceiver, load_receiver
from semantic.diffusion.samplers import DDIMSampler
from semantic.diffusion.unet import UNetConfig


def refiner_unet_config(latent_channels: int, tiny: bool = False) -> UNetConfig:
    """The refiner's UNet: super-resolution variant, fixed variance (3 outputs), no attention
    outside the middle block. Label channels = latent channels + 1 SNR plane.

    Args:
        latent_channels: C of the JSCC latent.
        tiny: a smaller network for unit tests.
    """
    # Widths 8, 16, 32, 64 and no encoder block at full resolution keep a training step
    # (SPADE dominates at full resolution) near 0.45 GMAC per 64x128 image.
    return UNetConfig(image_size=64, model_channels=8, num_res_blocks=1 if tiny else (0, 1, 1, 1),
                      channel_mult=(1, 2) if tiny else (1, 2, 4, 8),
                      num_label_channels=latent_channels + 1, in_channels=6, out_channels=3,
                      attention_resolutions=(), num_head_channels=-1, super_res=True,
                      spade_hidden=8, norm_groups=8)


def refiner_condition(latent: Tensor, snr_plane: Tensor, size: tuple[int, int]) -> Tensor:
    """SPADE condition: float [B, C, h, w] latent + [B, 1, h, w] SNR plane -> [B, C+1, H, W]."""
    up = F.interpolate(latent, size=size, mode="bilinear", align_corners=False)
    snr = F.interpolate(snr_plane, size=size, mode="nearest")
    return torch.cat([up, snr], dim=1)


class DiffusionRefiner:
    """Residual diffusion on top of a coarse (deep-JSCC) image.

    Args:
        receiver: a super-resolution ``DiffusionReceiver`` whose UNet has C+1 label channels.
        residual_scale: the factor the residual was multiplied by in training.
    """

    def __init__(self, receiver: DiffusionReceiver, residual_scale: float):
        if not receiver.super_res:
            raise ValueError("the refiner's UNet must be the super-resolution variant")
        if residual_scale <= 0:
            raise ValueError("residual_scale must be positive")
        self.receiver = receiver
        self.residual_scale = float(residual_scale)

    @property
    def label_channels(self) -> int:
        return self.receiver.config.num_label_channels

    def refine(self, coarse: Tensor, y: Tensor, generator: torch.Generator,
               x_T: Tensor | None = None) -> Tensor:
        """float [B, 3, H, W] coarse image in [-1, 1] + condition y [B, C+1, H, W] ->
        refined float [B, 3, H, W] in [-1, 1] (CPU). ``x_T``: optional start of the chain."""
        residual = self.receiver.generate(y, generator, low_res=coarse, x_T=x_T)
        return (coarse + residual / self.residual_scale).clamp(-1, 1)

    @torch.no_grad()
    def invert(self, original: Tensor, coarse: Tensor, y: Tensor) -> Tensor:
        """ORACLE: DDIM inversion (eta = 0) of the original's residual to the chain's start x_T.

        Args:
            original: float [B, 3, H, W] in [-1, 1], the transmitted images themselves.
            coarse, y: as in ``refine``.
        Returns:
            float [B, 3, H, W] x_T (CPU).
        """
        rx = self.receiver
        if not isinstance(rx.sampler, DDIMSampler):
            raise ValueError("oracle_start needs the DDIM sampler (its deterministic inversion)")
        s = rx.sampler.schedule
        out = []
        for start in range(0, y.shape[0], rx.batch_size):
            stop = min(start + rx.batch_size, y.shape[0])
            cond = rx.denoiser.prepare(Condition(y=y[start:stop].to(rx.device),
                                                 low_res=coarse[start:stop].to(rx.device)))
            x0 = (original[start:stop] - coarse[start:stop]) * self.residual_scale
            x = x0.clamp(-1, 1).to(rx.device)
            for i in range(s.num_steps):
                t_model = s.model_timesteps(i, x.shape[0], rx.device)
                eps = rx.denoiser(x, t_model, cond)[:, :3].float()
                ab = s.gather(s.alphas_cumprod, i, x)
                ab_prev = s.gather(s.alphas_cumprod_prev, i, x)
                x0_hat = (x - torch.sqrt(1 - ab_prev) * eps) / torch.sqrt(ab_prev)
                x = torch.sqrt(ab) * x0_hat + torch.sqrt(1 - ab) * eps
            out.append(x.float().cpu())
        return torch.cat(out)


def load_refiner(path: str | os.PathLike, device: str = "cpu", **options: Any
                 ) -> tuple[DiffusionRefiner, dict[str, Any]]:
    """Load a refiner exported from a ``train jscc`` refiner run.

    Returns:
        (the refiner, the training ``data`` dict: ``residual_scale``, ``codec_sha256``, ...).
    """
    data = torch.load(path, map_location="cpu", weights_only=True)
    info = dict((data.get("train_config") or {}).get("data") or {})
    if "residual_scale" not in info:
        raise ValueError(f"{path}: not a diffjscc refiner (no residual_scale in its data config)")
    options.setdefault("guidance_scale", 1.0)
    receiver = load_receiver(path, device, **options)
    return DiffusionRefiner(receiver, float(info["residual_scale"])), info
