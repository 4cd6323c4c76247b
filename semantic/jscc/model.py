"""Deep JSCC codec: a convolutional encoder to power-normalised complex symbols and its decoder.

After Bourtsoulatze, Kurka and Gündüz, "Deep Joint Source-Channel Coding for Wireless Image
Transmission" (IEEE TCCN 2019): 5x5 convolutions, the first ``num_downsamples`` with stride 2,
each followed by a normalisation (GDN here, as in Kurka & Gündüz's later deep-JSCC models; the
2019 paper used PReLU alone) and a PReLU; a last convolution gives ``latent_channels`` real
feature maps whose consecutive values are paired into complex channel symbols and normalised
to unit mean power per image (the transmitter's power constraint). The decoder mirrors the
encoder with transposed convolutions.

Bandwidth convention: ``channel_uses_per_pixel`` counts *complex* channel uses per pixel of the
H x W RGB image (the runner's ``channel_uses_per_pixel`` column). Bourtsoulatze's ratio k/n, with
n = 3 H W real source values, is ``channel_uses_per_pixel / 3``: their k/n = 1/6 is 0.5 here.
With ``num_downsamples`` = d the latent is [C, H/2^d, W/2^d] real values, so
``C = 2 * channel_uses_per_pixel * 4^d`` must be a whole number.

The receiver side (``decode``) takes the equalised symbols and their effective noise variance
(what ``link.channel_io`` delivers), applies the LMMSE scaling for a unit-power input
(``x / (1 + noise_var)``) and gives the decoder the per-position SNR as an extra input plane, so
one model serves a range of SNRs and both AWGN and block-fading channels (perfect CSI).

Example:
    >>> cfg = JSCCConfig(channel_uses_per_pixel=0.25, widths=(8, 8, 8, 8))
    >>> codec = JSCCCodec(cfg)
    >>> x = torch.rand(2, 3, 32, 64) * 2 - 1
    >>> s = codec.encode(x).detach()
    >>> s.shape, round(float(s.abs().square().mean()), 4)
    (torch.Size([2, 512]), 1.0)
    >>> codec.decode(s, torch.full(s.shape, 0.01), (32, 64)).shape
    torch.Size([2, 3, 32, 64])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CODEC_FORMAT = "semlink-jscc-codec/1"
# Effective SNR per symbol given to the decoder, clipped to this range (dB) and divided by 20.
SNR_PLANE_RANGE_DB = (-20.0, 50.0)


def dataclass_from_dict(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """``cls(**data)`` for a config dataclass; unknown keys raise a ``ValueError`` naming
    ``what`` and listing the valid keys."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}; valid: {known}")
    return cls(**dict(data))


@dataclass(frozen=True)
class JSCCConfig:
    """Structure of a ``JSCCCodec`` (stored in every checkpoint as a plain dict).

    Attributes:
        channel_uses_per_pixel: complex channel uses per image pixel (see the module docstring).
        num_downsamples: stride-2 layers d (the latent is H/2^d x W/2^d).
        widths: hidden widths of the encoder layers (the decoder mirrors them); at least d.
        kernel_size: convolution kernel (5 in Bourtsoulatze et al.).
        gdn: GDN / inverse GDN after each hidden convolution (False: PReLU only, as in 2019).
    """

    channel_uses_per_pixel: float = 0.25
    num_downsamples: int = 2
    widths: tuple[int, ...] = (32, 48, 48, 48)
    kernel_size: int = 5
    gdn: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.num_downsamples < 0 or len(self.widths) < max(1, self.num_downsamples):
            raise ValueError(f"widths needs at least num_downsamples={self.num_downsamples} "
                             f"(and 1) entries, got {self.widths}")
        if self.kernel_size % 2 == 0 or self.kernel_size < 1:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if not self.channel_uses_per_pixel > 0:
            raise ValueError("channel_uses_per_pixel must be positive")
        exact = 2 * self.channel_uses_per_pixel * 4 ** self.num_downsamples
        if abs(exact - round(exact)) > 1e-6:
            step = 1 / (2 * 4 ** self.num_downsamples)
            raise ValueError(f"channel_uses_per_pixel must be a multiple of {step:g} with "
                             f"num_downsamples={self.num_downsamples}, got "
                             f"{self.channel_uses_per_pixel}")

    @property
    def latent_channels(self) -> int:
        return round(2 * self.channel_uses_per_pixel * 4 ** self.num_downsamples)

    @property
    def size_multiple(self) -> int:
        return 2 ** self.num_downsamples

    def latent_shape(self, size: tuple[int, int]) -> tuple[int, int, int]:
        """(C, H/2^d, W/2^d) of an image of ``size`` (H, W)."""
        h, w = size
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"image size {size} must be a multiple of {m}")
        return self.latent_channels, h // m, w // m

    def channel_uses(self, size: tuple[int, int]) -> int:
        """Complex channel uses per image of ``size``."""
        c, h, w = self.latent_shape(size)
        return c * h * w // 2

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["widths"] = list(self.widths)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JSCCConfig:
        return dataclass_from_dict(cls, data, "JSCCConfig")


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé et al. 2016), or its inverse.

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (inverse: multiply). beta and gamma are
    kept non-negative by squaring bounded parameters.

    Args:
        channels: C. inverse: IGDN (decoder side).
    Call: float [B, C, H, W] -> float [B, C, H, W].
    """

    _pedestal = 2.0 ** -18

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self._pedestal))
        self.gamma = nn.Parameter(torch.sqrt(0.1 * torch.eye(channels) + self._pedestal))

    def forward(self, x: Tensor) -> Tensor:
        beta = self.beta.clamp_min(math.sqrt(1e-6 + self._pedestal)).square() - self._pedestal
        gamma = self.gamma.clamp_min(math.sqrt(self._pedestal)).square() - self._pedestal
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta).sqrt()
        return x * norm if self.inverse else x / norm


def _act(width: int, gdn: bool, inverse: bool) -> list[nn.Module]:
    return ([GDN(width, inverse=inverse)] if gdn else []) + [nn.PReLU(width)]


def _up(cin: int, cout: int, k: int, stride: int) -> nn.Module:
    if stride == 1:
        return nn.Conv2d(cin, cout, k, padding=k // 2)
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


def latent_to_symbols(z: Tensor) -> Tensor:
    """float [B, C, h, w] -> complex64 [B, C*h*w/2] (consecutive values paired as re, im)."""
    return torch.view_as_complex(z.float().reshape(z.shape[0], -1, 2).contiguous())


def symbols_to_latent(s: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """complex [B, N] -> float32 [B, *shape] (inverse of ``latent_to_symbols``)."""
    return torch.view_as_real(s.to(torch.complex64)).reshape(s.shape[0], *shape)


def power_normalise(s: Tensor) -> Tensor:
    """Scale each row of complex [B, N] symbols to unit mean power |s|^2 (differentiable)."""
    power = s.abs().square().mean(dim=1, keepdim=True)
    return s / power.clamp_min(1e-12).sqrt()


class JSCCCodec(nn.Module):
    """The deep-JSCC encoder and decoder (one module so one checkpoint holds both).

    Args:
        config: the structure (``JSCCConfig``).
    """

    def __init__(self, config: JSCCConfig):
        super().__init__()
        self.config = config
        k, gdn = config.kernel_size, config.gdn
        d = config.num_downsamples
        strides = [2 if i < d else 1 for i in range(len(config.widths))]
        layers: list[nn.Module] = []
        cin = 3
        for width, stride in zip(config.widths, strides):
            layers += [nn.Conv2d(cin, width, k, stride=stride, padding=k // 2),
                       *_act(width, gdn, False)]
            cin = width
        layers.append(nn.Conv2d(cin, config.latent_channels, k, padding=k // 2))
        self.encoder = nn.Sequential(*layers)
        widths = config.widths
        layers = [nn.Conv2d(config.latent_channels + 1, widths[-1], k, padding=k // 2),
                  *_act(widths[-1], gdn, True)]
        for i in range(len(widths) - 1, 0, -1):
            layers += [_up(widths[i], widths[i - 1], k, strides[i]), *_act(widths[i - 1], gdn, True)]
        layers += [_up(widths[0], 3, k, strides[0]), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, images: Tensor) -> Tensor:
        """float [B, 3, H, W] in [-1, 1] -> complex64 [B, N] unit-power symbols,
        N = ``config.channel_uses((H, W))``."""
        self.config.latent_shape(tuple(images.shape[-2:]))
        return power_normalise(latent_to_symbols(self.encoder(images)))

    def received_latent(self, symbols_hat: Tensor, noise_var: Tensor, size: tuple[int, int]
                        ) -> tuple[Tensor, Tensor]:
        """LMMSE latent and SNR plane from equalised symbols.

        Args:
            symbols_hat: complex [B, N] equalised symbols (unit-power input + noise).
            noise_var: float [B, N] effective noise variance per symbol.
            size: (H, W) of the images.
        Returns:
            (float32 [B, C, h, w] LMMSE-scaled latent, float32 [B, 1, h, w] effective SNR in
            dB / 20, averaged over the channels of each position).
        """
        shape = self.config.latent_shape(size)
        nv = noise_var.float().clamp_min(1e-12)
        latent = symbols_to_latent(symbols_hat / (1.0 + nv), shape)
        snr_db = (-10.0 * torch.log10(nv)).clamp(*SNR_PLANE_RANGE_DB)
        snr = snr_db.repeat_interleave(2, dim=1).reshape(nv.shape[0], *shape)
        return latent, snr.mean(dim=1, keepdim=True) / 20.0

    def decode_latent(self, latent: Tensor, snr_plane: Tensor) -> Tensor:
        """float [B, C, h, w] + [B, 1, h, w] -> float [B, 3, H, W] in [-1, 1]."""
        return self.decoder(torch.cat([latent, snr_plane], dim=1))

    def decode(self, symbols_hat: Tensor, noise_var: Tensor, size: tuple[int, int]) -> Tensor:
        """Equalised symbols complex [B, N] + noise variance float [B, N] -> images
        float [B, 3, H, W] in [-1, 1]."""
        return self.decode_latent(*self.received_latent(symbols_hat, noise_var, size))


def codec_checkpoint(codec: JSCCCodec, half: bool = False, **extra: Any) -> dict[str, Any]:
    """A ``weights_only``-safe dict holding the codec's config and weights."""
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
             for k, v in codec.state_dict().items()}
    return {"format": CODEC_FORMAT, "config": codec.config.to_dict(), "state_dict": state,
            **extra}


def load_codec(path, device: str = "cpu") -> JSCCCodec:
    """Load a codec written by ``codec_checkpoint`` (``torch.load(weights_only=True)``)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != CODEC_FORMAT:
        raise ValueError(f"{path}: not a JSCC codec checkpoint")
    codec = JSCCCodec(JSCCConfig.from_dict(data["config"]))
    codec.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    return codec.to(device).eval()
