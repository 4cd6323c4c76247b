"""Information bits per second of our BER engine against Sionna's own ``sim_ber``.

Both simulate the identical coded link in the same process: 5G LDPC (k=512, n=1024, 38.212
rate matching and 16-QAM bit interleaver) + Gray 16-QAM + AWGN + APP demapper + Sionna's
``LDPC5GDecoder`` (boxplus-phi, 20 flooding iterations), single precision, CPU, at one Eb/N0
in the waterfall (4.0 dB, BLER ~ 2e-2), ``--batches`` batches of ``--batch`` blocks.

* ours: ``PhyLink`` + ``phy.ber.simulate_point`` with unreachable error targets and
  ``max_bits = batches * batch * k``, so exactly the same number of blocks is simulated.
* Sionna: ``sim_ber(mc_fun, [ebno], batch_size, max_mc_iter=batches, early_stop=False)`` with
  ``mc_fun`` the textbook Sionna chain (BinarySource, LDPC5GEncoder, Mapper, AWGN, Demapper,
  LDPC5GDecoder), eager (no ``torch.compile``).

Each is warmed up with one batch first (lazy block builds, allocator), and the two are timed
alternately ``--repeats`` times (by default one batch per run, the finest alternation, so
both see the same machine load); the median of each is reported, wall clock and per CPU-second,
with the load average, because the machine may be shared. When ``phy.ldpc_fast`` is
importable, our engine is also timed with ``decoder="auto"`` (the fast CPU decoder).

Usage:
    .venv/bin/python benchmarks/phy_throughput.py [--batch 200] [--batches 1] [--repeats 8]
        [--threads 1] [--ebno-db 4.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

K, N, BITS_PER_SYMBOL, NUM_ITER = 512, 1024, 4, 20


def sionna_chain():
    """The reference link written directly with Sionna blocks, as ``sim_ber`` expects it."""
    from sionna.phy.channel import AWGN
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import BinarySource, Demapper, Mapper
    from sionna.phy.utils import ebnodb2no

    source = BinarySource(device="cpu")
    encoder = LDPC5GEncoder(K, N, num_bits_per_symbol=BITS_PER_SYMBOL, device="cpu")
    decoder = LDPC5GDecoder(encoder, cn_update="boxplus-phi", num_iter=NUM_ITER, device="cpu")
    mapper = Mapper("qam", BITS_PER_SYMBOL, device="cpu")
    demapper = Demapper("app", "qam", BITS_PER_SYMBOL, device="cpu")
    awgn = AWGN(device="cpu")

    def mc_fun(batch_size: int, ebno_db: torch.Tensor):
        no = ebnodb2no(ebno_db, BITS_PER_SYMBOL, K / N, device="cpu")
        bits = source([batch_size, K])
        llr = demapper(awgn(mapper(encoder(bits)), no), no)
        return bits, decoder(llr)

    return mc_fun


def run_sionna(mc_fun, ebno_db: float, batch: int, batches: int) -> None:
    from sionna.phy.utils import sim_ber

    sim_ber(mc_fun, torch.tensor([ebno_db]), batch_size=batch, max_mc_iter=batches,
            early_stop=False, compile_mode=None, verbose=False)


def run_ours(link, ebno_db: float, batch: int, batches: int, seed: int) -> None:
    from phy.ber import simulate_point

    point = simulate_point(link, ebno_db, target_bit_errors=2**62, target_block_errors=2**62,
                           max_bits=batches * batch * link.k, batch_size=batch,
                           generator=torch.Generator().manual_seed(seed))
    assert point.blocks == batches * batch


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=200, help="blocks per batch")
    parser.add_argument("--batches", type=int, default=1, help="timed batches per run")
    parser.add_argument("--repeats", type=int, default=8, help="alternating timed runs")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--ebno-db", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sionna.phy import config

    from phy.link import PhyLink
    from phy.specs import CodingSpec

    config.seed = 1
    coding = CodingSpec(type="ldpc5g", k=K, n=N, decoder="sionna", num_iter=NUM_ITER,
                        cn_update="boxplus-phi")
    ours_link = PhyLink("16qam", coding, device="cpu")
    mc_fun = sionna_chain()
    # each runner: (number of batches, seed) -> None
    runners: dict[str, Callable[[int, int], None]] = {
        "ours (sionna decoder)": lambda b, r: run_ours(ours_link, args.ebno_db, args.batch, b, r),
        "sionna sim_ber": lambda b, r: run_sionna(mc_fun, args.ebno_db, args.batch, b),
    }
    fast_link = PhyLink("16qam", CodingSpec(type="ldpc5g", k=K, n=N, decoder="auto",
                                            num_iter=NUM_ITER), device="cpu")
    if fast_link.decoder_name == "fast":
        runners["ours (decoder=auto -> fast)"] = lambda b, r: run_ours(
            fast_link, args.ebno_db, args.batch, b, r)

    info_bits = args.batches * args.batch * K
    load_start = os.getloadavg()[0]
    for run in runners.values():  # warm-up: one batch each, not timed
        run(1, 0)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    for r in range(args.repeats):
        for name, run in runners.items():
            times[name].append(timed(lambda run=run, r=r: run(args.batches, r + 1)))

    print(f"LDPC({N},{K}) 16-QAM AWGN, Eb/N0 {args.ebno_db} dB, {NUM_ITER} it boxplus-phi, "
          f"batch {args.batch} x {args.batches} batches, {args.repeats} repeats, "
          f"torch threads {args.threads}, load avg {load_start:.1f} -> {os.getloadavg()[0]:.1f}")
    print("info bits/s: wall clock (median of runs) and per CPU-second of this process")
    wall_rate, cpu_rate = {}, {}
    for name, values in times.items():
        wall_rate[name] = info_bits / statistics.median(w for w, _ in values)
        cpu_rate[name] = info_bits / statistics.median(c for _, c in values)
        spread = ", ".join(f"{info_bits / w / 1e3:.1f}" for w, _ in values)
        print(f"{name:30s} {wall_rate[name] / 1e3:9.1f} kbit/s wall  "
              f"{cpu_rate[name] / 1e3:9.1f} kbit/cpu-s  (wall runs: {spread})")
    for label, key in (("ours/sionna", "ours (sionna decoder)"),
                       ("ours(auto)/sionna", "ours (decoder=auto -> fast)")):
        if key in times:
            print(f"ratio {label} {wall_rate[key] / wall_rate['sionna sim_ber']:.3f} wall, "
                  f"{cpu_rate[key] / cpu_rate['sionna sim_ber']:.3f} cpu")


if __name__ == "__main__":
    main()
