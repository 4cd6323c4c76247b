"""Decoder-only throughput: ``FastLDPC5GDecoder`` against Sionna's ``LDPC5GDecoder``.

Both decode the *same* LLR batches in one process: 5G LDPC (k=512, n=1024 by default) from
Sionna's encoder, Gray QPSK (or 16-QAM with the 38.212 bit interleaver), AWGN, Sionna's APP
demapper, generated once at a waterfall Eb/N0 (BLER ~1e-2 with these decoders) and at a high
Eb/N0. The iteration budget is the same for both (``--num-iter``, default 20):

* Sionna: ``LDPC5GDecoder(encoder, num_iter)``: boxplus-phi, flooding, always all iterations,
  eager PyTorch. Timed with 1 and with 2 intra-op threads each round and the faster one is
  kept (multi-threaded eager torch can be the slower one on a busy 2-core machine).
* ours: ``FastLDPC5GDecoder(encoder, num_iter)``: layered normalised min-sum, early stop on a
  satisfied syndrome (the defaults of the project), Numba threads over codewords; also shown
  without early stopping (all ``num_iter`` iterations, as Sionna does).

Warm-up calls (JIT cache load / lazy builds) are excluded and reported separately. Rounds
alternate Sionna and ours so that both see the same machine load; the median over rounds
is reported. Info Mbit/s = decoded information bits / wall-clock seconds. The BLER of both
on the same words is printed as the evidence of equal error rate. The last line is
``speedup <ours/sionna>`` at the waterfall point; the line above it is the high-Eb/N0 figure.

Usage:
    .venv/bin/python benchmarks/ldpc_decoder.py [--modulation qpsk|16qam] [--num-iter 20]
        [--batch 400] [--rounds 3] [--ebno-waterfall-db 1.85] [--ebno-high-db 4.85]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numba
import torch


def make_llrs(k: int, n: int, bits_per_symbol: int, ebno_db: float, batch: int, seed: int):
    """Info bits ``[batch, k]`` and demapper logits ``[batch, n]`` from Sionna's chain."""
    from sionna.phy import config
    from sionna.phy.channel import AWGN
    from sionna.phy.fec.ldpc import LDPC5GEncoder
    from sionna.phy.mapping import BinarySource, Demapper, Mapper
    from sionna.phy.utils import ebnodb2no

    config.seed = seed
    interleave = bits_per_symbol if bits_per_symbol > 2 else None
    encoder = LDPC5GEncoder(k, n, num_bits_per_symbol=interleave, device="cpu")
    mapper = Mapper("qam", bits_per_symbol, device="cpu")
    demapper = Demapper("app", "qam", bits_per_symbol, device="cpu")
    no = ebnodb2no(ebno_db, bits_per_symbol, k / n, device="cpu")
    with torch.no_grad():
        u = BinarySource(device="cpu")([batch, k])
        llr = demapper(AWGN(device="cpu")(mapper(encoder(u)), no), no)
    return encoder, u, llr


def timed(fn, *args, repeats: int = 1) -> tuple[float, torch.Tensor]:
    """Mean wall-clock seconds of ``fn(*args)`` over ``repeats`` calls, and the last output."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn(*args)
    return (time.perf_counter() - t0) / repeats, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=512)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--modulation", choices=["qpsk", "16qam"], default="qpsk")
    parser.add_argument("--num-iter", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.8, help="0.8: equal BLER at r=1/2")
    parser.add_argument("--batch", type=int, default=400, help="codewords per timed call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ebno-waterfall-db", type=float, default=None)
    parser.add_argument("--ebno-high-db", type=float, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from sionna.phy.fec.ldpc import LDPC5GDecoder

    from phy.ldpc_fast import FastLDPC5GDecoder

    m = 2 if args.modulation == "qpsk" else 4
    # waterfall points (BLER ~1e-2 for k=512, n=1024, see docs/ldpc_fast.md)
    ebno_wf = (
        args.ebno_waterfall_db if args.ebno_waterfall_db is not None else (1.85 if m == 2 else 4.1)
    )
    ebno_hi = args.ebno_high_db if args.ebno_high_db is not None else ebno_wf + 3.0
    print(
        f"code k={args.k} n={args.n} {args.modulation} AWGN, {args.num_iter} iterations, "
        f"{args.batch} codewords per call, {args.rounds} rounds; numba threads "
        f"{numba.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )

    results = {}
    for label, ebno in (("waterfall", ebno_wf), ("high", ebno_hi)):
        encoder, u, llr = make_llrs(args.k, args.n, m, ebno, args.batch, args.seed)
        sionna = LDPC5GDecoder(encoder, num_iter=args.num_iter)
        ours = FastLDPC5GDecoder(encoder, num_iter=args.num_iter, alpha=args.alpha)
        ours_full = FastLDPC5GDecoder(
            encoder, num_iter=args.num_iter, alpha=args.alpha, early_stop=False
        )
        t_warm_ours, _ = timed(ours, llr[:8])
        ours_full(llr[:8])
        with torch.no_grad():
            t_warm_sionna, _ = timed(sionna, llr[:8])
        times: dict[str, list[float]] = {"sionna": [], "ours": [], "ours_full": []}
        outs = {}
        threads_before = torch.get_num_threads()
        for _ in range(args.rounds):
            best = float("inf")
            for threads in (1, 2):
                torch.set_num_threads(threads)
                with torch.no_grad():
                    dt, outs["sionna"] = timed(sionna, llr)
                best = min(best, dt)
            torch.set_num_threads(threads_before)
            times["sionna"].append(best)
            # ours is ~100x faster: repeat the same batch so that the timing is not just noise
            times["ours"].append(timed(ours, llr, repeats=20)[0])
            times["ours_full"].append(timed(ours_full, llr, repeats=20)[0])
        stats = ours.decode_with_stats(llr)
        outs["ours"] = stats.bits
        outs["ours_full"] = ours_full(llr)
        info_bits = args.batch * args.k
        mbps = {key: info_bits / statistics.median(v) / 1e6 for key, v in times.items()}
        bler = {key: (o != u).any(-1).float().mean().item() for key, o in outs.items()}
        print(
            f"[{label}] Eb/N0 {ebno:.2f} dB: warm-up ours {t_warm_ours:.2f} s, "
            f"Sionna {t_warm_sionna:.2f} s; mean iterations ours "
            f"{stats.iterations.float().mean().item():.2f}"
        )
        print(
            f"[{label}] Sionna BP flooding: {mbps['sionna']:.3f} info Mb/s, "
            f"BLER {bler['sionna']:.4f}"
        )
        print(
            f"[{label}] ours layered NMS, early stop: {mbps['ours']:.2f} info Mb/s, "
            f"BLER {bler['ours']:.4f}"
        )
        print(
            f"[{label}] ours layered NMS, all {args.num_iter} it: {mbps['ours_full']:.2f} "
            f"info Mb/s, BLER {bler['ours_full']:.4f}"
        )
        results[label] = mbps["ours"] / mbps["sionna"]
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"speedup_high_snr {results['high']:.1f}")
    print(f"speedup {results['waterfall']:.1f}")


if __name__ == "__main__":
    main()
