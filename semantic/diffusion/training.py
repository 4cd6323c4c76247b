"""Training of a diffusion receiver (SDM UNet conditioned on a semantic map).

One optimisation step (facts §§11-13):

1. ``images, y, low_res = batch_fn(step, generator)``; images in [-1, 1], y one-hot(+edges).
2. Optional noisy maps (GESCO's ``add_noise``): a noise std drawn per batch from
   ``map_noise_stds`` and Gaussian noise added to y — independent per channel by default;
   ``map_noise_broadcast=True`` reproduces GESCO's [B, 1, H, W] noise shared by every channel.
3. Label-map dropout for classifier-free guidance: with probability ``drop_rate`` a sample's y
   becomes all zeros (the guidance null condition).
4. Super-resolution receivers also get the coarse image: the batch's ``low_res``, or the
   image area-downscaled by ``lowres_factor`` and passed through ``degrade_lowres`` (the same
   lossy codec as at test time); the network upsamples it itself.
5. t ~ U{0..T−1}, ε ~ N(0, I) (or, with ``noise_bank``, Diff-GO^n's noise-restricted forward
   diffusion: ε is an entry of the shared bank, drawn uniformly per sample),
   x_t = q_sample(x_0, t, ε); loss = MSE(ε̂, ε) (+ the
   variational-bound term of the learned variance with the mean stop-gradiented, "hybrid",
   improved-diffusion / SDM). With uniform t, the per-step VB term is L_vlb / T, i.e. the
   λ = 0.001 of Nichol & Dhariwal for T = 1000; ``vb_weight`` scales it further.
6. AdamW step (gradient-norm clipping, optional linear warm-up), EMA update.
7. With ``early_stopping``: every ``every`` steps the EMA weights are scored on a fixed
   validation set and training stops when the smoothed loss stops improving (the rule is
   spelled out in ``semantic.diffusion.early_stopping``); the best weights are kept.

All randomness comes from one CPU ``torch.Generator`` seeded from ``config.seed`` (plus the
global RNG inside a fork for dropout layers); both are checkpointed, so a run interrupted and
resumed gives the same weights as an uninterrupted one.

Files written to ``out_dir``:

- ``train_state.pt``: resumable state — model, EMA, optimiser, grad scaler, step, RNG states,
  loss history, ``config`` (plain dict) and ``unet_config`` (plain dict). Only tensors and plain
  Python types: ``torch.load(path, weights_only=True)`` reads it. Written atomically.
- ``receiver_ema.pt``: the EMA weights for inference: ``{"format", "unet_config",
  "state_dict", "train_config", "step"}``.
- ``loss_curve.png`` and ``losses.csv`` (step, loss, mse, vb, grad_norm).
- with ``early_stopping``: ``receiver_best.pt`` (the EMA export at the best validation) and
  ``validation.csv`` (step, loss, smoothed).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from semantic.diffusion.early_stopping import EarlyStoppingRule, EarlyStoppingState, ValidationSet
from semantic.diffusion.noise_bank import NoiseBank
from semantic.diffusion.schedule import SCHEDULE_NAMES, NoiseSchedule

__all__ = [
    "GESCO_MAP_NOISE_STDS",
    "LossTerms",
    "ReceiverTrainConfig",
    "TrainSummary",
    "diffusion_loss",
    "load_ema_state",
    "resolve_unet_config",
    "train_receiver",
]

TRAIN_STATE_FORMAT = "semlink-receiver-train-state/1"
EMA_EXPORT_FORMAT = "semlink-receiver-ema/1"
GESCO_MAP_NOISE_STDS = (0.6, 0.36, 0.22, 0.13, 0.08, 0.05, 0.0, 0.0, 0.0)
LOSS_KINDS = ("hybrid", "mse")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
UNET_PRESETS = ("small_cpu_map", "small_cpu_superres", "gesco_cityscapes256", "spic_cityscapes")
# Fields that may change between a run and its resumption (they steer the run, not the result).
RUN_CONTROL_FIELDS = frozenset(
    {"num_steps", "max_minutes", "checkpoint_every", "device", "precision"}
)

BatchFn = Callable[[int, torch.Generator], tuple[Tensor, Tensor, Tensor | None]]


# ---------------------------------------------------------------------- configuration
@dataclass
class ReceiverTrainConfig:
    """Everything that defines a receiver training run (saved in the checkpoint as a dict).

    Attributes:
        unet: the UNet structure as a plain dict (``UNetConfig.to_dict()``). :meth:`from_dict`
            also accepts ``{"preset": name, **kwargs}`` with name in ``UNET_PRESETS``.
        num_steps: total optimiser steps of the run (may be raised on resume).
        batch_size: images per step (read by the data adapter that builds ``batch_fn``).
        learning_rate, weight_decay, adam_betas: AdamW settings.
        lr_warmup_steps: linear warm-up length (0 = constant rate, as SDM).
        grad_clip_norm: max global gradient norm (None = no clipping).
        ema_rate: EMA decay per step (0.9999 for long runs; e.g. 0.995 for short ones).
        loss: ``"hybrid"`` (SDM: ε-MSE + VB term of the learned variance) or ``"mse"`` (GESCO).
        vb_weight: multiplier of the VB term (1.0 = SDM).
        noise_schedule, diffusion_steps: the training schedule (``linear``, 1000).
        drop_rate: probability of replacing a sample's map by zeros (classifier-free guidance;
            SDM fine-tuning uses 0.2).
        map_noise: train on noisy maps (GESCO's ``add_noise``).
        map_noise_stds: stds to draw from, one per batch (GESCO's list by default).
        map_noise_broadcast: GESCO-exact [B, 1, H, W] noise shared across channels.
        super_res: the network also takes a coarse image (``low_res``).
        residual: super-res only: the diffusion runs on ``x0 - up(low_res)`` (the detail the
            coarse image lacks; ``up`` = the UNet's own bilinear upsampling) instead of ``x0``,
            and the receiver adds ``up(low_res)`` back after sampling. The low frequencies then
            come from the coarse image itself, which small, briefly trained receivers otherwise
            get wrong (colour drift); the network and its state-dict layout are unchanged.
        residual_scale: residual only: the chain runs on ``residual_scale * (x0 - up)``. The
            detail's std is ~0.15 against ~0.5 for images, which would leave all of its
            generation to the last few percent of the noise schedule (a 20-step DDIM chain
            would spend one step on it); scaling it to the images' spread restores the schedule
            (the latent-diffusion practice of scaling latents to unit variance).
        lowres_factor: downscale factor of the coarse image when ``batch_fn`` gives none.
        precision: ``auto`` (bf16 on a CUDA device that supports it, else fp16 on CUDA, fp32
            on CPU), ``fp32``, ``bf16`` (autocast on CUDA or CPU: on a CPU with AVX512-BF16 or
            AMX it is ~1.6x faster than fp32) or ``fp16`` (CUDA only; fp32 on a CPU). Weights,
            optimiser state and EMA stay fp32 whatever the precision, so it may change when a
            run resumes.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda[:n]``.
        seed: seeds the weights (when the trainer builds the UNet) and the training generator.
        checkpoint_every: steps between checkpoints (also written at the end of every chunk).
        max_minutes: wall-clock budget of one call (None = unlimited); the run stops at a
            checkpoint and continues on the next call with ``resume=True``.
        data: free-form description of the data source for the data adapter (not used here).
        noise_bank: ``{seed, size}``: draw the forward noise from this shared bank
            (``semantic.diffusion.noise_bank``) instead of fresh Gaussian noise (Diff-GO^n).
        early_stopping: ``{every, patience, min_rel_improvement, smoothing, val_batches}``
            (``semantic.diffusion.early_stopping.EarlyStoppingRule``) or None.
    """

    unet: dict[str, Any] = field(default_factory=dict)
    num_steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    lr_warmup_steps: int = 0
    grad_clip_norm: float | None = 1.0
    ema_rate: float = 0.9999
    loss: str = "hybrid"
    vb_weight: float = 1.0
    noise_schedule: str = "linear"
    diffusion_steps: int = 1000
    drop_rate: float = 0.2
    map_noise: bool = False
    map_noise_stds: tuple[float, ...] = GESCO_MAP_NOISE_STDS
    map_noise_broadcast: bool = False
    super_res: bool = False
    residual: bool = False
    residual_scale: float = 1.0
    lowres_factor: int = 2
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500
    max_minutes: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    noise_bank: dict[str, int] | None = None
    early_stopping: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.adam_betas = (float(self.adam_betas[0]), float(self.adam_betas[1]))
        self.map_noise_stds = tuple(float(s) for s in self.map_noise_stds)
        self.unet = dict(self.unet)
        self.data = dict(self.data)
        if self.num_steps < 0:
            raise ValueError("num_steps must be ≥ 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSS_KINDS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}"
            )
        if self.noise_schedule not in SCHEDULE_NAMES:
            raise ValueError(
                f"unknown noise_schedule {self.noise_schedule!r}; valid: {', '.join(SCHEDULE_NAMES)}"
            )
        if not 0.0 <= self.drop_rate <= 1.0:
            raise ValueError("drop_rate must lie in [0, 1]")
        if not 0.0 <= self.ema_rate < 1.0:
            raise ValueError("ema_rate must lie in [0, 1)")
        if self.residual and not self.super_res:
            raise ValueError("residual needs super_res: it is the detail over the coarse image")
        if self.residual_scale <= 0:
            raise ValueError("residual_scale must be positive")
        if self.residual and self.early_stopping is not None:
            raise ValueError("early_stopping's validation loss does not model residual receivers")
        if self.map_noise and not self.map_noise_stds:
            raise ValueError("map_noise needs at least one std in map_noise_stds")
        if self.lowres_factor < 1 or self.checkpoint_every < 1 or self.diffusion_steps < 1:
            raise ValueError("lowres_factor, checkpoint_every and diffusion_steps must be ≥ 1")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be positive (or None)")
        if self.noise_bank is not None:
            self.noise_bank = dict(self.noise_bank)
            _noise_bank(self)
        if self.early_stopping is not None:
            self.early_stopping = dict(self.early_stopping)
            EarlyStoppingRule.from_dict(self.early_stopping)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) — YAML- and ``weights_only``-safe."""

        def plain(value: Any) -> Any:
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReceiverTrainConfig:
        """Build from a plain dict (e.g. YAML); unknown keys raise a ``ValueError`` listing the
        valid ones; ``unet: {preset: ..., ...}`` is resolved to the full UNet dict."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown ReceiverTrainConfig keys {unknown}; valid: {known}")
        kwargs = dict(data)
        if "unet" in kwargs:
            kwargs["unet"] = resolve_unet_config(kwargs["unet"])
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> ReceiverTrainConfig:
        """Load with ``yaml.safe_load``; the file may nest the fields under ``receiver:``."""
        import yaml

        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if "receiver" in data and isinstance(data["receiver"], Mapping):
            data = data["receiver"]
        return cls.from_dict(data)


def resolve_unet_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Full ``UNetConfig`` dict from either the full dict or ``{"preset": name, **kwargs}``.

    Presets: ``small_cpu_map`` / ``small_cpu_superres`` (kwargs ``size``,
    ``num_label_channels``), ``gesco_cityscapes256``, ``spic_cityscapes``.
    """
    spec = dict(spec)
    if "preset" not in spec:
        return spec
    from semantic.diffusion.unet import UNetConfig

    name = spec.pop("preset")
    if name not in UNET_PRESETS:
        raise ValueError(f"unknown UNet preset {name!r}; valid: {', '.join(UNET_PRESETS)}")
    if "size" in spec and isinstance(spec["size"], list):
        spec["size"] = tuple(spec["size"])
    return getattr(UNetConfig, name)(**spec).to_dict()


# ---------------------------------------------------------------------- losses
@dataclass(frozen=True)
class LossTerms:
    """Per-sample training loss terms, each [B] float32.

    Attributes:
        loss: ``mse + vb_weight · vb`` (or ``mse`` for the ``"mse"`` loss).
        mse: mean squared error of ε̂ over C, H, W.
        vb: variational-bound term in bits per dimension (KL to the true posterior for t > 0,
            discretized-Gaussian decoder NLL for t = 0); zeros for the ``"mse"`` loss.
    """

    loss: Tensor
    mse: Tensor
    vb: Tensor


def _normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    # KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise.
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _discretized_gaussian_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(x) of 8-bit data in [-1, 1] under a Gaussian integrated over each pixel bin
    (Ho et al. 2020 §3.3; the edge bins extend to ±∞). Uses the exact normal CDF."""
    inv_std = torch.exp(-log_scale)
    centered = x - mean
    upper = inv_std * (centered + 1.0 / 255.0)
    lower = inv_std * (centered - 1.0 / 255.0)
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_sf_lower = torch.special.log_ndtr(-lower)
    cdf_delta = torch.special.ndtr(upper) - torch.special.ndtr(lower)
    log_mid = torch.log(cdf_delta.clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_upper, torch.where(x > 0.999, log_sf_lower, log_mid))


def diffusion_loss(
    schedule: NoiseSchedule,
    model_output: Tensor,
    x0: Tensor,
    x_t: Tensor,
    t: Tensor,
    noise: Tensor,
    *,
    kind: str = "hybrid",
    vb_weight: float = 1.0,
) -> LossTerms:
    """Training loss of an ε-predicting network (facts §12.8).

    Args:
        schedule: the training schedule (``t`` indexes it).
        model_output: [B, 2C, H, W] (ε̂, v) for ``"hybrid"``; [B, C or 2C, H, W] for ``"mse"``.
        x0: [B, C, H, W] clean images in [-1, 1].
        x_t: [B, C, H, W] = ``schedule.q_sample(x0, t, noise)``.
        t: [B] int64 timesteps.
        noise: [B, C, H, W] the ε used for ``x_t``.
        kind: ``"hybrid"`` or ``"mse"``.
        vb_weight: multiplier of the VB term.

    Returns:
        :class:`LossTerms`. The VB term sees the ε channels detached, so it trains only the
        variance channels.
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss {kind!r}; valid: {', '.join(LOSS_KINDS)}")
    channels = x0.shape[1]
    model_output = model_output.float()
    eps = model_output[:, :channels]
    mse = ((noise - eps) ** 2).mean(dim=tuple(range(1, x0.ndim)))
    if kind == "mse":
        return LossTerms(loss=mse, mse=mse, vb=torch.zeros_like(mse))
    if model_output.shape[1] != 2 * channels:
        raise ValueError("the hybrid loss needs a learned-variance output with 2C channels")
    frozen = torch.cat([eps.detach(), model_output[:, channels:]], dim=1)
    mv = schedule.p_mean_variance(frozen, x_t, t, clip_denoised=False)
    true_mean, true_log_var = schedule.q_posterior_mean_log_variance(x0, x_t, t)
    dims = tuple(range(1, x0.ndim))
    kl = _normal_kl(true_mean, true_log_var, mv.mean, mv.log_variance).mean(dim=dims)
    nll = -_discretized_gaussian_log_likelihood(x0, mv.mean, 0.5 * mv.log_variance).mean(dim=dims)
    vb = torch.where(t.to(kl.device) == 0, nll, kl) / math.log(2.0)
    return LossTerms(loss=mse + vb_weight * vb, mse=mse, vb=vb)


# ---------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class TrainSummary:
    """Outcome of one :func:`train_receiver` call.

    Attributes:
        start_step: optimiser steps already done when the call began (0 for a fresh run).
        step: optimiser steps done when it returned.
        completed: ``step == config.num_steps``.
        final_loss: mean loss of the last ≤ 100 steps (None before any step).
        wall_s: wall-clock seconds of this call.
        train_state_path, ema_path, loss_curve_path: files written.
        losses: [step] per-step mean training loss of the whole run.
        early_stopped: the early-stopping rule ended the run.
        best_step: step of the best smoothed validation loss (``receiver_best.pt``), or None.
        validation: [step, loss, smoothed] per validation of the whole run.
    """

    start_step: int
    step: int
    completed: bool
    final_loss: float | None
    wall_s: float
    train_state_path: Path
    ema_path: Path
    loss_curve_path: Path
    losses: list[float]
    early_stopped: bool = False
    best_step: int | None = None
    validation: list[list[float]] = field(default_factory=list)


def _noise_bank(config: ReceiverTrainConfig) -> NoiseBank | None:
    if config.noise_bank is None:
        return None
    keys = set(config.noise_bank)
    if keys != {"seed", "size"}:
        raise ValueError(f"noise_bank needs exactly the keys seed and size, got {sorted(keys)}")
    return NoiseBank(int(config.noise_bank["seed"]), int(config.noise_bank["size"]))


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if device.type != "cuda":
        return torch.bfloat16 if precision == "bf16" else None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _build_model(config: ReceiverTrainConfig) -> nn.Module:
    if not config.unet:
        raise ValueError("config.unet is empty: give the UNet structure or pass a model")
    from semantic.diffusion.unet import SDMUNet, UNetConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return SDMUNet(UNetConfig.from_dict(config.unet))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _downscale(images: Tensor, factor: int) -> Tensor:
    # Area averaging over factor×factor cells (SPIC's mode="area" for integer factors).
    return F.avg_pool2d(images, kernel_size=factor, stride=factor) if factor > 1 else images


def _lr_at(config: ReceiverTrainConfig, step: int) -> float:
    if config.lr_warmup_steps <= 0:
        return config.learning_rate
    return config.learning_rate * min(1.0, (step + 1) / config.lr_warmup_steps)


def check_resume_config(saved: Mapping[str, Any], current: Mapping[str, Any],
                        defaults: Mapping[str, Any] | None = None) -> None:
    """Refuse to resume a run whose definition changed (only ``RUN_CONTROL_FIELDS`` may).

    Args:
        saved: the config dict stored in the training state.
        current: the config dict of this call.
        defaults: the config class's default dict. Options added to a trainer after a state
            was written are missing from ``saved`` and take these defaults, so such a run
            resumes (the defaults are what it was trained with).
    Raises:
        ValueError: naming the differing keys.
    """
    saved = {**{k: v for k, v in (defaults or {}).items() if k not in saved}, **saved}
    # Early UNet configs carried an informational ``notes`` string that changes no weight.
    if isinstance(saved.get("unet"), Mapping) and "notes" in saved["unet"]:
        saved["unet"] = {k: v for k, v in saved["unet"].items() if k != "notes"}
    differing = sorted(
        k
        for k in set(saved) | set(current)
        if k not in RUN_CONTROL_FIELDS and saved.get(k) != current.get(k)
    )
    if differing:
        raise ValueError(
            f"cannot resume: config differs from the checkpoint in {differing} "
            f"(only {sorted(RUN_CONTROL_FIELDS)} may change); use a new out_dir or resume=False"
        )


def _write_loss_files(out_dir: Path, history: Mapping[str, list[float]]) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with open(out_dir / "losses.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", "mse", "vb", "grad_norm"])
        for i, row in enumerate(
            zip(history["loss"], history["mse"], history["vb"], history["grad_norm"]), start=1
        ):
            writer.writerow([i, *(f"{v:.6g}" for v in row)])

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = list(range(1, len(history["loss"]) + 1))
    for key in ("loss", "mse", "vb"):
        values = history[key]
        if values and any(v != 0 for v in values):
            ax.plot(steps, values, lw=0.6, alpha=0.35)
            window = max(1, len(values) // 50)
            smooth = torch.tensor(values).unfold(0, window, 1).mean(1).tolist()
            ax.plot(steps[window - 1 :], smooth, lw=1.4, label=f"{key} (mean of {window})")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss per sample")
    ax.set_yscale("log")
    ax.grid(True, which="both", lw=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.95)
    path = out_dir / "loss_curve.png"
    fig.savefig(path)
    return path


# ---------------------------------------------------------------------- training loop
def train_receiver(
    config: ReceiverTrainConfig,
    out_dir: str | os.PathLike,
    *,
    batch_fn: BatchFn,
    model: nn.Module | None = None,
    degrade_lowres: Callable[[Tensor], Tensor] | None = None,
    resume: bool = True,
    progress: bool = True,
    val_batch_fn: BatchFn | None = None,
) -> TrainSummary:
    """Train (or continue training) a diffusion receiver.

    Args:
        config: the run definition (see :class:`ReceiverTrainConfig`).
        out_dir: folder for ``train_state.pt``, ``receiver_ema.pt``, ``losses.csv``,
            ``loss_curve.png`` (created if missing).
        batch_fn: ``(step, generator) -> (images [B,3,H,W] float in [-1,1], y [B,L,H,W] float,
            low_res [B,3,h,w] float in [-1,1] or None)``; must draw all randomness from
            ``generator`` (a CPU ``torch.Generator``) for exact resumption.
        model: the network to train (the caller's initial weights); default: build
            ``SDMUNet(UNetConfig.from_dict(config.unet))`` with weights seeded by ``config.seed``.
        degrade_lowres: super-res only: ``images -> images`` applied to the downscaled coarse
            image (e.g. the test-time codec's encode + decode), [-1, 1] in and out.
        resume: continue from ``out_dir/train_state.pt`` if it exists (its config must match
            except for ``num_steps``, ``max_minutes``, ``checkpoint_every``, ``device``).
        progress: show a tqdm bar with loss and ETA.
        val_batch_fn: like ``batch_fn``, on held-out data; needed by ``early_stopping``.

    Returns:
        :class:`TrainSummary`.

    Example (a tiny run on CPU with a stand-in network honouring the UNet contract):
        >>> import tempfile
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv = nn.Conv2d(3 + 4, 6, 3, padding=1)
        ...     def forward(self, x, t, y):
        ...         return self.conv(torch.cat([x, y], 1))
        >>> def batch_fn(step, g):
        ...     return torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.ones(2, 4, 8, 8), None
        >>> config = ReceiverTrainConfig(num_steps=3, ema_rate=0.9, device="cpu")
        >>> with tempfile.TemporaryDirectory() as out_dir:
        ...     summary = train_receiver(config, out_dir, batch_fn=batch_fn, model=Net(),
        ...                              progress=False)
        >>> summary.step, summary.completed, len(summary.losses)
        (3, True, 3)
    """
    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "train_state.pt"
    ema_path = out / "receiver_ema.pt"
    device = _resolve_device(config.device)
    amp_dtype = _autocast_dtype(config.precision, device)

    unet_super_res = config.unet.get("super_res")
    if unet_super_res is not None and bool(unet_super_res) != config.super_res:
        raise ValueError(
            f"config.super_res={config.super_res} but the UNet has super_res={unet_super_res}"
        )
    net = _build_model(config) if model is None else model
    net.to(device)
    schedule = NoiseSchedule.from_name(config.noise_schedule, config.diffusion_steps)
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=config.learning_rate,
        betas=config.adam_betas,
        weight_decay=config.weight_decay,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    bank = _noise_bank(config)
    rule = None
    if config.early_stopping is not None:
        rule = EarlyStoppingRule.from_dict(config.early_stopping)
        if val_batch_fn is None:
            raise ValueError("early_stopping needs val_batch_fn (batches of held-out data)")
    stopping = EarlyStoppingState()
    val_set: ValidationSet | None = None
    ema = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"loss": [], "mse": [], "vb": [], "grad_norm": []}
    start_step = 0
    saved_wall_s = 0.0
    global_rng_state: Tensor | None = None
    cuda_rng_state: Tensor | None = None

    config_dict = config.to_dict()
    unet_dict = dict(config.unet)
    if not unet_dict:
        model_config = getattr(net, "config", None)
        if dataclasses.is_dataclass(model_config) and hasattr(model_config, "to_dict"):
            unet_dict = model_config.to_dict()
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("format") != TRAIN_STATE_FORMAT:
            raise ValueError(f"{state_path} is not a receiver training state")
        check_resume_config(state["config"], config_dict, ReceiverTrainConfig().to_dict())
        net.load_state_dict(state["model"])
        ema = {k: v.float() for k, v in state["ema"].items()}
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator_state"])
        global_rng_state = state["torch_rng_state"]
        cuda_rng_state = state["cuda_rng_state"] if device.type == "cuda" else None
        history = {k: list(v) for k, v in state["history"].items()}
        start_step = int(state["step"])
        saved_wall_s = float(state["wall_s"])
        stopping = EarlyStoppingState.from_dict(state.get("early_stopping") or {})
        if start_step > config.num_steps:
            raise ValueError(f"checkpoint is at step {start_step} > num_steps {config.num_steps}")
    ema = {k: v.to(device) for k, v in ema.items()}

    def save(step: int) -> None:
        wall_s = saved_wall_s + time.monotonic() - started
        cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        _atomic_save(
            {
                "format": TRAIN_STATE_FORMAT,
                "step": step,
                "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "ema": {k: v.cpu() for k, v in ema.items()},
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "generator_state": generator.get_state(),
                "torch_rng_state": torch.get_rng_state(),
                "cuda_rng_state": cuda_state,
                "history": history,
                "config": config_dict,
                "unet_config": unet_dict,
                "wall_s": wall_s,
                "early_stopping": stopping.to_dict(),
            },
            state_path,
        )
        export_ema(ema_path, step)

    def export_ema(path: Path, step: int) -> None:
        _atomic_save(
            {
                "format": EMA_EXPORT_FORMAT,
                "unet_config": unet_dict,
                "state_dict": {k: v.cpu() for k, v in ema.items()},
                "train_config": config_dict,
                "step": step,
            },
            path,
        )

    def validate(step: int) -> None:
        nonlocal val_set
        if val_set is None:
            def lowres_fn(images: Tensor) -> Tensor:
                low = _downscale(images, config.lowres_factor)
                return degrade_lowres(low) if degrade_lowres is not None else low

            val_set = ValidationSet.draw(val_batch_fn, rule.val_batches, schedule.num_steps,
                                         seed=config.seed + 7919,
                                         lowres_fn=lowres_fn if config.super_res else None)
        loss_fn = functools.partial(diffusion_loss, kind=config.loss, vb_weight=config.vb_weight)
        value = val_set.loss(net, ema, schedule, loss_fn, device)
        if stopping.update(value, step, rule):
            export_ema(out / "receiver_best.pt", step)

    ema_params = [
        (name, p) for name, p in net.named_parameters() if p.requires_grad and name in ema
    ]
    param_names = {name for name, _ in ema_params}
    budget_s = None if config.max_minutes is None else 60.0 * config.max_minutes
    step = start_step
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        if global_rng_state is not None:
            torch.set_rng_state(global_rng_state)
        if cuda_rng_state is not None:
            torch.cuda.set_rng_state(cuda_rng_state, device)
        net.train()
        bar = tqdm(
            total=config.num_steps,
            initial=start_step,
            desc="train receiver",
            disable=not progress,
            dynamic_ncols=True,
        )
        last_saved = start_step
        while step < config.num_steps and not stopping.stopped:
            if budget_s is not None and time.monotonic() - started > budget_s:
                break
            images, y, low_res = batch_fn(step, generator)
            batch = images.shape[0]
            if images.ndim != 4 or y.ndim != 4 or y.shape[0] != batch:
                raise ValueError("batch_fn must return images [B,3,H,W] and y [B,L,H,W]")

            y = y.float()
            if config.map_noise:
                pick = int(torch.randint(len(config.map_noise_stds), (1,), generator=generator))
                std = config.map_noise_stds[pick]
                shape = (batch, 1, *y.shape[2:]) if config.map_noise_broadcast else y.shape
                y = y + std * torch.randn(shape, generator=generator)
            if config.drop_rate > 0:
                keep = torch.rand(batch, generator=generator) >= config.drop_rate
                y = y * keep.to(y.dtype).view(batch, 1, 1, 1)
            if low_res is not None and not config.super_res:
                raise ValueError("batch_fn returned low_res but config.super_res is False")
            if config.super_res and low_res is None:
                low_res = _downscale(images.float(), config.lowres_factor)
                if degrade_lowres is not None:
                    low_res = degrade_lowres(low_res)
            t = torch.randint(schedule.num_steps, (batch,), generator=generator)
            if bank is None:
                noise = torch.randn(images.shape, generator=generator)
            else:
                picks = torch.randint(bank.size, (batch,), generator=generator)
                noise = bank.entries(picks, images.shape[1:])

            x0 = images.to(device, torch.float32)
            if config.residual:
                from semantic.diffusion.unet import upsample_low_res

                up = upsample_low_res(low_res.to(device, torch.float32), x0.shape[-2:])
                x0 = config.residual_scale * (x0 - up)
            noise = noise.to(device)
            t = t.to(device)
            y = y.to(device)
            x_t = schedule.q_sample(x0, t, noise)
            extra = {} if not config.super_res else {"low_res": low_res.to(device)}
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(config, step)
            autocast = (
                torch.autocast(device_type=device.type, dtype=amp_dtype)
                if amp_dtype is not None
                else contextlib.nullcontext()
            )
            with autocast:
                model_output = net(x_t, t, y, **extra)
            terms = diffusion_loss(
                schedule,
                model_output,
                x0,
                x_t,
                t,
                noise,
                kind=config.loss,
                vb_weight=config.vb_weight,
            )
            loss = terms.loss.mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            max_norm = config.grad_clip_norm if config.grad_clip_norm is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
            scaler.step(optimizer)
            scaler.update()
            with torch.no_grad():
                for name, p in ema_params:
                    ema[name].lerp_(p.detach().float(), 1.0 - config.ema_rate)
                for name, v in net.state_dict().items():
                    if name not in param_names:
                        ema[name].copy_(v)
            step += 1

            history["loss"].append(float(loss.detach()))
            history["mse"].append(float(terms.mse.detach().mean()))
            history["vb"].append(float(terms.vb.detach().mean()))
            history["grad_norm"].append(float(grad_norm))
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
            if rule is not None and step % rule.every == 0:
                validate(step)
            if step % config.checkpoint_every == 0:
                save(step)
                last_saved = step
        bar.close()
        if step != last_saved or not state_path.exists():
            save(step)
    curve = _write_loss_files(out, history)
    if rule is not None:
        with open(out / "validation.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["step", "loss", "smoothed"])
            writer.writerows([[int(r[0]), f"{r[1]:.6g}", f"{r[2]:.6g}"] for r in stopping.history])
    recent = history["loss"][-100:]
    return TrainSummary(
        start_step=start_step,
        step=step,
        completed=step >= config.num_steps,
        final_loss=sum(recent) / len(recent) if recent else None,
        wall_s=time.monotonic() - started,
        train_state_path=state_path,
        ema_path=ema_path,
        loss_curve_path=curve,
        losses=list(history["loss"]),
        early_stopped=stopping.stopped,
        best_step=stopping.best_step,
        validation=[list(r) for r in stopping.history],
    )


def load_ema_state(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read ``receiver_ema.pt``: (EMA state_dict, UNet config dict); ``weights_only`` load."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if data.get("format") != EMA_EXPORT_FORMAT:
        raise ValueError(f"{path} is not a receiver EMA export")
    return data["state_dict"], data["unet_config"]
