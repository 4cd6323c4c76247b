"""Building blocks of the SDM denoiser (semantic diffusion model UNet).

The blocks reproduce the computation and the state-dict key layout described in
``shared/reference/SDM_UNET_FACTS.md`` (§§2-6): sinusoidal timestep embedding, the encoder
``ResBlock`` (GroupNorm + scale/shift FiLM from the time embedding), the decoder ``SDMResBlock``
whose normalisations are SPADE layers conditioned on the semantic map, and multi-head
self-attention with the legacy (head-major) or the new (part-major) qkv channel order.

Sub-module names and indices (``in_layers.2``, ``out_layers.3``, ``mlp_shared.0`` …) are part of
the contract: published checkpoints load into these modules unchanged.

Conditioning is passed to SPADE through a *condition source*: any object with a method
``modulation(spade, size) -> SpadeModulation``. The UNet supplies either a live source that runs
the SPADE convolutions on the map, or a :class:`~semantic.diffusion.unet.ConditionCache` holding
precomputed modulations (the map is fixed during sampling, so SPADE needs to run only once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SPADE",
    "AttentionBlock",
    "ConditionSource",
    "GroupNorm32",
    "LiveCondition",
    "QKVAttention",
    "ResBlock",
    "SDMResBlock",
    "SpadeModulation",
    "timestep_embedding",
]


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal timestep embedding, cosine half first (facts §2).

    Args:
        timesteps: [B] integer or float timesteps (original 0..999 indexing).
        dim: embedding width (the UNet's ``model_channels``).
        max_period: controls the lowest frequency.

    Returns:
        [B, dim] float32: ``[cos(t f_0..f_{h-1}), sin(t f_0..f_{h-1})]`` with
        ``f_i = exp(-ln(max_period) i / h)``, ``h = dim // 2`` (a trailing zero for odd ``dim``).

    Example:
        >>> timestep_embedding(torch.tensor([0, 10]), 4).shape
        torch.Size([2, 4])
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        / half
    )
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class GroupNorm32(nn.GroupNorm):
    """Affine GroupNorm evaluated in float32 and cast back to the input dtype (facts §3).

    Input/output: [B, C, ...] any float dtype.
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).to(x.dtype)


@dataclass(frozen=True)
class SpadeModulation:
    """Per-pixel SPADE modulation ``x̂ · scale + shift`` of one SPADE layer.

    Attributes:
        scale: [B, C, h, w] ``1 + γ(y)``.
        shift: [B, C, h, w] ``β(y)``.
    """

    scale: Tensor
    shift: Tensor


class ConditionSource(Protocol):
    """Anything that hands a SPADE layer its modulation for a feature map of spatial ``size``."""

    def modulation(self, spade: SPADE, size: tuple[int, int]) -> SpadeModulation: ...


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (facts §5).

    ``GroupNorm(groups, affine=False)(x) · (1 + γ(y)) + β(y)`` where ``y`` is the semantic map
    resized (legacy ``nearest``) to x's size, ``a = ReLU(conv3x3(y))`` and γ, β are 3×3 convs of
    ``a``. Keys: ``mlp_shared.0``, ``mlp_gamma``, ``mlp_beta``.

    Args:
        num_features: C, channels of the normalised features.
        label_channels: L, channels of the semantic map.
        hidden: width of the shared hidden layer (128 in the published models).
        groups: GroupNorm groups (32).

    The attribute ``site`` (the module's qualified name inside the UNet) is set by the UNet; it
    is the key of this layer's entry in a condition cache.
    """

    def __init__(self, num_features: int, label_channels: int, hidden: int = 128, groups: int = 32):
        super().__init__()
        self.num_features = num_features
        self.groups = groups
        self.site = ""
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, num_features, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, num_features, 3, padding=1)

    def modulation(self, y_resized: Tensor) -> SpadeModulation:
        """[B, L, h, w] map already at the feature resolution -> :class:`SpadeModulation`."""
        hidden = self.mlp_shared(y_resized)
        return SpadeModulation(scale=1 + self.mlp_gamma(hidden), shift=self.mlp_beta(hidden))

    def normalize(self, x: Tensor, modulation: SpadeModulation) -> Tensor:
        """[B, C, h, w] features, modulation -> [B, C, h, w]."""
        x_hat = F.group_norm(x, self.groups, eps=1e-5)
        # One fused kernel instead of mul + add: fewer full-resolution passes and temporaries.
        return torch.addcmul(modulation.shift, x_hat, modulation.scale)

    def forward(self, x: Tensor, condition: ConditionSource) -> Tensor:
        """[B, C, h, w] features + condition source -> [B, C, h, w]."""
        return self.normalize(x, condition.modulation(self, (x.shape[-2], x.shape[-1])))


class LiveCondition:
    """Condition source that runs the SPADE convolutions on the map ``y`` (uncached path).

    The map resized to each resolution (legacy ``nearest``, facts §5) is memoised per call.

    Args:
        y: [B, L, H, W] semantic map, already in the model's dtype.
    """

    def __init__(self, y: Tensor):
        self.y = y
        self._resized: dict[tuple[int, int], Tensor] = {}

    def resized(self, size: tuple[int, int]) -> Tensor:
        """[B, L, h, w] map at ``size`` (top-left pixel of each cell for power-of-two factors)."""
        if size not in self._resized:
            self._resized[size] = F.interpolate(self.y, size=size, mode="nearest")
        return self._resized[size]

    def modulation(self, spade: SPADE, size: tuple[int, int]) -> SpadeModulation:
        return spade.modulation(self.resized(size))


def _resample(x: Tensor, mode: str) -> Tensor:
    if mode == "down":
        return F.avg_pool2d(x, kernel_size=2, stride=2)
    if mode == "up":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    return x


def _film(h: Tensor, emb_out: Tensor) -> tuple[Tensor, Tensor]:
    """Split the [B, 2C] time projection into broadcastable (scale, shift) [B, C, 1, 1]."""
    emb_out = emb_out.to(h.dtype)[..., None, None]
    scale, shift = emb_out.chunk(2, dim=1)
    return scale, shift


class ResBlock(nn.Module):
    """Encoder residual block with GroupNorm and time FiLM (facts §4).

    Keys: ``in_layers.{0: GroupNorm, 2: conv3x3}``, ``emb_layers.1`` (Linear), ``out_layers.{0:
    GroupNorm, 3: conv3x3}``, optional ``skip_connection`` (1×1 conv), and, with
    ``gesco_extra_params``, an unused ``spade_norm`` (SPADE with 3 label channels) that only exists
    so GESCO-family state dicts load strictly.

    Args:
        in_ch, out_ch: channel widths. emb_ch: time-embedding width (4·model_channels).
        resample: ``"none"``, ``"down"`` (2×2 average pooling) or ``"up"`` (nearest ×2).

    Call: ``block(x [B, in_ch, H, W], emb [B, emb_ch]) -> [B, out_ch, H', W']``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_ch: int,
        *,
        dropout: float = 0.0,
        use_scale_shift_norm: bool = True,
        resample: str = "none",
        groups: int = 32,
        gesco_extra_params: bool = False,
        spade_hidden: int = 128,
    ):
        super().__init__()
        if gesco_extra_params:
            self.spade_norm = SPADE(in_ch, 3, spade_hidden, groups)
        self.resample = resample
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            GroupNorm32(groups, in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_ch, 2 * out_ch if use_scale_shift_norm else out_ch)
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(groups, out_ch),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
        )
        self.skip_connection = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers[1](self.in_layers[0](x))
        h = self.in_layers[2](_resample(h, self.resample))
        x = _resample(x, self.resample)
        emb_out = self.emb_layers(emb)
        if self.use_scale_shift_norm:
            scale, shift = _film(h, emb_out)
            h = torch.addcmul(shift, self.out_layers[0](h), 1 + scale)
        else:
            h = self.out_layers[0](h + emb_out.to(h.dtype)[..., None, None])
        h = self.out_layers[3](self.out_layers[2](self.out_layers[1](h)))
        return self.skip_connection(x) + h


class SDMResBlock(nn.Module):
    """Decoder residual block whose two normalisations are SPADE layers (facts §5).

    Keys: ``in_norm`` (SPADE over in_ch), ``in_layers.1`` (conv3x3), ``emb_layers.1``,
    ``out_norm`` (SPADE over out_ch), ``out_layers.2`` (conv3x3), optional ``skip_connection``.

    Call: ``block(x [B, in_ch, H, W], emb [B, emb_ch], condition) -> [B, out_ch, H', W']``; the
    time FiLM multiplies the SPADE-modulated activations.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_ch: int,
        label_channels: int,
        *,
        dropout: float = 0.0,
        use_scale_shift_norm: bool = True,
        resample: str = "none",
        groups: int = 32,
        spade_hidden: int = 128,
    ):
        super().__init__()
        self.resample = resample
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_norm = SPADE(in_ch, label_channels, spade_hidden, groups)
        self.in_layers = nn.Sequential(nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_ch, 2 * out_ch if use_scale_shift_norm else out_ch)
        )
        self.out_norm = SPADE(out_ch, label_channels, spade_hidden, groups)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor, condition: ConditionSource) -> Tensor:
        h = self.in_layers[0](self.in_norm(x, condition))
        h = self.in_layers[1](_resample(h, self.resample))
        x = _resample(x, self.resample)
        emb_out = self.emb_layers(emb)
        if self.use_scale_shift_norm:
            scale, shift = _film(h, emb_out)
            h = torch.addcmul(shift, self.out_norm(h, condition), 1 + scale)
        else:
            h = self.out_norm(h + emb_out.to(h.dtype)[..., None, None], condition)
        h = self.out_layers[2](self.out_layers[1](self.out_layers[0](h)))
        return self.skip_connection(x) + h


class QKVAttention(nn.Module):
    """Scaled dot-product attention over a fused qkv tensor (facts §6). No parameters.

    Args:
        num_heads: number of heads.
        legacy_order: True: qkv channels grouped head-major ([q|k|v] per head, what the published
            checkpoints use); False: part-major ([q all heads | k | v]).

    Call: ``qkv [B, 3C, T] -> [B, C, T]``; q and k are both scaled by ``d^(-1/4)``, softmax is
    evaluated in float32.
    """

    def __init__(self, num_heads: int, legacy_order: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.legacy_order = legacy_order

    def forward(self, qkv: Tensor) -> Tensor:
        batch, width, length = qkv.shape
        channels = width // 3
        head_ch = channels // self.num_heads
        if self.legacy_order:
            q, k, v = qkv.reshape(batch * self.num_heads, 3 * head_ch, length).split(head_ch, dim=1)
        else:
            q, k, v = (
                part.reshape(batch * self.num_heads, head_ch, length)
                for part in qkv.chunk(3, dim=1)
            )
        scale = 1.0 / math.sqrt(math.sqrt(head_ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
        out = torch.einsum("bts,bcs->bct", weight, v)
        return out.reshape(batch, channels, length)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all pixels with a residual connection (facts §6).

    Keys: ``norm`` (GroupNorm32), ``qkv`` (Conv1d C→3C, k=1), ``proj_out`` (Conv1d C→C, k=1).

    Args:
        channels: C. num_heads: used when ``num_head_channels == -1``; otherwise heads =
        C / num_head_channels. legacy_order: see :class:`QKVAttention`.

    Call: ``block(x [B, C, H, W]) -> [B, C, H, W]``.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        num_head_channels: int = -1,
        *,
        legacy_order: bool = True,
        groups: int = 32,
    ):
        super().__init__()
        if num_head_channels != -1:
            if channels % num_head_channels:
                raise ValueError(
                    f"{channels} channels not divisible by heads of {num_head_channels}"
                )
            num_heads = channels // num_head_channels
        if channels % num_heads:
            raise ValueError(f"{channels} channels not divisible into {num_heads} heads")
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.attention = QKVAttention(num_heads, legacy_order)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels = x.shape[:2]
        flat = x.reshape(batch, channels, -1)
        h = self.proj_out(self.attention(self.qkv(self.norm(flat))))
        return (flat + h).reshape(x.shape)
