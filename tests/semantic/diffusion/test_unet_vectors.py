"""SDMUNet against the reference numeric vectors of SDM_UNET_FACTS.md §14."""

from __future__ import annotations

import pytest
import torch

from semantic.diffusion.nn_blocks import timestep_embedding
from semantic.diffusion.unet import SDMUNet, UNetConfig


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks gain nothing from a second OpenMP thread, and on a busy 2-core machine two
    # spinning threads slow each call down several times (conftest restores the thread count).
    torch.set_num_threads(1)


TOL = 1e-5


def _load(shared_dir, name: str) -> dict:
    return torch.load(shared_dir / "reference" / name, weights_only=True)


def _model(vector: dict, variant: str, **overrides) -> SDMUNet:
    config = UNetConfig.from_sdm_flags(vector["config"], variant=variant)
    if overrides:
        config = UNetConfig.from_dict(config.to_dict() | overrides)
    model = SDMUNet(config).eval()
    state = {key: value.float() for key, value in vector["state_dict"].items()}
    model.load_state_dict(state, strict=True)
    return model


@pytest.fixture(scope="module")
def tiny(shared_dir):
    return _load(shared_dir, "sdm_unet_tiny_vector.pt")


@pytest.fixture(scope="module")
def tiny_model(tiny):
    return _model(tiny, "gesco")


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def test_tiny_config_is_read_from_flags(tiny):
    config = UNetConfig.from_sdm_flags(tiny["config"], variant="gesco")
    derived = tiny["config"]["derived"]
    assert config.num_label_channels == derived["semantic_channels"] == 6
    assert list(config.attention_resolutions) == derived["attention_ds"]
    assert config.out_channels == derived["out_channels"]
    assert len(tiny["state_dict"]) == 216
    assert sum(v.numel() for v in tiny["state_dict"].values()) == 2_012_614


def test_sinusoid_and_time_embedding(tiny, tiny_model):
    sin_emb = timestep_embedding(tiny["t"], 32)
    assert sin_emb.dtype == torch.float32
    assert _max_err(sin_emb, tiny["sin_emb"]) <= TOL
    with torch.no_grad():
        emb = tiny_model.time_embed(sin_emb)
    assert _max_err(emb, tiny["emb"]) <= TOL


@pytest.mark.parametrize(
    ("x_key", "t_key", "y_key", "out_key"),
    [
        ("x", "t", "y", "out"),
        ("x_rect", "t_rect", "y_rect", "out_rect"),
        ("x", "t_frac", "y", "out_frac"),
        ("x", "t", None, "out_null_y"),
    ],
)
def test_tiny_outputs(tiny, tiny_model, x_key, t_key, y_key, out_key):
    y = tiny[y_key] if y_key else torch.zeros_like(tiny["y"])
    with torch.no_grad():
        out = tiny_model(tiny[x_key], tiny[t_key], y)
    assert out.dtype == torch.float32
    assert _max_err(out, tiny[out_key]) <= TOL


def test_block_stats(tiny, tiny_model):
    stats = []

    def record(name):
        def hook(module, inputs, output):
            out = output.double()
            stats.append((name, list(output.shape), out.sum().item(), out.abs().sum().item()))

        return hook

    model = tiny_model
    named = [("time_embed", model.time_embed), ("middle_block", model.middle_block)]
    named += [(f"input_blocks.{i}", b) for i, b in enumerate(model.input_blocks)]
    named += [(f"output_blocks.{i}", b) for i, b in enumerate(model.output_blocks)]
    handles = [module.register_forward_hook(record(name)) for name, module in named]
    try:
        with torch.no_grad():
            model(tiny["x"], tiny["t"], tiny["y"])
    finally:
        for handle in handles:
            handle.remove()
    assert [list(s[:2]) for s in stats] == [list(s[:2]) for s in tiny["block_stats"]]
    for (name, _, total, abs_total), ref in zip(stats, tiny["block_stats"]):
        assert abs(abs_total - ref[3]) <= 1e-6 * ref[3] + 1e-4, name
        assert abs(total - ref[2]) <= 1e-6 * ref[3] + 1e-4, name


def test_gesco_extra_params_do_not_change_the_output(tiny):
    upstream = _model(
        {
            **tiny,
            "state_dict": {k: v for k, v in tiny["state_dict"].items() if "spade_norm" not in k},
        },
        "sdm",
    )
    with torch.no_grad():
        out = upstream(tiny["x"], tiny["t"], tiny["y"])
    assert _max_err(out, tiny["out"]) <= TOL


def test_new_attention_order_changes_the_output(tiny):
    model = _model(tiny, "gesco", use_new_attention_order=True)
    with torch.no_grad():
        out = model(tiny["x"], tiny["t"], tiny["y"])
    recorded = tiny["config"]["check_maxdiff_if_use_new_attention_order"]
    assert abs(_max_err(out, tiny["out"]) - recorded) <= 1e-4


def test_superres_vector(shared_dir):
    vector = _load(shared_dir, "sdm_superres_tiny_vector.pt")
    model = _model(vector, "spic")
    assert model.config.in_channels == 6 and model.config.num_label_channels == 5
    with torch.no_grad():
        out = model(vector["x"], vector["t"], vector["y"], vector["low_res"])
        up = model._upsample_low_res(vector["low_res"], (32, 32))
    assert _max_err(up, vector["low_res_upsampled_bilinear"]) <= 1e-6
    assert _max_err(out, vector["out"]) <= TOL
