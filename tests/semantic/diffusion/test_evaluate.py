"""`eval receiver`: the scores are the standard ones, deterministic, and the export card states
numbers measured on the very file it ships."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semantic.diffusion.evaluate import EvalConfig, evaluate_receiver, write_grid
from semantic.diffusion.export import export_receiver, quality_table, sha256_of
from semantic.diffusion.training import EMA_EXPORT_FORMAT, ReceiverTrainConfig
from semantic.diffusion.unet import SDMUNet, UNetConfig

REPO = Path(__file__).resolve().parents[3]
SIZE = (32, 64)
SEGMENTER = str(REPO / "semantic" / "weights" / "segmenter.pt")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _write_export(path: Path, super_res: bool) -> Path:
    labels = 19 if super_res else 20
    unet = UNetConfig(image_size=SIZE[0], model_channels=16, num_res_blocks=1,
                      channel_mult=(1, 2), num_label_channels=labels, spade_hidden=16,
                      norm_groups=8, in_channels=6 if super_res else 3, super_res=super_res)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = SDMUNet(unet)
    data = {"size": list(SIZE), "seed": 0, "instance_edges": not super_res,
            "lowres_codec": "none"}
    train = ReceiverTrainConfig(unet=unet.to_dict(), super_res=super_res, num_steps=10,
                                data=data)
    torch.save({"format": EMA_EXPORT_FORMAT, "unet_config": unet.to_dict(),
                "state_dict": model.state_dict(), "train_config": train.to_dict(), "step": 10},
               path)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("receivers")
    return {"map": _write_export(folder / "map.pt", False),
            "spic": _write_export(folder / "spic.pt", True)}


CONFIG = EvalConfig(n=4, steps=2, segmenter=SEGMENTER, bootstrap_resamples=200)


def test_reference_miou_is_the_segmenter_on_the_originals(exports, tmp_path):
    from semantic.data import build_dataset
    from semantic.metrics.miou import ConfusionMatrix
    from semantic.segmenter import make_scorer

    result = evaluate_receiver(exports["map"], CONFIG, grid_path=tmp_path / "grid.png")
    batch = build_dataset("synthetic", None, "val", num_images=4, size=SIZE).batch(slice(0, 4))
    cm = ConfusionMatrix(19)
    cm.update(make_scorer(SEGMENTER)(batch.images), torch.from_numpy(batch.labels).long())
    assert result.miou_original == pytest.approx(cm.miou(), abs=1e-12)
    r = result.regenerated
    assert r.ratio == pytest.approx(r.miou / result.miou_original, rel=1e-9)
    assert r.miou_ci_low <= r.miou <= r.miou_ci_high
    assert r.ratio_ci_low <= r.ratio <= r.ratio_ci_high
    assert result.family == "gesco" and result.bicubic is None and result.train_step == 10
    assert len(r.per_class_iou) == 19 and np.isfinite([r.fid, r.kid, r.psnr, r.ssim]).all()
    # Grid: 4 rows of map | original | regenerated.
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (4 * (SIZE[0] + 2) - 2, 3 * (SIZE[1] + 2) - 2, 3)
    assert np.array_equal(grid[:SIZE[0], SIZE[1] + 2:2 * SIZE[1] + 2], batch.images[0])


def test_same_seed_same_scores_and_spic_has_the_bicubic_baseline(exports):
    a = evaluate_receiver(exports["spic"], CONFIG).to_dict()
    b = evaluate_receiver(exports["spic"], CONFIG).to_dict()
    for d in (a, b):
        d.pop("sampling_s"), d.pop("wall_s")
    assert a == b
    assert a["family"] == "spic" and a["bicubic"] is not None
    # The bicubic baseline is a faithful upsampling: far closer to the original than noise.
    assert a["bicubic"]["psnr"] > 20 and a["bicubic"]["psnr"] > a["regenerated"]["psnr"]


def test_grid_rejects_mismatched_columns(tmp_path):
    with pytest.raises(ValueError, match="same shape"):
        write_grid(tmp_path / "g.png", [np.zeros((2, 4, 4, 3), np.uint8),
                                        np.zeros((2, 4, 5, 3), np.uint8)])


def test_export_is_byte_stable_and_card_states_what_was_measured(exports, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "receiver_ema.pt").write_bytes(Path(exports["map"]).read_bytes())
    out = export_receiver(run, tmp_path / "w" / "rx.pt", "scenarios/train/x.yaml")
    first = sha256_of(out)
    result = evaluate_receiver(out, CONFIG).to_dict()
    assert result["sha256"] == first
    torch.save({"step": 10, "wall_s": 5400.0}, run / "train_state.pt")
    export_receiver(run, out, "scenarios/train/x.yaml", metrics=result, notes="Under-trained.")
    assert sha256_of(out) == first
    card = out.with_suffix(".md").read_text()
    assert "## Status\n\nUnder-trained." in card and "| training compute | 1.50 h wall" in card
    assert "## Quality (measured on this file): ddim-2, guidance 1.5" in card and first in card
    assert f"| regenerated | {result['regenerated']['miou']:.3f}" in card
    assert quality_table(result)[0] in card
    with pytest.raises(ValueError, match="re-measure the shipped file"):
        export_receiver(run, out, "scenarios/train/x.yaml", metrics={**result, "sha256": "0"})


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "simulate.py"), "eval", "receiver", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_cli_json_and_one_line_errors(exports, tmp_path):
    proc = _cli(str(exports["map"]), "--n", "2", "--steps", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"miou_original", "regenerated", "bicubic", "sha256", "fid_protocol"} <= set(out)
    assert {"miou", "ratio", "fid", "kid", "kid_std", "psnr", "ssim"} <= set(out["regenerated"])
    missing = _cli(str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "nope.pt: weights: file not found" in missing.stderr
    junk = tmp_path / "junk.pt"
    torch.save({"a": 1}, junk)
    bad = _cli(str(junk))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "not a receiver export" in bad.stderr
    steps = _cli(str(exports["map"]), "--n", "2", "--steps", "1")
    assert steps.returncode == 2 and "integer stride" in steps.stderr
    few = _cli(str(exports["map"]), "--n", "1")
    assert few.returncode == 2 and "n must be >= 2" in few.stderr
