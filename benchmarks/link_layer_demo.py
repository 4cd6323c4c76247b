"""Link-layer demonstration (BER/latency only): frames over time-correlated Rayleigh with HARQ.

Runs `link.des.demo.run_demo` and prints the per-point metrics; with ``--out`` also writes
``metrics.csv``, the per-point event logs and the latency CDF (PNG + PDF).

    .venv/bin/python benchmarks/link_layer_demo.py --snr-db 0 4 8 12 --frames 60 \
        --out results/link_layer_demo
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from link.des.demo import DEFAULT_DEMO_CONFIG, run_demo
from link.des.plots import plot_latency_cdf

COLUMNS = (
    ("snr_db", "SNR dB", "{:6.1f}"),
    ("latency_p50_s", "p50 ms", "{:7.2f}"),
    ("latency_p95_s", "p95 ms", "{:7.2f}"),
    ("latency_p99_s", "p99 ms", "{:7.2f}"),
    ("goodput_bps", "goodput Mb/s", "{:12.3f}"),
    ("residual_bler", "res. BLER", "{:9.4f}"),
    ("residual_ber", "res. BER", "{:9.2e}"),
    ("mean_transmissions_per_block", "tx/block", "{:8.3f}"),
    ("deadline_miss_rate", "miss rate", "{:9.3f}"),
    ("blocks_per_phy_call", "blocks/call", "{:11.1f}"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snr-db", type=float, nargs="+", default=[0.0, 4.0, 8.0, 12.0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--payload-bits", type=int, nargs="+", default=[48_000, 6_000])
    parser.add_argument("--combining", choices=("none", "chase", "ir"), default="ir")
    parser.add_argument("--max-transmissions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    config = {**DEFAULT_DEMO_CONFIG,
              "harq": {**DEFAULT_DEMO_CONFIG["harq"], "combining": args.combining,
                       "max_transmissions": args.max_transmissions}}
    start = time.perf_counter()
    points = run_demo(snr_db=args.snr_db, payload_bits=args.payload_bits,
                      num_frames=args.frames, config=config, seed=args.seed, out_dir=args.out)
    elapsed = time.perf_counter() - start
    scale = {"latency_p50_s": 1e3, "latency_p95_s": 1e3, "latency_p99_s": 1e3,
             "goodput_bps": 1e-6}
    print("  ".join(title for _, title, _ in COLUMNS))
    rows = [p.row() for p in points]
    for row in rows:
        print("  ".join(fmt.format(row[key] * scale.get(key, 1.0)) for key, _, fmt in COLUMNS))
    print(f"{len(points)} points x {args.frames} frames in {elapsed:.1f} s "
          f"(combining={args.combining}, fading=jakes 35 Hz)")
    if args.out is not None:
        with open(args.out / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        plot_latency_cdf({f"{p.snr_db:g} dB": [f.latency_s for f in p.run.frames]
                          for p in points}, args.out / "latency_cdf",
                         deadline_s=DEFAULT_DEMO_CONFIG["source"]["deadline_s"])
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
