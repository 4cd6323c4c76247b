"""The command line contract: exit codes, one-line errors, help, BER outputs, determinism."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BER_CONTRACT = ("channel,modulation,num_bits_per_symbol,code,k,n,code_rate,ebno_db,esno_db,"
                "bit_errors,bits,block_errors,blocks,ber,bler,ber_ci_low,ber_ci_high,bler_ci_low,"
                "bler_ci_high,theory_ber").split(",")


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "simulate.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _tiny_ber(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_ber.yaml"
    path.write_text("name: tiny_ber\nkind: ber\nseed: 7\ndevice: cpu\n"
                    "phy: {coding: {type: none, k: 512}, channel: {type: awgn}}\n"
                    "sweep: {ebno_db: [0, 4], grid: {phy.modulation: [bpsk, 16qam]}}\n"
                    "ber: {target_bit_errors: 200, target_block_errors: 10, max_bits: 2.0e+5,"
                    " batch_size: 64}\n")
    return path


def test_help_lists_kinds_modulations_codes_channels():
    proc = _cli("--help")
    assert proc.returncode == 0
    for word in ("--out", "--set", "--device", "--resume", "--debug", "semantic", "256qam",
                 "8psk", "ldpc5g", "rayleigh", "tdl", "report", "fid", "train"):
        assert word in proc.stdout, word


def test_bad_value_is_one_line_exit_2(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nkind: ber\nsweep: {ebno_db: abc}\n")
    proc = _cli(str(path))
    assert proc.returncode == 2
    assert proc.stderr == f"error: {path}: sweep.ebno_db: expected a list of numbers, got 'abc'\n"


def test_unknown_key_and_bad_set_exit_2(tmp_path):
    proc = _cli(str(_tiny_ber(tmp_path)), "--set", "phy.modulaton=qpsk")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "did you mean 'modulation'" in proc.stderr and "Traceback" not in proc.stderr
    assert _cli(str(tmp_path / "missing.yaml")).returncode == 2


def test_ber_run_outputs_and_same_seed_same_bytes(tmp_path):
    scenario = _tiny_ber(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert _cli(str(scenario), "--out", str(a)).returncode == 0
    assert _cli(str(scenario), "--out", str(b)).returncode == 0
    assert (a / "ber.csv").read_bytes() == (b / "ber.csv").read_bytes()
    with open(a / "ber.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[: len(BER_CONTRACT)] == BER_CONTRACT and len(rows) == 4
    assert all(r["theory_ber"] for r in rows)
    for name in ("plots/ber.png", "plots/ber.pdf", "config.resolved.yaml", "store.sqlite"):
        assert (a / name).is_file(), name
    manifest = json.loads((a / "manifest.json").read_text())
    for key in ("versions", "git_revision", "device", "seed", "stage_wall_s"):
        assert key in manifest
    assert manifest["versions"]["sionna-no-rt"] == "2.2.0"
    # An existing run directory is not overwritten without --resume.
    assert _cli(str(scenario), "--out", str(a)).returncode == 2


def test_data_preview_writes_png(tmp_path):
    proc = _cli("data", "preview", "--source", "synthetic", "--n", "2", "--size", "64", "128",
                "--out", str(tmp_path))
    assert proc.returncode == 0 and (tmp_path / "preview.png").is_file()
