"""``diffgo``: goal-selected bank index, exact regeneration, counted streams, failure policy."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest
import torch

import semantic.schemes.diffgo as diffgo_module
from link.channel_io import deliver
from link.config import ConfigError, parse_scenario
from link.transport import DeliveredStream
from phy.link import PhyLink
from semantic.diffusion.receiver import DiffusionReceiver
from semantic.diffusion.unet import SDMUNet, UNetConfig
from semantic.schemes.base import Delivered, SourceBatch
from semantic.schemes.diffgo import DiffgoConfig, DiffgoScheme, build_diffgo, per_image_psnr
from tests.semantic_fixtures import ldpc_16qam_awgn_link, two_scenes

SIZE = (32, 64)


def _receiver(labels: int = 20, sampler: str = "ddim", eta: float = 0.0) -> DiffusionReceiver:
    torch.manual_seed(0)
    cfg = UNetConfig(image_size=32, model_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                     attention_resolutions=(), num_head_channels=16, num_label_channels=labels,
                     spade_hidden=16)
    return DiffusionReceiver(SDMUNet(cfg), sampler=sampler, steps=2, guidance_scale=1.5,
                             eta=eta)


def _segment(images: np.ndarray) -> torch.Tensor:
    """A stand-in segmenter: class 0 where the red channel is dark, else class 2."""
    return torch.from_numpy(np.where(images[..., 0] < 128, 0, 2).astype(np.int64))


@pytest.fixture(scope="module")
def source() -> SourceBatch:
    return two_scenes(SIZE)


@pytest.fixture(scope="module")
def link() -> PhyLink:
    return ldpc_16qam_awgn_link()


@pytest.fixture(scope="module")
def psnr_scheme() -> DiffgoScheme:
    return DiffgoScheme(DiffgoConfig(bank_size=6, candidates=6, goal="psnr"), _receiver())


@pytest.fixture(scope="module")
def psnr_tx(psnr_scheme, source):
    return psnr_scheme.transmit(source)


def test_streams_are_itemised_and_the_index_costs_ceil_log2_n(psnr_tx, source):
    for payload in psnr_tx.payloads:
        assert list(payload.streams) == ["map", "edges", "index"]
        assert payload.bits("index") == 3  # ceil(log2 6)
        assert len(payload.streams["index"].data) == 1
        assert payload.total_bits == sum(s.num_bits for s in payload.streams.values())
    no_edges = DiffgoScheme(DiffgoConfig(bank_size=2**40, candidates=2, goal="psnr",
                                         instance_edges=False), _receiver(19))
    tx = no_edges.transmit(source)
    for payload in tx.payloads:
        assert list(payload.streams) == ["map", "index"] and payload.bits("index") == 40


def test_selection_is_the_best_candidate_by_the_goal(psnr_scheme, psnr_tx, source):
    sel = psnr_tx.state["selection"]
    for j in range(len(source)):
        assert sel.candidates[j] == list(range(6))
        # Recompute every candidate independently: the scores and the choice must agree.
        y = psnr_scheme.condition(source.labels[j], psnr_scheme._encode(
            source.labels[j], source.instances[j])[2])
        images = np.stack([psnr_scheme.regenerate(y, i, torch.Generator()) for i in range(6)])
        scores = per_image_psnr(images, source.images[j])
        np.testing.assert_array_equal(scores, sel.scores[j])
        assert sel.indices[j] == int(np.argmax(scores))
        np.testing.assert_array_equal(sel.images[j], images[sel.indices[j]])
        # Distinct bank entries really give distinct images.
        assert len({im.tobytes() for im in images}) > 1
    assert (sel.gain_over_entry0() >= 0).all()


def test_receiver_regenerates_the_chosen_image_bit_exactly_over_the_phy(psnr_scheme, psnr_tx,
                                                                        source, link):
    delivered, counts = deliver(psnr_tx, link, 30.0, SIZE, torch.Generator().manual_seed(0))
    assert counts.stream_failures == 0
    # The PHY or anything else may change torch's thread count; the scheme pins its own.
    torch.set_num_threads(2)
    rec = psnr_scheme.receive(delivered, torch.Generator().manual_seed(123))
    np.testing.assert_array_equal(rec.images, psnr_tx.state["selection"].images)
    np.testing.assert_array_equal(rec.maps, source.labels)
    assert not any(flag.any() for flag in rec.flags.values())


def test_miou_goal_with_a_large_bank_and_a_candidate_subset(source, link):
    scheme = DiffgoScheme(DiffgoConfig(bank_size=2**40, candidates=3, goal="miou"),
                          _receiver(), segment=_segment)
    tx = scheme.transmit(source)
    sel = tx.state["selection"]
    for j in range(len(source)):
        tried = sel.candidates[j]
        assert tried[0] == 0 and len(set(tried)) == 3 and sel.indices[j] in tried
        assert ((sel.scores[j] >= 0) & (sel.scores[j] <= 1)).all()
        assert tx.payloads[j].bits("index") == 40
    # The subset depends on the image (its data-set index), not on its position in the batch.
    assert sel.candidates[0] != sel.candidates[1]
    delivered, _ = deliver(tx, link, 30.0, SIZE, torch.Generator().manual_seed(1))
    rec = scheme.receive(delivered, torch.Generator())
    np.testing.assert_array_equal(rec.images, sel.images)


def _damaged(delivered: Delivered, name: str, image: int) -> Delivered:
    streams = list(delivered.digital[name])
    streams[image] = dataclasses.replace(streams[image], ok=False,
                                         data=bytes(len(streams[image].data)))
    return dataclasses.replace(delivered, digital={**delivered.digital, name: streams})


def test_failure_policy(psnr_scheme, psnr_tx, source, link):
    delivered, _ = deliver(psnr_tx, link, 30.0, SIZE, torch.Generator().manual_seed(0))
    sel = psnr_tx.state["selection"]
    y0 = psnr_scheme.condition(source.labels[0], psnr_scheme._encode(
        source.labels[0], source.instances[0])[2])

    rec = psnr_scheme.receive(_damaged(delivered, "index", 0), torch.Generator())
    assert rec.flags["index_failed"].tolist() == [True, False]
    np.testing.assert_array_equal(rec.images[0], psnr_scheme.regenerate(y0, 0, torch.Generator()))
    np.testing.assert_array_equal(rec.images[1], sel.images[1])

    rec = psnr_scheme.receive(_damaged(delivered, "map", 0), torch.Generator())
    assert rec.flags["map_failed"].tolist() == [True, False]
    assert (rec.maps[0] == 255).all()
    null = torch.zeros_like(y0)
    np.testing.assert_array_equal(
        rec.images[0], psnr_scheme.regenerate(null, int(sel.indices[0]), torch.Generator()))

    rec = psnr_scheme.receive(_damaged(delivered, "edges", 1), torch.Generator())
    assert rec.flags["edges_failed"].tolist() == [False, True]
    y1 = psnr_scheme.condition(source.labels[1], None)
    assert float(y1[:, -1].abs().sum()) == 0.0
    np.testing.assert_array_equal(
        rec.images[1], psnr_scheme.regenerate(y1, int(sel.indices[1]), torch.Generator()))

    # An index that passes the CRC but names no entry (N = 6 < 2^3) also falls back to 0.
    streams = list(delivered.digital["index"])
    streams[0] = DeliveredStream(bytes([0b1110_0000]), True, 1, 0, 3, 0, streams[0].channel_uses)
    bad = dataclasses.replace(delivered, digital={**delivered.digital, "index": streams})
    assert psnr_scheme.receive(bad, torch.Generator()).flags["index_failed"].tolist() == [True,
                                                                                         False]


def test_constructor_refuses_what_cannot_work():
    with pytest.raises(ValueError, match="deterministic"):
        DiffgoScheme(DiffgoConfig(goal="psnr"), _receiver(sampler="ddpm"))
    with pytest.raises(ValueError, match="deterministic"):
        DiffgoScheme(DiffgoConfig(goal="psnr"), _receiver(eta=0.5))
    with pytest.raises(ValueError, match="label channels"):
        DiffgoScheme(DiffgoConfig(goal="psnr"), _receiver(19))
    with pytest.raises(ValueError, match="segmenter"):
        DiffgoScheme(DiffgoConfig(goal="miou"), _receiver())
    with pytest.raises(ValueError, match="goal"):
        DiffgoScheme(DiffgoConfig(goal="fid"), _receiver())


def _scenario(**diffgo):
    return parse_scenario({"name": "t", "kind": "semantic", "schemes": ["diffgo"],
                           "sweep": {"snr_db": [10]}, "diffgo": diffgo})


def _config_error_key(fn, *args) -> str | None:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return info.value.key


def test_scenario_section_and_errors():
    s = _scenario(bank_size=2**40, candidates=8, goal="psnr")
    assert (s.diffgo.bank_size, s.diffgo.candidates, s.diffgo.goal) == (2**40, 8, "psnr")
    assert _config_error_key(lambda: _scenario(goal="fid")) == "diffgo.goal"
    assert _config_error_key(lambda: _scenario(bank_size=0)) == "diffgo.bank_size"
    assert _config_error_key(lambda: _scenario(bank=4)) == "diffgo.bank"
    ddpm = parse_scenario({"name": "t", "kind": "semantic", "schemes": ["diffgo"],
                           "sweep": {"snr_db": [10]}, "receiver": {"sampler": "ddpm"}})
    assert _config_error_key(build_diffgo, ddpm, "cpu", _segment) == "receiver.sampler"
    missing = parse_scenario({"name": "t", "kind": "semantic", "schemes": ["diffgo"],
                              "sweep": {"snr_db": [10]},
                              "receiver": {"map_weights": "no/such/file.pt"}})
    assert _config_error_key(build_diffgo, missing, "cpu", _segment) == "receiver.map_weights"


def test_docstring_examples():
    result = doctest.testmod(diffgo_module)
    assert result.attempted > 0 and result.failed == 0
