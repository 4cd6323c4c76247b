"""Training of the deep-JSCC codec and of the ``diffjscc`` refiner (``simulate.py train jscc``).

A training YAML holds one of two sections:

* ``jscc:`` (``JSCCTrainConfig``): the codec end to end with the channel in the loop
  (``semantic.jscc.channel``: AWGN, Rayleigh block fading with perfect CSI, or both), one SNR
  per example drawn uniformly from ``snr_range_db``; loss = MSE between the decoded and the
  original image in [-1, 1]. Adam, gradient clipping.
* ``refiner:`` (the project's ``ReceiverTrainConfig``, trained by ``train_receiver``): the
  diffusion refiner on residuals of a frozen, trained codec. Its ``data`` section names the
  codec (``codec_weights``; its sha256 is recorded) and the residual scale, channel and SNR range.

Images come from a pool of synthetic street scenes of the train split rendered once per run
(``data.pool_size`` scenes, cached in the run folder), with horizontal flips. Every random draw
comes from one CPU generator that is checkpointed, so an interrupted and resumed run gives the
weights of an uninterrupted one. Atomic writes, device choice, loss files and the resume rule
(only ``RUN_CONTROL_FIELDS`` may change) are the receiver trainer's
(``semantic.diffusion.training``).

Files in ``out_dir`` (codec runs): ``jscc_state.pt`` (resumable), ``codec.pt`` (float32
weights + config), ``losses.csv``, ``loss_curve.png``, ``pool_*.npy`` (the rendered scenes).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic.diffusion.training import (
    _atomic_save,
    _resolve_device,
    _write_loss_files,
    check_resume_config,
)
from semantic.jscc.channel import TRAIN_CHANNELS, draw_conditions, train_channel
from semantic.jscc.model import JSCCCodec, JSCCConfig, codec_checkpoint, dataclass_from_dict

STATE_FORMAT = "semlink-jscc-train-state/1"
DATA_KEYS = frozenset({"source", "size", "seed", "pool_size", "hflip"})
REFINER_DATA_KEYS = DATA_KEYS | {"codec_weights", "codec_sha256", "residual_scale", "channel",
                                 "snr_range_db", "crop"}


def _check_data(data: Mapping[str, Any], valid: frozenset[str]) -> None:
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"unknown data keys {unknown}; valid: {sorted(valid)}")
    if data.get("source", "synthetic") != "synthetic":
        raise ValueError(f"data.source must be 'synthetic', got {data.get('source')!r}")


@dataclass
class JSCCTrainConfig:
    """A codec training run (saved in the checkpoint as a plain dict).

    Attributes:
        codec: ``JSCCConfig`` fields (bandwidth, widths, ...).
        num_steps, batch_size, learning_rate, grad_clip_norm: optimisation (Adam).
        channel: ``awgn``, ``rayleigh`` (block fading, perfect CSI) or ``mixed``.
        snr_range_db: [low, high] training SNR per channel use (equal: one training SNR).
        seed: weights and the training generator.
        checkpoint_every, max_minutes, device: run control (may change on resume).
        data: ``source`` (synthetic), ``size`` [H, W], ``seed``, ``pool_size``, ``hflip``.
    """

    codec: dict[str, Any] = field(default_factory=dict)
    num_steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 1e-3
    grad_clip_norm: float | None = 1.0
    channel: str = "mixed"
    snr_range_db: tuple[float, float] = (-2.0, 20.0)
    seed: int = 0
    checkpoint_every: int = 100
    max_minutes: float | None = None
    device: str = "cpu"
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.codec = JSCCConfig.from_dict(self.codec).to_dict()
        self.data = dict(self.data)
        _check_data(self.data, DATA_KEYS)
        self.snr_range_db = (float(self.snr_range_db[0]), float(self.snr_range_db[1]))
        if self.snr_range_db[0] > self.snr_range_db[1]:
            raise ValueError("snr_range_db must be [low, high] with low <= high")
        if self.channel not in TRAIN_CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(TRAIN_CHANNELS)}, "
                             f"got {self.channel!r}")
        if self.num_steps < 0 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("num_steps must be >= 0, batch_size and checkpoint_every >= 1")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be positive (or null)")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["snr_range_db"] = list(self.snr_range_db)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JSCCTrainConfig:
        return dataclass_from_dict(cls, data, "jscc training")


class ScenePool:
    """Train-split scenes rendered once, drawn (with flips) by a generator.

    Args:
        data: the ``data`` mapping (size, seed, pool_size, hflip).
        cache_dir: where ``pool.npy`` is kept (None: render every time).
    """

    def __init__(self, data: Mapping[str, Any], cache_dir: Path | None = None):
        from semantic.data.synthetic import SPLITS, SyntheticStreetScenes

        size = tuple(int(v) for v in data.get("size", (64, 128)))
        seed = int(data.get("seed", 0))
        num = int(data.get("pool_size", 1024))
        self.hflip = bool(data.get("hflip", True))
        path = None if cache_dir is None else cache_dir / f"pool_{seed}_{num}_{size[0]}x{size[1]}.npy"
        if path is not None and path.exists():
            self.images = np.load(path)
        else:
            scenes = SyntheticStreetScenes(size=size, seed=seed)
            first = SPLITS["train"].start
            self.images = scenes.batch(range(first, first + num)).images
            if path is not None:
                tmp = path.with_name(path.name + ".tmp.npy")
                np.save(tmp, self.images)
                os.replace(tmp, path)

    def draw(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """float32 [B, 3, H, W] in [-1, 1]."""
        from semantic.schemes.base import images_to_model

        idx = torch.randint(len(self.images), (batch_size,), generator=generator).numpy()
        flips = (torch.rand(batch_size, generator=generator) < 0.5).numpy()
        images = self.images[idx]
        if self.hflip:
            images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
        return images_to_model(images)


@dataclass(frozen=True)
class JSCCTrainSummary:
    """Outcome of one ``train_codec`` call (steps, final mean loss of the last <= 100 steps)."""

    start_step: int
    step: int
    completed: bool
    final_loss: float | None
    wall_s: float
    codec_path: Path


def _psnr_from_mse(mse: float) -> float:
    # Images in [-1, 1]: peak-to-peak 2.
    return 10 * math.log10(4.0 / max(mse, 1e-12))


def train_codec(config: JSCCTrainConfig, out_dir: str | os.PathLike, *, resume: bool = True,
                progress: bool = True) -> JSCCTrainSummary:
    """Train (or continue) a deep-JSCC codec end to end through the training channel.

    Example:
        >>> import tempfile
        >>> cfg = JSCCTrainConfig(codec={"widths": [8, 8]}, num_steps=2, batch_size=2,
        ...                       data={"size": [32, 64], "pool_size": 4})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     s = train_codec(cfg, d, progress=False)
        >>> s.step, s.completed
        (2, True)
    """
    from tqdm.auto import tqdm

    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path, codec_path = out / "jscc_state.pt", out / "codec.pt"
    device = _resolve_device(config.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        codec = JSCCCodec(JSCCConfig.from_dict(config.codec)).to(device)
    optimizer = torch.optim.Adam(codec.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"loss": [], "mse": [], "vb": [], "grad_norm": []}
    config_dict = config.to_dict()
    start_step, saved_wall_s = 0, 0.0
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{state_path} is not a JSCC training state")
        check_resume_config(state["config"], config_dict, JSCCTrainConfig().to_dict())
        codec.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator_state"])
        history = {k: list(v) for k, v in state["history"].items()}
        start_step, saved_wall_s = int(state["step"]), float(state["wall_s"])
        if start_step > config.num_steps:
            raise ValueError(f"checkpoint is at step {start_step} > num_steps {config.num_steps}")
    pool = ScenePool(config.data, out)

    def save(step: int) -> None:
        wall_s = saved_wall_s + time.monotonic() - started
        _atomic_save({"format": STATE_FORMAT, "step": step,
                      "model": {k: v.detach().cpu() for k, v in codec.state_dict().items()},
                      "optimizer": optimizer.state_dict(),
                      "generator_state": generator.get_state(), "history": history,
                      "config": config_dict, "wall_s": wall_s}, state_path)
        _atomic_save(codec_checkpoint(codec, step=step, train_config=config_dict), codec_path)

    budget_s = None if config.max_minutes is None else 60.0 * config.max_minutes
    step = last_saved = start_step
    bar = tqdm(total=config.num_steps, initial=start_step, desc="train jscc",
               disable=not progress, dynamic_ncols=True)
    codec.train()
    while step < config.num_steps:
        if budget_s is not None and time.monotonic() - started > budget_s:
            break
        x = pool.draw(config.batch_size, generator).to(device)
        snr_db, fading = draw_conditions(config.batch_size, config.snr_range_db, config.channel,
                                         generator)
        symbols = codec.encode(x)
        x_hat, noise_var = train_channel(symbols, snr_db.to(device), fading.to(device), generator)
        out_images = codec.decode(x_hat, noise_var, tuple(x.shape[-2:]))
        loss = (out_images - x).square().mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = config.grad_clip_norm if config.grad_clip_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(codec.parameters(), max_norm)
        optimizer.step()
        step += 1
        value = float(loss.detach())
        history["loss"].append(value)
        history["mse"].append(value)
        history["vb"].append(0.0)
        history["grad_norm"].append(float(grad_norm))
        bar.update(1)
        bar.set_postfix(psnr=f"{_psnr_from_mse(value):.2f}")
        if step % config.checkpoint_every == 0:
            save(step)
            last_saved = step
    bar.close()
    if step != last_saved or not state_path.exists():
        save(step)
    _write_loss_files(out, history)
    recent = history["loss"][-100:]
    return JSCCTrainSummary(start_step, step, step >= config.num_steps,
                            sum(recent) / len(recent) if recent else None,
                            time.monotonic() - started, codec_path)


# ---------------------------------------------------------------------- refiner
def refiner_batch_fn(data: Mapping[str, Any], batch_size: int, out_dir: Path | None,
                     device: str = "cpu"):
    """``batch_fn`` for ``train_receiver``: (scaled residual, condition, decoder image).

    The frozen codec encodes a batch, the training channel corrupts it at per-example SNRs,
    the decoder gives ``x_jscc``; the "image" the diffusion learns is
    ``clamp(residual_scale * (x - x_jscc), -1, 1)``, its SPADE condition the upsampled LMMSE
    latent + SNR plane, its ``low_res`` input ``x_jscc``. With ``crop: [h, w]`` the three are
    cut to one random h x w window per batch (positions on a grid of 8 pixels) after the full
    image went through the codec: the UNet is fully convolutional and trains 4x faster on
    quarter-size windows.
    """
    from semantic.jscc.model import load_codec
    from semantic.jscc.refiner import refiner_condition

    _check_data(data, REFINER_DATA_KEYS)
    codec = load_codec(data["codec_weights"], device)
    for p in codec.parameters():
        p.requires_grad_(False)
    pool = ScenePool(data, out_dir)
    scale = float(data.get("residual_scale", 2.0))
    low, high = (float(v) for v in data.get("snr_range_db", (-2.0, 20.0)))
    channel = str(data.get("channel", "mixed"))
    crop = data.get("crop")

    @torch.no_grad()
    def batch_fn(step: int, generator: torch.Generator):
        x = pool.draw(batch_size, generator).to(device)
        snr_db, fading = draw_conditions(batch_size, (low, high), channel, generator)
        x_hat, noise_var = train_channel(codec.encode(x), snr_db.to(device), fading.to(device),
                                         generator)
        size = tuple(x.shape[-2:])
        latent, plane = codec.received_latent(x_hat, noise_var, size)
        coarse = codec.decode_latent(latent, plane)
        target = ((x - coarse) * scale).clamp(-1, 1)
        y = refiner_condition(latent, plane, size)
        if crop is not None:
            ch, cw = (int(v) for v in crop)
            top = 8 * int(torch.randint((size[0] - ch) // 8 + 1, (1,), generator=generator))
            left = 8 * int(torch.randint((size[1] - cw) // 8 + 1, (1,), generator=generator))
            window = (..., slice(top, top + ch), slice(left, left + cw))
            target, y, coarse = target[window], y[window], coarse[window]
        return target.cpu(), y.cpu(), coarse.cpu()

    return batch_fn, codec


def prepare_refiner_config(section: Mapping[str, Any]):
    """``ReceiverTrainConfig`` of a refiner run: fills the UNet (``refiner_unet_config``) and
    records the codec's sha256 in ``data`` so a resumed run or a loaded refiner can check it."""
    from semantic.diffusion.export import sha256_of
    from semantic.diffusion.training import ReceiverTrainConfig
    from semantic.jscc.model import load_codec
    from semantic.jscc.refiner import refiner_unet_config

    section = dict(section)
    data = dict(section.get("data") or {})
    _check_data(data, REFINER_DATA_KEYS)
    if "codec_weights" not in data:
        raise ValueError("refiner.data.codec_weights: the trained codec file is required")
    path = Path(data["codec_weights"])
    if not path.is_file():
        raise FileNotFoundError(f"refiner.data.codec_weights: {path} not found")
    data["codec_sha256"] = sha256_of(path)
    data.setdefault("residual_scale", 2.0)
    section["data"] = data
    if not section.get("unet"):
        codec = load_codec(path)
        section["unet"] = refiner_unet_config(codec.config.latent_channels).to_dict()
    section.setdefault("super_res", True)
    section.setdefault("loss", "mse")
    section.setdefault("drop_rate", 0.0)
    return ReceiverTrainConfig.from_dict(section)


def train_from_yaml(path: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                    steps: int | None = None, max_minutes: float | None = None,
                    progress: bool = True) -> str:
    """``simulate.py train jscc --config PATH``: run the file's ``jscc:`` or ``refiner:`` section.

    Returns a one-line summary. Raises ``ValueError`` (bad keys or values) or
    ``FileNotFoundError`` (a file named in the config).
    """
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    sections = [k for k in ("jscc", "refiner") if k in data]
    if len(sections) != 1 or set(data) - {"jscc", "refiner"}:
        raise ValueError("a jscc training file holds exactly one section: 'jscc' (the codec) or "
                         "'refiner' (the diffjscc diffusion refiner)")
    out = Path(out_dir or Path("results") / "train" / Path(path).stem)
    if sections[0] == "jscc":
        config = JSCCTrainConfig.from_dict(data["jscc"])
        if steps is not None:
            config.num_steps = steps
        if max_minutes is not None:
            config.max_minutes = max_minutes
        s = train_codec(config, out, progress=progress)
        loss = "n/a" if s.final_loss is None else f"{s.final_loss:.5f}"
        return (f"codec step {s.step}/{config.num_steps} (started at {s.start_step}), "
                f"final loss {loss}, {s.wall_s:.0f} s -> {s.codec_path}")
    from semantic.diffusion.training import train_receiver

    config = prepare_refiner_config(data["refiner"])
    if steps is not None:
        config.num_steps = steps
    if max_minutes is not None:
        config.max_minutes = max_minutes
    out.mkdir(parents=True, exist_ok=True)
    batch_fn, _ = refiner_batch_fn(config.data, config.batch_size, out)
    s = train_receiver(config, out, batch_fn=batch_fn, progress=progress)
    return (f"refiner step {s.step}/{config.num_steps} (started at {s.start_step}), "
            f"final loss {s.final_loss}, {s.wall_s:.0f} s -> {s.ema_path}")
