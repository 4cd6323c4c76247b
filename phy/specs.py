"""Frozen structure specifications of a PHY link (what the scenario config converts into).

The lead's pydantic schema validates YAML and converts into these dataclasses; `PhyLink`
takes them in its constructor. Every closed list of names a user may type lives here as a
tuple so that the CLI can list it and an unknown name gets a helpful error.

Example:
    >>> from phy.specs import ChannelSpec, CodingSpec
    >>> CodingSpec(type="ldpc5g", k=512, n=1024).code_rate
    0.5
    >>> ChannelSpec(type="rayleigh", fading="fast").is_fading
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

MODULATIONS: tuple[str, ...] = ("bpsk", "qpsk", "8psk", "16qam", "64qam", "256qam")
CHANNELS: tuple[str, ...] = ("awgn", "rayleigh", "rician", "tdl")
CODES: tuple[str, ...] = ("none", "ldpc5g")
DECODERS: tuple[str, ...] = ("auto", "sionna", "fast")
FADINGS: tuple[str, ...] = ("block", "fast")
CSI_MODES: tuple[str, ...] = ("perfect", "ls")
CRCS: tuple[str, ...] = ("CRC24A", "CRC24B", "CRC24C", "CRC16", "CRC11", "CRC6")
CRC_LENGTHS: dict[str, int] = {
    "CRC24A": 24, "CRC24B": 24, "CRC24C": 24, "CRC16": 16, "CRC11": 11, "CRC6": 6,
}
CN_UPDATES: tuple[str, ...] = ("boxplus-phi", "boxplus", "minsum", "offset-minsum")
# TR 38.901 TDL profiles known to Sionna 2.2 (A-E scaled by the delay spread; the others fixed).
TDL_MODELS: tuple[str, ...] = (
    "A", "B", "C", "D", "E", "A10", "A30", "B100", "C60", "C300", "D10", "D30",
)
LS_INTERPOLATIONS: tuple[str, ...] = ("lin", "nn")
PRECISIONS: tuple[str, ...] = ("single", "double")

# Uncoded links transmit blocks of this many symbols when `CodingSpec.k` is not given.
DEFAULT_UNCODED_SYMBOLS_PER_BLOCK = 256


def check_name(value: str, valid: tuple[str, ...], what: str) -> None:
    """Raise ``ValueError`` naming the valid choices when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class CodingSpec:
    """Channel code of a link.

    Attributes:
        type: "none" (uncoded) or "ldpc5g" (3GPP 38.212 LDPC with rate matching).
        k: information bits per block given to the encoder, CRC bits included. Uncoded: the
            block length in bits (default ``256 * num_bits_per_symbol``); it must then equal
            ``n`` and be a multiple of the bits per symbol.
        n: coded bits per block (LDPC: 1/5 <= k/n <= 0.95, 12 <= k <= 8448).
        decoder: "sionna" (`LDPC5GDecoder`), "fast" (`phy.ldpc_fast.FastLDPC5GDecoder`) or
            "auto" (fast on CPU when importable, else Sionna).
        num_iter: belief-propagation iterations (always run in full, no early stop).
        cn_update: check-node update of the Sionna decoder (see `CN_UPDATES`); the fast
            decoder runs its own rule (layered normalised min-sum) and ignores it.
        crc: None or a 38.212 CRC name (`CRCS`). The CRC bits are inside ``k``: the caller's
            payload per block is ``k - crc_length`` bits, and Eb/N0 is counted per payload bit.

    Example:
        >>> CodingSpec(type="ldpc5g", k=512, n=1024, crc="CRC24A").payload_bits
        488
    """

    type: Literal["none", "ldpc5g"] = "none"
    k: int | None = None
    n: int | None = None
    decoder: Literal["auto", "sionna", "fast"] = "auto"
    num_iter: int = 20
    cn_update: str = "boxplus-phi"
    crc: str | None = None

    def __post_init__(self) -> None:
        check_name(self.type, CODES, "code type")
        check_name(self.decoder, DECODERS, "decoder")
        check_name(self.cn_update, CN_UPDATES, "cn_update")
        if self.crc is not None:
            check_name(self.crc, CRCS, "crc")
        if self.num_iter < 1:
            raise ValueError(f"num_iter must be >= 1, got {self.num_iter}")
        if self.type == "ldpc5g":
            if self.k is None or self.n is None:
                raise ValueError("ldpc5g needs both k and n")
            if not 12 <= self.k <= 8448:
                raise ValueError(f"ldpc5g needs 12 <= k <= 8448, got k={self.k}")
            if not 0.2 <= self.k / self.n <= 0.95:
                raise ValueError(f"ldpc5g needs 1/5 <= k/n <= 0.95, got {self.k}/{self.n}")
        else:
            if self.k is not None and self.n is not None and self.k != self.n:
                raise ValueError(f"uncoded blocks need k == n, got k={self.k}, n={self.n}")
            if (self.k is not None and self.k < 1) or (self.n is not None and self.n < 1):
                raise ValueError("block length must be positive")
            if self.crc is not None:
                raise ValueError("a CRC needs a code (type='ldpc5g')")
        if self.crc is not None and self.k is not None and self.k <= CRC_LENGTHS[self.crc]:
            raise ValueError(f"k={self.k} leaves no payload after {self.crc}")

    @property
    def crc_length(self) -> int:
        """CRC bits inside each block (0 without CRC)."""
        return 0 if self.crc is None else CRC_LENGTHS[self.crc]

    @property
    def payload_bits(self) -> int | None:
        """Caller bits per block, ``k - crc_length`` (None while k is unresolved)."""
        return None if self.k is None else self.k - self.crc_length

    @property
    def code_rate(self) -> float | None:
        """Payload bits per coded bit (1.0 uncoded, None while k/n are unresolved)."""
        if self.type == "none":
            return 1.0
        return self.payload_bits / self.n


@dataclass(frozen=True)
class ChannelSpec:
    """Channel model and receiver channel knowledge.

    Attributes:
        type: "awgn", "rayleigh" (flat, CN(0,1)), "rician" (flat, K factor), "tdl" (3GPP
            TR 38.901 tapped delay line over the OFDM grid of `OfdmSpec`).
        fading: flat channels only: "block" = one coefficient per block (row), "fast" = an
            independent coefficient per symbol. TDL evolves with ``max_speed_mps``.
        rician_k_db: Rician K factor (LoS / scattered power) in dB.
        tdl_model, delay_spread_s, carrier_frequency_hz, max_speed_mps: TDL parameters.
        csi: "perfect" or "ls" (pilot LS estimate with linear interpolation; TDL only).
        normalize_channel: TDL only: normalise each slot's channel energy to one (removes the
            slow fading; see the API notes).

    Example:
        >>> ChannelSpec(type="tdl", csi="ls").csi
        'ls'
    """

    type: Literal["awgn", "rayleigh", "rician", "tdl"] = "awgn"
    fading: Literal["block", "fast"] = "block"
    rician_k_db: float = 6.0
    tdl_model: str = "A"
    delay_spread_s: float = 300e-9
    carrier_frequency_hz: float = 3.5e9
    max_speed_mps: float = 0.0
    csi: Literal["perfect", "ls"] = "perfect"
    normalize_channel: bool = False

    def __post_init__(self) -> None:
        check_name(self.type, CHANNELS, "channel type")
        check_name(self.fading, FADINGS, "fading")
        check_name(self.csi, CSI_MODES, "csi")
        check_name(self.tdl_model, TDL_MODELS, "TDL model")
        if not math.isfinite(self.rician_k_db):
            raise ValueError("rician_k_db must be finite")
        if self.delay_spread_s <= 0 or self.carrier_frequency_hz <= 0:
            raise ValueError("delay_spread_s and carrier_frequency_hz must be positive")
        if self.max_speed_mps < 0:
            raise ValueError("max_speed_mps must be >= 0")
        if self.csi == "ls" and self.type != "tdl":
            raise ValueError("csi='ls' needs pilots: only channel type 'tdl' (OFDM) supports it")

    @property
    def is_fading(self) -> bool:
        """True for every channel except AWGN."""
        return self.type != "awgn"


@dataclass(frozen=True)
class OfdmSpec:
    """OFDM resource grid (used when the channel type is "tdl"); SISO, Kronecker pilots.

    The defaults give 64 effective subcarriers and 12 x 64 = 768 data resource elements per
    slot; pilot and cyclic-prefix energy cost 10*log10(14*(1+6/76)*64/768) = 1.0 dB of Eb/N0.

    Example:
        >>> OfdmSpec().num_ofdm_symbols
        14
    """

    num_ofdm_symbols: int = 14
    fft_size: int = 76
    subcarrier_spacing_hz: float = 30e3
    cyclic_prefix_length: int = 6
    num_guard_carriers: tuple[int, int] = (5, 6)
    dc_null: bool = True
    pilot_ofdm_symbol_indices: tuple[int, ...] = (2, 11)
    ls_interpolation: Literal["lin", "nn"] = "lin"

    def __post_init__(self) -> None:
        check_name(self.ls_interpolation, LS_INTERPOLATIONS, "LS interpolation")
        if self.num_ofdm_symbols < 1 or self.fft_size < 1:
            raise ValueError("num_ofdm_symbols and fft_size must be positive")
        if not 0 <= self.cyclic_prefix_length <= self.fft_size:
            raise ValueError("cyclic_prefix_length must be in [0, fft_size]")
        if any(not 0 <= i < self.num_ofdm_symbols for i in self.pilot_ofdm_symbol_indices):
            raise ValueError("pilot_ofdm_symbol_indices must lie inside the slot")
        if len(self.pilot_ofdm_symbol_indices) == 0:
            raise ValueError("at least one pilot OFDM symbol is needed")
