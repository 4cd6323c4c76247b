"""``separation``: the classic digital baseline with no generative receiver.

Each image is coded with HEVC intra (BPG's role) at one quantiser for the whole batch, carried
as CRC-checked LDPC transport blocks, and decoded. The quantiser is either fixed (``qp``) or
chosen so that the batch's mean total bpp is the closest one not above ``target_bpp`` (the
runner passes SPIC's measured bpp so both schemes spend the same bits). Below the code's
threshold the CRC fails and the frame is lost: the cliff effect.

Failure policy (``on_failure``): ``erase`` (default) outputs a mid-grey frame for an image whose
stream failed its CRC, as a receiver that drops corrupted frames does; ``decode_anyway`` hands
the corrupted bytes to the decoder and keeps whatever it returns (grey if it refuses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from semantic.codecs.payload import Payload, Stream
from semantic.codecs.registry import build_image_codec
from semantic.schemes.base import Delivered, Reconstruction, SourceBatch, Transmission

FAILURE_POLICIES = ("erase", "decode_anyway")


@dataclass(frozen=True)
class SeparationConfig:
    codec: str = "hevc"
    qp: int = 32
    target_bpp: float | None = None
    on_failure: str = "erase"


class SeparationScheme:
    """HEVC (or another image codec) + LDPC, decoded without any generative model.

    Example:
        >>> import numpy as np
        >>> s = SeparationScheme(SeparationConfig(qp=30))
        >>> img = np.full((1, 32, 64, 3), 100, np.uint8)
        >>> src = SourceBatch(img, np.zeros((1, 32, 64), np.uint8), np.zeros((1, 32, 64), np.int32),
        ...                   np.arange(1))
        >>> tx = s.transmit(src)
        >>> tx.payloads[0].bits("image") > 0
        True
    """

    name = "separation"
    uses_generative_receiver = False

    def __init__(self, config: SeparationConfig = SeparationConfig()):
        if config.on_failure not in FAILURE_POLICIES:
            raise ValueError(f"on_failure must be one of {FAILURE_POLICIES}")
        self.config = config

    def _encode_all(self, images: np.ndarray, qp: int) -> list[bytes]:
        codec = build_image_codec(self.config.codec, qp=qp)
        return [codec.encode(img) for img in images]

    def choose_qp(self, images: np.ndarray) -> int:
        """The smallest qp whose mean bpp does not exceed ``target_bpp`` (bisection, 0..51)."""
        h, w = images.shape[1:3]
        target = self.config.target_bpp
        lo, hi = 0, 51
        while lo < hi:
            mid = (lo + hi) // 2
            bpp = np.mean([8 * len(b) for b in self._encode_all(images, mid)]) / (h * w)
            if bpp <= target:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def transmit(self, source: SourceBatch) -> Transmission:
        qp = self.config.qp if self.config.target_bpp is None else self.choose_qp(source.images)
        streams = self._encode_all(source.images, qp)
        payloads = [Payload.of(Stream.digital("image", data)) for data in streams]
        return Transmission(payloads=payloads, state={"qp": qp})

    def receive(self, delivered: Delivered, generator: torch.Generator) -> Reconstruction:
        h, w = delivered.size
        codec = build_image_codec(self.config.codec, qp=self.config.qp)
        streams = delivered.digital["image"]
        images = np.full((len(streams), h, w, 3), 128, dtype=np.uint8)
        failed = np.zeros(len(streams), dtype=bool)
        for i, stream in enumerate(streams):
            failed[i] = not stream.ok
            if stream.ok or self.config.on_failure == "decode_anyway":
                result = codec.decode(stream.data, (h, w, 3))
                if result.ok:
                    images[i] = result.array
        return Reconstruction(images=images, maps=None, flags={"image_failed": failed})
