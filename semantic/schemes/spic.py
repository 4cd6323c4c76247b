"""``spic``: semantic map (lossless) + coarse image (lossy) -> super-resolution diffusion receiver.

After Pezone et al., "Semantic-preserving image coding based on conditional diffusion models"
(frapez1/SPIC): the label map is coded losslessly (FLIF there; JPEG XL lossless here, its
successor), the image is downscaled by ``factor`` and coded with HEVC intra at ``qp`` (BPG there),
both streams cross the PHY as CRC-checked LDPC blocks, and the receiver regenerates the full
image from the map and the upsampled coarse image.

Failure policy (counted per point): a map that fails its CRC is erased and the receiver runs
unconditionally on the map (all-zero ``y``, the classifier-free null condition) guided by the
coarse image; a coarse image that fails is replaced by mid-grey; both failing gives an
unconditional sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from semantic.codecs.payload import Payload, Stream
from semantic.codecs.registry import build_image_codec, build_map_codec
from semantic.codecs.resample import coarse_size, downscale
from semantic.data.maps import semantic_map
from semantic.schemes.base import (
    Delivered,
    Reconstruction,
    SourceBatch,
    Transmission,
    images_to_model,
    model_to_images,
)


@dataclass(frozen=True)
class SpicConfig:
    map_codec: str = "jxl"
    image_codec: str = "hevc"
    qp: int = 32
    factor: int = 2
    num_classes: int = 19


class SpicScheme:
    """SPIC with a ``DiffusionReceiver`` whose UNet is the super-resolution variant.

    Args:
        config: codecs and their parameters.
        receiver: a ``semantic.diffusion.receiver.DiffusionReceiver`` (super_res) or any object
            with ``generate(y, generator, low_res=...)``.
    """

    name = "spic"
    uses_generative_receiver = True

    def __init__(self, config: SpicConfig, receiver):
        self.config = config
        self.receiver = receiver
        self.map_codec = build_map_codec(config.map_codec, num_classes=config.num_classes)
        self.image_codec = build_image_codec(config.image_codec, qp=config.qp)

    def transmit(self, source: SourceBatch) -> Transmission:
        payloads = []
        for img, labels in zip(source.images, source.labels):
            coarse = downscale(img, self.config.factor)
            payloads.append(Payload.of(
                Stream.digital("map", self.map_codec.encode(labels)),
                Stream.digital("image", self.image_codec.encode(coarse))))
        return Transmission(payloads=payloads)

    def receive(self, delivered: Delivered, generator: torch.Generator) -> Reconstruction:
        h, w = delivered.size
        ch, cw = coarse_size(h, w, self.config.factor)
        maps_in = delivered.digital["map"]
        imgs_in = delivered.digital["image"]
        n = len(maps_in)
        labels = np.full((n, h, w), 255, dtype=np.uint8)
        coarse = np.full((n, ch, cw, 3), 128, dtype=np.uint8)
        map_failed = np.zeros(n, dtype=bool)
        image_failed = np.zeros(n, dtype=bool)
        for i in range(n):
            decoded = self.map_codec.decode(maps_in[i].data, (h, w)) if maps_in[i].ok else None
            if decoded is not None and decoded.ok:
                labels[i] = decoded.array
            else:
                map_failed[i] = True
            decoded = (self.image_codec.decode(imgs_in[i].data, (ch, cw, 3)) if imgs_in[i].ok
                       else None)
            if decoded is not None and decoded.ok:
                coarse[i] = decoded.array
            else:
                image_failed[i] = True
        # Erased maps are all-ignore, whose one-hot is all zeros: the null condition.
        y = semantic_map(torch.from_numpy(labels).long(), self.config.num_classes)
        low_res = images_to_model(coarse)
        out = self.receiver.generate(y, generator, low_res=low_res)
        return Reconstruction(images=model_to_images(out), maps=labels,
                              flags={"map_failed": map_failed, "image_failed": image_failed})
