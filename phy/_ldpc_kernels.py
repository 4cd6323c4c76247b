"""Numba kernels for quasi-cyclic (5G NR) LDPC min-sum decoding on the CPU.

Internal to :mod:`phy.ldpc_fast`. The kernels work on the lifted graph in its quasi-cyclic
form: active base-graph edge ``e`` (edges grouped by layer = base row) joins check rows
``r*Z + i`` to variable nodes ``col[e]*Z + (i + shift[e]) % Z``, ``i = 0..Z-1``. A rotated
block is two contiguous slices, so every inner loop runs over ``Z`` consecutive lanes and
vectorises; ``phy.ldpc_fast`` runs chunks of codewords on several threads (``nogil``).

Conventions inside the kernels (not the public ones):

* LLRs are ``ln P(0)/P(1)`` (the negative of Sionna's logits); hard decision ``bit = L <= 0``,
  the tie rule of Sionna's ``LDPC5GDecoder`` (``x_hat <= 0`` decides 1).
* ``lpost`` holds one posterior per variable node, ``cmsg`` one check-to-variable message
  per lifted edge (edge-major, ``Z`` lanes each), ``tmsg`` the variable-to-check messages
  of the layer being updated.
* The magnitude a check node sees is clipped to ``llr_max`` (Sionna clips its v2c messages
  the same way). Known filler bits start at a huge posterior (float) or the int16 maximum
  (fixed point): to the check nodes they look exactly like Sionna's filler LLR ``llr_max``,
  while their own decision can never flip.
* The answer is the hard decision at the first iteration whose syndrome is satisfied (or
  after the last iteration). ``early_stop`` only decides whether the remaining iterations
  are skipped: it changes the run time, never the decoded bits.
"""

from __future__ import annotations

import numpy as np
from numba import float32, int16, int32, njit, uint8, uint64

# Posterior of known filler bits (float kernels): finite, so no inf/NaN arithmetic.
FILLER_F32 = np.float32(1e30)
# Posterior of known filler bits (fixed-point kernels).
FILLER_I16 = 32767
# Fixed point: v2c/c2v magnitudes are int8 in [0, MSG_MAX_Q], MSG_MAX_Q <-> llr_max.
MSG_MAX_Q = 127

# No nnan/ninf (inputs are sanitised but we keep IEEE comparisons) and no reassoc (no
# reductions whose order matters): these flags only let LLVM fuse and vectorise.
_FASTMATH = {"nsz", "arcp", "contract", "afn"}


# Index arithmetic is done in uint64 throughout: with signed indices Numba must allow for
# Python-style negative indexing, which turns every contiguous access into a gather.

# --------------------------------------------------------------------------- shared


@njit(cache=True, inline="always")
def _syndrome_ok(z, hd, par, act_ptr, act_col, act_shift, row_active):
    """True when every active check row is satisfied by the hard decisions ``hd`` (uint8)."""
    zu = uint64(z)
    n_layers = uint64(act_ptr.shape[0] - 1)
    for a in range(n_layers):
        for i in range(zu):
            par[i] = 0
        for e in range(act_ptr[a], act_ptr[a + uint64(1)]):
            vb = act_col[e] * zu
            s = act_shift[e]
            ns = zu - s
            for i in range(ns):
                par[i] ^= hd[vb + s + i]
            for i in range(ns, zu):
                par[i] ^= hd[vb + s + i - zu]
        rb = a * zu
        bad = uint8(0)
        for i in range(zu):
            bad |= par[i] & row_active[rb + i]
        if bad:
            return False
    return True


@njit(cache=True, inline="always")
def _hard(lpost, hd):
    for v in range(uint64(hd.shape[0])):
        hd[v] = uint8(lpost[v] <= 0)


@njit(cache=True, inline="always")
def _write_bits(b, hd, bits_out):
    for j in range(uint64(bits_out.shape[1])):
        bits_out[b, j] = hd[j]


@njit(cache=True, inline="always")
def _gather_channel(b, llr, src, dst, acc):
    """acc[v] = -(sum of the logits mapped to variable node v), i.e. ln P0/P1, RVs combined."""
    for v in range(uint64(acc.shape[0])):
        acc[v] = float32(0.0)
    for j in range(uint64(src.shape[0])):
        acc[dst[j]] -= llr[b, src[j]]


# --------------------------------------------------------------------------- float32


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _layer_f32(
    z,
    e0,
    e1,
    act_col,
    act_shift,
    lsrc,
    ldst,
    cmsg,
    tmsg,
    m1,
    m2,
    sg,
    llr_max,
    alpha,
    beta,
    flooding,
):
    """Min-sum update of one layer (Z check rows); outgoing magnitude max(alpha*min - beta, 0).

    Layered: ``ldst is lsrc``, the posteriors of the layer's variable nodes are replaced.
    Flooding: ``lsrc`` holds the previous posteriors and ``ldst`` accumulates the new c2v
    messages on top of the channel LLRs.
    """
    zu = uint64(z)
    big = float32(3.0e38)
    zero = float32(0.0)
    for i in range(zu):
        m1[i] = big
        m2[i] = big
        sg[i] = float32(1.0)
    deg = e1 - e0
    for d in range(deg):
        e = e0 + d
        vb = act_col[e] * zu
        s = act_shift[e]
        cb = e * zu
        tb = d * zu
        ns = zu - s
        for i in range(ns):
            tmsg[tb + i] = lsrc[vb + s + i] - cmsg[cb + i]
        for i in range(ns, zu):
            tmsg[tb + i] = lsrc[vb + s + i - zu] - cmsg[cb + i]
        for i in range(zu):
            t = tmsg[tb + i]
            a = min(abs(t), llr_max)
            m2[i] = min(m2[i], max(m1[i], a))
            m1[i] = min(m1[i], a)
            sg[i] = -sg[i] if t < zero else sg[i]
    for d in range(deg):
        e = e0 + d
        vb = act_col[e] * zu
        s = act_shift[e]
        cb = e * zu
        tb = d * zu
        ns = zu - s
        for i in range(zu):
            t = tmsg[tb + i]
            a = min(abs(t), llr_max)
            # the edge holding the minimum gets the second minimum (equal if the min is tied)
            m = m2[i] if a == m1[i] else m1[i]
            c = max(alpha * m - beta, zero) * sg[i]
            c = -c if t < zero else c
            cmsg[cb + i] = c
            tmsg[tb + i] = c if flooding else t + c
        if flooding:
            for i in range(ns):
                ldst[vb + s + i] += tmsg[tb + i]
            for i in range(ns, zu):
                ldst[vb + s + i - zu] += tmsg[tb + i]
        else:
            for i in range(ns):
                ldst[vb + s + i] = tmsg[tb + i]
            for i in range(ns, zu):
                ldst[vb + s + i - zu] = tmsg[tb + i]


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def decode_f32(
    llr,
    src,
    dst,
    n_vn,
    fill_lo,
    fill_hi,
    z,
    act_ptr,
    act_col,
    act_shift,
    row_active,
    max_deg,
    num_iter,
    flooding,
    early_stop,
    llr_max,
    alpha,
    beta,
    b_start,
    b_stop,
    bits_out,
    iters_out,
    ok_out,
):
    """Decode codewords ``b_start..b_stop-1`` of ``llr`` with float32 min-sum.

    llr: [B, m] float32 Sionna logits; ``src``/``dst`` (uint64) map llr columns to variable
    nodes, several sources adding into one node for HARQ. Writes bits_out [B, k] uint8,
    iters_out [B] int32 (iterations run) and ok_out [B] uint8 (syndrome satisfied).
    """
    n_layers = act_ptr.shape[0] - 1
    n_msg = act_ptr[n_layers] * uint64(z)
    nv = uint64(n_vn)
    lpost = np.empty(n_vn, np.float32)
    lch = np.empty(n_vn, np.float32)
    lold = np.empty(n_vn, np.float32)
    cmsg = np.empty(n_msg, np.float32)
    tmsg = np.empty(max_deg * z, np.float32)
    m1 = np.empty(z, np.float32)
    m2 = np.empty(z, np.float32)
    sg = np.empty(z, np.float32)
    par = np.empty(z, np.uint8)
    hd = np.empty(n_vn, np.uint8)
    for b in range(b_start, b_stop):
        _gather_channel(b, llr, src, dst, lch)
        for v in range(nv):
            x = lch[v]
            x = float32(0.0) if x != x else x  # NaN -> erasure
            lch[v] = min(max(x, -llr_max), llr_max)
        for v in range(uint64(fill_lo), uint64(fill_hi)):
            lch[v] = FILLER_F32
        for v in range(nv):
            lpost[v] = lch[v]
        for j in range(n_msg):
            cmsg[j] = float32(0.0)
        done = False
        it_run = 0
        for _ in range(num_iter):
            if flooding:
                for v in range(nv):
                    lold[v] = lpost[v]
                    lpost[v] = lch[v]
                for a in range(n_layers):
                    _layer_f32(
                        z,
                        act_ptr[a],
                        act_ptr[a + 1],
                        act_col,
                        act_shift,
                        lold,
                        lpost,
                        cmsg,
                        tmsg,
                        m1,
                        m2,
                        sg,
                        llr_max,
                        alpha,
                        beta,
                        True,
                    )
            else:
                for a in range(n_layers):
                    _layer_f32(
                        z,
                        act_ptr[a],
                        act_ptr[a + 1],
                        act_col,
                        act_shift,
                        lpost,
                        lpost,
                        cmsg,
                        tmsg,
                        m1,
                        m2,
                        sg,
                        llr_max,
                        alpha,
                        beta,
                        False,
                    )
            it_run += 1
            if not done:
                _hard(lpost, hd)
                if _syndrome_ok(z, hd, par, act_ptr, act_col, act_shift, row_active):
                    done = True
                    _write_bits(b, hd, bits_out)
                    if early_stop:
                        break
        if not done:
            _hard(lpost, hd)
            _write_bits(b, hd, bits_out)
        iters_out[b] = it_run
        ok_out[b] = uint8(done)


# --------------------------------------------------------------------------- fixed point


@njit(cache=True, inline="always")
def _sat16(x):
    return int16(min(max(x, -32767), 32767))


@njit(cache=True, inline="always")
def _layer_i16(
    z, e0, e1, act_col, act_shift, lsrc, ldst, cmsg, tmsg, m1, m2, q1, q2, sg, lut, flooding
):
    """Fixed-point twin of :func:`_layer_f32`: int16 posteriors and v2c, int8 c2v, saturating.

    ``lut[m]`` is the outgoing magnitude for a minimum ``m`` in 0..MSG_MAX_Q (looked up once
    per check row, not per edge: a gather per edge would defeat vectorisation).
    """
    zu = uint64(z)
    for i in range(zu):
        m1[i] = MSG_MAX_Q
        m2[i] = MSG_MAX_Q
        sg[i] = 1
    deg = e1 - e0
    for d in range(deg):
        e = e0 + d
        vb = act_col[e] * zu
        s = act_shift[e]
        cb = e * zu
        tb = d * zu
        ns = zu - s
        for i in range(ns):
            tmsg[tb + i] = _sat16(int32(lsrc[vb + s + i]) - int32(cmsg[cb + i]))
        for i in range(ns, zu):
            tmsg[tb + i] = _sat16(int32(lsrc[vb + s + i - zu]) - int32(cmsg[cb + i]))
        for i in range(zu):
            t = int32(tmsg[tb + i])
            a = int16(min(abs(t), MSG_MAX_Q))
            m2[i] = min(m2[i], max(m1[i], a))
            m1[i] = min(m1[i], a)
            sg[i] = -sg[i] if t < 0 else sg[i]
    for i in range(zu):
        q1[i] = lut[m1[i]]
        q2[i] = lut[m2[i]]
    for d in range(deg):
        e = e0 + d
        vb = act_col[e] * zu
        s = act_shift[e]
        cb = e * zu
        tb = d * zu
        ns = zu - s
        for i in range(zu):
            t = int32(tmsg[tb + i])
            a = int16(min(abs(t), MSG_MAX_Q))
            c = int32(q2[i] if a == m1[i] else q1[i]) * int32(sg[i])
            c = -c if t < 0 else c
            cmsg[cb + i] = c
            tmsg[tb + i] = c if flooding else _sat16(t + c)
        if flooding:
            for i in range(ns):
                j = vb + s + i
                ldst[j] = _sat16(int32(ldst[j]) + int32(tmsg[tb + i]))
            for i in range(ns, zu):
                j = vb + s + i - zu
                ldst[j] = _sat16(int32(ldst[j]) + int32(tmsg[tb + i]))
        else:
            for i in range(ns):
                ldst[vb + s + i] = tmsg[tb + i]
            for i in range(ns, zu):
                ldst[vb + s + i - zu] = tmsg[tb + i]


@njit(nogil=True, cache=True)
def decode_i16(
    llr,
    src,
    dst,
    n_vn,
    fill_lo,
    fill_hi,
    z,
    act_ptr,
    act_col,
    act_shift,
    row_active,
    max_deg,
    num_iter,
    flooding,
    early_stop,
    llr_max,
    scale,
    lut,
    b_start,
    b_stop,
    bits_out,
    iters_out,
    ok_out,
):
    """Fixed-point version of :func:`decode_f32`: same arguments, except that the channel
    LLRs are quantised as ``rint(clip(L, llr_max) * scale)`` and ``lut`` replaces alpha/beta.
    """
    n_layers = act_ptr.shape[0] - 1
    n_msg = act_ptr[n_layers] * uint64(z)
    nv = uint64(n_vn)
    acc = np.empty(n_vn, np.float32)
    lpost = np.empty(n_vn, np.int16)
    lch = np.empty(n_vn, np.int16)
    lold = np.empty(n_vn, np.int16)
    cmsg = np.empty(n_msg, np.int8)
    tmsg = np.empty(max_deg * z, np.int16)
    m1 = np.empty(z, np.int16)
    m2 = np.empty(z, np.int16)
    q1 = np.empty(z, np.int16)
    q2 = np.empty(z, np.int16)
    sg = np.empty(z, np.int16)
    par = np.empty(z, np.uint8)
    hd = np.empty(n_vn, np.uint8)
    for b in range(b_start, b_stop):
        _gather_channel(b, llr, src, dst, acc)
        for v in range(nv):
            x = acc[v]
            x = float32(0.0) if x != x else x
            lch[v] = int16(np.rint(min(max(x, -llr_max), llr_max) * scale))
        for v in range(uint64(fill_lo), uint64(fill_hi)):
            lch[v] = FILLER_I16
        for v in range(nv):
            lpost[v] = lch[v]
        for j in range(n_msg):
            cmsg[j] = 0
        done = False
        it_run = 0
        for _ in range(num_iter):
            if flooding:
                for v in range(nv):
                    lold[v] = lpost[v]
                    lpost[v] = lch[v]
                for a in range(n_layers):
                    _layer_i16(
                        z,
                        act_ptr[a],
                        act_ptr[a + 1],
                        act_col,
                        act_shift,
                        lold,
                        lpost,
                        cmsg,
                        tmsg,
                        m1,
                        m2,
                        q1,
                        q2,
                        sg,
                        lut,
                        True,
                    )
            else:
                for a in range(n_layers):
                    _layer_i16(
                        z,
                        act_ptr[a],
                        act_ptr[a + 1],
                        act_col,
                        act_shift,
                        lpost,
                        lpost,
                        cmsg,
                        tmsg,
                        m1,
                        m2,
                        q1,
                        q2,
                        sg,
                        lut,
                        False,
                    )
            it_run += 1
            if not done:
                _hard(lpost, hd)
                if _syndrome_ok(z, hd, par, act_ptr, act_col, act_shift, row_active):
                    done = True
                    _write_bits(b, hd, bits_out)
                    if early_stop:
                        break
        if not done:
            _hard(lpost, hd)
            _write_bits(b, hd, bits_out)
        iters_out[b] = it_run
        ok_out[b] = uint8(done)
