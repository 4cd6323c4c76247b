"""Sweep grids, per-point computation and the local / process / Ray executors.

The same points must give bit-identical rows (and a byte-identical ber.csv) on every executor:
each point is a pure function of its resolved config and its seed.
"""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest
import yaml

import simulate
from link import ber_run, executors
from link.ber_run import BerTask, ber_task, compute_ber_point, run_ber_points
from link.config import ConfigError, load_scenario, parse_scenario, to_yaml
from link.executors import (
    LocalExecutor,
    ProcessExecutor,
    RayExecutor,
    make_executor,
    warm_up_worker,
)
from link.report import _curve_label, ber_rows, channel_slug, write_ber_csv
from link.store import ResultsStore
from link.sweep import derive_seed, expand_points

REPO_ROOT = Path(__file__).resolve().parents[2]

# Eight small uncoded points over two channels; a few hundred thousand bits each.
SMALL = {
    "name": "executors",
    "kind": "ber",
    "seed": 3,
    "device": "cpu",
    "phy": {"coding": {"type": "none", "k": 512}, "channel": {"fading": "fast"}},
    "sweep": {"ebno_db": [2.0, 6.0], "grid": {"phy.channel.type": ["awgn", "rayleigh"],
                                              "phy.modulation": ["bpsk", "16qam"]}},
    "ber": {"target_bit_errors": 400, "target_block_errors": 20, "max_bits": 200_000,
            "batch_size": 64},
}


def _rows(run_dir: Path) -> dict[str, tuple[int, dict]]:
    with ResultsStore(run_dir / "store.sqlite") as store:
        return {r.point_id: (r.seed, r.metrics) for r in store.records()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The SMALL scenario run once by the CLI with the local executor (the reference)."""
    root = tmp_path_factory.mktemp("executors")
    scenario = root / "small.yaml"
    scenario.write_text(yaml.safe_dump(SMALL))
    run_dir = root / "local"
    assert simulate.main([str(scenario), "--out", str(run_dir)]) == 0
    return scenario, run_dir


@pytest.mark.parametrize("module", [executors, ber_run], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------------------------
# Grid expansion and ids


def test_modulation_coding_grid_expands_to_every_combination_once():
    path = REPO_ROOT / "scenarios" / "sweep_modulation_coding.yaml"
    points = expand_points(load_scenario(path))
    assert len(points) == 3 * 2 * 3 * 9
    combos = {(p.config.phy.channel.type, p.config.phy.modulation, p.config.phy.coding.k,
               p.snr_value) for p in points}
    assert len(combos) == len(points)
    assert {k for _c, _m, k, _e in combos} == {256, 512, 768}
    assert {p.config.phy.coding.n for p in points} == {1024}
    # Configuration-major order: the first configuration's nine Eb/N0 points come first.
    assert [p.snr_value for p in points[:9]] == [-2, 0, 2, 4, 6, 8, 10, 12, 14]
    assert points[9].config.phy.coding.k == 512 and points[9].config_index == 1
    # Stable ids (same file, same ids) and seeds derived from (base seed, id).
    again = expand_points(load_scenario(path))
    assert [p.point_id for p in again] == [p.point_id for p in points]
    assert len({p.point_id for p in points}) == len(points)
    assert all(p.seed == derive_seed(1, p.point_id) for p in points)
    assert len({p.seed for p in points}) == len(points)


def test_resources_do_not_change_point_ids_and_are_validated():
    base = {"name": "r", "kind": "ber", "sweep": {"ebno_db": [0, 1]}}
    plain = parse_scenario(base)
    gpu = parse_scenario({**base, "resources": {"gpus_per_point": 0.5, "cpus_per_point": 2}})
    assert (plain.resources.gpus_per_point, plain.resources.cpus_per_point) == (0.0, 1.0)
    assert (gpu.resources.gpus_per_point, gpu.resources.cpus_per_point) == (0.5, 2.0)
    assert [p.point_id for p in expand_points(gpu)] == [p.point_id for p in expand_points(plain)]
    assert yaml.safe_load(to_yaml(gpu))["resources"] == {"cpus_per_point": 2.0,
                                                         "gpus_per_point": 0.5}
    with pytest.raises(ConfigError) as info:
        parse_scenario({**base, "resources": {"gpus_per_point": -1}})
    assert info.value.key == "resources.gpus_per_point"
    with pytest.raises(ConfigError) as info:
        parse_scenario({**base, "resources": {"gpu_per_point": 1}})
    assert "gpus_per_point" in info.value.reason
    with pytest.raises(ConfigError) as info:
        parse_scenario({**base, "sweep": {"ebno_db": [0], "grid": {
            "resources.gpus_per_point": [0, 1]}}})
    assert "cannot be swept" in info.value.reason


def test_invalid_grid_point_exits_2_naming_it_before_anything_runs(tmp_path, capsys):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "run"
    code = simulate.main([str(scenario), "--out", str(out),
                          "--set", "sweep.grid={phy.modulation: [qpsk, 7qam], phy.coding.k: [64]}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "sweep.grid" in err and "7qam" in err
    assert "phy.coding.k=64" in err and str(scenario) in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# One point


def _task(modulation: str, channel: str, ebno_db: float, max_bits: int) -> BerTask:
    data = {**SMALL, "phy": {"modulation": modulation, "coding": {"type": "none", "k": 512},
                             "channel": {"type": channel, "fading": "fast"}},
            "sweep": {"ebno_db": [ebno_db]},
            "ber": {**SMALL["ber"], "target_bit_errors": 10**9, "max_bits": max_bits}}
    return ber_task(expand_points(parse_scenario(data))[0], "cpu")


def test_compute_ber_point_is_pure_and_matches_theory():
    task = _task("qpsk", "awgn", 4.0, 300_000)
    ber_run._LINK_CACHE.clear()
    cold, wall_s = compute_ber_point(task)
    compute_ber_point(_task("16qam", "rayleigh", 6.0, 20_000))  # another link in the cache
    warm, _ = compute_ber_point(task)
    assert cold == warm and wall_s > 0
    assert len(ber_run._LINK_CACHE) == 2
    # Runs to max_bits (the target is out of reach): whole 64-block batches, last one shortened.
    assert cold["bits"] == (300_000 // 512) * 512 and cold["blocks"] == 300_000 // 512
    assert (cold["point_id"], cold["seed"], cold["ebno_db"]) == (task.point_id, task.seed, 4.0)
    # QPSK over AWGN: BER = Q(sqrt(2 Eb/N0)) = 0.5 erfc(sqrt(Eb/N0)).
    p = 0.5 * math.erfc(math.sqrt(10 ** 0.4))
    assert cold["theory_ber"] == pytest.approx(p, rel=1e-6)
    assert abs(cold["ber"] - p) < 4 * math.sqrt(p * (1 - p) / cold["bits"])
    # A different seed gives different counts (the seed is really used).
    other, _ = compute_ber_point(BerTask(**{**task.__dict__, "seed": task.seed + 1}))
    assert other["bit_errors"] != cold["bit_errors"]


def test_local_executor_in_any_order_gives_the_same_rows(small, tmp_path):
    scenario, reference = small
    points = expand_points(load_scenario(scenario))
    with ResultsStore(tmp_path / "store.sqlite") as store:
        assert run_ber_points(points[::-1], store, "cpu", executor=LocalExecutor()) == 8
        write_ber_csv(tmp_path, ber_rows(store))
    assert _rows(tmp_path) == _rows(reference)
    assert (tmp_path / "ber.csv").read_bytes() == (reference / "ber.csv").read_bytes()


# ---------------------------------------------------------------------------------------------
# Executors


def test_make_executor_rejects_bad_options():
    with pytest.raises(ConfigError, match="unknown executor"):
        make_executor("dask")
    with pytest.raises(ConfigError, match="at least 1 worker"):
        make_executor("process", workers=0)
    with pytest.raises(ConfigError, match="needs --executor ray"):
        make_executor("process", workers=2, address="auto")
    with make_executor("local") as ex:
        assert sorted(ex.imap_unordered(abs, [-3, 1, -2])) == [(0, 3), (1, 1), (2, 2)]


def test_process_executor_matches_local_bit_for_bit(small, tmp_path):
    scenario, reference = small
    points = expand_points(load_scenario(scenario))
    with ProcessExecutor(2) as ex, ResultsStore(tmp_path / "store.sqlite") as store:
        workers = ex.warm_up(hold_s=0.5)
        # Two worker processes, torch limited to one thread each.
        assert len({pid for pid, _ in workers}) == 2 and {t for _, t in workers} == {1}
        committed = []

        def on_point(point, row, wall_s):
            # The parent commits each point before announcing it.
            committed.append(point.point_id in store.finished_ids())

        assert run_ber_points(points, store, "cpu", on_point, executor=ex) == 8
        assert committed == [True] * 8
        write_ber_csv(tmp_path, ber_rows(store))
        # A failing task surfaces in the parent.
        with pytest.raises(TypeError):
            list(ex.imap_unordered(warm_up_worker, ["not a number"]))
    assert _rows(tmp_path) == _rows(reference)
    assert (tmp_path / "ber.csv").read_bytes() == (reference / "ber.csv").read_bytes()


def test_ray_executor_matches_local_bit_for_bit(small, tmp_path):
    ray = pytest.importorskip("ray")
    scenario, reference = small
    points = expand_points(load_scenario(scenario))
    with RayExecutor(workers=2) as ex, ResultsStore(tmp_path / "store.sqlite") as store:
        assert ray.cluster_resources()["CPU"] == 2 and ex.workers == 2
        placed = [r for _, r in ex.imap_unordered(warm_up_worker, [1.0, 1.0])]
        assert len({pid for pid, _ in placed}) == 2 and {t for _, t in placed} == {1}
        assert run_ber_points(points, store, "cpu", executor=ex) == 8
        write_ber_csv(tmp_path, ber_rows(store))
    assert not ray.is_initialized()
    assert _rows(tmp_path) == _rows(reference)
    assert (tmp_path / "ber.csv").read_bytes() == (reference / "ber.csv").read_bytes()


# ---------------------------------------------------------------------------------------------
# Reports


def test_report_regenerates_csv_and_per_channel_plots_from_the_store(small, tmp_path):
    _scenario, reference = small
    run_dir = tmp_path / "copy"
    run_dir.mkdir()
    (run_dir / "store.sqlite").write_bytes((reference / "store.sqlite").read_bytes())
    assert simulate.main(["report", str(run_dir)]) == 0
    names = sorted(p.name for p in (run_dir / "plots").iterdir())
    assert names == ["ber.pdf", "ber.png", "ber_awgn.pdf", "ber_awgn.png",
                     "ber_rayleigh_fast.pdf", "ber_rayleigh_fast.png"]
    assert (run_dir / "ber.csv").read_bytes() == (reference / "ber.csv").read_bytes()
    for name in ("ber.png", "ber_awgn.png", "ber_rayleigh_fast.png"):
        assert (run_dir / "plots" / name).read_bytes() == \
            (reference / "plots" / name).read_bytes(), name


def test_curve_labels_name_modulation_and_rate():
    key = {"channel": "awgn", "fading": "", "csi": "perfect", "tdl_model": "",
           "modulation": "16qam", "code": "ldpc5g", "k": 768, "n": 1024, "decoder": "fast"}
    assert _curve_label(key, {"modulation", "k"}) == "16QAM LDPC(1024,768) r=0.75"
    assert _curve_label({**key, "code": "none"}, set()) == "16QAM"
    assert channel_slug({"channel": "tdl", "fading": "", "tdl_model": "A", "csi": "ls"}) \
        == "tdl_A_ls"
    assert channel_slug({"channel": "rician", "fading": "block", "tdl_model": "",
                         "csi": "perfect"}) == "rician_block"
