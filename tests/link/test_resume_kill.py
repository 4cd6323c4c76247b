"""A BER run killed with SIGKILL at random moments loses no finished point and, resumed until
done, stores every point exactly once and writes the same ber.csv as an uninterrupted run."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import simulate
from link.config import load_scenario
from link.sweep import expand_points

REPO_ROOT = Path(__file__).resolve().parents[2]

# Eight uncoded points that each run to exactly max_bits (the bit-error target is out of reach),
# about 0.2-0.5 s apiece on one core: long enough to be killed in the middle of one.
SCENARIO = {
    "name": "kill_resume",
    "kind": "ber",
    "seed": 11,
    "device": "cpu",
    "phy": {"coding": {"type": "none", "k": 1024}, "channel": {"type": "awgn"}},
    "sweep": {"ebno_db": [0.0, 2.0, 4.0, 6.0], "grid": {"phy.modulation": ["bpsk", "qpsk"]}},
    "ber": {"target_bit_errors": 10**9, "target_block_errors": 1, "max_bits": 1_500_000,
            "batch_size": 256},
}
POINT_LINE = re.compile(r"^\[(\d+)/(\d+)\] ")


def _stored(run_dir: Path) -> list[tuple[str, int]]:
    db = sqlite3.connect(run_dir / "store.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return list(db.execute("SELECT point_id, run_order FROM points"))
    finally:
        db.close()


def _run_and_kill(scenario: Path, run_dir: Path, rng: random.Random) -> set[int]:
    """Start a run, SIGKILL it at a random moment after its first finished point.

    Returns the run orders of the points it reported as finished before it died.
    """
    args = [sys.executable, str(REPO_ROOT / "simulate.py"), str(scenario), "--out", str(run_dir)]
    if (run_dir / "store.sqlite").exists():
        args.append("--resume")
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    reported: set[int] = set()
    first = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            match = POINT_LINE.match(line)
            if match:
                reported.add(int(match.group(1)) - 1)
                first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first.wait(120), "the run reported no finished point"
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        # 0 when the last points and the report were done before the kill landed.
        assert proc.wait(30) in (-signal.SIGKILL, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    return set(reported)


def test_sigkill_then_resume_loses_nothing_and_duplicates_nothing(tmp_path, capsys):
    scenario = tmp_path / "kill_resume.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    points = expand_points(load_scenario(scenario))
    ids = {p.point_id for p in points}
    assert len(ids) == 8

    # Reference: one uninterrupted run (in this process; same code path as the CLI).
    reference = tmp_path / "reference"
    assert simulate.main([str(scenario), "--out", str(reference)]) == 0

    run_dir = tmp_path / "killed"
    rng = random.Random(20240607)
    for _ in range(3):
        reported = _run_and_kill(scenario, run_dir, rng)
        stored = _stored(run_dir)
        orders = [order for _pid, order in stored]
        # Every point the dead run announced is committed; nothing is stored twice.
        assert reported <= set(orders)
        assert len(orders) == len(set(orders)) and {pid for pid, _ in stored} <= ids
        if len(stored) == len(ids):
            break

    before = len(_stored(run_dir))
    assert before >= 3  # each killed run finished at least one point
    capsys.readouterr()
    assert simulate.main([str(scenario), "--out", str(run_dir), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"8 points ({8 - before} simulated, {before} resumed)" in out

    stored = _stored(run_dir)
    assert sorted(pid for pid, _ in stored) == sorted(ids)
    assert (run_dir / "ber.csv").read_bytes() == (reference / "ber.csv").read_bytes()


def test_resume_of_a_finished_run_simulates_nothing(tmp_path, capsys):
    scenario = tmp_path / "tiny.yaml"
    data = {**SCENARIO, "sweep": {"ebno_db": [3.0]}, "ber": {**SCENARIO["ber"], "max_bits": 4096}}
    scenario.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"
    assert simulate.main([str(scenario), "--out", str(run_dir)]) == 0
    first = (run_dir / "ber.csv").read_bytes()
    assert simulate.main([str(scenario), "--out", str(run_dir)]) == 2  # exists: needs --resume
    capsys.readouterr()
    assert simulate.main([str(scenario), "--out", str(run_dir), "--resume"]) == 0
    assert "1 points (0 simulated, 1 resumed)" in capsys.readouterr().out
    assert (run_dir / "ber.csv").read_bytes() == first
    assert len(_stored(run_dir)) == 1


@pytest.mark.parametrize("argv, key", [
    (["--executor", "local", "--workers", "2"], "--workers"),
    (["--ray-address", "auto"], "--ray-address"),
])
def test_bad_executor_options_exit_2_before_running(tmp_path, capsys, argv, key):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    assert simulate.main([str(scenario), "--out", str(tmp_path / "run"), *argv]) == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
