"""Receiver training: exact resumption, EMA, map dropout/noise, super-res inputs, loss terms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from semantic.diffusion.schedule import NoiseSchedule
from semantic.diffusion.training import (
    ReceiverTrainConfig,
    diffusion_loss,
    load_ema_state,
    train_receiver,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription on shared CPUs (conftest restores it)."""
    torch.set_num_threads(1)


LABELS = 4
SIZE = 8


class StandIn(nn.Module):
    """Tiny network honouring the UNet contract ``(x, t, y, low_res=None) -> [B, 6, H, W]``;
    records its inputs. Dropout exercises the global RNG that a resume must restore."""

    def __init__(self, super_res: bool = False) -> None:
        super().__init__()
        self.super_res = super_res
        self.conv_in = nn.Conv2d(3 + LABELS + (3 if super_res else 0), 16, 3, padding=1)
        self.time = nn.Linear(1, 16)
        self.drop = nn.Dropout(0.2)
        self.conv_out = nn.Conv2d(16, 6, 3, padding=1)
        self.seen: list[dict] = []

    def forward(self, x, t, y, low_res=None):
        self.seen.append({"y": y.detach().clone(), "low_res": low_res, "t": t.clone(),
                          "x": x.detach().clone()})
        parts = [x, y]
        if self.super_res:
            parts.append(F.interpolate(low_res, size=x.shape[-2:], mode="bilinear"))
        h = (
            self.conv_in(torch.cat(parts, 1))
            + self.time(t.float()[:, None] / 1000)[..., None, None]
        )
        return self.conv_out(self.drop(F.silu(h)))


def make_model(super_res: bool = False) -> StandIn:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return StandIn(super_res)


def batch_fn(step: int, generator: torch.Generator):
    images = torch.rand(2, 3, SIZE, SIZE, generator=generator) * 2 - 1
    labels = torch.randint(LABELS, (2, SIZE, SIZE), generator=generator)
    y = F.one_hot(labels, LABELS).permute(0, 3, 1, 2).float()
    return images, y, None


def fixed_batch_fn(step: int, generator: torch.Generator):
    """Deterministic batch independent of the generator (to inspect the trainer's draws)."""
    g = torch.Generator().manual_seed(100 + step)
    return batch_fn(step, g)


def small_config(**overrides) -> ReceiverTrainConfig:
    params = {
        "num_steps": 5,
        "batch_size": 2,
        "ema_rate": 0.9,
        "learning_rate": 1e-3,
        "drop_rate": 0.5,
        "map_noise": True,
        "checkpoint_every": 2,
        "device": "cpu",
        "seed": 7,
    }
    params.update(overrides)
    return ReceiverTrainConfig(**params)


def test_resumed_run_equals_an_uninterrupted_run(tmp_path):
    first = train_receiver(
        small_config(num_steps=3), tmp_path / "a", batch_fn=batch_fn, model=make_model(),
        progress=False,
    )  # fmt: skip
    assert (first.step, first.completed) == (3, True)
    resumed_model = make_model()
    resumed = train_receiver(
        small_config(), tmp_path / "a", batch_fn=batch_fn, model=resumed_model, progress=False
    )
    assert (resumed.start_step, resumed.step, resumed.completed) == (3, 5, True)
    straight_model = make_model()
    straight = train_receiver(
        small_config(), tmp_path / "b", batch_fn=batch_fn, model=straight_model, progress=False
    )
    assert resumed.losses == straight.losses and len(straight.losses) == 5
    for key, value in straight_model.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[key], value), key
    ema_a, _ = load_ema_state(tmp_path / "a" / "receiver_ema.pt")
    ema_b, _ = load_ema_state(tmp_path / "b" / "receiver_ema.pt")
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_b)
    state_a = torch.load(tmp_path / "a" / "train_state.pt", weights_only=True)
    state_b = torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)
    assert torch.equal(state_a["generator_state"], state_b["generator_state"])
    for pid, slots in state_b["optimizer"]["state"].items():
        assert all(torch.equal(slots[k], state_a["optimizer"]["state"][pid][k]) for k in slots)
    # Training changed the weights; the EMA lags behind them.
    assert not torch.equal(straight_model.conv_out.weight, make_model().conv_out.weight)
    assert not torch.equal(ema_b["conv_out.weight"], straight_model.conv_out.weight)


def _is_plain(value) -> bool:
    if isinstance(value, torch.Tensor | str | int | float | bool) or value is None:
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return False


def test_checkpoint_contents_ema_and_output_files(tmp_path):
    config = small_config(num_steps=1, drop_rate=0.0, map_noise=False, ema_rate=0.75)
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = train_receiver(config, tmp_path, batch_fn=batch_fn, model=model, progress=False)
    state = torch.load(summary.train_state_path, weights_only=True)
    assert _is_plain(state)
    assert state["step"] == 1 and state["config"] == config.to_dict()
    assert ReceiverTrainConfig.from_dict(state["config"]) == config
    ema, _ = load_ema_state(summary.ema_path)
    for key, value in model.state_dict().items():
        expected = 0.75 * before[key] + 0.25 * value
        torch.testing.assert_close(ema[key], expected, rtol=1e-6, atol=1e-7)
    assert summary.loss_curve_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "losses.csv").read_text().strip().splitlines()
    assert rows[0] == "step,loss,mse,vb,grad_norm" and len(rows) == 2
    assert summary.final_loss == pytest.approx(summary.losses[0])


def test_wall_clock_chunks_resume_to_completion(tmp_path):
    config = small_config(num_steps=2, max_minutes=1e-9)
    chunk = train_receiver(config, tmp_path, batch_fn=batch_fn, model=make_model(), progress=False)
    assert (chunk.step, chunk.completed) == (0, False)
    assert chunk.train_state_path.exists()
    done = train_receiver(
        small_config(num_steps=2), tmp_path, batch_fn=batch_fn, model=make_model(), progress=False
    )
    assert (done.start_step, done.step, done.completed) == (0, 2, True)


def test_resume_rejects_a_different_run_definition(tmp_path):
    train_receiver(
        small_config(num_steps=1), tmp_path, batch_fn=batch_fn, model=make_model(), progress=False
    )
    with pytest.raises(ValueError, match="learning_rate"):
        train_receiver(
            small_config(num_steps=2, learning_rate=5e-4), tmp_path, batch_fn=batch_fn,
            model=make_model(), progress=False,
        )  # fmt: skip


def test_states_older_than_an_option_or_with_unet_notes_resume(tmp_path):
    train_receiver(
        small_config(num_steps=1), tmp_path, batch_fn=batch_fn, model=make_model(), progress=False
    )
    path = tmp_path / "train_state.pt"
    saved = torch.load(path, weights_only=True)
    assert small_config().grad_clip_norm == ReceiverTrainConfig().grad_clip_norm
    assert small_config().ema_rate != ReceiverTrainConfig().ema_rate

    # Written before ``grad_clip_norm`` existed (the run used its default), with UNet notes.
    state = {**saved, "config": {k: v for k, v in saved["config"].items()
                                 if k != "grad_clip_norm"}}
    state["config"]["unet"] = {**state["config"].get("unet", {}), "notes": "informational"}
    torch.save(state, path)
    done = train_receiver(small_config(num_steps=2), tmp_path, batch_fn=batch_fn,
                          model=make_model(), progress=False)
    assert (done.start_step, done.step) == (1, 2)

    # A missing option whose default differs from the run's value is a different run.
    state = {**saved, "config": {k: v for k, v in saved["config"].items() if k != "ema_rate"}}
    torch.save(state, path)
    with pytest.raises(ValueError, match="ema_rate"):
        train_receiver(small_config(num_steps=2), tmp_path, batch_fn=batch_fn,
                       model=make_model(), progress=False)


def _seen_maps(tmp_path, **overrides):
    model = make_model()
    config = small_config(num_steps=2, **overrides)
    train_receiver(config, tmp_path, batch_fn=fixed_batch_fn, model=model, progress=False)
    truth = [fixed_batch_fn(step, None)[1] for step in range(2)]
    return [call["y"] for call in model.seen], truth


def test_label_dropout_zeroes_whole_maps(tmp_path):
    seen, truth = _seen_maps(tmp_path / "all", drop_rate=1.0, map_noise=False)
    assert all(not y.any() for y in seen)
    seen, truth = _seen_maps(tmp_path / "none", drop_rate=0.0, map_noise=False)
    assert all(torch.equal(s, t) for s, t in zip(seen, truth))


@pytest.mark.parametrize("broadcast", [False, True])
def test_map_noise_per_channel_or_gesco_broadcast(tmp_path, broadcast):
    seen, truth = _seen_maps(
        tmp_path, drop_rate=0.0, map_noise_stds=(0.5,), map_noise_broadcast=broadcast
    )
    for s, t in zip(seen, truth):
        residual = s - t
        spread_across_channels = float((residual - residual[:, :1]).abs().max())
        if broadcast:
            assert spread_across_channels < 1e-6  # GESCO: one value per pixel
        else:
            assert spread_across_channels > 0.5
            n = residual.numel()
            assert abs(float(residual.std()) - 0.5) < 4 * 0.5 / math.sqrt(2 * n)


def test_super_res_low_res_is_downscaled_then_degraded(tmp_path):
    calls = []

    def degrade(images):
        calls.append(images.clone())
        return (images * 0.5).round(decimals=1)

    model = make_model(super_res=True)
    config = small_config(num_steps=2, super_res=True, lowres_factor=2, map_noise=False)
    train_receiver(
        config, tmp_path, batch_fn=fixed_batch_fn, model=model, degrade_lowres=degrade,
        progress=False,
    )  # fmt: skip
    for step, call in enumerate(model.seen):
        images = fixed_batch_fn(step, None)[0]
        expected_small = F.avg_pool2d(images, 2)
        torch.testing.assert_close(calls[step], expected_small)
        torch.testing.assert_close(call["low_res"], (expected_small * 0.5).round(decimals=1))
        assert call["low_res"].shape == (2, 3, SIZE // 2, SIZE // 2)


def test_hybrid_loss_closed_forms():
    schedule = NoiseSchedule.from_name("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = (torch.randint(0, 256, (3, 3, 4, 4), generator=g) / 127.5 - 1).clamp(-0.99, 0.99)
    noise = torch.randn(3, 3, 4, 4, generator=g)
    t = torch.tensor([0, 10, 700])
    x_t = schedule.q_sample(x0, t, noise)
    # Exact ε and v = −1 (posterior variance): MSE 0, KL 0 for t > 0.
    out = torch.cat([noise, -torch.ones_like(noise)], 1)
    terms = diffusion_loss(schedule, out, x0, x_t, t, noise)
    assert float(terms.mse.abs().max()) == 0.0
    assert float(terms.vb[1:].abs().max()) < 1e-4
    # t = 0: decoder NLL of interior pixels, Gaussian of std σ around x0 over a bin of ±1/255.
    sigma = math.exp(0.5 * float(schedule.posterior_log_variance_clipped[0]))
    half = (1 / 255) / sigma / math.sqrt(2)
    expected_bits = -math.log(math.erf(half)) / math.log(2)
    # Mean at t = 0 is x̂_0 (coef1 = 1) up to float32 rounding of the ε inversion.
    assert float(terms.vb[0]) == pytest.approx(expected_bits, rel=2e-2)
    mse_only = diffusion_loss(schedule, out, x0, x_t, t, noise, kind="mse")
    assert not mse_only.vb.any() and torch.equal(mse_only.loss, mse_only.mse)


def test_vb_term_trains_only_the_variance_channels():
    schedule = NoiseSchedule.from_name("linear", 1000)
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    noise = torch.randn(2, 3, 4, 4)
    t = torch.tensor([5, 500])
    x_t = schedule.q_sample(x0, t, noise)
    out = torch.randn(2, 6, 4, 4, requires_grad=True)
    terms = diffusion_loss(schedule, out, x0, x_t, t, noise)
    (grad_vb,) = torch.autograd.grad(terms.vb.sum(), out)
    assert not grad_vb[:, :3].any() and grad_vb[:, 3:].abs().sum() > 0
    (grad_mse,) = torch.autograd.grad(terms.mse.sum(), out)
    assert not grad_mse[:, 3:].any()
    with pytest.raises(ValueError, match="learned-variance"):
        diffusion_loss(schedule, out[:, :3], x0, x_t, t, noise)


def test_config_validation_and_yaml_round_trip(tmp_path):
    with pytest.raises(ValueError, match="valid"):
        ReceiverTrainConfig.from_dict({"num_step": 3})
    with pytest.raises(ValueError, match="hybrid"):
        ReceiverTrainConfig(loss="l1")
    config = small_config(data={"dataset": "synthetic_streets", "size": [64, 128]})
    path = tmp_path / "receiver.yaml"
    path.write_text(yaml.safe_dump({"receiver": config.to_dict()}))
    assert ReceiverTrainConfig.from_yaml(path) == config


def test_trainer_builds_the_sdm_unet_from_the_config(tmp_path):
    unet = pytest.importorskip(
        "semantic.diffusion.unet", reason="semantic.diffusion.unet (SDMUNet) is not available"
    )
    unet_config = unet.UNetConfig(
        image_size=SIZE, model_channels=32, num_res_blocks=1, channel_mult=(1,),
        num_label_channels=LABELS, spade_hidden=32,
    )  # fmt: skip
    config = small_config(num_steps=2, unet=unet_config.to_dict())
    summary = train_receiver(config, tmp_path, batch_fn=batch_fn, progress=False)
    assert summary.completed and all(math.isfinite(v) for v in summary.losses)
    ema, unet_dict = load_ema_state(summary.ema_path)
    model = unet.SDMUNet(unet.UNetConfig.from_dict(unet_dict))
    model.load_state_dict(ema)
    y = batch_fn(0, torch.Generator())[1]
    with torch.no_grad():
        out = model(torch.zeros(2, 3, SIZE, SIZE), torch.tensor([10, 900]), y)
    assert out.shape == (2, 6, SIZE, SIZE)


def test_cpu_bf16_autocast_keeps_fp32_state_and_may_change_on_resume(tmp_path):
    seen_dtypes = []

    class Probe(StandIn):
        def forward(self, x, t, y, low_res=None):
            out = super().forward(x, t, y, low_res)
            seen_dtypes.append(out.dtype)
            return out

    def probe():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return Probe()

    first = train_receiver(small_config(num_steps=2, precision="bf16"), tmp_path,
                           batch_fn=batch_fn, model=probe(), progress=False)
    assert first.completed and seen_dtypes == [torch.bfloat16] * 2
    state = torch.load(first.train_state_path, weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["model"].values())
    assert all(v.dtype == torch.float32 for v in state["ema"].values())
    assert all(s["exp_avg"].dtype == torch.float32 for s in state["optimizer"]["state"].values())
    seen_dtypes.clear()
    resumed = train_receiver(small_config(num_steps=4, precision="fp32"), tmp_path,
                             batch_fn=batch_fn, model=probe(), progress=False)
    assert (resumed.start_step, resumed.step) == (2, 4)
    assert seen_dtypes == [torch.float32] * 2


def test_compact_state_is_smaller_and_resumes(tmp_path):
    from semantic.diffusion.export import compact_train_state

    straight_model = make_model()
    train_receiver(small_config(num_steps=5), tmp_path / "b", batch_fn=batch_fn,
                   model=straight_model, progress=False)
    train_receiver(small_config(num_steps=3), tmp_path / "a", batch_fn=batch_fn,
                   model=make_model(), progress=False)
    full = tmp_path / "a" / "train_state.pt"
    compact = compact_train_state(full, tmp_path / "c" / "train_state.pt")
    state = torch.load(compact, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state["ema"].values() if v.is_floating_point())
    slots = list(state["optimizer"]["state"].values())
    assert all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.bfloat16 for s in slots)
    assert all(v.dtype == torch.float32 for v in state["model"].values())
    resumed_model = make_model()
    resumed = train_receiver(small_config(), tmp_path / "c", batch_fn=batch_fn,
                             model=resumed_model, progress=False)
    assert (resumed.start_step, resumed.step) == (3, 5)
    # The same batches and draws as the uninterrupted run; only one rounding of the moments.
    straight = torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)
    assert resumed.losses[:3] == straight["history"]["loss"][:3]
    for key, value in straight_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="not a receiver training state"):
        compact_train_state(tmp_path / "a" / "receiver_ema.pt", tmp_path / "x.pt")


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_residual_receivers_diffuse_the_detail_over_the_upsampled_coarse_image(tmp_path, scale):
    from semantic.diffusion.unet import upsample_low_res

    runs = {}
    for residual in (False, True):
        model = make_model(super_res=True)
        config = small_config(num_steps=2, super_res=True, residual=residual,
                              residual_scale=scale, map_noise=False)
        train_receiver(config, tmp_path / str(residual), batch_fn=fixed_batch_fn, model=model,
                       progress=False)
        runs[residual] = model.seen
    schedule = NoiseSchedule.from_name("linear", 1000)
    for step, (direct, residual) in enumerate(zip(runs[False], runs[True])):
        # The same draws: x_t differs exactly by sqrt(ᾱ_t) · (x0 - k (x0 - up(low_res))).
        assert torch.equal(direct["t"], residual["t"])
        x0 = fixed_batch_fn(step, None)[0]
        up = upsample_low_res(direct["low_res"], (SIZE, SIZE))
        root = schedule.alphas_cumprod[direct["t"]].sqrt().float().view(-1, 1, 1, 1)
        torch.testing.assert_close(direct["x"] - residual["x"],
                                   root * (x0 - scale * (x0 - up)))
    with pytest.raises(ValueError, match="residual needs super_res"):
        small_config(residual=True)
    with pytest.raises(ValueError, match="residual_scale"):
        small_config(super_res=True, residual=True, residual_scale=0.0)
    with pytest.raises(ValueError, match="residual"):
        small_config(super_res=True, residual=True,
                     early_stopping={"every": 1, "patience": 1})
