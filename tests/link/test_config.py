"""Scenario schema: defaults, validation errors that name the key, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from link.config import ConfigError, load_scenario, parse_override, parse_scenario, to_yaml

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_every_shipped_scenario_validates():
    assert SCENARIOS, "no scenario files found"
    for path in SCENARIOS:
        scenario = load_scenario(path)
        assert scenario.name == path.stem


def test_defaults_are_resolved():
    s = parse_scenario({"name": "t", "kind": "ber", "sweep": {"ebno_db": [1]}})
    assert s.phy.coding.type == "none" and s.phy.coding.k == s.phy.coding.n == 1024
    assert s.ber.target_block_errors == 100
    assert "modulation: qpsk" in to_yaml(s)


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("name: x\nkind: ber\nsweep: {ebno_db: abc}\n", "sweep.ebno_db",
     "expected a list of numbers, got 'abc'"),
    ("name: x\nkind: ber\nsweep: {ebno_db: [1, x]}\n", "sweep.ebno_db",
     "expected a list of numbers, got 'x' at position 1"),
    ("name: x\nkind: ber\nphy: {modulaton: qpsk}\nsweep: {ebno_db: [1]}\n", "phy.modulaton",
     "did you mean 'modulation'?"),
    ("name: x\nkind: ber\nphy: {modulation: 9psk}\nsweep: {ebno_db: [1]}\n", "phy.modulation",
     "got '9psk'"),
    ("name: x\nkind: ber\nphy: {coding: {type: ldpc5g, k: 600, n: 500}}\nsweep: {ebno_db: [1]}\n",
     "phy.coding", "k < n"),
    ("name: x\nkind: ber\n", None, "needs sweep.ebno_db"),
    ("name: x\nkind: bler\nsweep: {ebno_db: [1]}\n", "kind", "expected one of 'ber' or 'semantic'"),
])
def test_errors_name_file_key_and_reason(tmp_path, text, key, reason):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    err = info.value
    assert err.source == str(path)
    assert err.key == key
    assert reason in err.reason
    assert "\n" not in err.one_line()


def test_yaml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="line 3"):
        load_scenario(_write(tmp_path, "name: x\nkind: [ber\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))


def test_overrides_are_yaml_values_and_errors_say_set(tmp_path):
    path = _write(tmp_path, "name: x\nkind: ber\nsweep: {ebno_db: [1]}\n")
    s = load_scenario(path, ["sweep.ebno_db=[0, 2.5]", "ber.max_bits=1e6", "phy.modulation=16qam"])
    assert s.sweep.ebno_db == [0.0, 2.5] and s.ber.max_bits == 1_000_000
    assert s.phy.modulation == "16qam"
    with pytest.raises(ConfigError) as info:
        load_scenario(path, ["phy.channel.tpye=awgn"])
    assert info.value.source == "--set" and "did you mean 'type'" in info.value.reason
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        parse_override("novalue")


def test_safe_loader_refuses_python_tags(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['true']\nkind: ber\n")
    with pytest.raises(ConfigError):
        load_scenario(path)
