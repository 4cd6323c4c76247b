"""Typed configuration of the discrete-event link layer (the scenario's ``link_layer`` section).

Every section forbids unknown keys, like the rest of the scenario schema (`link.config`). The
section is self-contained so that the scenario schema only has to add one optional field::

    link_layer: LinkLayerConfig | None = None

Times are in seconds, rates in Hz or symbols per second, SNRs in dB. The transport block size
is the PHY's: ``phy.coding.k`` information bits per block (its CRC, ``phy.coding.crc``,
included), ``phy.coding.n`` coded bits; `check_against_link` checks the pair.

Example:
    >>> cfg = LinkLayerConfig.model_validate(
    ...     {"source": {"fps": 30}, "fading": {"model": "jakes", "doppler_hz": 10.0},
    ...      "harq": {"max_transmissions": 4, "combining": "ir"}})
    >>> cfg.air.slot_s, cfg.air.capacity_symbols, round(cfg.fading.resolved_doppler_hz, 1)
    (0.0005, 7344, 10.0)
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveInt = Annotated[int, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
SPEED_OF_LIGHT_MPS = 299_792_458.0
# Coherence time T_c = 0.423 / f_D: the geometric mean of the 50 %-correlation and 1/f_D rules
# (Rappaport, Wireless Communications, 2nd ed., eq. 5.40.c).
COHERENCE_CONSTANT = 0.423

ARRIVALS: tuple[str, ...] = ("periodic", "poisson")
AIR_MODES: tuple[str, ...] = ("ofdm", "symbol_rate")
FADING_MODELS: tuple[str, ...] = ("awgn", "iid", "jakes", "gauss_markov")
COMBININGS: tuple[str, ...] = ("none", "chase", "ir")
COMPUTE_MODES: tuple[str, ...] = ("model", "measured")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class SourceConfig(_Strict):
    """Frame source: ``periodic`` arrivals every ``1/fps`` s from t = 0, or a ``poisson`` process
    of rate ``fps`` (the first frame after one exponential gap). Each frame must be decoded
    (semantic receiver included) within ``deadline_s`` of its arrival."""

    arrival: Literal["periodic", "poisson"] = "periodic"
    fps: float = Field(30.0, gt=0)
    deadline_s: float = Field(0.1, gt=0)


class AirConfig(_Strict):
    """Air interface: slots of a fixed duration, one transmission per slot.

    ``ofdm`` (3GPP TS 38.211 numerology): slot of ``1 ms * 15 kHz / subcarrier_spacing``,
    ``12 * num_prb * (ofdm_symbols_per_slot - overhead_symbols_per_slot)`` data symbols per
    slot (the overhead symbols stand for DMRS/control). ``symbol_rate``: ``symbol_rate_baud``
    complex symbols per second, ``symbols_per_slot`` per slot; with ``slotted: false`` a
    transmission starts as soon as the channel is free and lasts ``symbols / symbol_rate``.
    """

    mode: Literal["ofdm", "symbol_rate"] = "ofdm"
    subcarrier_spacing_khz: Literal[15, 30, 60, 120, 240] = 30
    num_prb: PositiveInt = 51
    ofdm_symbols_per_slot: Literal[12, 14] = 14
    overhead_symbols_per_slot: int = Field(2, ge=0)
    symbol_rate_baud: float = Field(1e6, gt=0)
    symbols_per_slot: PositiveInt = 1024
    slotted: bool = True

    @model_validator(mode="after")
    def _check(self) -> AirConfig:
        if self.mode == "ofdm":
            if self.overhead_symbols_per_slot >= self.ofdm_symbols_per_slot:
                raise ValueError("overhead_symbols_per_slot leaves no data symbol in the slot")
            if not self.slotted:
                raise ValueError("slotted: false needs mode 'symbol_rate' (OFDM is slotted)")
            if self.ofdm_symbols_per_slot == 12 and self.subcarrier_spacing_khz != 60:
                raise ValueError("12 OFDM symbols per slot (extended CP) exist only at 60 kHz")
        return self

    @property
    def slot_s(self) -> float:
        """Slot duration (s); the longest transmission when not slotted."""
        if self.mode == "ofdm":
            return 1e-3 * 15.0 / self.subcarrier_spacing_khz
        return self.symbols_per_slot / self.symbol_rate_baud

    @property
    def capacity_symbols(self) -> int:
        """Complex data symbols one slot (one transmission) can carry."""
        if self.mode == "ofdm":
            data_symbols = self.ofdm_symbols_per_slot - self.overhead_symbols_per_slot
            return 12 * self.num_prb * data_symbols
        return self.symbols_per_slot

    @property
    def data_symbol_rate(self) -> float:
        """Data symbols per second at full occupancy."""
        return self.capacity_symbols / self.slot_s


class FadingConfig(_Strict):
    """Flat block fading, one coefficient per transmission (slot), ``E|h|^2 = 1``.

    ``awgn``: h = 1. ``iid``: Rayleigh, independent per transmission. ``jakes``: Rayleigh with
    the Clarke/Jakes autocorrelation ``J0(2 pi f_D dt)`` (sum of sinusoids, exact in the
    ensemble). ``gauss_markov``: AR(1) with lag-one correlation ``J0(2 pi f_D T_slot)``
    (exponential beyond one slot). The Doppler comes from exactly one of ``doppler_hz``,
    ``coherence_time_s`` (``f_D = 0.423 / T_c``) or ``speed_mps`` with
    ``carrier_frequency_hz``.
    """

    model: Literal["awgn", "iid", "jakes", "gauss_markov"] = "awgn"
    doppler_hz: float | None = Field(None, ge=0)
    coherence_time_s: float | None = Field(None, gt=0)
    speed_mps: float | None = Field(None, ge=0)
    carrier_frequency_hz: float = Field(3.5e9, gt=0)
    num_sinusoids: PositiveInt = 64

    @model_validator(mode="after")
    def _check(self) -> FadingConfig:
        given = [k for k in ("doppler_hz", "coherence_time_s", "speed_mps")
                 if getattr(self, k) is not None]
        if self.model in ("jakes", "gauss_markov"):
            if len(given) != 1:
                raise ValueError(f"fading model {self.model!r} needs exactly one of doppler_hz, "
                                 f"coherence_time_s, speed_mps (got {given or 'none'})")
        elif given:
            raise ValueError(f"fading model {self.model!r} takes no Doppler ({', '.join(given)})")
        return self

    @property
    def resolved_doppler_hz(self) -> float:
        """Maximum Doppler shift f_D (Hz); 0 for ``awgn`` and ``iid``."""
        if self.doppler_hz is not None:
            return self.doppler_hz
        if self.coherence_time_s is not None:
            return COHERENCE_CONSTANT / self.coherence_time_s
        if self.speed_mps is not None:
            return self.speed_mps * self.carrier_frequency_hz / SPEED_OF_LIGHT_MPS
        return 0.0


class HarqConfig(_Strict):
    """Stop-and-wait HARQ per transport block.

    A block is decoded ``rx_processing_s`` after its transmission ends; its ACK/NACK reaches
    the transmitter ``feedback_delay_s`` later, and a NACKed block is retransmitted in the
    first slot that starts at or after that instant (retransmissions before new blocks).
    ``max_transmissions: 1`` switches HARQ off. ``combining``: ``none`` (decode each
    transmission alone), ``chase`` (same codeword, LLRs added), ``ir`` (incremental redundancy:
    redundancy versions ``rv_sequence`` of TS 38.212 rate matching, combined in the circular
    buffer). Every block (a code block with its own CRC) has its own stop-and-wait process;
    ``num_processes`` bounds the blocks awaiting feedback (null: unbounded). In NR one process
    carries a whole transport block of several code blocks, so NR's 16 processes correspond to
    ``16 x`` the code blocks per slot here.
    """

    max_transmissions: PositiveInt = 4
    combining: Literal["none", "chase", "ir"] = "chase"
    rv_sequence: tuple[int, ...] = (0, 2, 3, 1)
    num_processes: PositiveInt | None = None
    rx_processing_s: NonNegative = 0.0
    feedback_delay_s: NonNegative = 1e-3

    @model_validator(mode="after")
    def _check(self) -> HarqConfig:
        if not self.rv_sequence or any(v not in (0, 1, 2, 3) for v in self.rv_sequence):
            raise ValueError(f"rv_sequence needs values in 0..3, got {list(self.rv_sequence)}")
        if self.rv_sequence[0] != 0:
            raise ValueError("rv_sequence must start with 0 (the self-decodable version)")
        return self


class ComputeConfig(_Strict):
    """Semantic receiver compute: ``num_servers`` decoders serve delivered frames first come,
    first served. ``model``: ``seconds_per_image`` per frame; ``measured``: the time measured
    on the run's device, passed by the runner at call time."""

    mode: Literal["model", "measured"] = "model"
    seconds_per_image: NonNegative = 0.0
    num_servers: PositiveInt = 1


class LinkLayerConfig(_Strict):
    """The ``link_layer`` section of a scenario."""

    source: SourceConfig = SourceConfig()
    air: AirConfig = AirConfig()
    fading: FadingConfig = FadingConfig()
    harq: HarqConfig = HarqConfig()
    compute: ComputeConfig = ComputeConfig()


def check_against_link(config: LinkLayerConfig, link) -> None:
    """Raise ``ValueError`` when ``config`` cannot run over ``link`` (a `phy.link.PhyLink`).

    Checks that a transport block fits in one slot, that HARQ can detect errors (a CRC), that
    incremental redundancy has a code with redundancy versions, and that the PHY's own channel
    is AWGN (the link layer draws the fading itself, per slot).
    """
    need = link.num_symbols_per_block
    have = config.air.capacity_symbols
    if need > have:
        raise ValueError(
            f"a transport block needs {need} symbols but a slot carries {have}: raise "
            "air.num_prb / air.symbols_per_slot, or lower phy.coding.n")
    if config.harq.max_transmissions > 1 and getattr(link.coding, "crc", None) is None:
        raise ValueError("HARQ (max_transmissions > 1) needs a CRC: set phy.coding.crc")
    if config.harq.combining == "ir" and not link.is_coded:
        raise ValueError("harq.combining 'ir' needs an LDPC code (phy.coding.type: ldpc5g)")
    if link.channel.type != "awgn":
        raise ValueError(
            "with a link_layer section the fading is link_layer.fading: set phy.channel.type "
            "to 'awgn'")
    if not math.isfinite(config.air.slot_s):
        raise ValueError("slot duration is not finite")
