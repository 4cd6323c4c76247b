"""``diffgo``: semantic map + the index of a goal-selected start noise from a shared noise bank.

After Wanninayaka et al., "Diff-GO^n: Enhancing Diffusion Models for Goal-Oriented
Communications" (arXiv 2412.06980, SuchinW/Diff-GO-n). Transmitter and receiver share the
diffusion receiver and a noise bank (``semantic.diffusion.noise_bank.NoiseBank``: a seed and a
size N). Per image the transmitter

1. codes the label map losslessly (the configured map codec, JPEG XL by default, as ``spic``)
   and, when the receiver's network has an instance-edge channel, the binary instance-edge map
   as a second lossless stream ``edges``; it then decodes its own streams and builds exactly the
   condition ``y`` the receiver will build;
2. runs its own copy of the receiver from each candidate bank entry (every entry when
   ``candidates >= N``, else entry 0 plus ``candidates - 1`` distinct entries drawn uniformly
   from the bank by a generator seeded from (``selection_seed``, the image's data-set index));
   sampling is DDIM with eta = 0 (or DPM-Solver++), so the image is a deterministic function
   of (y, index);
3. scores each candidate against the original by the goal: ``miou`` (the run's scoring
   segmenter on the candidate vs the original's label map, per-image mIoU) or ``psnr``; the
   first best candidate wins (entry 0 comes first, so ties keep the fallback entry);
4. sends the index as the digital stream ``index`` of exactly ``ceil(log2 N)`` bits.

Every stream is itemised in the ``Payload`` and crosses the PHY as CRC-checked LDPC blocks.

Exactness: the receiver regenerates the transmitter's choice bit for bit. Both ends generate
one image per network call (batch 1, so no batch-size-dependent kernel choice) with torch's
intra-op thread count pinned to ``num_threads`` for the call (the PHY may change it), from
the same bank entry and the same decoded condition; this holds on one software/hardware
platform (on CUDA it also needs deterministic kernels).

Side channels of the published code: ``image_sample.py`` there adds ``FIND_EDGES`` of the
grayscale *original image* to the instance-edge channel, uncounted. That image-derived edge map
is **left out** here (the receiver sees only the label map and the instance edges, both counted).
The published sampler is DDPM with fresh noise at every step and a random bank index (no
selection); the selection loop of the paper's figure is what is implemented here.

Failure policy (flags per image, never an exception): ``map_failed``: the map stream failed its
CRC or did not decode -> the null condition (all-zero ``y``, edges included: an unconditional
sample); ``edges_failed``: the edge channel is left at zero; ``index_failed``: the index stream
failed (or named no entry) -> bank entry 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from semantic.codecs.payload import Payload, Stream
from semantic.codecs.registry import build_map_codec
from semantic.data.maps import instance_edges, one_hot
from semantic.diffusion.noise_bank import NoiseBank
from semantic.schemes.base import (
    Delivered,
    Reconstruction,
    SourceBatch,
    Transmission,
    model_to_images,
)

GOALS = ("miou", "psnr")
SegmentFn = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class DiffgoConfig:
    """Structure of a ``diffgo`` scheme.

    Attributes:
        bank_seed, bank_size: the shared noise bank (N = ``bank_size``).
        candidates: bank entries tried per image (all of them when ``>= bank_size``).
        goal: ``miou`` (needs a segmenter) or ``psnr``.
        num_classes: label classes of the map.
        instance_edges: send the instance-edge map (must match the receiver's label channels).
        map_codec: lossless codec of the label map and of the edge map.
        selection_seed: seeds the candidate subset when ``candidates < bank_size``.
        num_threads: torch intra-op threads pinned while generating (bit-exactness).
    """

    bank_seed: int = 0
    bank_size: int = 16
    candidates: int = 16
    goal: str = "miou"
    num_classes: int = 19
    instance_edges: bool = True
    map_codec: str = "jxl"
    selection_seed: int = 0
    num_threads: int = 1


@dataclass(frozen=True)
class Selection:
    """What the transmitter's search found for one batch (``Transmission.state['selection']``).

    Attributes:
        indices: int64 [B] the bank index sent per image.
        images: uint8 [B, H, W, 3] the image each chosen index regenerates (the receiver's
            output when every stream arrives).
        candidates: per image, the bank indices tried (entry 0 first).
        scores: per image, float64 [K] the goal score of each candidate (mIoU in [0, 1] or
            PSNR in dB; NaN mIoU counts as worst).
    """

    indices: np.ndarray
    images: np.ndarray
    candidates: list[list[int]]
    scores: list[np.ndarray]

    def gain_over_entry0(self) -> np.ndarray:
        """float64 [B]: chosen score minus entry 0's score (entry 0 is always a candidate)."""
        return np.array([np.nanmax(s) - s[0] for s in self.scores])


@contextlib.contextmanager
def pinned_threads(num_threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(num_threads)``; restore the count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _is_deterministic(receiver) -> bool:
    from semantic.diffusion.samplers import DDIMSampler, DPMSolverPP2M

    sampler = getattr(receiver, "sampler", None)
    return (isinstance(sampler, DDIMSampler) and sampler.eta == 0) or isinstance(
        sampler, DPMSolverPP2M)


def per_image_miou(pred: torch.Tensor, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """mIoU of each prediction [K, H, W] against one label map [H, W] -> float64 [K]."""
    from semantic.metrics.miou import confusion_per_image, miou_from_confusion

    target = torch.from_numpy(np.ascontiguousarray(labels)).long().expand(pred.shape[0], -1, -1)
    return miou_from_confusion(confusion_per_image(pred.long(), target, num_classes)).numpy()


def per_image_psnr(images: np.ndarray, original: np.ndarray) -> np.ndarray:
    """PSNR (dB, peak 255) of each image [K, H, W, 3] against ``original`` [H, W, 3]."""
    diff = images.astype(np.float64) - original.astype(np.float64)[None]
    mse = (diff ** 2).reshape(images.shape[0], -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0 ** 2 / mse)


class DiffgoScheme:
    """Diff-GO^n with a deterministic map receiver, a shared noise bank and goal selection.

    Args:
        config: bank, search and coding parameters.
        receiver: a map-only ``DiffusionReceiver`` with a deterministic sampler (DDIM, eta = 0,
            or DPM-Solver++) and ``num_classes + instance_edges`` label channels.
        segment: ``uint8 [K, H, W, 3] -> int [K, H, W]`` labels (the run's scoring segmenter);
            needed for ``goal='miou'``.

    Example (a tiny random receiver; ``transmit`` searches all 4 entries per image):
        >>> from semantic.diffusion.receiver import DiffusionReceiver
        >>> from semantic.diffusion.unet import SDMUNet, UNetConfig
        >>> cfg = UNetConfig(image_size=16, model_channels=32, num_res_blocks=1,
        ...                  channel_mult=(1, 1), attention_resolutions=(), num_head_channels=16,
        ...                  num_label_channels=20, spade_hidden=16)
        >>> scheme = DiffgoScheme(DiffgoConfig(bank_size=4, goal="psnr"),
        ...                       DiffusionReceiver(SDMUNet(cfg), steps=2))
        >>> source = SourceBatch(np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 16), np.uint8),
        ...                      np.zeros((1, 16, 16), np.int32), np.array([0]))
        >>> tx = scheme.transmit(source)
        >>> list(tx.payloads[0].streams), tx.payloads[0].bits("index")
        (['map', 'edges', 'index'], 2)
        >>> tx.state["selection"].candidates[0]
        [0, 1, 2, 3]
    """

    name = "diffgo"
    uses_generative_receiver = True

    def __init__(self, config: DiffgoConfig, receiver, segment: SegmentFn | None = None):
        if config.goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {config.goal!r}")
        if config.goal == "miou" and segment is None:
            raise ValueError("goal 'miou' needs the scoring segmenter (segment=...)")
        if config.candidates < 1 or config.num_threads < 1:
            raise ValueError("candidates and num_threads must be positive")
        if not _is_deterministic(receiver):
            raise ValueError("diffgo needs a deterministic sampler: ddim with eta=0 or dpmpp2m")
        labels = config.num_classes + int(config.instance_edges)
        got = getattr(getattr(receiver, "config", None), "num_label_channels", labels)
        if got != labels:
            raise ValueError(f"the receiver takes {got} label channels, the map has {labels} "
                             f"(num_classes={config.num_classes}, "
                             f"instance_edges={config.instance_edges})")
        if getattr(receiver, "super_res", False):
            raise ValueError("diffgo needs a map-only receiver, not a super-resolution one")
        self.config = config
        self.receiver = receiver
        self.segment = segment
        self.bank = NoiseBank(config.bank_seed, config.bank_size)
        self.map_codec = build_map_codec(config.map_codec, num_classes=config.num_classes)
        self.edge_codec = build_map_codec(config.map_codec, num_classes=2, ignore_index=None)

    # ------------------------------------------------------------------ shared by both ends
    def condition(self, labels: np.ndarray, edges: np.ndarray | None) -> torch.Tensor:
        """The network's condition: uint8 [H, W] labels (255 = none), bool [H, W] edges or
        None -> float32 [1, L, H, W] (one-hot, then the edge channel if configured)."""
        y = one_hot(torch.from_numpy(np.ascontiguousarray(labels))[None].long(),
                    self.config.num_classes)
        if self.config.instance_edges:
            e = torch.zeros(1, 1, *labels.shape) if edges is None else torch.from_numpy(
                np.ascontiguousarray(edges)).float()[None, None]
            y = torch.cat([y, e], dim=1)
        return y

    def regenerate(self, y: torch.Tensor, index: int, generator: torch.Generator) -> np.ndarray:
        """The image bank entry ``index`` gives for condition ``y`` [1, L, H, W]: uint8
        [H, W, 3]. Batch 1 and pinned threads make it identical at both ends."""
        h, w = y.shape[-2:]
        x_T = self.bank.entry(index, (3, h, w))[None]
        with pinned_threads(self.config.num_threads):
            out = self.receiver.generate(y, generator, x_T=x_T)
        return model_to_images(out)[0]

    # ------------------------------------------------------------------ transmitter
    def _selection_generator(self, data_index: int) -> torch.Generator:
        key = f"{self.config.selection_seed}:{int(data_index)}".encode()
        seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
        return torch.Generator().manual_seed(seed)

    def _score(self, images: np.ndarray, original: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self.config.goal == "psnr":
            return per_image_psnr(images, original)
        pred = self.segment(images)
        return per_image_miou(torch.as_tensor(pred), labels, self.config.num_classes)

    def _encode(self, labels: np.ndarray, instances: np.ndarray
                ) -> tuple[list[Stream], np.ndarray, np.ndarray | None]:
        h, w = labels.shape
        streams = [Stream.digital("map", self.map_codec.encode(labels))]
        sent_labels = self.map_codec.decode(streams[0].data, (h, w)).array
        sent_edges = None
        if self.config.instance_edges:
            edges = instance_edges(instances).astype(np.uint8)
            streams.append(Stream.digital("edges", self.edge_codec.encode(edges)))
            sent_edges = self.edge_codec.decode(streams[1].data, (h, w)).array.astype(bool)
        return streams, sent_labels, sent_edges

    def select(self, image: np.ndarray, labels: np.ndarray, y: torch.Tensor, data_index: int
               ) -> tuple[int, np.ndarray, list[int], np.ndarray]:
        """Search the candidates for one image: (index, its image, candidates, scores)."""
        candidates = self.bank.random_indices(self.config.candidates,
                                              self._selection_generator(data_index), include=(0,))
        images = np.stack([self.regenerate(y, i, torch.Generator()) for i in candidates])
        scores = np.asarray(self._score(images, image, labels), dtype=np.float64)
        best = int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))
        return candidates[best], images[best], candidates, scores

    def transmit(self, source: SourceBatch) -> Transmission:
        payloads, chosen, chosen_images, tried, scores = [], [], [], [], []
        for image, labels, instances, data_index in zip(source.images, source.labels,
                                                        source.instances, source.indices):
            streams, sent_labels, sent_edges = self._encode(labels, instances)
            y = self.condition(sent_labels, sent_edges)
            index, picture, candidates, score = self.select(image, labels, y, int(data_index))
            if self.bank.index_bits:
                streams.append(Stream.digital("index", self.bank.encode_index(index),
                                              num_bits=self.bank.index_bits))
            payloads.append(Payload.of(*streams))
            chosen.append(index)
            chosen_images.append(picture)
            tried.append(candidates)
            scores.append(score)
        selection = Selection(np.asarray(chosen, dtype=np.int64), np.stack(chosen_images),
                              tried, scores)
        return Transmission(payloads=payloads, state={"selection": selection})

    # ------------------------------------------------------------------ receiver
    def receive(self, delivered: Delivered, generator: torch.Generator) -> Reconstruction:
        h, w = delivered.size
        maps_in = delivered.digital["map"]
        edges_in = delivered.digital.get("edges")
        index_in = delivered.digital.get("index")
        n = len(maps_in)
        maps = np.full((n, h, w), 255, dtype=np.uint8)
        images = np.empty((n, h, w, 3), dtype=np.uint8)
        flags = {name: np.zeros(n, dtype=bool)
                 for name in ("map_failed", "edges_failed", "index_failed")}
        for i in range(n):
            decoded = self.map_codec.decode(maps_in[i].data, (h, w)) if maps_in[i].ok else None
            if decoded is not None and decoded.ok:
                maps[i] = decoded.array
            else:
                flags["map_failed"][i] = True
            edges = None
            if self.config.instance_edges:
                stream = edges_in[i] if edges_in is not None else None
                got = self.edge_codec.decode(stream.data, (h, w)) if stream is not None and stream.ok else None
                if got is not None and got.ok:
                    edges = got.array.astype(bool)
                else:
                    flags["edges_failed"][i] = True
            index = 0
            if self.bank.index_bits:
                stream = index_in[i] if index_in is not None else None
                got_index = self.bank.decode_index(stream.data) if stream is not None and stream.ok else None
                if got_index is None:
                    flags["index_failed"][i] = True
                else:
                    index = got_index
            if flags["map_failed"][i]:
                # The classifier-free null condition: no map, no edges.
                y = torch.zeros_like(self.condition(maps[i], None))
            else:
                y = self.condition(maps[i], edges)
            images[i] = self.regenerate(y, index, generator)
        if not self.config.instance_edges:
            del flags["edges_failed"]
        return Reconstruction(images=images, maps=maps, flags=flags)


def build_diffgo(scenario, device: str, segment: SegmentFn | None) -> DiffgoScheme:
    """The ``diffgo`` scheme of a scenario: its ``diffgo`` options, the map receiver of
    ``receiver.map_weights`` (its sampler and steps) and the run's scoring segmenter."""
    from link.errors import ConfigError
    from semantic.diffusion.receiver import load_receiver

    r, o = scenario.receiver, scenario.diffgo
    if r.sampler == "ddpm":
        raise ConfigError("diffgo needs a deterministic sampler (ddim or dpmpp2m), got 'ddpm'",
                          key="receiver.sampler")
    path = r.map_weights
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: file not found (train it with: python simulate.py train "
                          "receiver --config scenarios/train/receiver_map_64x128.yaml)",
                          key="receiver.map_weights")
    receiver = load_receiver(path, device, sampler=r.sampler, steps=r.steps,
                             guidance_scale=r.guidance_scale, batch_size=r.batch_size, eta=0.0)
    config = DiffgoConfig(bank_seed=o.bank_seed, bank_size=o.bank_size, candidates=o.candidates,
                          goal=o.goal, instance_edges=o.instance_edges,
                          map_codec=scenario.source_coding.map_codec,
                          selection_seed=o.selection_seed, num_threads=o.num_threads)
    try:
        return DiffgoScheme(config, receiver, segment)
    except ValueError as exc:
        raise ConfigError(str(exc), key="diffgo") from None
