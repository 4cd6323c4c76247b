"""Discrete Gaussian noise schedules, timestep respacing and the per-step posterior.

Numbers follow ``shared/reference/SDM_UNET_FACTS.md`` §12 (the guided-diffusion / SDM
conventions): every table is float64; a value used in a step is gathered at the step index and
then cast to float32. A schedule is a chain of ``N`` steps; ``timestep_map[k]`` is the original
timestep (0..T-1) that the network sees at chain index ``k``. A fresh schedule has the identity
map; :func:`respaced` keeps a subset of steps and recomputes the betas from the kept
``alphas_cumprod`` (§12.6).

Example:
    >>> base = NoiseSchedule.from_name("linear", 1000)
    >>> chain = respaced(base, space_timesteps(1000, "ddim25"))
    >>> chain.num_steps, chain.timestep_map[:3].tolist()
    (25, [0, 40, 80])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SCHEDULE_NAMES",
    "MeanVariance",
    "NoiseSchedule",
    "logsnr_timesteps",
    "respaced",
    "select_timesteps",
    "space_timesteps",
]

SCHEDULE_NAMES = ("linear", "cosine")


@dataclass(frozen=True)
class MeanVariance:
    """The model's reverse-step Gaussian p(x_{t-1} | x_t) at one chain index.

    All tensors are [B, C, H, W] in the dtype of ``x_t`` (float32 for float32 inputs).

    Attributes:
        mean: posterior mean ``coef1 · x̂_0 + coef2 · x_t``.
        variance: ``exp(log_variance)``.
        log_variance: learned-range interpolation between ``log β`` and the clipped posterior
            log-variance (§12.3), or the clipped posterior log-variance for 3-channel outputs.
        pred_xstart: the predicted clean image x̂_0 (clamped to [-1, 1] when requested).
    """

    mean: Tensor
    variance: Tensor
    log_variance: Tensor
    pred_xstart: Tensor


def _linear_betas(num_steps: int) -> np.ndarray:
    # Ho et al. 2020 linear schedule, scaled so that any T spans the same total noise (§12.1).
    scale = 1000.0 / num_steps
    return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)


def _cosine_betas(num_steps: int, max_beta: float = 0.999) -> np.ndarray:
    # Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = cos²((t + s)/(1 + s) · π/2), s = 0.008.
    def alpha_bar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1.0 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
        for i in range(num_steps)
    ]
    return np.array(betas, dtype=np.float64)


class NoiseSchedule:
    """Float64 tables of a discrete diffusion chain (forward process and posterior).

    Args:
        betas: [N] per-step noise variances of the chain, in (0, 1].
        timestep_map: [N] int64 original timesteps seen by the network (default ``arange(N)``).
        num_train_timesteps: T of the original schedule (default ``N``).

    Attributes (all [N] torch.float64 on CPU unless noted):
        betas, alphas, alphas_cumprod, alphas_cumprod_prev (ᾱ_{k-1}, 1.0 before the first),
        sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, sqrt_recip_alphas_cumprod,
        sqrt_recipm1_alphas_cumprod, posterior_variance, posterior_log_variance_clipped
        (index 0 replaced by index 1), posterior_mean_coef1, posterior_mean_coef2, log_betas;
        timestep_map ([N] int64).

    Chain indices ``t`` passed to the methods are an ``int`` (same for the whole batch) or a
    [B] integer tensor.

    Example:
        >>> s = NoiseSchedule.from_name("linear", 1000)
        >>> round(float(s.alphas_cumprod[-1]), 9)
        4.0358e-05
    """

    def __init__(
        self,
        betas: Tensor | np.ndarray | Sequence[float],
        timestep_map: Tensor | Sequence[int] | None = None,
        num_train_timesteps: int | None = None,
    ) -> None:
        b = np.asarray(
            betas.detach().cpu().numpy() if isinstance(betas, Tensor) else betas,
            dtype=np.float64,
        )
        if b.ndim != 1 or b.size == 0:
            raise ValueError("betas must be a non-empty 1-D sequence")
        if not np.all((b > 0) & (b <= 1)):
            raise ValueError("betas must lie in (0, 1]")
        n = b.size
        if timestep_map is None:
            tmap = torch.arange(n, dtype=torch.int64)
        else:
            tmap = torch.as_tensor(timestep_map, dtype=torch.int64).cpu()
            if tmap.shape != (n,):
                raise ValueError(f"timestep_map must have shape ({n},), got {tuple(tmap.shape)}")
        self.num_steps = n
        self.num_train_timesteps = int(num_train_timesteps) if num_train_timesteps else n
        self.timestep_map = tmap

        alphas = 1.0 - b
        acp = np.cumprod(alphas, axis=0)
        acp_prev = np.append(1.0, acp[:-1])
        post_var = b * (1.0 - acp_prev) / (1.0 - acp)
        # log(0) at index 0 is avoided by borrowing index 1 (a one-step chain keeps its value).
        post_var_for_log = np.append(post_var[1], post_var[1:]) if n > 1 else post_var

        def t64(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))

        self.betas = t64(b)
        self.log_betas = t64(np.log(b))
        self.alphas = t64(alphas)
        self.alphas_cumprod = t64(acp)
        self.alphas_cumprod_prev = t64(acp_prev)
        self.sqrt_alphas_cumprod = t64(np.sqrt(acp))
        self.sqrt_one_minus_alphas_cumprod = t64(np.sqrt(1.0 - acp))
        self.sqrt_recip_alphas_cumprod = t64(np.sqrt(1.0 / acp))
        self.sqrt_recipm1_alphas_cumprod = t64(np.sqrt(1.0 / acp - 1.0))
        self.posterior_variance = t64(post_var)
        with np.errstate(divide="ignore"):
            self.posterior_log_variance_clipped = t64(np.log(post_var_for_log))
        self.posterior_mean_coef1 = t64(b * np.sqrt(acp_prev) / (1.0 - acp))
        self.posterior_mean_coef2 = t64((1.0 - acp_prev) * np.sqrt(alphas) / (1.0 - acp))

    @classmethod
    def from_name(cls, name: str, num_steps: int = 1000) -> NoiseSchedule:
        """Build the ``linear`` (SDM default) or ``cosine`` schedule with ``num_steps`` steps."""
        if name == "linear":
            return cls(_linear_betas(num_steps))
        if name == "cosine":
            return cls(_cosine_betas(num_steps))
        raise ValueError(f"unknown noise schedule {name!r}; valid: {', '.join(SCHEDULE_NAMES)}")

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule(num_steps={self.num_steps}, "
            f"num_train_timesteps={self.num_train_timesteps})"
        )

    # ------------------------------------------------------------------ gathering
    def chain_indices(self, t: int | Tensor, batch: int) -> Tensor:
        """[B] int64 CPU chain indices from an int or a [B] tensor (range-checked)."""
        idx = torch.as_tensor(t, dtype=torch.int64).cpu()
        if idx.ndim == 0:
            idx = idx.expand(batch)
        if idx.shape != (batch,):
            raise ValueError(f"t must be an int or a [{batch}] tensor, got {tuple(idx.shape)}")
        if bool((idx < 0).any()) or bool((idx >= self.num_steps).any()):
            raise IndexError(f"chain index out of range 0..{self.num_steps - 1}")
        return idx

    def gather(self, table: Tensor, t: int | Tensor, like: Tensor) -> Tensor:
        """Values of a float64 ``table`` at chain indices ``t``, cast to float32, shaped
        [B, 1, ..., 1] to broadcast against ``like`` ([B, ...]) and moved to its device."""
        idx = self.chain_indices(t, like.shape[0])
        vals = table[idx].to(torch.float32)
        return vals.reshape(-1, *([1] * (like.ndim - 1))).to(like.device)

    def model_timesteps(
        self, t: int | Tensor, batch: int, device: torch.device | str = "cpu"
    ) -> Tensor:
        """[B] int64 original timesteps (``timestep_map[t]``) that the network is fed."""
        return self.timestep_map[self.chain_indices(t, batch)].to(device)

    # ------------------------------------------------------------------ forward process
    def q_sample(self, x0: Tensor, t: int | Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (§12.1).

        Args:
            x0: [B, C, H, W] clean images in [-1, 1].
            t: chain index (int or [B]).
            noise: ε, same shape as ``x0``.

        Returns:
            [B, C, H, W] noisy images, dtype of ``x0``.
        """
        return (
            self.gather(self.sqrt_alphas_cumprod, t, x0) * x0
            + self.gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def q_posterior_mean_log_variance(
        self, x0: Tensor, x_t: Tensor, t: int | Tensor
    ) -> tuple[Tensor, Tensor]:
        """Mean and clipped log-variance of the true posterior q(x_{t-1} | x_t, x_0)."""
        mean = (
            self.gather(self.posterior_mean_coef1, t, x_t) * x0
            + self.gather(self.posterior_mean_coef2, t, x_t) * x_t
        )
        log_var = self.gather(self.posterior_log_variance_clipped, t, x_t).expand_as(x_t)
        return mean, log_var

    # ------------------------------------------------------------------ reverse step
    def predict_xstart(self, x_t: Tensor, t: int | Tensor, eps: Tensor) -> Tensor:
        """x̂_0 = √(1/ᾱ_t) x_t − √(1/ᾱ_t − 1) ε̂ (§12.2)."""
        return (
            self.gather(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - self.gather(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
        )

    def eps_from_xstart(self, x_t: Tensor, t: int | Tensor, pred_xstart: Tensor) -> Tensor:
        """ε = (√(1/ᾱ_t) x_t − x̂_0) / √(1/ᾱ_t − 1) (§12.5)."""
        return (
            self.gather(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t - pred_xstart
        ) / self.gather(self.sqrt_recipm1_alphas_cumprod, t, x_t)

    def p_mean_variance(
        self,
        model_output: Tensor,
        x_t: Tensor,
        t: int | Tensor,
        clip_denoised: bool = True,
    ) -> MeanVariance:
        """Reverse-step Gaussian from an ε-predicting network's output (§§12.2-12.3).

        Args:
            model_output: [B, 2C, H, W] (ε̂ in channels 0..C-1, variance interpolation v in
                C..2C-1, learned-range) or [B, C, H, W] (ε̂ only; the fixed posterior variance
                with clipped log is used).
            x_t: [B, C, H, W] current sample.
            t: chain index (int or [B]) in this schedule.
            clip_denoised: clamp x̂_0 to [-1, 1] (SDM samples always do).

        Returns:
            :class:`MeanVariance` with [B, C, H, W] tensors.
        """
        channels = x_t.shape[1]
        model_output = model_output.to(x_t.dtype)
        if model_output.shape[1] == 2 * channels:
            eps, v = model_output[:, :channels], model_output[:, channels:]
            min_log = self.gather(self.posterior_log_variance_clipped, t, x_t)
            max_log = self.gather(self.log_betas, t, x_t)
            frac = (v + 1) / 2
            log_variance = frac * max_log + (1 - frac) * min_log
            variance = torch.exp(log_variance)
        elif model_output.shape[1] == channels:
            eps = model_output
            log_variance = self.gather(self.posterior_log_variance_clipped, t, x_t).expand_as(x_t)
            variance = self.gather(self.posterior_variance, t, x_t).expand_as(x_t)
        else:
            raise ValueError(
                f"model output has {model_output.shape[1]} channels; expected {channels} or "
                f"{2 * channels} for a {channels}-channel sample"
            )
        pred_xstart = self.predict_xstart(x_t, t, eps)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _ = self.q_posterior_mean_log_variance(pred_xstart, x_t, t)
        return MeanVariance(
            mean=mean, variance=variance, log_variance=log_variance, pred_xstart=pred_xstart
        )


# ---------------------------------------------------------------------- respacing
def space_timesteps(num_timesteps: int, spec: str | int | Sequence[int]) -> list[int]:
    """Original timesteps kept by a respacing spec (§12.6), sorted ascending.

    Args:
        num_timesteps: T of the original schedule.
        spec: ``"N"`` or ``"N1,N2,..."`` (T split into nearly equal sections, N_i steps evenly
            spread in each with half-to-even rounding), ``"ddimN"`` (the smallest integer stride
            giving exactly N steps starting at 0), an int N (= ``"N"``), or an explicit sequence
            of timesteps.

    Returns:
        Sorted list of distinct kept timesteps.

    Example:
        >>> space_timesteps(1000, "100")[:8]
        [0, 10, 20, 30, 40, 50, 61, 71]
        >>> space_timesteps(1000, "ddim25")[-1]
        960
    """
    if isinstance(spec, int):
        spec = str(spec)
    if not isinstance(spec, str):
        steps = sorted({int(s) for s in spec})
        if not steps or steps[0] < 0 or steps[-1] >= num_timesteps:
            raise ValueError(f"explicit timesteps must lie in 0..{num_timesteps - 1}")
        return steps
    spec = spec.strip()
    if spec.startswith("ddim"):
        wanted = int(spec[len("ddim") :])
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == wanted:
                return list(range(0, num_timesteps, stride))
        if wanted == num_timesteps:
            return list(range(num_timesteps))
        raise ValueError(f"cannot create exactly {wanted} steps with an integer stride")
    counts = [int(c) for c in spec.split(",")]
    base, extra = divmod(num_timesteps, len(counts))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(counts):
        size = base + (1 if i < extra else 0)
        if count > size:
            raise ValueError(f"cannot take {count} steps from a section of {size}")
        if count > 0:
            stride = 1.0 if count == 1 else (size - 1) / (count - 1)
            position = 0.0
            for _ in range(count):
                kept.append(start + round(position))  # Python round: half to even, as SDM
                position += stride
        start += size
    return sorted(set(kept))


def respaced(schedule: NoiseSchedule, kept_steps: Sequence[int]) -> NoiseSchedule:
    """A shorter chain over the kept chain indices of ``schedule`` (§12.6).

    The new betas are ``1 − ᾱ_{i_k} / ᾱ_{i_{k-1}}`` (ᾱ before the first kept step = 1); the new
    ``timestep_map`` composes with the old one, so the network still sees original timesteps.

    Args:
        schedule: the chain to thin out (usually the full T-step schedule).
        kept_steps: indices into ``schedule`` (e.g. from :func:`space_timesteps`).

    Returns:
        A :class:`NoiseSchedule` with ``len(kept_steps)`` steps.
    """
    kept = sorted({int(k) for k in kept_steps})
    if not kept or kept[0] < 0 or kept[-1] >= schedule.num_steps:
        raise ValueError(f"kept steps must lie in 0..{schedule.num_steps - 1}")
    acp = schedule.alphas_cumprod.numpy()
    betas = []
    last = 1.0
    for k in kept:
        betas.append(1.0 - acp[k] / last)
        last = acp[k]
    return NoiseSchedule(
        np.array(betas, dtype=np.float64),
        timestep_map=schedule.timestep_map[torch.tensor(kept)],
        num_train_timesteps=schedule.num_train_timesteps,
    )


def logsnr_timesteps(schedule: NoiseSchedule, num_steps: int) -> list[int]:
    """``num_steps`` chain indices of ``schedule`` spaced uniformly in log-SNR.

    λ_k = ½ log(ᾱ_k / (1 − ᾱ_k)) is spread evenly between the last and the first step of the
    chain and each target is mapped to the nearest step (then nudged to keep the steps
    distinct); both ends are always kept. This is the spacing DPM-Solver recommends
    (Lu et al. 2022): with the linear β schedule it puts many more steps near t = 0 than
    SDM's uniform spacing, whose last interval spans a long stretch of λ.

    Example:
        >>> logsnr_timesteps(NoiseSchedule.from_name("linear", 1000), 10)
        [0, 5, 22, 73, 202, 410, 603, 757, 886, 999]
    """
    n = schedule.num_steps
    if not 1 <= num_steps <= n:
        raise ValueError(f"num_steps must lie in 1..{n}")
    if num_steps == 1:
        return [n - 1]
    acp = schedule.alphas_cumprod.numpy()
    lam = 0.5 * (np.log(acp) - np.log1p(-acp))  # decreasing in the chain index
    targets = np.linspace(lam[0], lam[-1], num_steps)
    steps = [int(np.argmin(np.abs(lam - target))) for target in targets]
    steps[0], steps[-1] = 0, n - 1
    for i in range(1, num_steps):  # distinct, increasing from the bottom ...
        steps[i] = max(steps[i], steps[i - 1] + 1)
    steps[-1] = n - 1
    for i in range(num_steps - 2, -1, -1):  # ... and below the top
        steps[i] = min(steps[i], steps[i + 1] - 1)
    return steps


def select_timesteps(schedule: NoiseSchedule, spec: str | int | Sequence[int]) -> list[int]:
    """Chain indices of ``schedule`` kept by ``spec``: any :func:`space_timesteps` spec, or
    ``"logsnrN"`` for :func:`logsnr_timesteps`.

    Example:
        >>> s = NoiseSchedule.from_name("linear", 1000)
        >>> len(select_timesteps(s, "ddim50")), len(select_timesteps(s, "logsnr20"))
        (50, 20)
    """
    if isinstance(spec, str) and spec.strip().startswith("logsnr"):
        return logsnr_timesteps(schedule, int(spec.strip()[len("logsnr") :]))
    return space_timesteps(schedule.num_steps, spec)
