"""Sweep expansion, stable point ids and seeds, and the SQLite results store."""

from __future__ import annotations

import pytest

from link.config import ConfigError, parse_scenario
from link.store import PointRecord, ResultsStore
from link.sweep import derive_seed, expand_points


def _scenario(**sweep):
    return parse_scenario({"name": "t", "kind": "ber", "seed": 5,
                           "sweep": {"ebno_db": [0, 1], **sweep}})


def test_grid_and_zip_expansion_order():
    s = _scenario(grid={"phy.modulation": ["bpsk", "16qam"]},
                  zip={"phy.coding.k": [256, 512], "ber.batch_size": [10, 20]})
    points = expand_points(s)
    assert len(points) == 2 * 2 * 2
    combos = [(p.config.phy.modulation, p.config.phy.coding.k, p.config.ber.batch_size,
               p.snr_value) for p in points]
    assert combos[:4] == [("bpsk", 256, 10, 0.0), ("bpsk", 256, 10, 1.0),
                          ("bpsk", 512, 20, 0.0), ("bpsk", 512, 20, 1.0)]
    assert [p.order for p in points] == list(range(8))


def test_ids_are_stable_and_seed_dependent():
    a = expand_points(_scenario())
    b = expand_points(_scenario())
    assert [p.point_id for p in a] == [p.point_id for p in b]
    assert len({p.point_id for p in a}) == len(a)
    other = parse_scenario({"name": "renamed", "kind": "ber", "seed": 6,
                            "sweep": {"ebno_db": [0, 1]}})
    c = expand_points(other)
    assert {p.point_id for p in a}.isdisjoint({p.point_id for p in c})
    assert a[0].seed == derive_seed(5, a[0].point_id) != derive_seed(6, a[0].point_id)


def test_invalid_grid_point_is_named():
    s = _scenario(grid={"phy.modulation": ["qpsk", "7qam"]})
    with pytest.raises(ConfigError) as info:
        expand_points(s)
    assert info.value.key == "sweep.grid" and "7qam" in info.value.reason


def test_store_round_trip_and_no_duplicates(tmp_path):
    path = tmp_path / "store.sqlite"
    rec = PointRecord("p1", 0, 0, 9, {"a": 1}, {"ber": 0.5, "bits": 10}, "cpu", 1.5)
    with ResultsStore(path) as store:
        store.put(rec)
        store.put(PointRecord("p1", 0, 0, 9, {"a": 2}, {"ber": 0.1}, "cpu", 1.0))
        store.put(PointRecord("p0", 1, 0, 3, {}, {}, "cpu", 0.1))
    with ResultsStore(path) as store:
        records = list(store.records())
        assert [r.point_id for r in records] == ["p1", "p0"]
        assert records[0].metrics == {"ber": 0.5, "bits": 10}
        assert store.finished_ids() == {"p0", "p1"}


def test_point_ids_of_existing_scenarios_survive_new_scheme_sections():
    """Ids computed by the code that first wrote stores (commit 55c067c): option sections of
    schemes a scenario does not run, and absent optional sections, stay out of the id, so the
    stores of runs made before those sections existed still resume."""
    semantic = parse_scenario({"name": "t", "kind": "semantic",
                               "schemes": ["gesco", "spic", "separation"],
                               "sweep": {"snr_db": [0, 10]}})
    assert [p.point_id for p in expand_points(semantic)] == ["d9149c194547277d",
                                                            "9dbaf428e0cf41a4"]
    ber = parse_scenario({"name": "t", "kind": "ber", "sweep": {"ebno_db": [0, 1]}})
    assert [p.point_id for p in expand_points(ber)] == ["e9bf8fceb5c4c4b1", "6a4826dc1852eb0b"]


def test_a_scheme_section_enters_the_id_when_its_scheme_runs():
    from link.config import SCHEME_OPTION_SECTIONS

    assert SCHEME_OPTION_SECTIONS, "no optional scheme sections registered"
    section, users = next(iter(SCHEME_OPTION_SECTIONS.items()))
    point = expand_points(parse_scenario({"name": "t", "kind": "semantic", "schemes": [users[0]],
                                          "sweep": {"snr_db": [0]}}))[0]
    assert section in point.resolved
    other = expand_points(parse_scenario({"name": "t", "kind": "semantic", "schemes": ["spic"],
                                          "sweep": {"snr_db": [0]}}))[0]
    assert section not in other.resolved
