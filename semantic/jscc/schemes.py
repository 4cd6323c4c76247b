"""``deepjscc`` and ``diffjscc``: the JSCC latent sent as one analog stream.

Both transmitters are the deep-JSCC encoder: every image becomes ``N = C h w / 2`` unit-power
complex symbols in the analog stream ``latent`` (N channel uses per image, counted in the
payload; no digital side information). The runner sends them over the scenario's channel at the
point's true SNR per channel use and hands the receiver the equalised symbols and their effective
noise variance (``link.channel_io``).

* ``deepjscc``: the deep-JSCC decoder (LMMSE latent + SNR plane), no map, no generative model.
* ``diffjscc``: the same decoder's image refined by a diffusion receiver conditioned on the
  received latent, starting from Gaussian noise (``semantic.jscc.refiner``). With
  ``oracle_start=True`` the chain starts from the DDIM inversion of the *original* image's
  residual (Diff_JSCC's "start from X_T"): the original images are kept by the scheme object at
  transmit time and read at receive time, a side channel no real receiver has; the scheme then
  reports itself as ``diffjscc_oracle_start``.
"""

from __future__ import annotations

import numpy as np
import torch

from semantic.codecs.payload import Payload, Stream
from semantic.jscc.model import JSCCCodec
from semantic.jscc.refiner import DiffusionRefiner, refiner_condition
from semantic.schemes.base import (
    Delivered,
    Reconstruction,
    SourceBatch,
    Transmission,
    images_to_model,
    model_to_images,
)

STREAM = "latent"


def _encode(codec: JSCCCodec, images: np.ndarray, device: str, batch_size: int) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images_to_model(images[start:start + batch_size]).to(device)
            out.append(codec.encode(x).cpu())
    return torch.cat(out)


def _transmit(codec: JSCCCodec, source: SourceBatch, device: str, batch_size: int
              ) -> Transmission:
    symbols = _encode(codec, source.images, device, batch_size)
    uses = codec.config.channel_uses(source.size)
    assert symbols.shape == (len(source), uses)
    payloads = [Payload.of(Stream.analog(STREAM, uses)) for _ in range(len(source))]
    return Transmission(payloads=payloads, analog={STREAM: symbols})


class DeepJSCCScheme:
    """Deep JSCC (Bourtsoulatze et al. 2019) over the project's analog path.

    Args:
        codec: a trained ``JSCCCodec`` (structure and bandwidth fixed by its config).
        device: where the codec runs. batch_size: images per forward pass.

    Example:
        >>> from semantic.jscc.model import JSCCConfig
        >>> scheme = DeepJSCCScheme(JSCCCodec(JSCCConfig(widths=(8, 8))))
        >>> src = SourceBatch(np.zeros((1, 32, 64, 3), np.uint8), np.zeros((1, 32, 64), np.uint8),
        ...                   np.zeros((1, 32, 64), np.int32), np.arange(1))
        >>> scheme.transmit(src).payloads[0].channel_uses_per_pixel(32, 64)
        0.25
    """

    name = "deepjscc"
    uses_generative_receiver = False

    def __init__(self, codec: JSCCCodec, device: str = "cpu", batch_size: int = 16):
        self.codec = codec.to(device).eval()
        self.device = device
        self.batch_size = batch_size

    def transmit(self, source: SourceBatch) -> Transmission:
        return _transmit(self.codec, source, self.device, self.batch_size)

    @torch.no_grad()
    def decode(self, delivered: Delivered) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoded images float [B, 3, H, W] in [-1, 1], LMMSE latent [B, C, h, w],
        SNR plane [B, 1, h, w]), all on the CPU."""
        symbols = delivered.analog[STREAM]
        noise_var = delivered.analog_noise_var[STREAM]
        images, latents, planes = [], [], []
        for start in range(0, symbols.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            latent, plane = self.codec.received_latent(symbols[sl].to(self.device),
                                                       noise_var[sl].to(self.device),
                                                       delivered.size)
            images.append(self.codec.decode_latent(latent, plane).cpu())
            latents.append(latent.cpu())
            planes.append(plane.cpu())
        return torch.cat(images), torch.cat(latents), torch.cat(planes)

    def receive(self, delivered: Delivered, generator: torch.Generator) -> Reconstruction:
        images = self.decode(delivered)[0]
        return Reconstruction(images=model_to_images(images), maps=None)


class DiffJSCCScheme:
    """Deep-JSCC transmitter + diffusion refiner conditioned on the received latent.

    Args:
        codec: the trained ``JSCCCodec`` the refiner was trained with.
        refiner: a ``DiffusionRefiner`` with ``C + 1`` label channels.
        oracle_start: start the chain from the DDIM inversion of the original (an oracle).
        device, batch_size: as ``DeepJSCCScheme``.
    """

    uses_generative_receiver = True

    def __init__(self, codec: JSCCCodec, refiner: DiffusionRefiner, oracle_start: bool = False,
                 device: str = "cpu", batch_size: int = 16):
        if refiner.label_channels != codec.config.latent_channels + 1:
            raise ValueError(f"refiner takes {refiner.label_channels} label channels; the codec's "
                             f"latent needs {codec.config.latent_channels + 1}")
        self.base = DeepJSCCScheme(codec, device, batch_size)
        self.refiner = refiner
        self.oracle_start = oracle_start
        self.name = "diffjscc_oracle_start" if oracle_start else "diffjscc"
        self._oracle_images: np.ndarray | None = None

    @property
    def report_name(self) -> str:
        """The name results carry (the oracle mode is labelled as such)."""
        return self.name

    def transmit(self, source: SourceBatch) -> Transmission:
        if self.oracle_start:
            # ORACLE side channel: the receiver will read the originals (not sent, not counted).
            self._oracle_images = source.images.copy()
        return self.base.transmit(source)

    def receive(self, delivered: Delivered, generator: torch.Generator) -> Reconstruction:
        coarse, latent, plane = self.base.decode(delivered)
        y = refiner_condition(latent, plane, delivered.size)
        x_T = None
        if self.oracle_start:
            if self._oracle_images is None or len(self._oracle_images) != coarse.shape[0]:
                raise RuntimeError("oracle_start: receive() needs the batch of the last transmit()")
            x_T = self.refiner.invert(images_to_model(self._oracle_images), coarse, y)
        out = self.refiner.refine(coarse, y, generator, x_T=x_T)
        return Reconstruction(images=model_to_images(out), maps=None)


def build_jscc_scheme(name: str, scenario, device: str):
    """``deepjscc`` or ``diffjscc`` from a validated ``Scenario`` (its ``jscc`` section).

    Raises:
        ConfigError: a missing weights file, a bandwidth that the codec was not trained for,
            or a refiner trained with a different codec, naming the ``jscc.*`` key.
    """
    from pathlib import Path

    from link.errors import ConfigError
    from semantic.diffusion.export import sha256_of
    from semantic.jscc.model import load_codec
    from semantic.jscc.refiner import load_refiner

    opts = scenario.jscc
    hint = "train it with: python simulate.py train jscc --config scenarios/train/jscc_"

    def existing(path: str, key: str, stem: str) -> Path:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: file not found ({hint}{stem}_64x128.yaml)", key=key)
        return Path(path)

    codec_path = existing(opts.codec_weights, "jscc.codec_weights", "deepjscc")
    try:
        codec = load_codec(codec_path, device)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(str(exc), key="jscc.codec_weights") from None
    cupp = codec.config.channel_uses_per_pixel
    if opts.channel_uses_per_pixel is not None and abs(opts.channel_uses_per_pixel - cupp) > 1e-9:
        raise ConfigError(f"the codec {codec_path} was trained for {cupp:g} channel uses per "
                          f"pixel, not {opts.channel_uses_per_pixel:g} (retrain it)",
                          key="jscc.channel_uses_per_pixel")
    try:
        codec.config.latent_shape(tuple(scenario.data.size))
    except ValueError as exc:
        raise ConfigError(str(exc), key="data.size") from None
    if name == "deepjscc":
        return DeepJSCCScheme(codec, device, opts.batch_size)
    refiner_path = existing(opts.refiner_weights, "jscc.refiner_weights", "diffjscc_refiner")
    try:
        refiner, info = load_refiner(refiner_path, device, sampler=opts.sampler, steps=opts.steps,
                                     batch_size=opts.batch_size)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(str(exc), key="jscc.refiner_weights") from None
    if info.get("codec_sha256") not in (None, sha256_of(codec_path)):
        raise ConfigError(f"{refiner_path} was trained with another codec than {codec_path}",
                          key="jscc.refiner_weights")
    multiple = refiner.receiver.config.size_multiple
    if any(v % multiple for v in scenario.data.size):
        raise ConfigError(f"the refiner needs H and W multiples of {multiple}, got "
                          f"{list(scenario.data.size)}", key="data.size")
    try:
        return DiffJSCCScheme(codec, refiner, oracle_start=opts.oracle_start, device=device,
                              batch_size=opts.batch_size)
    except ValueError as exc:
        raise ConfigError(str(exc), key="jscc.refiner_weights") from None
