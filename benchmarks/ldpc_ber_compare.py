"""BLER vs Eb/N0 of ``FastLDPC5GDecoder`` against Sionna's BP decoder, near BLER 1e-2.

Link: Sionna ``BinarySource`` -> ``LDPC5GEncoder(k, n)`` -> Gray QPSK ``Mapper`` -> ``AWGN``
(``no = ebnodb2no(Eb/N0, 2, k/n)``) -> ``Demapper("app")``. Every batch of LLRs is decoded by
all decoders of a code (paired samples):

* ``sionna_bp20``: ``LDPC5GDecoder(encoder, num_iter=20)`` (boxplus-phi, flooding), the
  reference;
* ``fast_tuned_20`` / ``fast_tuned_10``: layered min-sum with the code's tuned check-node rule
  (``TUNED``) and 20 / 10 iterations;
* ``fast_default_20``: the decoder's defaults (layered NMS, alpha 0.75), 20 iterations.

Eb/N0 points: the fast tuned decoder first scans a 0.125 dB grid (cheap) to find where its
BLER crosses 1e-2; the paired simulation then runs at the three grid points ending there and
adds points (0.125 dB steps, only for the decoders whose curve does not bracket 1e-2 yet)
until every curve does. All decoders at a point see the same LLR batches. Each decoder stops
at a point after ``--target-errors`` block errors (or ``--max-codewords``). The Eb/N0 at BLER
1e-2 is interpolated linearly in log10(BLER) between the bracketing points; its standard
error comes from the Poisson error counts. Writes a JSON of all counts, the figure
``docs/figures/ldpc_fast_vs_sionna.png`` and a Markdown table on stdout.

Usage:
    .venv/bin/python benchmarks/ldpc_ber_compare.py [--codes r13,r12,r56]
        [--target-errors 100] [--out results/ldpc_ber_compare.json]
    .venv/bin/python benchmarks/ldpc_ber_compare.py --resume results/ldpc_ber_compare.json
    .venv/bin/python benchmarks/ldpc_ber_compare.py --plot-only results/ldpc_ber_compare.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "ldpc_fast_vs_sionna.png"
TARGET_BLER = 1e-2
GRID_DB = 0.125

# name: (k, n, tuned check-node settings of FastLDPC5GDecoder, scan start Eb/N0 in dB)
CODES: dict[str, tuple[int, int, dict, float]] = {
    "r13": (512, 1536, {"cn_update": "oms", "beta": 0.5}, 0.5),
    "r12": (512, 1024, {"cn_update": "nms", "alpha": 0.8}, 1.25),
    "r56": (512, 614, {"cn_update": "nms", "alpha": 0.8}, 3.25),
}
DECODERS = ["sionna_bp20", "fast_tuned_20", "fast_tuned_10", "fast_default_20"]


class Link:
    """Sionna QPSK/AWGN chain of one code with every decoder of the comparison."""

    def __init__(self, k: int, n: int, tuned: dict) -> None:
        from sionna.phy.channel import AWGN
        from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
        from sionna.phy.mapping import BinarySource, Demapper, Mapper

        from phy.ldpc_fast import FastLDPC5GDecoder

        self.k, self.n = k, n
        self.encoder = LDPC5GEncoder(k, n, device="cpu")
        self.source = BinarySource(device="cpu")
        self.mapper = Mapper("qam", 2, device="cpu")
        self.demapper = Demapper("app", "qam", 2, device="cpu")
        self.awgn = AWGN(device="cpu")
        self.decoders = {
            "sionna_bp20": LDPC5GDecoder(self.encoder, num_iter=20, device="cpu"),
            "fast_tuned_20": FastLDPC5GDecoder(self.encoder, num_iter=20, **tuned),
            "fast_tuned_10": FastLDPC5GDecoder(self.encoder, num_iter=10, **tuned),
            "fast_default_20": FastLDPC5GDecoder(self.encoder, num_iter=20),
        }

    def batch(self, ebno_db: float, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        from sionna.phy.utils import ebnodb2no

        no = ebnodb2no(ebno_db, 2, self.k / self.n, device="cpu")
        with torch.no_grad():
            u = self.source([size, self.k])
            llr = self.demapper(self.awgn(self.mapper(self.encoder(u)), no), no)
        return u, llr

    def block_errors(self, name: str, u: torch.Tensor, llr: torch.Tensor) -> int:
        with torch.no_grad():
            return int((self.decoders[name](llr) != u).any(-1).sum())


def simulate_point(
    link: Link,
    ebno_db: float,
    names: list[str],
    target: int,
    max_cw: dict[str, int],
    batch: int,
    seed: int,
) -> dict[str, dict[str, int]]:
    """Paired Monte Carlo at one Eb/N0: counts {name: {"errors", "codewords"}}."""
    from sionna.phy import config

    config.seed = seed
    counts = {name: {"errors": 0, "codewords": 0} for name in names}
    t0 = time.time()
    while True:
        active = [
            nm
            for nm in names
            if counts[nm]["errors"] < target and counts[nm]["codewords"] < max_cw[nm]
        ]
        if not active:
            break
        u, llr = link.batch(ebno_db, batch)
        for nm in active:
            counts[nm]["errors"] += link.block_errors(nm, u, llr)
            counts[nm]["codewords"] += batch
    summary = ", ".join(f"{nm} {c['errors']}/{c['codewords']}" for nm, c in counts.items())
    print(f"  {ebno_db:.3f} dB: {summary} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return counts


def crossing_db(points: list[dict], name: str) -> tuple[float, float] | None:
    """Eb/N0 where BLER = 1e-2 (log-linear interpolation) and its standard error."""
    pts = sorted(
        (p["ebno_db"], p["counts"][name]["errors"], p["counts"][name]["codewords"])
        for p in points
        if name in p["counts"]
    )
    for (x0, e0, n0), (x1, e1, n1) in itertools.pairwise(pts):
        if e0 == 0 or e1 == 0:
            continue
        y0, y1 = math.log10(e0 / n0), math.log10(e1 / n1)
        if y0 >= math.log10(TARGET_BLER) > y1:
            slope = (y1 - y0) / (x1 - x0)
            t = (math.log10(TARGET_BLER) - y0) / (y1 - y0)
            x = x0 + t * (x1 - x0)
            var_y = ((1 - t) ** 2 / e0 + t**2 / e1) / math.log(10) ** 2
            return x, math.sqrt(var_y) / abs(slope)
    return None


def brackets(points: list[dict], name: str) -> tuple[bool, bool]:
    """(has a point with BLER >= 1e-2, has a point with BLER < 1e-2) for one decoder."""
    blers = [
        p["counts"][name]["errors"] / p["counts"][name]["codewords"]
        for p in points
        if name in p["counts"]
    ]
    return any(b >= TARGET_BLER for b in blers), any(b < TARGET_BLER for b in blers)


def run_code(name: str, args: argparse.Namespace, done: dict, save) -> dict:
    """Simulate one code; ``done`` holds points of an earlier run (resumed), ``save(result)``
    is called after every point."""
    k, n, tuned, scan_start = CODES[name]
    link = Link(k, n, tuned)
    print(
        f"{name}: k={k} n={n} bg={link.encoder._bg} z={link.encoder.z} tuned={tuned}",
        file=sys.stderr,
        flush=True,
    )
    # 1. locate the crossing with the fast tuned decoder
    x = scan_start
    while True:
        c = simulate_point(
            link,
            x,
            ["fast_tuned_20"],
            args.target_errors,
            {"fast_tuned_20": 20 * args.target_errors / TARGET_BLER},
            2000,
            seed=args.seed + 7 + round(x * 1000),
        )
        bler = c["fast_tuned_20"]["errors"] / c["fast_tuned_20"]["codewords"]
        if bler < TARGET_BLER or x > scan_start + 4.0:
            break
        x += GRID_DB
    # 2. paired simulation on three grid points, then extra points (only for the decoders
    #    that need them) until every decoder's curve brackets 1e-2. A decoder added to a
    #    point later sees the same LLR batches (same seed), so samples stay paired.
    max_cw = {nm: args.max_codewords for nm in DECODERS}
    max_cw["sionna_bp20"] = args.max_codewords_sionna
    counts_at = {p["ebno_db"]: dict(p["counts"]) for p in done.get("points", [])}
    result = {
        "k": k,
        "n": n,
        "bg": link.encoder._bg,
        "z": link.encoder.z,
        "tuned": tuned,
        "points": [],
    }
    tasks = [(ebno, list(DECODERS)) for ebno in (x - 2 * GRID_DB, x - GRID_DB, x)]
    while tasks:
        ebno, names = tasks.pop(0)
        have = counts_at.setdefault(ebno, {})
        need = [nm for nm in names if nm not in have]
        if need:
            have.update(
                simulate_point(
                    link,
                    ebno,
                    need,
                    args.target_errors,
                    max_cw,
                    args.batch,
                    seed=args.seed + round(ebno * 1000),
                )
            )
        result["points"] = [{"ebno_db": e, "counts": counts_at[e]} for e in sorted(counts_at)]
        save(result)
        if not tasks and len(counts_at) < 9:
            extra: dict[float, list[str]] = {}
            for nm in DECODERS:
                xs = [p["ebno_db"] for p in result["points"] if nm in p["counts"]]
                above, below = brackets(result["points"], nm)
                if not above:
                    extra.setdefault(min(xs) - GRID_DB, []).append(nm)
                if not below:
                    extra.setdefault(max(xs) + GRID_DB, []).append(nm)
            tasks = sorted(extra.items())
    return result


def table(results: dict) -> str:
    lines = [
        "| code | decoder | Eb/N0 @ BLER 1e-2 [dB] | gap to Sionna BP [dB] |",
        "|---|---|---|---|",
    ]
    for name, res in results.items():
        ref = crossing_db(res["points"], "sionna_bp20")
        for dec in DECODERS:
            c = crossing_db(res["points"], dec)
            label = dec
            if dec.startswith("fast_tuned"):
                label += " (" + ", ".join(f"{k}={v}" for k, v in res["tuned"].items()) + ")"
            cell = f"{c[0]:.3f} ± {c[1]:.3f}" if c else "n/a"
            gap = f"{c[0] - ref[0]:+.3f}" if (c and ref and dec != "sionna_bp20") else ""
            lines.append(
                f"| {name} ({res['n']},{res['k']}) {res['bg'].upper()} | {label} | {cell} | {gap} |"
            )
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {
        "sionna_bp20": {
            "color": "k",
            "marker": "o",
            "ls": "-",
            "label": "Sionna BP (boxplus-phi, flooding, 20 it)",
        },
        "fast_tuned_20": {
            "color": "C3",
            "marker": "s",
            "ls": "--",
            "label": "fast layered, tuned, 20 it",
        },
        "fast_tuned_10": {
            "color": "C1",
            "marker": "^",
            "ls": ":",
            "label": "fast layered, tuned, 10 it",
        },
        "fast_default_20": {
            "color": "C0",
            "marker": "v",
            "ls": "-.",
            "label": "fast layered, NMS 0.75 (default), 20 it",
        },
    }
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5), squeeze=False)
    for ax, res in zip(axes[0], results.values()):
        for dec in DECODERS:
            pts = [
                (p["ebno_db"], p["counts"][dec]["errors"] / p["counts"][dec]["codewords"])
                for p in res["points"]
                if dec in p["counts"] and p["counts"][dec]["errors"] > 0
            ]
            if pts:
                xs, ys = zip(*pts)
                ax.semilogy(xs, ys, **styles[dec])
        ax.axhline(TARGET_BLER, color="grey", lw=0.8)
        tuned = ", ".join(f"{k}={v}" for k, v in res["tuned"].items())
        ax.set_title(
            f"({res['n']},{res['k']}) r={res['k'] / res['n']:.2f} {res['bg'].upper()}, "
            f"QPSK AWGN\ntuned: {tuned}",
            fontsize=9,
        )
        ax.set_xlabel("Eb/N0 [dB]")
        ax.set_ylabel("BLER")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", default="r13,r12,r56")
    parser.add_argument("--target-errors", type=int, default=100)
    parser.add_argument("--max-codewords", type=int, default=400_000)
    parser.add_argument("--max-codewords-sionna", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "ldpc_ber_compare.json")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--plot-only", type=Path, default=None)
    parser.add_argument(
        "--resume", type=Path, default=None, help="JSON of an interrupted run: keep its points"
    )
    args = parser.parse_args()

    if args.plot_only is not None:
        results = json.loads(args.plot_only.read_text())
    else:
        torch.set_num_threads(1)  # eager torch degrades badly when the 2 cores are shared
        previous = json.loads(args.resume.read_text()) if args.resume else {}
        results = {}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for name in args.codes.split(","):

            def save(result: dict, name: str = name) -> None:
                results[name] = result
                args.out.write_text(json.dumps(results, indent=1))

            run_code(name, args, previous.get(name, {}), save)
    plot(results, args.figure)
    print(table(results))
    print(
        f"\nfigure: {args.figure.relative_to(REPO) if args.figure.is_relative_to(REPO) else args.figure}"
    )


if __name__ == "__main__":
    main()
