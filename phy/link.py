"""`PhyLink`: bits <-> symbols <-> channel, composed from Sionna 2.2 blocks.

Chain (digital): payload bits -> [CRC] -> [5G LDPC encoder + 38.212 rate matching and bit
interleaver] -> Gray mapper -> channel -> equaliser -> APP demapper (LLRs) -> [LDPC decoder
-> CRC check]. Uncoded links decide with `phy.modulation.HardSlicer` (exact symbol-ML).

Structure (modulation, code, channel model, CSI, OFDM grid, device, precision) is fixed in
the constructor; a call takes data, the SNR and a ``torch.Generator``.

SNR conventions (all per block row, broadcast from a scalar):

* ``ebno_db``: Eb/N0 per *payload* bit (information bits, CRC excluded). The noise variance
  per complex data symbol is ``N0 = E_sym / (Eb/N0 * k / num_symbols_per_block)`` with unit
  constellation energy, i.e. Sionna's ``ebnodb2no(ebno_db, m, k/n)`` whenever ``n`` is a
  multiple of ``m``. OFDM (TDL): ``E_sym`` also carries the pilot and cyclic-prefix energy,
  ``E_sym = S (1 + CP/F) N_eff / num_data_symbols``, exactly as Sionna's
  ``ebnodb2no(..., resource_grid=rg)`` (1.0 dB with the default grid). Data REs left empty in
  a block's last slot and zero padding bits (``n`` not a multiple of ``m``) are not charged.
* ``esno_db`` (in outputs): Es/N0 per data symbol, ``-10 log10(N0)``.
* ``snr_db`` (analog path): SNR per complex channel use for a unit-power input; the input row
  is normalised to unit mean power inside and the output scaled back.

Fading: E|h|^2 = 1. "block" = one coefficient per block (row), "fast" = one per symbol; the
receiver equalises with the true ``h`` (``x_hat = y/h``, ``no_eff = N0/|h|^2``). Rician: LoS
amplitude ``sqrt(K/(K+1))`` with a uniform random phase plus ``CN(0, 1/(K+1))``. TDL: each
block occupies ``num_slots_per_block`` slots of the OFDM grid, each slot an independent
TR 38.901 TDL realisation (time variation inside the slot from ``max_speed_mps``; the
``fading`` field does not apply), perfect CSI or LS estimation on the Kronecker pilots
(``OfdmSpec.ls_interpolation``, linear by default), then Sionna's LMMSE equaliser (unbiased
output with its effective noise variance).

Randomness: fading, noise (and the uncoded bits drawn by `PhyLink.count_errors`) come from the
call's generator. Sionna's TDL draws from Sionna's own per-device generator; the link seeds
that generator from the call's generator for the duration of the draw and restores its state,
so identical seeds give identical outputs and Sionna's global stream is left untouched. The
pilot symbols are fixed (drawn once under seed 0).

Example:
    >>> import torch
    >>> from phy.link import PhyLink
    >>> from phy.specs import CodingSpec
    >>> link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=64, n=128, decoder="sionna"))
    >>> g = torch.Generator().manual_seed(1)
    >>> bits = torch.randint(0, 2, (4, link.k), generator=g).float()
    >>> out = link(bits, ebno_db=8.0, generator=g)
    >>> out.bits_hat.shape, out.llr.shape, bool((out.bits_hat == bits).all())
    (torch.Size([4, 64]), torch.Size([4, 128]), True)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sionna.phy import config as sionna_config
from sionna.phy.channel import ApplyOFDMChannel, GenerateOFDMChannel
from sionna.phy.channel.tr38901 import TDL
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Demapper, Mapper
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import (
    LMMSEEqualizer,
    LSChannelEstimator,
    RemoveNulledSubcarriers,
    ResourceGrid,
    ResourceGridDemapper,
    ResourceGridMapper,
)

from phy.modulation import (
    HardSlicer,
    label_bits,
    make_constellation,
    num_bits_per_symbol,
)
from phy.specs import (
    DEFAULT_UNCODED_SYMBOLS_PER_BLOCK,
    MODULATIONS,
    PRECISIONS,
    ChannelSpec,
    CodingSpec,
    OfdmSpec,
    check_name,
)

_DTYPES = {"single": (torch.float32, torch.complex64), "double": (torch.float64, torch.complex128)}
# Peak working memory of one demapper chunk (Sionna materialises [..., 2^m] distances and
# two [..., 2^(m-1), m] gathers per symbol; 256-QAM needs ~20 kB per symbol).
_DEMAPPER_CHUNK_BYTES = 64 * 2**20
_PILOT_SEED = 0


@dataclass(frozen=True)
class LinkOutput:
    """Result of one digital transmission of ``B`` blocks.

    Attributes:
        bits_hat: ``[B, k]`` float (link precision), decided payload bits 0/1.
        llr: ``[B, n]`` float, channel LLRs ``ln P(b=1)/P(b=0)`` of the coded bits (Sionna's
            convention; uncoded: of the transmitted bits).
        crc_ok: ``[B]`` bool, CRC check of the decoded block, None without CRC.
        ebno_db: ``[B]`` float, Eb/N0 per payload bit.
        esno_db: ``[B]`` float, Es/N0 per data symbol.
        noise_var: ``[B]`` float, N0 per complex data symbol.
        symbols_hat: ``[B, num_symbols_per_block]`` complex, equalised symbols.
        noise_var_eff: ``[B, num_symbols_per_block]`` float, noise variance of ``symbols_hat``.
    """

    bits_hat: torch.Tensor
    llr: torch.Tensor
    crc_ok: torch.Tensor | None
    ebno_db: torch.Tensor
    esno_db: torch.Tensor
    noise_var: torch.Tensor
    symbols_hat: torch.Tensor
    noise_var_eff: torch.Tensor


@dataclass(frozen=True)
class AnalogOutput:
    """Result of `PhyLink.analog` for ``B`` rows of ``N`` complex symbols.

    Attributes:
        symbols_hat: ``[B, N]`` complex, equalised (unbiased) estimate of the input symbols,
            in the input's scale.
        noise_var_eff: ``[B, N]`` float, variance of ``symbols_hat - symbols`` given the
            channel, in the input's scale (``power / (SNR |h|^2)`` for flat fading).
        h: ``[B, N]`` complex, true channel coefficient seen by each symbol (1 for AWGN).
        snr_db: ``[B]`` float, SNR per complex channel use (unit-power input).
        power: ``[B]`` float, mean input power per row that was normalised away.
    """

    symbols_hat: torch.Tensor
    noise_var_eff: torch.Tensor
    h: torch.Tensor
    snr_db: torch.Tensor
    power: torch.Tensor


@dataclass(frozen=True)
class ErrorCounts:
    """Exact error counts of one Monte-Carlo batch (Python ints)."""

    bit_errors: int
    bits: int
    block_errors: int
    blocks: int


@dataclass(frozen=True)
class _Equalised:
    """Channel output after equalisation: ``[B, Ns]`` symbols, noise variance, true ``h``."""

    x_hat: torch.Tensor
    no_eff: torch.Tensor
    h: torch.Tensor | None


@contextmanager
def _seeded_sionna_rng(seed: int, device: str) -> Iterator[None]:
    """Seed Sionna's generator for ``device`` inside the block, then restore its state."""
    rng = sionna_config.torch_rng(device)
    state = rng.get_state()
    rng.manual_seed(seed)
    try:
        yield
    finally:
        rng.set_state(state)


class PhyLink:
    """A point-to-point SISO link built from specs; see the module docstring for conventions.

    Args:
        modulation: one of `phy.specs.MODULATIONS`.
        coding: `CodingSpec` (uncoded by default, blocks of 256 symbols).
        channel: `ChannelSpec` (AWGN by default).
        ofdm: `OfdmSpec` for the TDL channel (default grid when None); ignored otherwise.
        device: torch device of every block ("cpu", "cuda:0").
        precision: "single" (float32/complex64) or "double".

    Call ``link(bits, ebno_db, generator)``:
        bits: ``[B, k]`` float 0/1 payload bits. ebno_db: float or ``[B]`` tensor (dB).
        generator: ``torch.Generator`` (any device; draws are moved to ``device``).
        Returns `LinkOutput`.

    Example:
        >>> import torch
        >>> from phy.specs import ChannelSpec
        >>> link = PhyLink("16qam", channel=ChannelSpec(type="rayleigh", fading="fast"))
        >>> link.k, link.n, link.num_symbols_per_block, link.code_rate
        (1024, 1024, 256, 1.0)
        >>> out = link.analog(torch.ones(2, 8, dtype=torch.complex64), 10.0,
        ...                   torch.Generator().manual_seed(0))
        >>> out.symbols_hat.shape, out.noise_var_eff.dtype
        (torch.Size([2, 8]), torch.float32)
    """

    def __init__(
        self,
        modulation: str,
        coding: CodingSpec | None = None,
        channel: ChannelSpec | None = None,
        ofdm: OfdmSpec | None = None,
        device: str = "cpu",
        precision: str = "single",
    ) -> None:
        check_name(modulation, MODULATIONS, "modulation")
        check_name(precision, PRECISIONS, "precision")
        coding = coding if coding is not None else CodingSpec()
        channel = channel if channel is not None else ChannelSpec()
        self.modulation = modulation
        self.channel = channel
        torch_device = torch.device(device)
        if torch_device.type == "cuda" and torch_device.index is None:
            torch_device = torch.device("cuda", torch.cuda.current_device())
        self.device = str(torch_device)
        self.precision = precision
        self._dtype, self._cdtype = _DTYPES[precision]
        self._m = num_bits_per_symbol(modulation)

        if coding.type == "none":
            block = coding.k or coding.n or DEFAULT_UNCODED_SYMBOLS_PER_BLOCK * self._m
            if block % self._m:
                raise ValueError(
                    f"uncoded block length {block} is not a multiple of {self._m} bits/symbol"
                )
            coding = CodingSpec(type="none", k=block, n=block)
        self.coding = coding
        self._n = coding.n
        self._k = coding.payload_bits
        self._num_symbols = math.ceil(self._n / self._m)
        self._pad_bits = self._num_symbols * self._m - self._n

        blocks = {"precision": precision, "device": self.device}
        self._constellation = make_constellation(modulation, **blocks)
        self._mapper = Mapper(constellation=self._constellation, **blocks)
        self._demapper = Demapper("app", constellation=self._constellation, **blocks)
        self._slicer = HardSlicer(modulation, device=self.device)
        self._points = self._constellation()  # label-indexed, what the Mapper sends
        bits_table = label_bits(self._m)
        self._label_bits = torch.as_tensor(bits_table, dtype=self._dtype, device=self.device)
        self._label_weight = torch.as_tensor(bits_table.sum(1), device=self.device)

        self._encoder = self._decoder = self._crc_encoder = self._crc_decoder = None
        self.decoder_name: str | None = None
        if coding.type == "ldpc5g":
            interleave = self._m if self._n % self._m == 0 else None
            self._encoder = LDPC5GEncoder(
                coding.k, coding.n, num_bits_per_symbol=interleave, **blocks
            )
            self._decoder, self.decoder_name = self._build_decoder()
            if coding.crc is not None:
                self._crc_encoder = CRCEncoder(coding.crc, k=self._k, **blocks)
                self._crc_decoder = CRCDecoder(self._crc_encoder, **blocks)

        self.ofdm = None
        self._energy_per_symbol = 1.0
        if channel.type == "tdl":
            self.ofdm = ofdm if ofdm is not None else OfdmSpec()
            self._build_ofdm(blocks)

    # ------------------------------------------------------------------ structure

    @property
    def k(self) -> int:
        """Payload bits per block the caller supplies (``coding.k`` minus the CRC bits)."""
        return self._k

    @property
    def n(self) -> int:
        """Coded bits per block (``k`` for uncoded links)."""
        return self._n

    @property
    def code_rate(self) -> float:
        """Payload bits per coded bit, ``k / n``."""
        return self._k / self._n

    @property
    def num_bits_per_symbol(self) -> int:
        """Bits per constellation symbol."""
        return self._m

    @property
    def num_symbols_per_block(self) -> int:
        """Complex data symbols per block, ``ceil(n / num_bits_per_symbol)``."""
        return self._num_symbols

    @property
    def bits_per_symbol_effective(self) -> float:
        """Payload bits per data symbol, ``k / num_symbols_per_block``."""
        return self._k / self._num_symbols

    @property
    def num_slots_per_block(self) -> int:
        """OFDM slots per block (TDL), else 0."""
        return self._slots_per_block if self.ofdm is not None else 0

    @property
    def ofdm_overhead_db(self) -> float:
        """Pilot + cyclic-prefix energy overhead inside Eb/N0 (0 dB for flat channels)."""
        return 10.0 * math.log10(self._energy_per_symbol)

    @property
    def is_coded(self) -> bool:
        """True when an LDPC code is used."""
        return self._encoder is not None

    def _build_decoder(self) -> tuple[object, str]:
        choice = self.coding.decoder
        if choice == "fast" or (choice == "auto" and self.device == "cpu"):
            try:
                return self._make_fast_decoder(), "fast"
            except ImportError:
                if choice == "fast":
                    raise
        decoder = LDPC5GDecoder(
            self._encoder,
            cn_update=self.coding.cn_update,
            num_iter=self.coding.num_iter,
            hard_out=True,
            return_infobits=True,
            precision=self.precision,
            device=self.device,
        )
        return decoder, "sionna"

    def _make_fast_decoder(self) -> object:
        # Imported lazily: phy.ldpc_fast is an optional, separately written component. It runs
        # its own check-node rule, tuned per code rate to match Sionna's BP within 0.1 dB
        # (docs/ldpc_fast.md); `cn_update` names a rule of Sionna's decoder and is not passed on.
        from phy.ldpc_fast import FastLDPC5GDecoder, recommended_settings

        return FastLDPC5GDecoder(self._encoder, num_iter=self.coding.num_iter,
                                 **recommended_settings(self._encoder.coderate))

    def _build_ofdm(self, blocks: dict[str, str]) -> None:
        spec, ch = self.ofdm, self.channel
        with _seeded_sionna_rng(_PILOT_SEED, self.device):  # fixed pilot symbols
            self._rg = ResourceGrid(
                num_ofdm_symbols=spec.num_ofdm_symbols,
                fft_size=spec.fft_size,
                subcarrier_spacing=spec.subcarrier_spacing_hz,
                cyclic_prefix_length=spec.cyclic_prefix_length,
                num_guard_carriers=tuple(spec.num_guard_carriers),
                dc_null=spec.dc_null,
                pilot_pattern="kronecker",
                pilot_ofdm_symbol_indices=list(spec.pilot_ofdm_symbol_indices),
                **blocks,
            )
        rg = self._rg
        scaled = ch.tdl_model in ("A", "B", "C", "D", "E")
        self._tdl = TDL(
            ch.tdl_model,
            delay_spread=ch.delay_spread_s if scaled else None,
            carrier_frequency=ch.carrier_frequency_hz,
            min_speed=0.0,
            max_speed=ch.max_speed_mps,
            **blocks,
        )
        self._gen_channel = GenerateOFDMChannel(
            self._tdl, rg, normalize_channel=ch.normalize_channel, **blocks
        )
        self._rg_mapper = ResourceGridMapper(rg, **blocks)
        stream_management = StreamManagement(np.array([[1]]), 1)
        self._rg_demapper = ResourceGridDemapper(rg, stream_management, **blocks)
        self._apply_channel = ApplyOFDMChannel(**blocks)
        self._remove_nulled = RemoveNulledSubcarriers(rg, **blocks)
        self._ls = LSChannelEstimator(rg, interpolation_type=spec.ls_interpolation, **blocks)
        self._equalizer = LMMSEEqualizer(rg, stream_management, **blocks)
        self._data_per_slot = int(rg.num_data_symbols)
        self._slots_per_block = math.ceil(self._num_symbols / self._data_per_slot)
        # Sionna's ebnodb2no overhead: pilots and cyclic prefix carry energy too.
        self._energy_per_symbol = (
            rg.num_ofdm_symbols
            * (1 + rg.cyclic_prefix_length / rg.fft_size)
            * rg.num_effective_subcarriers
            / self._data_per_slot
        )

    # ------------------------------------------------------------------ conditions

    def _per_row(self, value_db: float | torch.Tensor, batch: int) -> torch.Tensor:
        value = torch.as_tensor(value_db, dtype=self._dtype, device=self.device)
        if value.dim() == 0:
            return value.expand(batch)
        if value.shape != (batch,):
            raise ValueError(f"SNR must be a scalar or shape [{batch}], got {tuple(value.shape)}")
        return value

    def noise_var(self, ebno_db: float | torch.Tensor) -> torch.Tensor:
        """N0 per complex data symbol for Eb/N0 per payload bit (same shape as ``ebno_db``).

        Example:
            >>> from phy.specs import CodingSpec
            >>> link = PhyLink("16qam", CodingSpec(type="ldpc5g", k=512, n=1024))
            >>> round(float(link.noise_var(0.0)), 6)  # 1 / (r * m) = 1 / 2
            0.5
        """
        ebno_db = torch.as_tensor(ebno_db, dtype=self._dtype, device=self.device)
        ebno = torch.pow(10.0, ebno_db / 10.0)
        return self._energy_per_symbol / (ebno * self.bits_per_symbol_effective)

    # ------------------------------------------------------------------ randomness

    def _randn(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """CN(0, 1) samples of ``shape`` on the link's device."""
        z = torch.randn(shape, generator=generator, device=generator.device, dtype=self._cdtype)
        return z.to(self.device)

    def _flat_coefficients(
        self, batch: int, num: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``[B, 1]`` (block) or ``[B, num]`` (fast) complex fading coefficients, E|h|^2 = 1."""
        shape = (batch, 1 if self.channel.fading == "block" else num)
        h = self._randn(shape, generator)
        if self.channel.type == "rician":
            kf = 10.0 ** (self.channel.rician_k_db / 10.0)
            phase = torch.rand(shape, generator=generator, device=generator.device,
                               dtype=self._dtype).to(self.device) * (2 * math.pi)
            los = torch.polar(torch.full_like(phase, math.sqrt(kf / (kf + 1))), phase)
            h = los + h * math.sqrt(1.0 / (kf + 1))
        return h

    # ------------------------------------------------------------------ channel

    def _transmit(
        self,
        x: torch.Tensor,
        no: torch.Tensor,
        generator: torch.Generator,
        want_h: bool = False,
    ) -> _Equalised:
        """Channel + equaliser for ``x`` ``[B, Ns]`` complex, ``no`` ``[B]`` N0 per symbol.

        ``h`` of the result is None for AWGN, and for TDL unless ``want_h``.
        """
        if self.channel.type == "tdl":
            return self._transmit_ofdm(x, no, generator, want_h)
        batch, num = x.shape
        noise = self._randn((batch, num), generator) * torch.sqrt(no).unsqueeze(-1)
        if self.channel.type == "awgn":
            return _Equalised(x + noise, no.unsqueeze(-1).expand(batch, num), None)
        h = self._flat_coefficients(batch, num, generator)
        x_hat = (h * x + noise) / h
        no_eff = no.unsqueeze(-1) / h.abs().square()
        return _Equalised(x_hat, no_eff.expand(batch, num), h.expand(batch, num))

    def _transmit_ofdm(
        self, x: torch.Tensor, no: torch.Tensor, generator: torch.Generator, want_h: bool
    ) -> _Equalised:
        batch, num = x.shape
        slots = math.ceil(num / self._data_per_slot)
        grid_data = x.new_zeros(batch, slots * self._data_per_slot)
        grid_data[:, :num] = x
        grid_data = grid_data.reshape(batch * slots, 1, 1, self._data_per_slot)
        x_rg = self._rg_mapper(grid_data)  # [B*S, 1, 1, T, F] incl. pilots
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        with _seeded_sionna_rng(seed, self._tdl.device):
            h_freq = self._gen_channel(batch * slots)  # [B*S, 1, 1, 1, 1, T, F]
        y = self._apply_channel(x_rg, h_freq)
        no_slot = no.repeat_interleave(slots)
        noise = self._randn(tuple(y.shape), generator)
        y = y + noise * torch.sqrt(no_slot).reshape(-1, 1, 1, 1, 1)
        if self.channel.csi == "perfect":
            h_hat = self._remove_nulled(h_freq)
            err_var = torch.zeros((), dtype=self._dtype, device=self.device)
        else:
            h_hat, err_var = self._ls(y, no_slot)
        x_hat, no_eff = self._equalizer(y, h_hat, err_var, no_slot)
        h_data = None
        if want_h:  # true channel on the data REs
            h_data = self._rg_demapper(h_freq[:, :, :, 0, 0]).reshape(batch, -1)[:, :num]
        return _Equalised(
            x_hat.reshape(batch, -1)[:, :num], no_eff.reshape(batch, -1)[:, :num], h_data
        )

    # ------------------------------------------------------------------ receiver pieces

    def _demap(self, x_hat: torch.Tensor, no_eff: torch.Tensor) -> torch.Tensor:
        """APP LLRs ``[B, Ns*m]``, in chunks that bound the demapper's working memory."""
        batch = x_hat.shape[0]
        points = 2**self._m
        per_symbol = points * (16 + 8 * self._m)
        chunk = max(1024, _DEMAPPER_CHUNK_BYTES // per_symbol)
        y, no = x_hat.reshape(-1), no_eff.reshape(-1)
        if y.numel() <= chunk:
            return self._demapper(y, no).reshape(batch, -1)
        parts = [self._demapper(y[i : i + chunk], no[i : i + chunk])
                 for i in range(0, y.numel(), chunk)]
        return torch.cat(parts).reshape(batch, -1)

    def _hard_bits(self, x_hat: torch.Tensor) -> torch.Tensor:
        """Symbol-ML bits ``[B, Ns*m]`` of equalised symbols."""
        return self._label_bits[self._slicer(x_hat)].reshape(x_hat.shape[0], -1)

    # ------------------------------------------------------------------ calls

    @torch.no_grad()
    def __call__(
        self,
        bits: torch.Tensor,
        ebno_db: float | torch.Tensor,
        generator: torch.Generator,
    ) -> LinkOutput:
        bits = torch.as_tensor(bits, dtype=self._dtype, device=self.device)
        if bits.dim() != 2 or bits.shape[1] != self._k:
            raise ValueError(f"bits must have shape [B, {self._k}], got {tuple(bits.shape)}")
        batch = bits.shape[0]
        ebno_db = self._per_row(ebno_db, batch)
        no = self.noise_var(ebno_db)

        coded = bits
        if self._crc_encoder is not None:
            coded = self._crc_encoder(coded)
        if self._encoder is not None:
            coded = self._encoder(coded)
        if self._pad_bits:
            coded = torch.nn.functional.pad(coded, (0, self._pad_bits))
        x = self._mapper(coded)
        eq = self._transmit(x, no, generator)
        llr = self._demap(eq.x_hat, eq.no_eff)[:, : self._n]

        crc_ok = None
        if self._encoder is None:
            bits_hat = self._hard_bits(eq.x_hat)
        else:
            bits_hat = self._decoder(llr).to(self._dtype)
            if self._crc_decoder is not None:
                bits_hat, crc_valid = self._crc_decoder(bits_hat)
                crc_ok = crc_valid.reshape(batch)
        return LinkOutput(
            bits_hat=bits_hat,
            llr=llr,
            crc_ok=crc_ok,
            ebno_db=ebno_db,
            esno_db=-10.0 * torch.log10(no),
            noise_var=no,
            symbols_hat=eq.x_hat,
            noise_var_eff=eq.no_eff,
        )

    @torch.no_grad()
    def count_errors(
        self, num_blocks: int, ebno_db: float | torch.Tensor, generator: torch.Generator
    ) -> ErrorCounts:
        """Send ``num_blocks`` random blocks and count bit and block errors exactly.

        Uncoded links draw random labels and skip the LLRs (the slicer decides); coded links
        run the full call. Block error = at least one payload bit wrong.

        Example:
            >>> import torch
            >>> link = PhyLink("bpsk")
            >>> c = link.count_errors(10, 30.0, torch.Generator().manual_seed(0))
            >>> (c.bit_errors, c.bits, c.blocks)
            (0, 2560, 10)
        """
        if self._encoder is None:
            labels = torch.randint(
                0, 2**self._m, (num_blocks, self._num_symbols),
                generator=generator, device=generator.device,
            ).to(self.device)
            no = self.noise_var(self._per_row(ebno_db, num_blocks))
            eq = self._transmit(self._points[labels], no, generator)
            per_block = self._label_weight[labels ^ self._slicer(eq.x_hat)].sum(-1)
        else:
            bits = torch.randint(
                0, 2, (num_blocks, self._k), generator=generator, device=generator.device
            ).to(device=self.device, dtype=self._dtype)
            out = self(bits, ebno_db, generator)
            per_block = (out.bits_hat != bits).sum(-1)
        bit_errors, block_errors = torch.stack(
            [per_block.sum(), (per_block > 0).sum()]
        ).tolist()
        return ErrorCounts(
            bit_errors=int(bit_errors),
            bits=num_blocks * self._k,
            block_errors=int(block_errors),
            blocks=num_blocks,
        )

    @torch.no_grad()
    def analog(
        self,
        symbols: torch.Tensor,
        snr_db: float | torch.Tensor,
        generator: torch.Generator,
    ) -> AnalogOutput:
        """Send complex symbols as they are (analog/semantic schemes) over the channel.

        Each row is normalised to unit mean power, sent at ``snr_db`` per complex channel use
        (noise ``CN(0, 10^(-snr_db/10))``), equalised as the digital path does, and scaled
        back. The OFDM grid's pilots are not charged to ``snr_db``.

        Args:
            symbols: ``[B, N]`` complex. snr_db: float or ``[B]`` tensor.
            generator: ``torch.Generator``.

        Returns:
            `AnalogOutput`.

        Example:
            >>> import torch
            >>> link = PhyLink("qpsk")
            >>> x = torch.full((1, 20000), 2.0 + 0j)
            >>> out = link.analog(x, 10.0, torch.Generator().manual_seed(0))
            >>> round(float((out.symbols_hat - x).abs().square().mean()), 1)  # 4 / 10
            0.4
        """
        x = torch.as_tensor(symbols, device=self.device).to(self._cdtype)
        if x.dim() != 2:
            raise ValueError(f"symbols must have shape [B, N], got {tuple(x.shape)}")
        batch = x.shape[0]
        snr_db = self._per_row(snr_db, batch)
        power = x.abs().square().mean(-1).clamp_min(torch.finfo(self._dtype).tiny)
        scale = torch.sqrt(power).unsqueeze(-1)
        eq = self._transmit(x / scale, torch.pow(10.0, -snr_db / 10.0), generator, want_h=True)
        h = eq.h if eq.h is not None else torch.ones_like(x)
        return AnalogOutput(
            symbols_hat=eq.x_hat * scale,
            noise_var_eff=eq.no_eff * power.unsqueeze(-1),
            h=h,
            snr_db=snr_db,
            power=power,
        )

    # ------------------------------------------------------------------ link-layer hooks (HARQ)
    # The discrete-event link layer (link/des) splits the chain: it encodes a redundancy version,
    # sends it over a channel coefficient it draws itself (time-correlated per slot), combines
    # the LLRs of several transmissions and decodes the combination.

    @torch.no_grad()
    def encode(
        self, bits: torch.Tensor, rv: list[int] | tuple[int, ...] | None = None
    ) -> torch.Tensor:
        """Payload bits -> coded bits (CRC, LDPC, 38.212 rate matching and interleaving).

        Args:
            bits: ``[B, k]`` float 0/1 payload bits.
            rv: None (redundancy version 0, the codeword `__call__` sends) or a list of
                redundancy versions 0..3 (HARQ incremental redundancy; coded links only).

        Returns:
            ``[B, n]`` float coded bits, or ``[B, len(rv), n]`` with ``rv``.

        Example:
            >>> import torch
            >>> from phy.specs import CodingSpec
            >>> link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=64, n=128, crc="CRC16"))
            >>> bits = torch.zeros(2, link.k)
            >>> link.encode(bits).shape, link.encode(bits, rv=[0, 2]).shape
            (torch.Size([2, 128]), torch.Size([2, 2, 128]))
        """
        bits = torch.as_tensor(bits, dtype=self._dtype, device=self.device)
        if bits.dim() != 2 or bits.shape[1] != self._k:
            raise ValueError(f"bits must have shape [B, {self._k}], got {tuple(bits.shape)}")
        coded = bits if self._crc_encoder is None else self._crc_encoder(bits)
        if self._encoder is None:
            if rv is not None:
                raise ValueError("redundancy versions need a code (coding type 'ldpc5g')")
            return coded
        return self._encoder(coded) if rv is None else self._encoder(coded, rv=list(rv))

    @torch.no_grad()
    def llr_with_coefficient(
        self,
        coded: torch.Tensor,
        noise_var: float | torch.Tensor,
        h: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Send coded rows over a flat channel with a given coefficient per row; return LLRs.

        ``y = h x + w``, ``w ~ CN(0, N0)`` per data symbol, equalised as block fading is in
        `__call__` (``x_hat = y / h``, noise ``N0 / |h|^2``) and demapped (APP). The link's
        own `ChannelSpec` is not used: the caller owns the fading.

        Args:
            coded: ``[B, n]`` float 0/1 coded bits (e.g. from `encode`).
            noise_var: N0 per complex data symbol, float or ``[B]`` (``10^(-esno_db/10)``).
            h: None (``h = 1``) or ``[B]`` complex coefficients.
            generator: ``torch.Generator`` of the noise.

        Returns:
            ``[B, n]`` float LLRs ``ln P(b=1)/P(b=0)``.

        Example:
            >>> import torch
            >>> link = PhyLink("qpsk")
            >>> coded = torch.zeros(1, link.n)
            >>> llr = link.llr_with_coefficient(coded, 0.01, torch.tensor([0.5j]),
            ...                                 torch.Generator().manual_seed(0))
            >>> llr.shape, bool((llr < 0).all())
            (torch.Size([1, 512]), True)
        """
        coded = torch.as_tensor(coded, dtype=self._dtype, device=self.device)
        if coded.dim() != 2 or coded.shape[1] != self._n:
            raise ValueError(f"coded must have shape [B, {self._n}], got {tuple(coded.shape)}")
        batch = coded.shape[0]
        if self._pad_bits:
            coded = torch.nn.functional.pad(coded, (0, self._pad_bits))
        x = self._mapper(coded)
        no = torch.as_tensor(noise_var, dtype=self._dtype, device=self.device)
        no = no.expand(batch) if no.dim() == 0 else no
        if no.shape != (batch,):
            raise ValueError(f"noise_var must be a scalar or shape [{batch}]")
        no = no.unsqueeze(-1)
        noise = self._randn(tuple(x.shape), generator) * torch.sqrt(no)
        if h is None:
            x_hat, no_eff = x + noise, no.expand_as(x.real)
        else:
            h = torch.as_tensor(h, device=self.device).to(self._cdtype).reshape(batch, 1)
            gain = h.abs().square().clamp_min(torch.finfo(self._dtype).tiny)
            x_hat = (h * x + noise) / h
            no_eff = (no / gain).expand_as(x.real)
        return self._demap(x_hat, no_eff)[:, : self._n]

    @torch.no_grad()
    def decode(
        self, llr: torch.Tensor, rv: list[int] | tuple[int, ...] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Channel LLRs -> payload bits and CRC flag (the receiver half of `__call__`).

        Args:
            llr: ``[B, n]`` float LLRs (chase-combined LLRs are simply added), or with ``rv``
                ``[B, len(rv), n]``: one slice per redundancy version, added in the 38.212
                circular buffer before decoding (zeros for a version not received).
            rv: None or the distinct redundancy versions of the slices (coded links only).

        Returns:
            ``(bits_hat [B, k] float, crc_ok [B] bool or None)``. Uncoded links decide on the
            LLR signs.

        Example:
            >>> import torch
            >>> from phy.specs import CodingSpec
            >>> link = PhyLink("qpsk", CodingSpec(type="ldpc5g", k=64, n=128, crc="CRC16"))
            >>> bits = torch.ones(3, link.k)
            >>> llr = 8.0 * (2.0 * link.encode(bits, rv=[0, 1]) - 1.0)
            >>> llr[:, 1] = 0.0  # version 1 not received
            >>> bits_hat, ok = link.decode(llr, rv=[0, 1])
            >>> bool((bits_hat == bits).all()), ok.tolist()
            (True, [True, True, True])
        """
        llr = torch.as_tensor(llr, dtype=self._dtype, device=self.device)
        batch = llr.shape[0]
        if self._encoder is None:
            if rv is not None:
                raise ValueError("redundancy versions need a code (coding type 'ldpc5g')")
            return (llr > 0).to(self._dtype), None
        if rv is None:
            bits_hat = self._decoder(llr).to(self._dtype)
        else:
            bits_hat = self._harq_decoder()(llr, rv=list(rv)).to(self._dtype)
        crc_ok = None
        if self._crc_decoder is not None:
            bits_hat, crc_valid = self._crc_decoder(bits_hat)
            crc_ok = crc_valid.reshape(batch)
        return bits_hat, crc_ok

    def _harq_decoder(self) -> object:
        """Decoder that accepts redundancy versions (the fast one does; Sionna's needs
        ``harq_mode``, which disables graph pruning, so it is a second instance built once)."""
        if self.decoder_name == "fast":
            return self._decoder
        decoder = getattr(self, "_sionna_harq_decoder", None)
        if decoder is None:
            decoder = LDPC5GDecoder(
                self._encoder,
                cn_update=self.coding.cn_update,
                num_iter=self.coding.num_iter,
                hard_out=True,
                return_infobits=True,
                harq_mode=True,
                precision=self.precision,
                device=self.device,
            )
            self._sionna_harq_decoder = decoder
        return decoder
