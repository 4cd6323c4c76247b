"""SDM-compatible semantic diffusion UNet (the denoiser of the diffusion receivers).

One class, :class:`SDMUNet`, covers the published models whose weights share SDM's UNet body:
SDM, GESCO / Q-GESCO / Diff-GO^n (extra unused ``spade_norm`` encoder parameters) and SPIC's
super-resolution variant (6 input channels: noisy image + bilinearly upsampled coarse image).
With a published configuration the state-dict keys and shapes equal the published ones, so
checkpoints load unchanged (see :mod:`semantic.diffusion.checkpoint`). The same class, with
small configurations (:meth:`UNetConfig.small_cpu_map`, :meth:`UNetConfig.small_cpu_superres`),
is the project's own CPU receiver.

Facts followed: ``shared/reference/SDM_UNET_FACTS.md`` §§1-11.

Because SPADE's modulation depends only on the semantic map, sampling precomputes it once
(:meth:`SDMUNet.precompute_condition`) and every denoising step reuses the
:class:`ConditionCache`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semantic.diffusion.nn_blocks import (
    SPADE,
    AttentionBlock,
    GroupNorm32,
    LiveCondition,
    ResBlock,
    SDMResBlock,
    SpadeModulation,
    timestep_embedding,
)

__all__ = ["ConditionCache", "SDMUNet", "UNetConfig"]

# Default channel multipliers of SDM's factory, keyed by image_size (facts §1).
_DEFAULT_CHANNEL_MULT: dict[int, tuple[float, ...]] = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}
_REQUIRED_SDM_FLAGS = (
    "image_size",
    "num_channels",
    "num_res_blocks",
    "attention_resolutions",
    "num_classes",
    "no_instance",
    "learn_sigma",
    "class_cond",
    "resblock_updown",
    "use_scale_shift_norm",
)


def _flag_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"not a boolean flag value: {value!r}")
    return bool(value)


def _int_list(text: Any) -> tuple[int, ...]:
    if isinstance(text, str):
        return tuple(int(part) for part in text.split(",") if part.strip())
    return tuple(int(part) for part in text)


@dataclass(frozen=True)
class UNetConfig:
    """Structure of an :class:`SDMUNet` (saved inside every checkpoint as a plain dict).

    Attributes:
        image_size: nominal training size (short side); informational — the network is fully
            convolutional. H and W must be divisible by ``2 ** (len(channel_mult) - 1)``.
        in_channels: channels of the first conv: 3, or 6 for the super-resolution variant
            (noisy image + upsampled coarse image).
        model_channels: base width; also the sinusoid width (time embedding = 4× this).
        out_channels: 6 with learned variance (ε̂ in 0..2, v in 3..5), 3 without.
        num_res_blocks: residual blocks per encoder level (int, or one int per level); each
            decoder level has one more.
        channel_mult: width multiplier per level (len = number of levels).
        attention_resolutions: downsample factors ds (1 = full resolution) with self-attention.
        num_heads: heads when ``num_head_channels == -1`` (encoder/middle).
        num_head_channels: channels per head (-1: use ``num_heads``).
        num_heads_upsample: decoder heads when ``num_head_channels == -1`` (-1: ``num_heads``).
        dropout: dropout in the residual blocks.
        resblock_updown: resample with residual blocks (True in all published models; False
            is not supported).
        use_scale_shift_norm: time FiLM as scale/shift (True) or additive.
        num_label_channels: L, SPADE map channels (num_classes, +1 with instance edges).
        use_new_attention_order: False = legacy head-major qkv order (published checkpoints).
        gesco_extra_params: add GESCO's unused encoder ``spade_norm`` parameters (state-dict
            compatibility only; they never affect the output).
        super_res: SPIC's super-resolution variant (input = [x, bilinear-up(low_res)]).
        spade_hidden: SPADE shared hidden width (128 in every published model).
        norm_groups: GroupNorm groups (32 in every published model).

    Example:
        >>> cfg = UNetConfig.gesco_cityscapes256()
        >>> cfg.num_label_channels, cfg.attention_resolutions
        (36, (8, 16, 32))
    """

    image_size: int
    model_channels: int
    num_res_blocks: int | tuple[int, ...]
    channel_mult: tuple[float, ...]
    num_label_channels: int
    in_channels: int = 3
    out_channels: int = 6
    attention_resolutions: tuple[int, ...] = ()
    num_heads: int = 1
    num_head_channels: int = -1
    num_heads_upsample: int = -1
    dropout: float = 0.0
    resblock_updown: bool = True
    use_scale_shift_norm: bool = True
    use_new_attention_order: bool = False
    gesco_extra_params: bool = False
    super_res: bool = False
    spade_hidden: int = 128
    norm_groups: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_mult", tuple(self.channel_mult))
        object.__setattr__(self, "attention_resolutions", tuple(self.attention_resolutions))
        if not isinstance(self.num_res_blocks, int):
            object.__setattr__(self, "num_res_blocks", tuple(int(n) for n in self.num_res_blocks))
            if len(self.num_res_blocks) != len(self.channel_mult):
                raise ValueError("num_res_blocks needs one entry per channel_mult level")
        if not self.resblock_updown:
            raise ValueError("only resblock_updown=True (all published SDM models) is supported")
        if self.super_res and self.in_channels % 2:
            raise ValueError("super_res needs an even in_channels (image + upsampled low-res)")
        for level, width in enumerate(self.level_widths):
            if width % self.norm_groups:
                raise ValueError(f"level {level} width {width} not divisible by {self.norm_groups}")

    # ----------------------------------------------------------------- derived structure
    @property
    def image_channels(self) -> int:
        """Channels of x (and of the low-res image for super_res)."""
        return self.in_channels // 2 if self.super_res else self.in_channels

    @property
    def level_widths(self) -> tuple[int, ...]:
        return tuple(int(m * self.model_channels) for m in self.channel_mult)

    @property
    def blocks_per_level(self) -> tuple[int, ...]:
        if isinstance(self.num_res_blocks, int):
            return (self.num_res_blocks,) * len(self.channel_mult)
        return self.num_res_blocks

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this."""
        return 2 ** (len(self.channel_mult) - 1)

    # ----------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (ints, floats, bools, str, lists) — safe for ``weights_only`` loading."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown UNetConfig fields: {sorted(unknown)}")
        kwargs = dict(data)
        if isinstance(kwargs.get("num_res_blocks"), list):
            kwargs["num_res_blocks"] = tuple(kwargs["num_res_blocks"])
        return cls(**kwargs)

    # ----------------------------------------------------------------- published models
    @classmethod
    def from_sdm_flags(
        cls, flags: Mapping[str, Any], variant: Literal["sdm", "gesco", "spic"] = "sdm"
    ) -> UNetConfig:
        """Map SDM's command-line flags (facts §1, §8) to a config.

        Args:
            flags: ``image_size, num_channels, num_res_blocks, attention_resolutions ("32,16,8"),
                num_classes, no_instance, learn_sigma, class_cond, resblock_updown,
                use_scale_shift_norm`` (required); ``channel_mult`` ("" → SDM's default for
                image_size), ``num_heads`` (4), ``num_head_channels`` (-1),
                ``num_heads_upsample`` (-1), ``dropout`` (0), ``use_new_attention_order`` (False),
                ``one_hot_label`` (GESCO: False → 2 label channels). Flags such as ``use_fp16``
                or ``use_checkpoint`` change no structure and are ignored.
            variant: ``"sdm"`` (upstream), ``"gesco"`` (GESCO / Q-GESCO / Diff-GO^n: extra unused
                encoder parameters) or ``"spic"`` (SuperResModel, 6 input channels).
        """
        missing = [name for name in _REQUIRED_SDM_FLAGS if name not in flags]
        if missing:
            raise KeyError(f"missing SDM flags: {missing}")
        if not _flag_bool(flags["class_cond"]):
            raise ValueError("SDM needs class_cond True: it is what feeds the map to SPADE")
        if variant not in ("sdm", "gesco", "spic"):
            raise ValueError(f"unknown variant {variant!r}; valid: 'sdm', 'gesco', 'spic'")
        image_size = int(flags["image_size"])
        mult_text = flags.get("channel_mult", "")
        if mult_text in ("", None, ()):
            if image_size not in _DEFAULT_CHANNEL_MULT:
                raise ValueError(f"no default channel_mult for image_size {image_size}")
            channel_mult = _DEFAULT_CHANNEL_MULT[image_size]
        elif isinstance(mult_text, str):
            channel_mult = tuple(float(m) if "." in m else int(m) for m in mult_text.split(","))
        else:
            channel_mult = tuple(mult_text)
        num_classes = int(flags["num_classes"])
        if "one_hot_label" in flags and not _flag_bool(flags["one_hot_label"]):
            label_channels = 2
        else:
            label_channels = num_classes + (0 if _flag_bool(flags["no_instance"]) else 1)
        image_channels = 3
        return cls(
            image_size=image_size,
            model_channels=int(flags["num_channels"]),
            num_res_blocks=int(flags["num_res_blocks"]),
            channel_mult=channel_mult,
            num_label_channels=label_channels,
            in_channels=2 * image_channels if variant == "spic" else image_channels,
            out_channels=2 * image_channels if _flag_bool(flags["learn_sigma"]) else image_channels,
            attention_resolutions=tuple(
                image_size // r for r in _int_list(flags["attention_resolutions"])
            ),
            num_heads=int(flags.get("num_heads", 4)),
            num_head_channels=int(flags.get("num_head_channels", -1)),
            num_heads_upsample=int(flags.get("num_heads_upsample", -1)),
            dropout=float(flags.get("dropout", 0.0)),
            resblock_updown=_flag_bool(flags["resblock_updown"]),
            use_scale_shift_norm=_flag_bool(flags["use_scale_shift_norm"]),
            use_new_attention_order=_flag_bool(flags.get("use_new_attention_order", False)),
            gesco_extra_params=variant == "gesco",
            super_res=variant == "spic",
        )

    @classmethod
    def gesco_cityscapes256(cls) -> UNetConfig:
        """GESCO's Cityscapes model (README flags; 35 classes + instance edges = 36 channels)."""
        return cls.from_sdm_flags(
            {
                "image_size": 256,
                "num_channels": 256,
                "num_res_blocks": 2,
                "attention_resolutions": "32,16,8",
                "num_head_channels": 64,
                "channel_mult": "",
                "num_classes": 35,
                "no_instance": False,
                "one_hot_label": True,
                "learn_sigma": True,
                "class_cond": True,
                "resblock_updown": True,
                "use_scale_shift_norm": True,
                "dropout": 0.0,
            },
            variant="gesco",
        )

    @classmethod
    def spic_cityscapes(cls) -> UNetConfig:
        """SPIC's Cityscapes SuperResModel (19 train-id classes, no instance edges)."""
        return cls.from_sdm_flags(
            {
                "image_size": 256,
                "num_channels": 256,
                "num_res_blocks": 2,
                "attention_resolutions": "32,16,8",
                "num_head_channels": 64,
                "channel_mult": "",
                "num_classes": 19,
                "no_instance": True,
                "learn_sigma": True,
                "class_cond": True,
                "resblock_updown": True,
                "use_scale_shift_norm": True,
                "dropout": 0.0,
            },
            variant="spic",
        )

    # ----------------------------------------------------------------- shipped CPU receivers
    @classmethod
    def small_cpu_map(
        cls, size: int | tuple[int, int] = (64, 128), num_label_channels: int = 20
    ) -> UNetConfig:
        """Map-only receiver (GESCO family) sized for ~1 GMAC per image on a CPU.

        Args:
            size: shipped (H, W) (or H); (64, 128) and (128, 256) have tuned configs.
            num_label_channels: L (19 classes + 1 instance-edge channel by default).
        """
        return _small_config(size, num_label_channels, super_res=False)

    @classmethod
    def small_cpu_superres(
        cls, size: int | tuple[int, int] = (64, 128), num_label_channels: int = 19
    ) -> UNetConfig:
        """Map + 2×-downscaled coarse image receiver (SPIC family), ~1 GMAC per image on a CPU.

        Args:
            size: shipped (H, W) (or H); (64, 128) and (128, 256) have tuned configs.
            num_label_channels: L (19 classes by default).
        """
        return _small_config(size, num_label_channels, super_res=True)


# Shipped small configs, costed with `python -m semantic.diffusion.flops --preset small_cpu_map
# --size H W`: GMAC/image per cached sampling step / full forward (training): 64x128 0.52 / 1.74
# (4.75 M params); 128x256 1.24 / 4.34 (5.22 M params). Keyed by the short side.
_SMALL_CONFIGS: dict[int, dict[str, Any]] = {
    # level widths 16, 16, 32, 64, 96 at 64x128 … 4x8; attention only at 4x8.
    64: {
        "model_channels": 32,
        "channel_mult": (0.5, 0.5, 1, 2, 3),
        "num_res_blocks": (1, 1, 1, 2, 2),
        "attention_resolutions": (16,),
        "num_head_channels": 32,
        "spade_hidden": 32,
        "norm_groups": 16,
    },
    # level widths 16, 16, 32, 48, 64, 96 at 128x256 … 4x8; no encoder blocks at the two
    # finest levels (their decoder blocks and the up-sampling blocks still run there).
    128: {
        "model_channels": 32,
        "channel_mult": (0.5, 0.5, 1, 1.5, 2, 3),
        "num_res_blocks": (0, 0, 1, 1, 2, 2),
        "attention_resolutions": (32,),
        "num_head_channels": 32,
        "spade_hidden": 32,
        "norm_groups": 16,
    },
}


def _small_config(
    size: int | tuple[int, int], num_label_channels: int, *, super_res: bool
) -> UNetConfig:
    height = size if isinstance(size, int) else size[0]
    if height not in _SMALL_CONFIGS:
        raise ValueError(f"no small config for height {height}; valid: {sorted(_SMALL_CONFIGS)}")
    return UNetConfig(
        image_size=height,
        num_label_channels=num_label_channels,
        in_channels=6 if super_res else 3,
        super_res=super_res,
        **_SMALL_CONFIGS[height],
    )


@dataclass(frozen=True)
class ConditionCache:
    """Everything in a forward pass that depends only on the condition, precomputed.

    Build with :meth:`SDMUNet.precompute_condition`; pass as ``model(x, t, cache=cache)``.

    Attributes:
        modulations: SPADE site name (e.g. ``"output_blocks.3.0.in_norm"``) →
            :class:`SpadeModulation` with tensors [B, C, H/ds, W/ds].
        low_res_upsampled: super-res only: [B, 3, H, W] bilinear upsample of the coarse image.
        image_hw: (H, W) the cache was built for.

    A cache with batch 1 is broadcast over any batch (e.g. the all-zero map of classifier-free
    guidance); :meth:`cat` joins caches along the batch (conditional + null in one batch).
    """

    modulations: Mapping[str, SpadeModulation]
    low_res_upsampled: Tensor | None
    image_hw: tuple[int, int]

    @property
    def batch_size(self) -> int:
        first = next(iter(self.modulations.values()))
        return first.scale.shape[0]

    def modulation(self, spade: SPADE, size: tuple[int, int]) -> SpadeModulation:
        """Condition-source protocol used by the SPADE layers."""
        try:
            mod = self.modulations[spade.site]
        except KeyError:
            raise KeyError(f"condition cache has no entry for SPADE site {spade.site!r}") from None
        if tuple(mod.scale.shape[-2:]) != tuple(size):
            raise ValueError(f"cache built for {tuple(mod.scale.shape[-2:])}, features are {size}")
        return mod

    @classmethod
    def cat(cls, caches: Sequence[ConditionCache]) -> ConditionCache:
        """Concatenate caches of the same model and image size along the batch axis."""
        if len({c.image_hw for c in caches}) != 1:
            raise ValueError("caches were built for different image sizes")
        mods = {
            site: SpadeModulation(
                scale=torch.cat([c.modulations[site].scale for c in caches]),
                shift=torch.cat([c.modulations[site].shift for c in caches]),
            )
            for site in caches[0].modulations
        }
        low = None
        if caches[0].low_res_upsampled is not None:
            low = torch.cat([c.low_res_upsampled for c in caches])  # type: ignore[misc]
        return cls(modulations=mods, low_res_upsampled=low, image_hw=caches[0].image_hw)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> ConditionCache:
        """Copy of the cache on ``device`` / in ``dtype``."""
        mods = {
            site: SpadeModulation(m.scale.to(device, dtype), m.shift.to(device, dtype))
            for site, m in self.modulations.items()
        }
        low = self.low_res_upsampled
        return ConditionCache(mods, None if low is None else low.to(device, dtype), self.image_hw)


class _Stage(nn.ModuleList):
    """Ordered blocks of one UNet stage (key index = position, as in SDM's TimestepEmbedSequential)."""

    def forward(self, h: Tensor, emb: Tensor, condition) -> Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, SDMResBlock):
                h = layer(h, emb, condition)
            elif isinstance(layer, ResBlock):
                h = layer(h, emb)
            else:
                h = layer(h)
        return h


@dataclass(frozen=True)
class _SpadeSite:
    name: str
    downsample: int  # feature resolution = (H, W) // downsample


def upsample_low_res(low_res: Tensor, size: tuple[int, int]) -> Tensor:
    """The super-resolution UNet's upsampling of the coarse image (SPIC: bilinear,
    ``align_corners=False``): float [B, 3, h, w] -> [B, 3, H, W]. Residual receivers add the
    same upsampled image back to what they sample."""
    return F.interpolate(low_res, size=size, mode="bilinear", align_corners=False)


class SDMUNet(nn.Module):
    """Semantic diffusion UNet (SDM body; GESCO / SPIC variants by config).

    Call: ``model(x, t, y, low_res=None, *, cache=None) -> out``
        x: [B, 3, H, W] noisy image in the [-1, 1] scale (float32, or bf16/fp16 under autocast).
        t: [B] (or scalar) timesteps, int or float, original 0..999 indexing.
        y: [B, L, H, W] semantic map (one-hot + optional edge channel); all-zero for the
            classifier-free null condition. Omit when ``cache`` is given.
        low_res: super-res only: [B, 3, h, w] coarse image in [-1, 1], bilinearly upsampled to
            (H, W) and concatenated after x. Omit when ``cache`` is given.
        cache: :class:`ConditionCache` from :meth:`precompute_condition` (batch B or 1).
        out: [B, out_channels, H, W] in x's dtype: ε̂ in channels 0..2, variance value v in 3..5.

    H and W must be multiples of ``config.size_multiple``.

    Speed: on a CPU call ``model.to(memory_format=torch.channels_last)`` once (inputs may stay
    NCHW); narrow convolutions run 1.5-3× faster. On CUDA, bf16/fp16 ``torch.autocast`` works
    (GroupNorms and the attention softmax compute in float32, as in SDM's fp16 mode).

    Example:
        >>> cfg = UNetConfig(image_size=32, model_channels=32, num_res_blocks=1,
        ...                  channel_mult=(1, 1), num_label_channels=6,
        ...                  attention_resolutions=(2,), num_head_channels=16)
        >>> model = SDMUNet(cfg).eval()
        >>> x, y = torch.randn(2, 3, 32, 32), torch.zeros(2, 6, 32, 32)
        >>> cache = model.precompute_condition(y)
        >>> out = model(x, torch.tensor([3, 917]), cache=cache)
        >>> out.shape
        torch.Size([2, 6, 32, 32])
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        cfg = config
        mc = cfg.model_channels
        emb_ch = 4 * mc
        groups = cfg.norm_groups
        legacy = not cfg.use_new_attention_order
        heads_up = cfg.num_heads if cfg.num_heads_upsample == -1 else cfg.num_heads_upsample

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))

        def res(in_ch: int, out_ch: int, resample: str = "none") -> ResBlock:
            return ResBlock(
                in_ch,
                out_ch,
                emb_ch,
                dropout=cfg.dropout,
                use_scale_shift_norm=cfg.use_scale_shift_norm,
                resample=resample,
                groups=groups,
                gesco_extra_params=cfg.gesco_extra_params,
                spade_hidden=cfg.spade_hidden,
            )

        def sdm_res(in_ch: int, out_ch: int, resample: str = "none") -> SDMResBlock:
            return SDMResBlock(
                in_ch,
                out_ch,
                emb_ch,
                cfg.num_label_channels,
                dropout=cfg.dropout,
                use_scale_shift_norm=cfg.use_scale_shift_norm,
                resample=resample,
                groups=groups,
                spade_hidden=cfg.spade_hidden,
            )

        def attn(ch: int, heads: int) -> AttentionBlock:
            return AttentionBlock(
                ch, heads, cfg.num_head_channels, legacy_order=legacy, groups=groups
            )

        widths = cfg.level_widths
        blocks = cfg.blocks_per_level
        ch = widths[0]
        ds = 1
        skip_widths = [ch]
        self.input_blocks = nn.ModuleList([_Stage([nn.Conv2d(cfg.in_channels, ch, 3, padding=1)])])
        for level, width in enumerate(widths):
            for _ in range(blocks[level]):
                layers: list[nn.Module] = [res(ch, width)]
                ch = width
                if ds in cfg.attention_resolutions:
                    layers.append(attn(ch, cfg.num_heads))
                self.input_blocks.append(_Stage(layers))
                skip_widths.append(ch)
            if level != len(widths) - 1:
                self.input_blocks.append(_Stage([res(ch, ch, "down")]))
                skip_widths.append(ch)
                ds *= 2

        self.middle_block = _Stage([sdm_res(ch, ch), attn(ch, cfg.num_heads), sdm_res(ch, ch)])
        spade_ds: dict[str, int] = {"middle_block": ds}

        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for i in range(blocks[level] + 1):
                layers = [sdm_res(ch + skip_widths.pop(), widths[level])]
                ch = widths[level]
                if ds in cfg.attention_resolutions:
                    layers.append(attn(ch, heads_up))
                block_index = len(self.output_blocks)
                spade_ds[f"output_blocks.{block_index}"] = ds
                if level and i == blocks[level]:
                    layers.append(sdm_res(ch, ch, "up"))
                    ds //= 2
                self.output_blocks.append(_Stage(layers))

        self.out = nn.Sequential(
            GroupNorm32(groups, ch), nn.SiLU(), nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        )

        self._spade_sites: list[_SpadeSite] = []
        for name, module in self.named_modules():
            if not isinstance(module, SDMResBlock):
                continue
            stage = name.rsplit(".", 1)[0]
            site_ds = spade_ds[stage]
            out_ds = site_ds // 2 if module.resample == "up" else site_ds
            for norm_name, norm_ds in (("in_norm", site_ds), ("out_norm", out_ds)):
                spade = getattr(module, norm_name)
                spade.site = f"{name}.{norm_name}"
                self._spade_sites.append(_SpadeSite(spade.site, norm_ds))

    # ----------------------------------------------------------------- helpers
    @property
    def spade_sites(self) -> tuple[tuple[str, int], ...]:
        """(SPADE site name, downsample factor) in execution order."""
        return tuple((s.name, s.downsample) for s in self._spade_sites)

    def _check_hw(self, height: int, width: int) -> None:
        mult = self.config.size_multiple
        if height % mult or width % mult:
            raise ValueError(f"H and W must be multiples of {mult}; got {height}x{width}")

    def _upsample_low_res(self, low_res: Tensor, size: tuple[int, int]) -> Tensor:
        return upsample_low_res(low_res, size)

    def _model_dtype(self) -> torch.dtype:
        return self.input_blocks[0][0].weight.dtype

    # ----------------------------------------------------------------- condition cache
    def precompute_condition(self, y: Tensor, low_res: Tensor | None = None) -> ConditionCache:
        """Run every SPADE convolution (and the low-res upsampling) once for a fixed condition.

        Args:
            y: [B, L, H, W] semantic map (zeros for the guidance null condition).
            low_res: super-res only: [B, 3, h, w] coarse image.

        Returns:
            :class:`ConditionCache` usable as ``model(x, t, cache=cache)`` for any x, t of the
            same H, W (gradients flow through it if enabled).
        """
        if y.shape[1] != self.config.num_label_channels:
            raise ValueError(
                f"y has {y.shape[1]} channels, expected {self.config.num_label_channels}"
            )
        height, width = y.shape[-2:]
        self._check_hw(height, width)
        live = LiveCondition(y.to(self._model_dtype()))
        modulations: dict[str, SpadeModulation] = {}
        for site in self._spade_sites:
            spade = self.get_submodule(site.name)
            assert isinstance(spade, SPADE)
            size = (height // site.downsample, width // site.downsample)
            modulations[site.name] = live.modulation(spade, size)
        low_up = None
        if self.config.super_res:
            if low_res is None:
                raise ValueError("super-res model: precompute_condition needs low_res")
            low_up = self._upsample_low_res(low_res, (height, width))
        elif low_res is not None:
            raise ValueError("low_res given to a model without super_res")
        return ConditionCache(modulations, low_up, (int(height), int(width)))

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        x: Tensor,
        timesteps: Tensor | float | int,
        y: Tensor | None = None,
        low_res: Tensor | None = None,
        *,
        cache: ConditionCache | None = None,
    ) -> Tensor:
        batch, _, height, width = x.shape
        self._check_hw(height, width)
        if x.shape[1] != self.config.image_channels:
            raise ValueError(f"x has {x.shape[1]} channels, expected {self.config.image_channels}")
        if (y is None) == (cache is None):
            raise ValueError("pass exactly one of y and cache")
        t = torch.as_tensor(timesteps, device=x.device)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"timesteps must have shape [{batch}], got {tuple(t.shape)}")

        if cache is not None:
            if low_res is not None:
                raise ValueError("low_res is part of the cache; do not pass both")
            if cache.image_hw != (height, width):
                raise ValueError(f"cache built for {cache.image_hw}, x is {(height, width)}")
            if cache.batch_size not in (1, batch):
                raise ValueError(f"cache batch {cache.batch_size} does not match {batch}")
            condition = cache
            low_up = cache.low_res_upsampled
            if low_up is not None and low_up.shape[0] != batch:
                low_up = low_up.expand(batch, -1, -1, -1)
        else:
            assert y is not None
            if y.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"y spatial size {tuple(y.shape[-2:])} != x {(height, width)}")
            if y.shape[1] != self.config.num_label_channels:
                raise ValueError(
                    f"y has {y.shape[1]} channels, expected {self.config.num_label_channels}"
                )
            condition = LiveCondition(y.to(self._model_dtype()))
            low_up = None
            if self.config.super_res:
                if low_res is None:
                    raise ValueError("super-res model needs low_res")
                low_up = self._upsample_low_res(low_res, (height, width))
            elif low_res is not None:
                raise ValueError("low_res given to a model without super_res")
        if self.config.super_res:
            if low_up is None:
                raise ValueError("super-res model needs a cache built with low_res")
            x_in = torch.cat([x, low_up.to(x.dtype)], dim=1)
        else:
            x_in = x

        sinusoid = timestep_embedding(t, self.config.model_channels)
        emb = self.time_embed(sinusoid.to(self.time_embed[0].weight.dtype))
        h = x_in.to(self._model_dtype())
        skips = []
        for stage in self.input_blocks:
            h = stage(h, emb, condition)
            skips.append(h)
        h = self.middle_block(h, emb, condition)
        for stage in self.output_blocks:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb, condition)
        return self.out(h.to(self.out[2].weight.dtype)).to(x.dtype)
