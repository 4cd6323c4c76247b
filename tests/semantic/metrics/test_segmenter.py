"""Segmenter network, augmentation, training smoke run with resume, loading and prediction."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from semantic.segmenter import (
    Segmenter,
    SegmenterConfig,
    TorchScriptSegmenter,
    checkpoint_path,
    load_segmenter,
    predict_labels,
    train_segmenter,
)
from semantic.segmenter.train import (
    TrainConfig,
    _augment,
    _class_weights,
    _learning_rate,
    _ScenePool,
)


def test_forward_shapes_and_size():
    net = Segmenter(SegmenterConfig())
    assert net(torch.rand(2, 3, 64, 128)).shape == (2, 19, 64, 128)
    assert net(torch.rand(1, 3, 40, 72)).shape == (1, 19, 40, 72)  # not a multiple of 16
    params = sum(p.numel() for p in net.parameters())
    assert 500_000 <= params <= 1_500_000
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_full_resolution_branch_keeps_one_pixel_structures():
    cfg = SegmenterConfig(full_res_channels=8)
    net = Segmenter(cfg).eval()
    assert net(torch.rand(1, 3, 40, 72)).shape == (1, 19, 40, 72)
    assert hasattr(net, "full_res_stem") and not hasattr(Segmenter(SegmenterConfig()),
                                                         "full_res_stem")
    # Configs saved before the field existed load with the branch off.
    old = SegmenterConfig().to_dict()
    old.pop("full_res_channels")
    assert SegmenterConfig.from_dict(old) == SegmenterConfig()


def test_config_round_trip_and_unknown_keys():
    cfg = SegmenterConfig(widths=(8, 16, 16, 32), blocks=(0, 1, 1, 1))
    assert SegmenterConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        SegmenterConfig.from_dict({"depth": 3})


def test_augmentation_keeps_image_and_labels_aligned():
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 19, (3, 4, 8), generator=gen).to(torch.uint8)
    labels = blocks.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2)  # 8x8 class blocks
    images = (labels * 10).to(torch.uint8)[..., None].expand(3, 32, 64, 3).contiguous()
    cfg = TrainConfig(scale_range=(0.8, 1.3), jitter=0.0)
    for _ in range(4):
        x, y = _augment(images, labels, cfg, gen)
        assert x.shape == (3, 3, 32, 64) and y.shape == (3, 32, 64) and y.dtype == torch.int64
        valid = y != 255
        # Nearest-resampled labels must sit where the image shows the same class code; allow
        # bilinear blending at block borders by checking the bulk of pixels.
        agree = (torch.round(x[:, 0] * 255 / 10) == y.float()) | ~valid
        assert agree.float().mean() > 0.8
        assert set(torch.unique(y).tolist()) <= set(range(19)) | {255}


class _FixedScenes:
    """Stand-in data set: every scene is 3/4 class 0, 1/8 class 1, 1/8 ignore."""

    size = (4, 8)

    def batch(self, indices):
        labels = np.zeros((len(indices), 4, 8), np.uint8)
        labels[:, 3, :4] = 1
        labels[:, 3, 4:] = 255
        return SimpleNamespace(images=np.zeros((*labels.shape, 3), np.uint8), labels=labels)


def test_enet_class_weights_follow_the_formula():
    pool = _ScenePool(_FixedScenes(), range(10))
    weights = _class_weights(pool, TrainConfig(class_weighting="enet"), num_classes=3)
    p0, p1 = 24 / 28, 4 / 28
    expected = [1 / np.log(1.02 + p0), 1 / np.log(1.02 + p1), 1 / np.log(1.02)]
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)
    assert _class_weights(pool, TrainConfig(), num_classes=3) is None
    with pytest.raises(ValueError, match="class_weighting"):
        train_segmenter("unused.pt", class_weighting="balanced")


def test_learning_rate_warms_up_then_decays_to_zero():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-3)
    assert _learning_rate(0, cfg) == pytest.approx(1e-4)
    assert _learning_rate(9, cfg) == pytest.approx(1e-3)
    assert _learning_rate(55, cfg) == pytest.approx(0.5e-3)
    assert _learning_rate(100, cfg) == pytest.approx(0.0, abs=1e-12)


class _Interrupt(Exception):
    pass


def _smoke(out, **kwargs):
    defaults = dict(
        steps=3,
        batch_size=2,
        size=(32, 64),
        seed=0,
        lr=1e-3,
        log_every=1,
        train_pool_size=4,
        val_images=2,
        checkpoint_every=1,
        eval_every=0,
        warmup_steps=1,
    )
    defaults.update(kwargs)
    return train_segmenter(out, **defaults)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One uninterrupted 3-step smoke training at 32x64."""
    return _smoke(tmp_path_factory.mktemp("full") / "seg.pt", log=lambda line: None)


def test_three_step_training_with_resume_reproduces_the_uninterrupted_run(tmp_path, full_run):
    full = full_run
    assert full.steps == 3 and 0.0 <= full.val_miou <= 1.0
    assert [r["step"] for r in full.history if "loss" in r] == [1, 2, 3]

    def crash_at_step_two(line: str) -> None:
        if line.startswith("step 2/"):
            raise _Interrupt

    out = tmp_path / "resumed" / "seg.pt"
    with pytest.raises(_Interrupt):
        _smoke(out, log=crash_at_step_two)
    ckpt = torch.load(checkpoint_path(out), weights_only=True)
    assert ckpt["step"] == 1 and not out.exists()
    # A spent time budget exports the checkpoint as a snapshot without training further.
    snapshot = _smoke(out, resume=True, max_minutes=0, log=lambda line: None)
    assert snapshot.steps == 1 and out.exists()
    assert "1 of 3 planned" in snapshot.card_path.read_text()
    assert torch.load(checkpoint_path(out), weights_only=True)["step"] == 1
    out.unlink()
    lines: list[str] = []
    resumed = _smoke(out, resume=True, log=lines.append)
    assert lines[0].startswith("resumed from") and "step 1" in lines[0]
    assert resumed.steps == 3

    a = torch.load(full.weights_path, weights_only=True)
    b = torch.load(resumed.weights_path, weights_only=True)
    assert a["config"] == b["config"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    assert resumed.val_miou == pytest.approx(full.val_miou, abs=1e-6)

    # Model card and weights file facts.
    card = resumed.card_path.read_text()
    digest = hashlib.sha256(resumed.weights_path.read_bytes()).hexdigest()
    assert resumed.sha256 == digest and digest in card
    assert f"{resumed.params:,}" in card and "mIoU" in card

    # A checkpoint written before a config field existed resumes (the field takes its default).
    state = torch.load(checkpoint_path(out), weights_only=True)
    state["model_config"].pop("full_res_channels")
    state["train_config"].pop("class_weighting")
    torch.save(state, checkpoint_path(out))
    again = _smoke(out, resume=True, log=lambda line: None)
    assert again.steps == 3

    # A changed configuration cannot resume from this checkpoint.
    with pytest.raises(ValueError, match="different configuration"):
        _smoke(out, resume=True, lr=2e-3, log=lambda line: None)


def test_load_segmenter_from_weights_and_predict(full_run):
    result = full_run
    net = load_segmenter(result.weights_path)
    assert isinstance(net, Segmenter) and not net.training
    images = torch.randint(0, 256, (2, 32, 64, 3), dtype=torch.uint8)
    labels = predict_labels(net, images)
    assert labels.shape == (2, 32, 64) and labels.dtype == torch.int64
    with torch.inference_mode():
        expected = net(images.permute(0, 3, 1, 2).float() / 255).argmax(1)
    assert torch.equal(labels, expected)
    from_ckpt = load_segmenter(result.checkpoint_path)
    assert torch.equal(predict_labels(from_ckpt, images), labels)


class _TinyNet(nn.Module):
    def __init__(self, classes: int, shrink: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, classes, 3, padding=1)
        self.shrink = shrink

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.shrink:
            out = out[..., ::2, ::2]
        return out


def test_user_torchscript_segmenter_is_loaded_and_checked(tmp_path):
    good = torch.jit.script(_TinyNet(5).eval())
    good.save(str(tmp_path / "user.ts"))
    net = load_segmenter(tmp_path / "user.ts")
    assert isinstance(net, TorchScriptSegmenter)
    x = torch.rand(2, 3, 16, 24)
    torch.testing.assert_close(net(x), good(x))
    assert predict_labels(net, x).max() < 5
    bad = torch.jit.script(_TinyNet(5, shrink=True).eval())
    bad.save(str(tmp_path / "bad.ts"))
    with pytest.raises(ValueError, match=r"logits \[B, C, H, W\]"):
        load_segmenter(tmp_path / "bad.ts")(x)


def test_non_segmenter_files_are_rejected(tmp_path):
    torch.save({"weights": np.arange(3).tolist()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no segmenter"):
        load_segmenter(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_segmenter(tmp_path / "missing.pt")


def test_bf16_training_keeps_fp32_weights_and_resumes_under_fp32(tmp_path):
    out = tmp_path / "seg.pt"
    first = _smoke(out, steps=2, precision="bf16", log=lambda line: None)
    state = torch.load(checkpoint_path(out), weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    assert first.steps == 2 and "precision bf16" in first.card_path.read_text()

    def stop_at_two(line: str) -> None:
        if line.startswith("step 2/3"):
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _smoke(tmp_path / "b.pt", precision="bf16", log=stop_at_two)
    resumed = _smoke(tmp_path / "b.pt", resume=True, log=lambda line: None)
    assert resumed.steps == 3 and "precision fp32" in resumed.card_path.read_text()
    with pytest.raises(ValueError, match="precision"):
        train_segmenter(out, precision="fp16")
