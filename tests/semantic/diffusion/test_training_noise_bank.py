"""Receiver training options of Diff-GO^n: noise-restricted forward diffusion, early stopping."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import semantic.diffusion.early_stopping as early_stopping_module
from semantic.diffusion.noise_bank import NoiseBank
from semantic.diffusion.schedule import NoiseSchedule
from semantic.diffusion.training import ReceiverTrainConfig, load_ema_state, train_receiver

LABELS = 4
SIZE = 8


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Recorder(nn.Module):
    """Tiny network honouring the UNet contract; records the x_t and t it is fed."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3 + LABELS, 6, 3, padding=1)
        self.time = nn.Linear(1, 6)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, t, y):
        if self.training:
            self.seen.append((x.detach().clone(), t.clone()))
        return self.conv(torch.cat([x, y], 1)) + self.time(t.float()[:, None] / 1000)[..., None,
                                                                                     None]


def make_model() -> Recorder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Recorder()


def fixed_batch_fn(step: int, generator: torch.Generator):
    g = torch.Generator().manual_seed(100 + step)
    images = torch.rand(2, 3, SIZE, SIZE, generator=g) * 2 - 1
    labels = torch.randint(LABELS, (2, SIZE, SIZE), generator=g)
    return images, F.one_hot(labels, LABELS).permute(0, 3, 1, 2).float(), None


def val_batch_fn(step: int, generator: torch.Generator):
    return fixed_batch_fn(10_000 + step, generator)


def config(**overrides) -> ReceiverTrainConfig:
    params = {"num_steps": 4, "batch_size": 2, "ema_rate": 0.9, "learning_rate": 1e-3,
              "drop_rate": 0.0, "checkpoint_every": 2, "device": "cpu", "seed": 3,
              "loss": "mse"}
    params.update(overrides)
    return ReceiverTrainConfig(**params)


def test_docstring_examples():
    result = doctest.testmod(early_stopping_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("use_bank", [True, False])
def test_forward_noise_comes_from_the_bank(tmp_path, use_bank):
    bank = NoiseBank(seed=5, size=3)
    entries = bank.entries(range(3), (3, SIZE, SIZE))
    model = make_model()
    cfg = config(noise_bank={"seed": 5, "size": 3} if use_bank else None)
    train_receiver(cfg, tmp_path, batch_fn=fixed_batch_fn, model=model, progress=False)
    schedule = NoiseSchedule.from_name("linear", 1000)
    picked = []
    for step, (x_t, t) in enumerate(model.seen):
        x0 = fixed_batch_fn(step, None)[0]
        for i in range(x0.shape[0]):
            a = schedule.alphas_cumprod[t[i]].float()
            eps = (x_t[i] - a.sqrt() * x0[i]) / (1 - a).sqrt()
            match = [k for k in range(3) if torch.allclose(eps, entries[k], atol=1e-3)]
            picked.extend(match)
            assert bool(match) == use_bank
    if use_bank:
        assert len(set(picked)) > 1  # a uniform draw per sample, not one fixed entry


def test_early_stopping_stops_on_a_flat_validation_loss_and_keeps_the_best(tmp_path):
    # No learning: the validation loss is constant, so only the first validation improves.
    cfg = config(num_steps=100, learning_rate=0.0,
                 early_stopping={"every": 2, "patience": 3, "val_batches": 2})
    summary = train_receiver(cfg, tmp_path, batch_fn=fixed_batch_fn, model=make_model(),
                             val_batch_fn=val_batch_fn, progress=False)
    assert summary.early_stopped and not summary.completed
    assert summary.step == 2 * (1 + 3) and summary.best_step == 2
    assert [int(r[0]) for r in summary.validation] == [2, 4, 6, 8]
    assert len({r[1] for r in summary.validation}) == 1
    best = torch.load(tmp_path / "receiver_best.pt", weights_only=True)
    assert best["step"] == 2
    assert (tmp_path / "validation.csv").read_text().startswith("step,loss,smoothed")
    # A stopped run stays stopped when resumed with a larger budget.
    again = train_receiver(config(num_steps=200, learning_rate=0.0,
                                  early_stopping={"every": 2, "patience": 3, "val_batches": 2}),
                           tmp_path, batch_fn=fixed_batch_fn, model=make_model(),
                           val_batch_fn=val_batch_fn, progress=False)
    assert again.step == 8 and again.early_stopped


def test_early_stopping_state_survives_resumption(tmp_path):
    rule = {"every": 2, "patience": 50, "val_batches": 1, "smoothing": 0.5}
    straight = train_receiver(config(num_steps=8, early_stopping=rule), tmp_path / "a",
                              batch_fn=fixed_batch_fn, model=make_model(),
                              val_batch_fn=val_batch_fn, progress=False)
    train_receiver(config(num_steps=4, early_stopping=rule), tmp_path / "b",
                   batch_fn=fixed_batch_fn, model=make_model(), val_batch_fn=val_batch_fn,
                   progress=False)
    resumed = train_receiver(config(num_steps=8, early_stopping=rule), tmp_path / "b",
                             batch_fn=fixed_batch_fn, model=make_model(),
                             val_batch_fn=val_batch_fn, progress=False)
    assert resumed.validation == straight.validation and len(straight.validation) == 4
    assert resumed.best_step == straight.best_step
    # Learning lowers the validation loss of the EMA weights.
    assert straight.validation[-1][1] < straight.validation[0][1]


def test_tiny_sdm_unet_with_both_options(tmp_path):
    from semantic.diffusion.unet import SDMUNet, UNetConfig

    unet = UNetConfig(image_size=SIZE, model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                      attention_resolutions=(), num_head_channels=16, num_label_channels=LABELS,
                      spade_hidden=8)
    cfg = config(num_steps=4, loss="hybrid", unet=unet.to_dict(),
                 noise_bank={"seed": 0, "size": 2**40},
                 early_stopping={"every": 2, "patience": 2, "val_batches": 1})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SDMUNet(unet)
    summary = train_receiver(cfg, tmp_path, batch_fn=fixed_batch_fn, model=model,
                             val_batch_fn=val_batch_fn, progress=False)
    assert summary.step == 4 and len(summary.validation) == 2
    state, _ = load_ema_state(tmp_path / "receiver_best.pt")
    assert all(torch.isfinite(v.float()).all() for v in state.values())


def test_option_errors(tmp_path):
    with pytest.raises(ValueError, match="seed and size"):
        config(noise_bank={"seed": 0})
    with pytest.raises(ValueError, match="bank size"):
        config(noise_bank={"seed": 0, "size": 0})
    with pytest.raises(ValueError, match="unknown early_stopping"):
        config(early_stopping={"patients": 3})
    with pytest.raises(ValueError, match="patience"):
        config(early_stopping={"patience": 0})
    with pytest.raises(ValueError, match="val_batch_fn"):
        train_receiver(config(early_stopping={}), tmp_path, batch_fn=fixed_batch_fn,
                       model=make_model(), progress=False)
    round_trip = ReceiverTrainConfig.from_dict(
        config(noise_bank={"seed": 1, "size": 8}, early_stopping={"every": 5}).to_dict())
    assert round_trip.noise_bank == {"seed": 1, "size": 8}
    assert round_trip.early_stopping == {"every": 5}
