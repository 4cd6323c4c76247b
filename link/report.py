"""Reports from the results store alone: ``ber.csv`` and BER/BLER plots (PNG + PDF).

Plotting is separate from simulation: everything here reads stored counts, so
``python simulate.py report RUN_DIR`` regenerates the same files without simulating.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from link.ber_run import BER_COLUMNS
from link.results import atomic_write_bytes, write_csv
from link.store import ResultsStore

_CURVE_KEYS = ("channel", "fading", "csi", "tdl_model", "modulation", "code", "k", "n", "decoder")


def ber_rows(store: ResultsStore) -> list[dict[str, Any]]:
    """Rows of ``ber.csv`` in run order."""
    return [r.metrics for r in store.records() if "ebno_db" in r.metrics]


def write_ber_csv(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    return write_csv(run_dir / "ber.csv", BER_COLUMNS, rows)


def _curve_label(key: dict[str, Any], varying: set[str]) -> str:
    """Legend text: always the modulation and the code (with its rate), then what else varies."""
    parts = [str(key["modulation"]).upper()]
    if key["code"] != "none":
        rate = key["k"] / key["n"]
        parts.append(f"LDPC({key['n']},{key['k']}) r={rate:.2f}")
        if "decoder" in varying:
            parts.append(str(key["decoder"]))
    elif "code" in varying:
        parts.append("uncoded")
    if "fading" in varying and key["fading"]:
        parts.append(f"{key['fading']} fading")
    if "csi" in varying:
        parts.append(f"{key['csi']} CSI")
    if "tdl_model" in varying and key["tdl_model"]:
        parts.append(f"TDL-{key['tdl_model']}")
    return " ".join(parts)


def _channel_title(channel: str, rows: list[dict[str, Any]]) -> str:
    row = rows[0]
    if channel == "awgn":
        return "AWGN"
    if channel in ("rayleigh", "rician"):
        return f"{channel.capitalize()} ({row['fading']} fading, perfect CSI)"
    if channel == "tdl":
        return f"3GPP TDL-{row['tdl_model']} OFDM ({row['csi']} CSI)"
    return channel


def _theory_line(rows: list[dict[str, Any]], grid: np.ndarray) -> np.ndarray | None:
    """Closed-form BER on a dense Eb/N0 grid for an uncoded curve, or None."""
    row = rows[0]
    if row["code"] != "none" or row.get("theory_ber") in (None, ""):
        return None
    from phy.specs import ChannelSpec
    from phy.theory import theory_ber

    spec = ChannelSpec(type=row["channel"], fading=row["fading"] or "block")
    values = [theory_ber(row["modulation"], spec, float(e)) for e in grid]
    if any(v is None for v in values):
        return None
    return np.asarray(values, dtype=float)


_PANELS = (("ber", "BER", "ber_ci_low", "ber_ci_high"),
           ("bler", "BLER", "bler_ci_low", "bler_ci_high"))


def _draw_channel(axes: list[Any], rows: list[dict[str, Any]]) -> None:
    """Draw the curves of one channel: ``axes[i]`` shows metric ``_PANELS[i]`` (BER, BLER)."""
    curves: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        curves[tuple(row[k] for k in _CURVE_KEYS)].append(row)
    varying = {k for i, k in enumerate(_CURVE_KEYS) if len({c[i] for c in curves}) > 1}
    for idx, (ckey, crows) in enumerate(curves.items()):
        crows = sorted(crows, key=lambda r: r["ebno_db"])
        label = _curve_label(dict(zip(_CURVE_KEYS, ckey)), varying)
        color = f"C{idx % 10}"
        x = np.array([r["ebno_db"] for r in crows])
        for ax, (metric, _name, lo, hi) in zip(axes, _PANELS):
            y = np.array([r[metric] for r in crows], dtype=float)
            keep = y > 0
            if keep.any():
                yerr = np.array([[y[i] - crows[i][lo], crows[i][hi] - y[i]]
                                 for i in np.flatnonzero(keep)]).T
                ax.errorbar(x[keep], y[keep], yerr=yerr, fmt="o", ms=3.5, color=color,
                            capsize=2, lw=1, label=f"{label} (sim.)")
                ax.plot(x[keep], y[keep], "-", color=color, lw=0.6, alpha=0.6)
            if metric == "ber":
                grid = np.linspace(x.min(), x.max(), 200)
                theory = _theory_line(crows, grid)
                if theory is not None:
                    ax.plot(grid, theory, "--", color=color, lw=1.1, label=f"{label} (theory)")
    for ax, (metric, name, lo, _hi) in zip(axes, _PANELS):
        ax.set_yscale("log")
        # Theory lines run far below what was simulated; show one decade under the lowest
        # confidence bound (or the lowest point) instead.
        floor = [r[lo] if r[lo] > 0 else r[metric] for r in rows if r[metric] > 0]
        if floor:
            ax.set_ylim(bottom=10 ** (np.floor(np.log10(min(floor))) - 1), top=1.0)
        ax.set_xlabel(r"$E_b/N_0$ (dB)")
        ax.set_ylabel(name)
        ax.grid(True, which="both", lw=0.3, alpha=0.6)
        ax.set_title(_channel_title(rows[0]["channel"], rows), fontsize=9)
        handles, _labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=6, loc="lower left")


def channel_slug(row: dict[str, Any]) -> str:
    """File-name part of a channel: ``awgn``, ``rayleigh_block``, ``tdl_A_ls``."""
    parts = [row["channel"]]
    if row["channel"] in ("rayleigh", "rician") and row["fading"]:
        parts.append(row["fading"])
    if row["channel"] == "tdl":
        parts += [row["tdl_model"], row["csi"]]
    return "_".join(str(p) for p in parts if p != "")


def plot_ber(run_dir: Path, rows: list[dict[str, Any]], title: str = "") -> list[Path]:
    """Write ``plots/ber.png|pdf`` (one column per channel; BLER row when any curve is coded).

    With more than one channel, each channel also gets ``plots/ber_<channel>.png|pdf``
    (`channel_slug`) with a BER panel (and a BLER panel beside it when coded) and one curve per
    (modulation, code rate, …). Simulated points carry 95% confidence-interval error bars;
    closed-form theory is drawn as lines. Points with zero errors are not drawn on the log axis
    (their upper CI is in the CSV).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return []
    by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_channel[_channel_key(row)].append(row)
    any_coded = any(r["code"] != "none" for r in rows)
    nrows = 2 if any_coded else 1
    ncols = len(by_channel)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 0.6, 3.0 * nrows + 0.4),
                             squeeze=False, constrained_layout=True)
    for col, ch_rows in enumerate(by_channel.values()):
        _draw_channel([axes[panel][col] for panel in range(nrows)], ch_rows)
    if title:
        fig.suptitle(title, fontsize=10)
    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = [_save(fig, plots / f"ber.{ext}") for ext in ("png", "pdf")]
    plt.close(fig)
    if len(by_channel) > 1:
        for ch_rows in by_channel.values():
            coded = any(r["code"] != "none" for r in ch_rows)
            npanels = 2 if coded else 1
            fig, axes = plt.subplots(1, npanels, figsize=(4.6 * npanels, 3.8), squeeze=False,
                                     constrained_layout=True)
            _draw_channel(list(axes[0]), ch_rows)
            if title:
                fig.suptitle(title, fontsize=10)
            slug = channel_slug(ch_rows[0])
            written += [_save(fig, plots / f"ber_{slug}.{ext}") for ext in ("png", "pdf")]
            plt.close(fig)
    return written


def _channel_key(row: dict[str, Any]) -> str:
    return "|".join(str(row[k]) for k in ("channel", "fading", "csi", "tdl_model"))


def _save(fig: Any, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    # Fixed metadata so the same data gives the same bytes.
    metadata = {"Software": None} if path.suffix == ".png" else {"CreationDate": None,
                                                                 "Producer": None}
    fig.savefig(buf, format=path.suffix[1:], dpi=200, metadata=metadata)
    return atomic_write_bytes(path, buf.getvalue())


def write_ber_report(run_dir: Path, store: ResultsStore, title: str = "") -> list[Path]:
    """``ber.csv`` and the BER/BLER plots of a run, from its store."""
    rows = ber_rows(store)
    if not rows:
        return []
    return [write_ber_csv(run_dir, rows), *plot_ber(run_dir, rows, title)]


# Every report `write_run_report` writes; each writer returns [] when the store holds none of
# its points. A new kind of result (e.g. semantic metrics.csv) adds its writer here.
def _write_semantic_report(run_dir: Path, store: ResultsStore, title: str = "") -> list[Path]:
    from link.semantic_report import write_semantic_report

    return write_semantic_report(run_dir, store, title)


REPORT_WRITERS: tuple[Callable[[Path, ResultsStore, str], list[Path]], ...] = (
    write_ber_report, _write_semantic_report)


def write_run_report(run_dir: Path, store: ResultsStore, title: str = "") -> list[Path]:
    """All reports of a run (CSVs and plots), regenerated from its store alone."""
    written: list[Path] = []
    for writer in REPORT_WRITERS:
        written += writer(run_dir, store, title)
    return written
