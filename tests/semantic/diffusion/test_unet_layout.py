"""SDMUNet structure: published state-dict layouts (built on the meta device) and configs."""

from __future__ import annotations

import json

import pytest
import torch

from semantic.diffusion.unet import SDMUNet, UNetConfig


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks gain nothing from a second OpenMP thread, and on a busy 2-core machine two
    # spinning threads slow each call down several times (conftest restores the thread count).
    torch.set_num_threads(1)


REF = "reference"


def _meta_shapes(config: UNetConfig) -> dict[str, list[int]]:
    with torch.device("meta"):
        model = SDMUNet(config)
    return {key: list(value.shape) for key, value in model.state_dict().items()}


@pytest.mark.parametrize(
    ("factory", "key_file", "num_keys", "num_params"),
    [
        (
            UNetConfig.gesco_cityscapes256,
            "sdm_unet_gesco_cityscapes256.keys.json",
            868,
            674_707_206,
        ),
        (UNetConfig.spic_cityscapes, "sdm_unet_spic_cityscapes.keys.json", 766, 653_012_230),
    ],
)
def test_published_state_dict_layout(shared_dir, factory, key_file, num_keys, num_params):
    expected = json.loads((shared_dir / REF / key_file).read_text())
    shapes = _meta_shapes(factory())
    assert len(shapes) == num_keys == len(expected)
    assert shapes == expected
    assert list(shapes) == list(expected)  # same state_dict() order
    total = sum(torch.Size(s).numel() for s in shapes.values())
    assert total == num_params


def test_sdm_upstream_layout_is_gesco_without_spade_norm(shared_dir):
    expected = json.loads((shared_dir / REF / "sdm_unet_gesco_cityscapes256.keys.json").read_text())
    upstream = {k: v for k, v in expected.items() if ".spade_norm." not in k}
    config = UNetConfig.from_sdm_flags(
        {**_gesco_flags(), "channel_mult": "1,1,2,2,4,4"}, variant="sdm"
    )
    shapes = _meta_shapes(config)
    assert shapes == upstream
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 653_984_518


def _gesco_flags() -> dict:
    return {
        "image_size": 256,
        "num_channels": 256,
        "num_res_blocks": 2,
        "attention_resolutions": "32,16,8",
        "num_head_channels": 64,
        "num_classes": 35,
        "no_instance": False,
        "learn_sigma": True,
        "class_cond": True,
        "resblock_updown": True,
        "use_scale_shift_norm": True,
    }


def test_published_factories_match_facts():
    gesco = UNetConfig.gesco_cityscapes256()
    assert gesco.channel_mult == (1, 1, 2, 2, 4, 4)
    assert gesco.attention_resolutions == (8, 16, 32)
    assert (gesco.num_label_channels, gesco.in_channels, gesco.out_channels) == (36, 3, 6)
    assert gesco.gesco_extra_params and not gesco.super_res and gesco.spade_hidden == 128
    spic = UNetConfig.spic_cityscapes()
    assert (spic.num_label_channels, spic.in_channels, spic.image_channels) == (19, 6, 3)
    assert spic.super_res and not spic.gesco_extra_params


def test_from_sdm_flags_rules():
    flags = _gesco_flags()
    assert UNetConfig.from_sdm_flags({**flags, "one_hot_label": False}).num_label_channels == 2
    assert UNetConfig.from_sdm_flags({**flags, "no_instance": "True"}).num_label_channels == 35
    assert UNetConfig.from_sdm_flags({**flags, "image_size": 128}).channel_mult == (1, 1, 2, 3, 4)
    assert UNetConfig.from_sdm_flags({**flags, "learn_sigma": False}).out_channels == 3
    with pytest.raises(ValueError, match="class_cond"):
        UNetConfig.from_sdm_flags({**flags, "class_cond": False})
    with pytest.raises(KeyError, match="num_classes"):
        UNetConfig.from_sdm_flags({k: v for k, v in flags.items() if k != "num_classes"})
    with pytest.raises(ValueError, match="channel_mult"):
        UNetConfig.from_sdm_flags({**flags, "image_size": 96})


def test_config_dict_round_trip_is_plain():
    for config in (
        UNetConfig.gesco_cityscapes256(),
        UNetConfig.small_cpu_map((128, 256)),
        UNetConfig.small_cpu_superres((64, 128), num_label_channels=7),
    ):
        data = config.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert UNetConfig.from_dict(json.loads(json.dumps(data))) == config
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.from_dict({**UNetConfig.spic_cityscapes().to_dict(), "bogus": 1})


def test_invalid_configs_are_rejected():
    base = dict(image_size=32, model_channels=32, num_res_blocks=1, num_label_channels=6)
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(**base, channel_mult=(1, 1.5))
    with pytest.raises(ValueError, match="one entry per"):
        UNetConfig(**base | {"num_res_blocks": (1, 1, 1)}, channel_mult=(1, 1))
    with pytest.raises(ValueError, match="resblock_updown"):
        UNetConfig(**base, channel_mult=(1, 1), resblock_updown=False)
    with pytest.raises(ValueError, match="no small config"):
        UNetConfig.small_cpu_map((96, 192))


def test_per_level_block_counts_shape_the_network():
    config = UNetConfig(
        image_size=32,
        model_channels=32,
        num_res_blocks=(0, 2),
        channel_mult=(0.5, 1),
        num_label_channels=4,
        norm_groups=16,
    )
    model = SDMUNet(config)
    # input conv, down block, 2 res blocks; decoder: 3 blocks at level 1, 1 at level 0.
    assert len(model.input_blocks) == 4
    assert len(model.output_blocks) == 4
    assert model.input_blocks[3][0].in_layers[2].out_channels == 32
    assert model.output_blocks[3][0].in_layers[1].in_channels == 32 + 16
    out = model(torch.randn(1, 3, 8, 16), torch.tensor([7]), torch.zeros(1, 4, 8, 16))
    assert out.shape == (1, 6, 8, 16)


@pytest.mark.parametrize("super_res", [False, True])
def test_small_receivers_run_at_their_size(super_res):
    size = (64, 128)
    if super_res:
        config = UNetConfig.small_cpu_superres(size)
        low = torch.rand(1, 3, 32, 64) * 2 - 1
    else:
        config = UNetConfig.small_cpu_map(size, num_label_channels=20)
        low = None
    assert (config.in_channels, config.num_label_channels) == ((6, 19) if super_res else (3, 20))
    model = SDMUNet(config).eval()
    y = torch.zeros(1, config.num_label_channels, *size)
    y[:, 2] = 1
    with torch.no_grad():
        cache = model.precompute_condition(y, low)
        out = model(torch.randn(1, 3, *size), torch.tensor([999]), cache=cache)
    assert out.shape == (1, 6, *size) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
