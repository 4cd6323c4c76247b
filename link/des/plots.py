"""Plots of link-layer results (separate from simulation): the latency CDF.

Figures are built with `matplotlib.figure.Figure` (no pyplot state, no display needed) and
saved as PNG and PDF.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> paths = plot_latency_cdf({"10 dB": [0.004, 0.005, 0.009]}, folder / "latency_cdf",
    ...                          deadline_s=0.008)
    >>> [p.suffix for p in paths], all(p.stat().st_size > 0 for p in paths)
    (['.png', '.pdf'], True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def empirical_cdf(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their empirical CDF ``i / n`` (``i = 1..n``).

    Example:
        >>> x, p = empirical_cdf([3.0, 1.0, 2.0, 2.0])
        >>> x.tolist(), p.tolist()
        ([1.0, 2.0, 2.0, 3.0], [0.25, 0.5, 0.75, 1.0])
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    return x, np.arange(1, x.size + 1) / max(x.size, 1)


def plot_latency_cdf(
    latencies_s: Mapping[str, Sequence[float]],
    path: str | Path,
    deadline_s: float | None = None,
    title: str = "End-to-end frame latency",
) -> list[Path]:
    """Plot one latency CDF per label (milliseconds on the x axis) to ``path``.png/.pdf.

    Args:
        latencies_s: label (e.g. the SNR point) -> frame latencies in seconds.
        path: output path without suffix (parent folders are created).
        deadline_s: draw the deadline as a vertical line when given.
        title: figure title.

    Returns:
        The written paths (PNG, PDF).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for label, values in latencies_s.items():
        x, p = empirical_cdf(values)
        ax.step(x * 1e3, p, where="post", label=str(label))
    if deadline_s is not None:
        ax.axvline(deadline_s * 1e3, color="k", linestyle="--", linewidth=1, label="deadline")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("P(latency ≤ x)")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    written = []
    for suffix in (".png", ".pdf"):
        out = path.with_suffix(suffix)
        fig.savefig(out, dpi=150)
        written.append(out)
    return written
