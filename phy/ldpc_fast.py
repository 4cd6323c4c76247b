"""Fast CPU decoder for the 5G NR LDPC codes produced by Sionna's ``LDPC5GEncoder``.

:class:`FastLDPC5GDecoder` is a drop-in replacement for
``LDPC5GDecoder(encoder, hard_out=True, return_infobits=True)``: same input (channel logits
``ln P(b=1)/P(b=0)`` of the ``n`` rate-matched bits, arbitrary leading dims), same output
(hard information bits ``[..., k]`` as float32 0/1). Encoder, mapper and channel stay
Sionna's; only the decoder changes.

It undoes Sionna's rate matching exactly as ``LDPC5GDecoder`` does (bit de-interleaving when
the encoder has ``num_bits_per_symbol``, the 2Z punctured systematic bits as erasures, filler
bits as known zeros, untransmitted parity as erasures, HARQ redundancy versions combined in the
circular buffer) and runs normalised or offset min-sum, layered (one base-graph row = Z check
rows per layer) or flooding, with early termination on a satisfied syndrome, in Numba kernels
(:mod:`phy._ldpc_kernels`) parallel over codewords. The graph is the quasi-cyclic form of
``encoder.pcm`` (circulant shifts read back from Sionna's lifted matrix), pruned of the
extension rows whose degree-1 parity bits were not transmitted.

The decoded word is the hard decision at the first iteration whose syndrome is satisfied (or
after the last iteration): early termination only skips iterations that cannot change it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import scipy.sparse as sp
import torch
from sionna.phy.fec.ldpc import LDPC5GEncoder

from phy import _ldpc_kernels as kern

__all__ = ["FastDecodeOutput", "FastLDPC5GDecoder", "recommended_settings"]


def recommended_settings(coderate: float) -> dict[str, str | float]:
    """Check-node rule that matches Sionna's BP (boxplus-phi, flooding, 20 it) at 20 layered
    iterations, as keyword arguments of :class:`FastLDPC5GDecoder`.

    Measured with ``benchmarks/ldpc_ber_compare.py`` (QPSK/AWGN, k=512, docs/ldpc_fast.md):
    offset min-sum (beta 0.5) at r=1/3, where normalised min-sum loses 0.17 dB at alpha 0.75;
    normalised min-sum with alpha 0.8 at r=1/2 and r=5/6.

    Example:
        >>> recommended_settings(1 / 3), recommended_settings(0.5)
        ({'cn_update': 'oms', 'beta': 0.5}, {'cn_update': 'nms', 'alpha': 0.8})
    """
    if coderate < 0.4:
        return {"cn_update": "oms", "beta": 0.5}
    return {"cn_update": "nms", "alpha": 0.8}


@dataclass(frozen=True)
class FastDecodeOutput:
    """Result of :meth:`FastLDPC5GDecoder.decode_with_stats`.

    Attributes:
        bits: ``[..., k]`` float32 hard information bits (0/1).
        iterations: ``[...]`` int32, iterations run per codeword (the iteration at which the
            syndrome was first satisfied when ``early_stop``; ``num_iter`` otherwise).
        syndrome_ok: ``[...]`` bool, whether the returned word satisfies every parity check
            (a detected failure when False; a valid codeword can still be the wrong one).
    """

    bits: torch.Tensor
    iterations: torch.Tensor
    syndrome_ok: torch.Tensor


@dataclass(frozen=True)
class _Schedule:
    """Decoder graph and input mapping for one transmission pattern (single or HARQ RVs)."""

    src: np.ndarray  # [M] uint64, column of the flattened input LLRs
    dst: np.ndarray  # [M] uint64, variable node receiving it (summed)
    n_vn: int  # variable nodes kept (prefix of the lifted columns)
    act_ptr: np.ndarray  # [num_layers + 1] uint64, edge ranges of the active layers
    act_col: np.ndarray  # [E] uint64, base column of each active edge
    act_shift: np.ndarray  # [E] uint64, circulant shift of each active edge
    row_active: np.ndarray  # [num_layers * Z] uint8, 0 for rows left out of the syndrome
    max_deg: int


class FastLDPC5GDecoder:
    """Min-sum decoder (Numba, CPU) for the code of a Sionna ``LDPC5GEncoder``.

    Args:
        encoder: The ``LDPC5GEncoder`` whose codewords are decoded (base graph, lifting,
            shortening/filler bits, puncturing, rate matching and output interleaver are
            taken from it).
        num_iter: Maximum number of decoding iterations (>= 0).
        algorithm: ``"layered"`` (row-layered: one base-graph row of Z checks at a time;
            converges in about half the iterations) or ``"flooding"``.
        cn_update: ``"nms"`` normalised min-sum, outgoing magnitude ``alpha * min``; or
            ``"oms"`` offset min-sum, ``max(min - beta, 0)``. ``alpha`` is used only by
            ``"nms"`` and ``beta`` only by ``"oms"``.
        alpha: Normalisation factor in (0, 1].
        beta: Offset (>= 0), in LLR units.
        early_stop: Stop a codeword's iterations once its syndrome is satisfied. Changes the
            run time only, never the output (see the module docstring).
        llr_max: Clipping value of channel LLRs and of the magnitudes seen by check nodes
            (Sionna's ``llr_max``; also the value Sionna gives filler bits).
        fixed_point: Saturated integer arithmetic: v2c/c2v magnitudes are int8 on a uniform
            grid with step ``llr_max / 127``, posteriors int16 (hardware-style decoder).
        return_iterations: If True, calling the decoder returns ``(bits, iterations)``.

    Input (``__call__``):
        llr: ``[..., n]`` float tensor (or array) of channel logits ``ln P(1)/P(0)``, e.g.
            the Demapper output. With ``rv`` (HARQ incremental redundancy, as Sionna's
            ``LDPC5GDecoder(harq_mode=True)``): ``[..., len(rv), n]``, one slice per RV.
        rv: Optional redundancy versions (0..3) of the stacked transmissions; their LLRs
            are added in the circular buffer before decoding.

    Output:
        ``[..., k]`` float32 hard information bits on the input's device; with
        ``return_iterations`` also ``[...]`` int32 iterations.

    Example:
        >>> import torch
        >>> from sionna.phy.fec.ldpc import LDPC5GEncoder
        >>> from phy.ldpc_fast import FastLDPC5GDecoder
        >>> enc = LDPC5GEncoder(k=100, n=200)
        >>> dec = FastLDPC5GDecoder(enc, num_iter=10)
        >>> u = torch.randint(0, 2, (8, 100)).float()
        >>> llr = 6.0 * (2.0 * enc(u) - 1.0)  # noiseless logits
        >>> bool(torch.equal(dec(llr), u)), tuple(dec(llr).shape)
        (True, (8, 100))
    """

    def __init__(
        self,
        encoder: LDPC5GEncoder,
        num_iter: int = 10,
        algorithm: Literal["layered", "flooding"] = "layered",
        cn_update: Literal["nms", "oms"] = "nms",
        alpha: float = 0.75,
        beta: float = 0.0,
        early_stop: bool = True,
        llr_max: float = 20.0,
        fixed_point: bool = False,
        return_iterations: bool = False,
    ) -> None:
        if not isinstance(encoder, LDPC5GEncoder):
            raise TypeError("encoder must be a sionna LDPC5GEncoder")
        if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 0:
            raise ValueError(f"num_iter must be an int >= 0, got {num_iter!r}")
        if algorithm not in ("layered", "flooding"):
            raise ValueError(f"algorithm must be 'layered' or 'flooding', got {algorithm!r}")
        if cn_update not in ("nms", "oms"):
            raise ValueError(f"cn_update must be 'nms' or 'oms', got {cn_update!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if beta < 0.0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if not llr_max > 0.0:
            raise ValueError(f"llr_max must be > 0, got {llr_max}")

        self._encoder = encoder
        self.num_iter = num_iter
        self.algorithm = algorithm
        self.cn_update = cn_update
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.early_stop = bool(early_stop)
        self.llr_max = float(llr_max)
        self.fixed_point = bool(fixed_point)
        self.return_iterations = bool(return_iterations)

        self._k = encoder.k
        self._n = encoder.n
        self._z = encoder.z
        self._k_ldpc = encoder.k_ldpc
        self._n_ldpc = encoder.n_ldpc
        self._n_cb_comp = encoder.n_cb_comp
        if self._n > self._n_cb_comp:
            raise ValueError("n exceeds the circular buffer (repetition is not supported)")
        if encoder.num_bits_per_symbol is not None:
            self._deint = np.asarray(encoder.out_int_inv.cpu().numpy(), dtype=np.int64)
        else:
            self._deint = np.arange(self._n, dtype=np.int64)

        self._shifts = _circulant_shifts(encoder.pcm, self._z)  # [rows_b, cols_b], -1 = none
        col_deg = np.asarray(encoder.pcm.sum(axis=0)).ravel()
        self._deg1_cols = np.flatnonzero(col_deg == 1)
        pcm_csc = sp.csc_matrix(encoder.pcm)
        # check row of each degree-1 variable node
        self._deg1_rows = pcm_csc.indices[pcm_csc.indptr[self._deg1_cols]]

        # fixed point: LLR grid and the magnitude look-up table of the CN update
        self._q_scale = np.float32(kern.MSG_MAX_Q / self.llr_max)
        m = np.arange(kern.MSG_MAX_Q + 1, dtype=np.float64)
        if cn_update == "nms":
            lut = np.rint(self.alpha * m)
        else:
            lut = np.maximum(m - np.rint(self.beta * float(self._q_scale)), 0.0)
        self._lut = lut.astype(np.int16)

        self._schedules: dict[tuple[int, ...] | None, _Schedule] = {}
        self._schedule(None)

    # ------------------------------------------------------------------ properties

    @property
    def encoder(self) -> LDPC5GEncoder:
        """The Sionna encoder this decoder matches."""
        return self._encoder

    @property
    def k(self) -> int:
        """Number of information bits."""
        return self._k

    @property
    def n(self) -> int:
        """Number of transmitted (rate-matched) bits."""
        return self._n

    @property
    def num_layers(self) -> int:
        """Layers (base-graph rows) decoded for a single RV-0 transmission after pruning."""
        return int(self._schedules[None].act_ptr.shape[0] - 1)

    @property
    def num_edges(self) -> int:
        """Lifted edges of the pruned decoding graph (single RV-0 transmission)."""
        return int(self._schedules[None].act_ptr[-1] * self._z)

    # ------------------------------------------------------------------ decoding

    def __call__(
        self, llr: torch.Tensor | np.ndarray, *, rv: Sequence[int] | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Decode; see the class docstring for shapes."""
        out = self.decode_with_stats(llr, rv=rv)
        if self.return_iterations:
            return out.bits, out.iterations
        return out.bits

    def decode_with_stats(
        self, llr: torch.Tensor | np.ndarray, *, rv: Sequence[int] | None = None
    ) -> FastDecodeOutput:
        """Decode and also return per-codeword iteration counts and syndrome flags.

        Args:
            llr: ``[..., n]`` (or ``[..., len(rv), n]`` with ``rv``) channel logits.
            rv: Optional HARQ redundancy versions of the stacked transmissions.

        Returns:
            :class:`FastDecodeOutput` with ``bits [..., k]`` float32,
            ``iterations [...]`` int32 and ``syndrome_ok [...]`` bool, on the input's device.
        """
        device = llr.device if isinstance(llr, torch.Tensor) else torch.device("cpu")
        if isinstance(llr, torch.Tensor):
            llr_np = llr.detach().to("cpu", torch.float32).numpy()
        else:
            llr_np = np.asarray(llr, dtype=np.float32)
        key = None if rv is None else tuple(int(v) for v in rv)
        if key is not None:
            if len(key) == 0 or any(v not in (0, 1, 2, 3) for v in key):
                raise ValueError(f"rv must be a non-empty list of values in 0..3, got {rv!r}")
            if llr_np.ndim < 2 or llr_np.shape[-2:] != (len(key), self._n):
                raise ValueError(
                    f"with rv={list(key)} llr must have shape [..., {len(key)}, {self._n}], "
                    f"got {tuple(llr_np.shape)}"
                )
            lead = llr_np.shape[:-2]
        else:
            if llr_np.ndim < 1 or llr_np.shape[-1] != self._n:
                raise ValueError(
                    f"last dimension of llr must be n={self._n}, got {tuple(llr_np.shape)}"
                )
            lead = llr_np.shape[:-1]
        sched = self._schedule(key)
        batch = int(np.prod(lead, dtype=np.int64))
        flat = np.ascontiguousarray(llr_np.reshape(batch, self._n * (len(key) if key else 1)))

        bits = np.empty((batch, self._k), dtype=np.uint8)
        iters = np.empty(batch, dtype=np.int32)
        ok = np.empty(batch, dtype=np.uint8)
        if batch > 0:
            args = (
                flat,
                sched.src,
                sched.dst,
                sched.n_vn,
                self._k,
                self._k_ldpc,
                self._z,
                sched.act_ptr,
                sched.act_col,
                sched.act_shift,
                sched.row_active,
                sched.max_deg,
                self.num_iter,
                self.algorithm == "flooding",
                self.early_stop,
                np.float32(self.llr_max),
            )
            if self.fixed_point:
                kernel, params = kern.decode_i16, (self._q_scale, self._lut)
            else:
                alpha = self.alpha if self.cn_update == "nms" else 1.0
                beta = self.beta if self.cn_update == "oms" else 0.0
                kernel, params = kern.decode_f32, (np.float32(alpha), np.float32(beta))
            _run_chunks(lambda b0, b1: kernel(*args, *params, b0, b1, bits, iters, ok), batch)
        return FastDecodeOutput(
            bits=torch.from_numpy(bits.astype(np.float32)).reshape(*lead, self._k).to(device),
            iterations=torch.from_numpy(iters).reshape(lead).to(device),
            syndrome_ok=torch.from_numpy(ok.astype(bool)).reshape(lead).to(device),
        )

    # ------------------------------------------------------------------ graph set-up

    def _full_index(self, comp: np.ndarray) -> np.ndarray:
        """Position in the mother codeword of a position in the filler-free codeword."""
        return np.where(comp < self._k, comp, comp + (self._k_ldpc - self._k))

    def _schedule(self, key: tuple[int, ...] | None) -> _Schedule:
        """Input mapping and pruned graph for a transmission pattern (cached per ``rv``)."""
        if key in self._schedules:
            return self._schedules[key]
        z, n = self._z, self._n
        two_z = 2 * z
        j = np.arange(n, dtype=np.int64)
        if key is None:
            src = self._deint.copy()
            dst = self._full_index(two_z + j)
        else:
            starts = self._encoder.get_start_positions_comp(list(key))
            src = np.concatenate([q * n + self._deint for q in range(len(key))])
            dst = np.concatenate(
                [self._full_index(two_z + (st + j) % self._n_cb_comp) for st in starts]
            )
        known = np.zeros(self._n_ldpc, dtype=bool)
        known[dst] = True
        known[self._k : self._k_ldpc] = True  # filler bits
        # A check row whose degree-1 (extension parity) bit is unknown is inert: the erased
        # bit absorbs it. Leave it out of the syndrome; drop layers made only of such rows.
        row_active = np.ones(self._shifts.shape[0] * z, dtype=np.uint8)
        row_active[self._deg1_rows[~known[self._deg1_cols]]] = 0
        layer_active = row_active.reshape(-1, z).any(axis=1)
        layers = np.flatnonzero(layer_active)

        ptr, cols, shifts = [0], [], []
        for r in layers:
            c = np.flatnonzero(self._shifts[r] >= 0)
            cols.append(c)
            shifts.append(self._shifts[r, c])
            ptr.append(ptr[-1] + c.size)
        act_col = np.concatenate(cols).astype(np.int64)
        n_vn = int(act_col.max() + 1) * z
        if dst.max() >= n_vn:
            raise AssertionError("a received bit lies outside the pruned graph")
        sched = _Schedule(
            src=src.astype(np.uint64),
            dst=dst.astype(np.uint64),
            n_vn=n_vn,
            act_ptr=np.asarray(ptr, dtype=np.uint64),
            act_col=act_col.astype(np.uint64),
            act_shift=np.concatenate(shifts).astype(np.uint64),
            row_active=np.ascontiguousarray(row_active.reshape(-1, z)[layers].ravel()),
            max_deg=int(np.diff(ptr).max()),
        )
        self._schedules[key] = sched
        return sched


_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 0
_POOL_LOCK = threading.Lock()


def _run_chunks(decode_range: Callable[[int, int], None], batch: int) -> None:
    """Run ``decode_range(b0, b1)`` over ``[0, batch)`` on ``numba.get_num_threads()`` threads.

    The kernels release the GIL. Chunks (several per thread) are handed out as threads become
    free, which balances the uneven cost that early stopping gives codewords and copes with
    threads being descheduled on a shared machine.
    """
    global _POOL, _POOL_WORKERS
    workers = numba.get_num_threads()
    n_chunks = min(batch, 8 * workers)
    if workers <= 1 or n_chunks <= 1:
        decode_range(0, batch)
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL_WORKERS < workers:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ldpc_fast")
            _POOL_WORKERS = workers
        pool = _POOL
    bounds = [batch * c // n_chunks for c in range(n_chunks + 1)]
    futures = [pool.submit(decode_range, b0, b1) for b0, b1 in itertools.pairwise(bounds)]
    for future in futures:
        future.result()


def _circulant_shifts(pcm: sp.spmatrix, z: int) -> np.ndarray:
    """Base matrix of circulant shifts read back from a lifted QC parity-check matrix.

    Returns ``[rows/z, cols/z]`` int64 with -1 for all-zero blocks; block ``(r, c)`` with
    shift ``s`` connects check ``r*z + i`` to variable ``c*z + (i + s) % z``. Raises if
    ``pcm`` is not made of ``z x z`` circulant permutation blocks.
    """
    coo = sp.coo_matrix(pcm)
    rows = coo.row.astype(np.int64)
    cols = coo.col.astype(np.int64)
    n_rb, n_cb = pcm.shape[0] // z, pcm.shape[1] // z
    shifts = -np.ones((n_rb, n_cb), dtype=np.int64)
    first = rows % z == 0
    shifts[rows[first] // z, cols[first] // z] = cols[first] % z
    s = shifts[rows // z, cols // z]
    consistent = (s >= 0) & (cols % z == (rows % z + s) % z)
    if (
        pcm.shape != (n_rb * z, n_cb * z)
        or coo.nnz != int((shifts >= 0).sum()) * z
        or not (consistent.all())
    ):
        raise ValueError("parity-check matrix is not quasi-cyclic with the encoder's lifting z")
    return shifts
