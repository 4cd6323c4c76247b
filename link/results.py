"""Run directories, atomic file writes and the run manifest.

Layout: ``results/<scenario>/<run-id>/`` with ``config.resolved.yaml``, ``manifest.json``,
``store.sqlite``, CSV tables and ``plots/``. Every file is written to a temporary name in the same
folder and renamed into place, so a reader never sees half a file and a crash loses nothing
already written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = REPO_ROOT / "results"
TRACKED_PACKAGES = ("torch", "sionna-no-rt", "numpy", "scipy", "simpy", "pydantic", "numba",
                    "imagecodecs", "pillow-heif", "scikit-commpy", "matplotlib")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def format_cell(value: Any) -> str:
    """CSV cell text: empty for ``None``/NaN, ``repr``-exact floats (stable bytes for a seed)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return repr(value)
    return str(value)


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows (dicts) with exactly ``columns`` in that order, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row.get(c)) for c in columns])
    return atomic_write_text(path, buf.getvalue())


def git_revision() -> str:
    """``git describe``-like revision of the repository, ``+dirty`` when files are modified."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_description(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def make_run_dir(scenario_name: str, config_hash: str, out: str | Path | None,
                 resume: bool) -> tuple[Path, bool]:
    """Choose the run directory.

    With ``out`` it is used as given. Otherwise ``results/<name>/<YYYYmmdd-HHMMSS>-<hash>``; with
    ``resume`` the newest existing run of the same resolved config is reused.

    Returns:
        (run directory, whether it already existed).
    """
    if out is not None:
        run_dir = Path(out)
        existed = (run_dir / "store.sqlite").exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir, existed
    base = RESULTS_ROOT / scenario_name
    if resume and base.is_dir():
        previous = sorted(p for p in base.iterdir() if p.is_dir() and p.name.endswith(config_hash))
        if previous:
            return previous[-1], True
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = base / f"{stamp}-{config_hash}"
    suffix = 1
    while run_dir.exists():
        run_dir = base / f"{stamp}.{suffix}-{config_hash}"
        suffix += 1
    run_dir.mkdir(parents=True)
    return run_dir, False


class Manifest:
    """Collects what ``manifest.json`` records: versions, revision, device, seed, timings."""

    def __init__(self, run_dir: Path, scenario_name: str, seed: int, device: str,
                 argv: Sequence[str] | None = None):
        self.run_dir = run_dir
        self.data: dict[str, Any] = {
            "scenario": scenario_name,
            "seed": seed,
            "device": device_description(device),
            "git_revision": git_revision(),
            "versions": package_versions(),
            "command": list(argv if argv is not None else sys.argv),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stage_wall_s": {},
            "points": {},
        }
        self._t0 = time.perf_counter()

    def add_stage(self, name: str, seconds: float) -> None:
        stages = self.data["stage_wall_s"]
        stages[name] = round(stages.get(name, 0.0) + seconds, 4)

    def write(self, **extra: Any) -> Path:
        self.data.update(extra)
        self.data["wall_s"] = round(time.perf_counter() - self._t0, 3)
        return atomic_write_json(self.run_dir / "manifest.json", self.data)
