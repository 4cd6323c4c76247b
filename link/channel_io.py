"""Carry a scheme's ``Transmission`` over the PHY at one SNR: the runner's half of the contract.

Digital streams of every image go through ``DigitalTransport`` (CRC-checked LDPC blocks, one
vectorised PHY pass for the whole batch); analog symbols go through ``PhyLink.analog`` on the same
channel model at the same SNR per channel use. The result records exact counts (bits, bit
errors, blocks, block errors, channel uses) for the point's BER/BLER and channel-use columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from link.transport import DeliveredStream, DigitalTransport
from semantic.schemes.base import Delivered, Transmission


@dataclass(frozen=True)
class ChannelCounts:
    """Exact counts of one batch at one SNR."""

    bits: int = 0
    bit_errors: int = 0
    blocks: int = 0
    block_errors: int = 0
    digital_channel_uses: int = 0
    analog_channel_uses: int = 0
    stream_failures: int = 0

    def __add__(self, other: ChannelCounts) -> ChannelCounts:
        return ChannelCounts(*(a + b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[int, ...]:
        return (self.bits, self.bit_errors, self.blocks, self.block_errors,
                self.digital_channel_uses, self.analog_channel_uses, self.stream_failures)


def deliver(transmission: Transmission, link, snr_db: float, size: tuple[int, int],
            generator: torch.Generator) -> tuple[Delivered, ChannelCounts]:
    """Send every stream of ``transmission`` over ``link`` at ``snr_db``.

    Args:
        transmission: the scheme's output for a batch of B images.
        link: a ``phy.link.PhyLink`` (with a CRC for digital streams).
        snr_db: SNR per complex channel use (Es/N0 per data symbol).
        size: (H, W) of the original images.
        generator: drives the channel's noise and fading.
    Returns:
        (``Delivered`` for the scheme's receiver, exact ``ChannelCounts``).
    """
    transport = DigitalTransport(link)
    digital: dict[str, list[DeliveredStream | None]] = {}
    counts = ChannelCounts()
    for name in transmission.digital_streams():
        present = [i for i, p in enumerate(transmission.payloads) if name in p.streams]
        streams = [transmission.payloads[i].streams[name] for i in present]
        out = transport.send([s.data for s in streams], snr_db, generator,
                             num_bits=[s.num_bits for s in streams])
        per_image: list[DeliveredStream | None] = [None] * len(transmission.payloads)
        for i, d in zip(present, out):
            per_image[i] = d
            counts += ChannelCounts(d.bits, d.bit_errors, d.blocks, d.block_errors,
                                    d.channel_uses, 0, int(not d.ok))
        digital[name] = per_image
    analog, noise_var = {}, {}
    for name, symbols in transmission.analog.items():
        out = link.analog(symbols, snr_db, generator)
        analog[name] = out.symbols_hat.cpu()
        noise_var[name] = out.noise_var_eff.cpu()
        counts += ChannelCounts(analog_channel_uses=int(symbols.numel()))
    return Delivered(digital=digital, analog=analog, analog_noise_var=noise_var,
                     snr_db=float(snr_db), size=size), counts
