"""Residual super-resolution receivers: the chain samples the detail, the coarse image adds back."""

from __future__ import annotations

import pytest
import torch

from semantic.diffusion.guidance import Condition, ResidualClippedDenoiser
from semantic.diffusion.receiver import DiffusionReceiver, load_receiver
from semantic.diffusion.schedule import NoiseSchedule
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


def test_residual_output_is_the_scaled_chain_plus_the_upsampled_coarse_image():
    unet = _unet()
    y, low = _condition()
    residual = DiffusionReceiver(unet, steps=4, residual=True, residual_scale=3.0)
    assert residual.sampler.clip_denoised is False
    assert isinstance(residual.denoiser, ResidualClippedDenoiser)
    images = residual.generate(y, torch.Generator().manual_seed(0), low_res=low)
    x_T = torch.randn(2, 3, 16, 32, generator=torch.Generator().manual_seed(0))
    chain = residual.sampler.sample(residual.denoiser, (2, 3, 16, 32),
                                    Condition(y=y, low_res=low), torch.Generator(),
                                    x_T=x_T).images
    expected = (chain / 3.0 + upsample_low_res(low, (16, 32))).clamp(-1, 1)
    torch.testing.assert_close(images, expected)
    with pytest.raises(ValueError, match="super-resolution"):
        DiffusionReceiver(_unet(super_res=False), residual=True)


class _ConstantEps:
    """A denoiser returning a fixed ε (and variance channels) whatever the input."""

    def __init__(self, eps: torch.Tensor):
        self.eps = eps

    def __call__(self, x, t, cond):
        return torch.cat([self.eps, torch.full_like(self.eps, 0.25)], dim=1)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_residual_clipping_bounds_the_image_and_leaves_inner_estimates_alone(scale):
    schedule = NoiseSchedule.from_name("linear", 1000)
    _, low = _condition()
    up = upsample_low_res(low, (16, 32)).double()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 16, 32, generator=gen)
    t = torch.tensor([999, 10])
    abar = schedule.alphas_cumprod.double()[t].view(-1, 1, 1, 1)
    cond = Condition(y=torch.zeros(2, 4, 16, 32), low_res=low)
    # A wild ε: the implied image lands far outside [-1, 1] and must be clipped into it.
    wild = ResidualClippedDenoiser(_ConstantEps(torch.randn(2, 3, 16, 32, generator=gen) * 5),
                                   schedule, scale)(x, t, cond)
    r0 = (x.double() - (1 - abar).sqrt() * wild[:, :3].double()) / abar.sqrt()
    image = r0 / scale + up
    assert image.min() >= -1 - 1e-4 and image.max() <= 1 + 1e-4
    assert torch.equal(wild[:, 3:], torch.full_like(wild[:, 3:], 0.25))
    # An ε whose implied image is inside [-1, 1] passes through unchanged.
    target = scale * 0.5 * torch.tanh(torch.randn(2, 3, 16, 32, generator=gen)).double()
    inside = target.clamp(scale * (-1 - up), scale * (1 - up))
    eps = ((x.double() - abar.sqrt() * inside) / (1 - abar).sqrt()).float()
    out = ResidualClippedDenoiser(_ConstantEps(eps), schedule, scale)(x, t, cond)
    torch.testing.assert_close(out[:, :3], eps, rtol=1e-4, atol=1e-4)


def test_load_receiver_reads_residual_from_the_training_config(tmp_path):
    unet = _unet()
    for residual in (False, True):
        train = ReceiverTrainConfig(unet=unet.config.to_dict(), super_res=True,
                                    residual=residual, residual_scale=2.5)
        path = tmp_path / f"rx_{residual}.pt"
        torch.save({"format": EMA_EXPORT_FORMAT, "unet_config": unet.config.to_dict(),
                    "state_dict": unet.state_dict(), "train_config": train.to_dict()}, path)
        rx = load_receiver(path, steps=2)
        assert rx.residual is residual and rx.residual_scale == 2.5
