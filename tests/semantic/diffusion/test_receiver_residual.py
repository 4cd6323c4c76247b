"""Residual super-resolution receivers: the chain samples the detail, the coarse image adds back."""

from __future__ import annotations

import pytest
import torch

from semantic.diffusion.guidance import Condition
from semantic.diffusion.receiver import DiffusionReceiver, load_receiver
from semantic.diffusion.training import EMA_EXPORT_FORMAT, ReceiverTrainConfig
from semantic.diffusion.unet import SDMUNet, UNetConfig, upsample_low_res


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _unet(super_res: bool = True) -> SDMUNet:
    cfg = UNetConfig(image_size=16, model_channels=16, num_res_blocks=1, channel_mult=(1, 2),
                     num_label_channels=4, spade_hidden=16, norm_groups=8,
                     in_channels=6 if super_res else 3, super_res=super_res)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return SDMUNet(cfg)


def _condition():
    y = torch.zeros(2, 4, 16, 32)
    y[:, 1] = 1
    low = torch.rand(2, 3, 8, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    return y, low


def test_residual_output_is_the_unclipped_chain_plus_the_upsampled_coarse_image():
    unet = _unet()
    y, low = _condition()
    residual = DiffusionReceiver(unet, steps=4, residual=True)
    assert residual.sampler.clip_denoised is False
    images = residual.generate(y, torch.Generator().manual_seed(0), low_res=low)
    plain = DiffusionReceiver(unet, steps=4)
    plain.sampler.clip_denoised = False
    x_T = torch.randn(2, 3, 16, 32, generator=torch.Generator().manual_seed(0))
    chain = plain.sampler.sample(plain.denoiser, (2, 3, 16, 32), Condition(y=y, low_res=low),
                                 torch.Generator().manual_seed(0), x_T=x_T).images
    expected = (chain + upsample_low_res(low, (16, 32))).clamp(-1, 1)
    torch.testing.assert_close(images, expected)
    with pytest.raises(ValueError, match="super-resolution"):
        DiffusionReceiver(_unet(super_res=False), residual=True)


def test_load_receiver_reads_residual_from_the_training_config(tmp_path):
    unet = _unet()
    for residual in (False, True):
        train = ReceiverTrainConfig(unet=unet.config.to_dict(), super_res=True,
                                    residual=residual)
        path = tmp_path / f"rx_{residual}.pt"
        torch.save({"format": EMA_EXPORT_FORMAT, "unet_config": unet.config.to_dict(),
                    "state_dict": unet.state_dict(), "train_config": train.to_dict()}, path)
        assert load_receiver(path, steps=2).residual is residual
