"""Reports of ``kind: semantic`` runs from the store alone: ``metrics.csv``, plots, sample grids.

Plots (PNG + PDF, sized for a two-column paper): mIoU (bootstrap 95% intervals), FID, PSNR
(bootstrap intervals) and BPP against SNR, one line per scheme. Sample grids per scheme: one row
per SNR with original | sent map | received map | regenerated, for the first stored images.
With a ``link_layer`` section: ``plots/latency_cdf.png|pdf`` and each point's
``link_layer/<scheme>/snr_<x>dB-<id>/{events,frames}.csv`` (`link.semantic_link`).
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from link.report import _save
from link.results import atomic_write_bytes, write_csv
from link.semantic_run import METRICS_COLUMNS
from link.store import ResultsStore

_PANELS = (("miou", "mIoU", "miou_ci_low", "miou_ci_high"),
           ("fid", "FID", None, None),
           ("psnr", "PSNR (dB)", "psnr_ci_low", "psnr_ci_high"),
           ("bpp", "bits per pixel", None, None))


def metrics_rows(store: ResultsStore) -> list[dict[str, Any]]:
    return [r.metrics for r in store.records() if "miou" in r.metrics]


def write_metrics_csv(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    return write_csv(run_dir / "metrics.csv", METRICS_COLUMNS, rows)


def _xlabel(rows: list[dict[str, Any]]) -> str:
    if rows and rows[0].get("snr_axis") == "gesco_label":
        return "GESCO SNR label (not a physical SNR)"
    return "SNR per channel use (dB)"


def plot_metrics(run_dir: Path, rows: list[dict[str, Any]], title: str = "") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_scheme: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_scheme[f"{row['scheme']}"].append(row)
    fig, axes = plt.subplots(1, 4, figsize=(7.0, 2.1), constrained_layout=True)
    for idx, (scheme, srows) in enumerate(by_scheme.items()):
        srows = sorted(srows, key=lambda r: r["snr_db"])
        x = np.array([r["snr_db"] for r in srows], dtype=float)
        for ax, (key, label, lo, hi) in zip(axes, _PANELS):
            y = np.array([np.nan if r.get(key) in (None, "") else r[key] for r in srows],
                         dtype=float)
            if np.all(np.isnan(y)):
                continue
            if lo:
                err = np.array([[r[key] - r[lo], r[hi] - r[key]] for r in srows], dtype=float).T
                ax.errorbar(x, y, yerr=np.abs(err), fmt="o-", ms=3, lw=1, capsize=2,
                            color=f"C{idx}", label=scheme)
            else:
                ax.plot(x, y, "o-", ms=3, lw=1, color=f"C{idx}", label=scheme)
            ax.set_ylabel(label, fontsize=7)
    for ax in axes:
        ax.set_xlabel(_xlabel(rows), fontsize=6)
        ax.tick_params(labelsize=6)
        ax.grid(True, lw=0.3, alpha=0.6)
    axes[0].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    plots = run_dir / "plots"
    written = [_save(fig, plots / f"semantic.{ext}") for ext in ("png", "pdf")]
    plt.close(fig)
    return written


def _decode_png(text: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def write_sample_grids(run_dir: Path, rows: list[dict[str, Any]], originals: np.ndarray | None,
                       sent_maps: np.ndarray | None) -> list[Path]:
    """One PNG per scheme: rows = SNR; columns = original | sent map | received map | output."""
    from PIL import Image

    from semantic.data.labels import TRAIN_PALETTE as palette
    from semantic.data.labels import colorize

    written = []
    by_scheme: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("_samples"):
            by_scheme[row["scheme"]].append(row)
    for scheme, srows in by_scheme.items():
        lines = []
        for row in sorted(srows, key=lambda r: r["snr_db"]):
            samples = row["_samples"]
            for i, png in enumerate(samples["images"]):
                out = _decode_png(png)
                h, w = out.shape[:2]
                blank = np.full((h, w, 3), 255, np.uint8)
                orig = originals[i] if originals is not None else blank
                sent = colorize(sent_maps[i], palette) if sent_maps is not None else blank
                recv = (colorize(_decode_png(samples["maps"][i]), palette)
                        if samples.get("maps") else blank)
                sep = np.full((h, 2, 3), 255, np.uint8)
                lines.append(np.concatenate([orig, sep, sent, sep, recv, sep, out], axis=1))
                lines.append(np.full((2, lines[-1].shape[1], 3), 255, np.uint8))
        grid = np.concatenate(lines[:-1], axis=0)
        buf = io.BytesIO()
        Image.fromarray(grid).save(buf, format="PNG")
        written.append(atomic_write_bytes(run_dir / "samples" / f"{scheme}.png", buf.getvalue()))
    return written


def write_semantic_report(run_dir: Path, store: ResultsStore, title: str = "",
                          originals: np.ndarray | None = None,
                          sent_maps: np.ndarray | None = None) -> list[Path]:
    rows = metrics_rows(store)
    if not rows:
        return []
    if originals is None:
        originals = _stored_array(store, "sample_originals")
        sent_maps = _stored_array(store, "sample_maps")
    from link.semantic_link import write_link_layer_report

    return [write_metrics_csv(run_dir, rows), *plot_metrics(run_dir, rows, title),
            *write_sample_grids(run_dir, rows, originals, sent_maps),
            *write_link_layer_report(run_dir, rows, title)]


def store_sample_sources(store: ResultsStore, images: np.ndarray, maps: np.ndarray) -> None:
    """Keep the originals and sent maps of the sample images in the store (for ``report``)."""
    from link.semantic_run import _png_b64

    store.set_meta("sample_originals", [_png_b64(a) for a in images])
    store.set_meta("sample_maps", [_png_b64(a) for a in maps])


def _stored_array(store: ResultsStore, key: str) -> np.ndarray | None:
    items = store.get_meta(key)
    return None if not items else np.stack([_decode_png(t) for t in items])
