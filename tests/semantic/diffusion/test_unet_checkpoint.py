"""Checkpoints: atomic save, weights_only load, published state dicts, tampered files."""

from __future__ import annotations

import doctest
import pickle

import pytest
import torch

import semantic.diffusion.checkpoint as checkpoint_module
import semantic.diffusion.flops as flops_module
import semantic.diffusion.nn_blocks as blocks_module
import semantic.diffusion.unet as unet_module
from semantic.diffusion.checkpoint import (
    CHECKPOINT_FORMAT,
    load_published_state_dict,
    load_published_unet,
    load_unet,
    read_checkpoint,
    save_checkpoint,
)
from semantic.diffusion.unet import SDMUNet, UNetConfig


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks gain nothing from a second OpenMP thread, and on a busy 2-core machine two
    # spinning threads slow each call down several times (conftest restores the thread count).
    torch.set_num_threads(1)


def _small_model() -> SDMUNet:
    config = UNetConfig(
        image_size=16,
        model_channels=32,
        num_res_blocks=(1, 0),
        channel_mult=(1, 1),
        num_label_channels=3,
        attention_resolutions=(2,),
        num_head_channels=32,
        spade_hidden=8,
    )
    model = SDMUNet(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def test_round_trip_restores_config_weights_and_extras(tmp_path):
    model = _small_model()
    extra = {"step": 1200, "ema_rate": 0.999, "dataset": "synthetic", "loss": torch.arange(3.0)}
    path = save_checkpoint(tmp_path / "sub" / "unet.pt", model, extra)
    assert sorted(p.name for p in path.parent.iterdir()) == ["unet.pt"]  # no temp file left
    loaded = read_checkpoint(path)
    assert loaded.config == model.config
    assert loaded.extra["step"] == 1200 and loaded.extra["dataset"] == "synthetic"
    assert torch.equal(loaded.extra["loss"], torch.arange(3.0))
    assert not loaded.model.training
    x, t, y = torch.randn(1, 3, 16, 16), torch.tensor([3]), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(load_unet(path)(x, t, y), model(x, t, y))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT
    assert isinstance(raw["config"], dict) and raw["config"]["num_res_blocks"] == [1, 0]


def test_overwrite_is_atomic_and_non_plain_extras_are_refused(tmp_path):
    model = _small_model()
    path = save_checkpoint(tmp_path / "unet.pt", model, {"step": 1})
    with pytest.raises(TypeError, match="not a plain value"):
        save_checkpoint(path, model, {"step": 2, "optimizer": torch.optim.SGD(model.parameters())})
    assert read_checkpoint(path).extra == {"step": 1}  # old file intact
    save_checkpoint(path, model, {"step": 2})
    assert read_checkpoint(path).extra == {"step": 2}


class _CodePayload:
    """Pickles to a call of ``exec`` — what a malicious checkpoint would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_tampered_checkpoint_with_code_fails_to_load(tmp_path):
    model = _small_model()
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "config": model.config.to_dict(),
            "state_dict": model.state_dict(),
            "extra": {"note": _CodePayload(marker)},
        },
        path,
    )
    with pytest.raises(pickle.UnpicklingError, match="exec"):
        load_unet(path)
    with pytest.raises(pickle.UnpicklingError, match="exec"):
        load_published_unet(path, model.config)
    assert not marker.exists()


def test_other_files_are_rejected(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a"):
        load_unet(path)


@pytest.fixture(scope="module")
def tiny(shared_dir):
    return torch.load(shared_dir / "reference" / "sdm_unet_tiny_vector.pt", weights_only=True)


def test_published_gesco_state_dict_into_upstream_model(tiny):
    config = UNetConfig.from_sdm_flags(tiny["config"], variant="sdm")
    model = SDMUNet(config).eval()
    report = load_published_state_dict(model, tiny["state_dict"])  # float16, with spade_norm
    assert len(report.ignored_keys) == 6 * 3  # 3 encoder ResBlocks × 6 tensors
    assert all(".spade_norm." in k for k in report.ignored_keys)
    assert report.cast_from == ("torch.float16",)
    with torch.no_grad():
        out = model(tiny["x"], tiny["t"], tiny["y"])
    assert (out - tiny["out"]).abs().max().item() <= 1e-5


def test_published_loader_accepts_missing_unused_params_and_module_prefix(tiny, tmp_path):
    upstream = {f"module.{k}": v for k, v in tiny["state_dict"].items() if ".spade_norm." not in k}
    path = tmp_path / "sdm.pt"
    torch.save(upstream, path)
    config = UNetConfig.from_sdm_flags(tiny["config"], variant="gesco")
    model = load_published_unet(path, config)
    assert model.get_parameter("input_blocks.1.0.spade_norm.mlp_gamma.weight").abs().sum() == 0
    with torch.no_grad():
        out = model(tiny["x"], tiny["t"], tiny["y"])
    assert (out - tiny["out"]).abs().max().item() <= 1e-5


def test_published_loader_rejects_foreign_keys(tiny):
    model = SDMUNet(UNetConfig.from_sdm_flags(tiny["config"], variant="sdm"))
    state = dict(tiny["state_dict"])
    state["label_emb.weight"] = torch.zeros(5, 128)
    with pytest.raises(KeyError, match="label_emb"):
        load_published_state_dict(model, state)
    del state["label_emb.weight"], state["out.2.bias"]
    with pytest.raises(KeyError, match=r"out\.2\.bias"):
        load_published_state_dict(model, state)


@pytest.mark.parametrize(
    "module",
    [unet_module, blocks_module, flops_module, checkpoint_module],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
