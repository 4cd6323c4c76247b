"""End-to-end ``kind: semantic`` run through the CLI with tiny random receivers and segmenter.

The models are untrained (so the numbers are meaningless); this checks the pipeline: every
scheme runs over a real PHY, metrics.csv has the contract columns, plots and sample grids are
written, resume recomputes nothing, and the report is regenerated from the store alone.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from semantic.diffusion.checkpoint import save_checkpoint
from semantic.diffusion.unet import SDMUNet, UNetConfig
from semantic.segmenter import Segmenter, SegmenterConfig, save_weights

REPO = Path(__file__).resolve().parents[2]
CONTRACT = ("scheme,channel,snr_db,num_images,bpp,bpp_map,bpp_image,bpp_other,"
            "channel_uses_per_pixel,ber,bler,stream_failures,miou,miou_ci_low,miou_ci_high,fid,"
            "kid,kid_std,psnr,ssim").split(",")


def _unet(labels: int, super_res: bool) -> SDMUNet:
    torch.manual_seed(0)
    return SDMUNet(UNetConfig(image_size=32, model_channels=32, num_res_blocks=1,
                              channel_mult=(1, 1), attention_resolutions=(),
                              num_head_channels=16, num_label_channels=labels,
                              in_channels=6 if super_res else 3, super_res=super_res,
                              spade_hidden=16))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    save_checkpoint(d / "map.pt", _unet(20, False))
    save_checkpoint(d / "sr.pt", _unet(19, True))
    save_weights(Segmenter(SegmenterConfig(widths=(8, 8, 16, 16), blocks=(0, 1, 1, 1))),
                 d / "seg.pt")
    return {"map": d / "map.pt", "sr": d / "sr.pt", "seg": d / "seg.pt"}


def _scenario(tmp_path: Path, models: dict[str, Path]) -> Path:
    text = f"""
name: tiny_semantic
kind: semantic
seed: 3
device: cpu
schemes: [gesco, spic, separation]
data: {{source: synthetic, split: val, num_images: 3, size: [32, 64]}}
phy:
  modulation: 16qam
  coding: {{type: ldpc5g, k: 1024, n: 2048, crc: CRC24A}}
  channel: {{type: awgn}}
receiver: {{steps: 2, map_weights: {models['map']}, superres_weights: {models['sr']}}}
metrics: {{segmenter: {models['seg']}, bootstrap_resamples: 50}}
sweep: {{snr_db: [-5, 25]}}
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "simulate.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_semantic_run_end_to_end(tmp_path, models):
    scenario = _scenario(tmp_path, models)
    out = tmp_path / "run"
    proc = _cli(str(scenario), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[: len(CONTRACT)] == CONTRACT
    assert len(rows) == 3 * 2
    by = {(r["scheme"], float(r["snr_db"])): r for r in rows}
    # Digital schemes: nothing fails at 25 dB, everything at -5 dB; GESCO has no digital stream.
    for scheme in ("spic", "separation"):
        assert int(by[(scheme, 25.0)]["stream_failures"]) == 0
        assert int(by[(scheme, -5.0)]["stream_failures"]) > 0
        assert float(by[(scheme, 25.0)]["bpp"]) > 0
    assert by[("gesco", 25.0)]["ber"] == "" and float(by[("gesco", 25.0)]["bpp"]) == 0
    assert float(by[("gesco", 25.0)]["channel_uses_per_pixel"]) == pytest.approx(10.0)
    spic = by[("spic", 25.0)]
    assert float(spic["bpp"]) == pytest.approx(float(spic["bpp_map"]) + float(spic["bpp_image"])
                                               + float(spic["bpp_other"]))
    for name in ("plots/semantic.png", "plots/semantic.pdf", "samples/spic.png",
                 "samples/gesco.png", "samples/separation.png", "manifest.json",
                 "config.resolved.yaml"):
        assert (out / name).is_file(), name
    first = (out / "metrics.csv").read_bytes()

    resumed = _cli(str(scenario), "--out", str(out), "--resume")
    assert resumed.returncode == 0 and "(0 computed, 6 resumed)" in resumed.stdout
    (out / "metrics.csv").unlink()
    assert _cli("report", str(out)).returncode == 0
    assert (out / "metrics.csv").read_bytes() == first


def test_missing_weights_is_a_one_line_config_error(tmp_path, models):
    scenario = _scenario(tmp_path, models)
    proc = _cli(str(scenario), "--out", str(tmp_path / "r2"),
                "--set", "receiver.map_weights=/nonexistent.pt")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "receiver.map_weights" in proc.stderr
