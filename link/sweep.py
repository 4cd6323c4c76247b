"""Sweeps are data: expand ``sweep.grid`` / ``sweep.zip`` and the SNR list into points.

A *configuration* is the scenario with one combination of grid/zip values applied; a *point*
is one configuration at one SNR. Every configuration is validated before anything runs, each
point has a stable id (a hash of its resolved config) and a seed derived from (base seed, id).

Example:
    >>> from link.config import parse_scenario
    >>> s = parse_scenario({"name": "t", "kind": "ber", "sweep": {"ebno_db": [0, 1],
    ...     "grid": {"phy.modulation": ["bpsk", "16qam"]}}})
    >>> [(p.config.phy.modulation, p.snr_value) for p in expand_points(s)]
    [('bpsk', 0.0), ('bpsk', 1.0), ('16qam', 0.0), ('16qam', 1.0)]
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from link.config import SCHEME_OPTION_SECTIONS, ConfigError, Scenario, parse_scenario, set_dotted


@dataclass(frozen=True)
class Configuration:
    """One combination of swept values applied to the scenario."""

    index: int
    values: dict[str, Any]
    scenario: Scenario


@dataclass(frozen=True)
class Point:
    """One configuration at one SNR value (Eb/N0 for ``ber``, SNR per channel use otherwise)."""

    point_id: str
    seed: int
    order: int
    config_index: int
    values: dict[str, Any]
    snr_key: str
    snr_value: float
    config: Scenario
    resolved: dict[str, Any] = field(repr=False)


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every stable hash."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(data: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:length]


def derive_seed(base_seed: int, point_id: str) -> int:
    """A 63-bit seed from (base seed, point id); independent of the order points run in."""
    digest = hashlib.sha256(f"{base_seed}:{point_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _combinations(scenario: Scenario) -> list[dict[str, Any]]:
    grid, zipped = scenario.sweep.grid, scenario.sweep.zip
    grid_rows = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] or [{}]
    if zipped:
        length = len(next(iter(zipped.values())))
        zip_rows = [{k: v[i] for k, v in zipped.items()} for i in range(length)]
    else:
        zip_rows = [{}]
    return [{**g, **z} for g in grid_rows for z in zip_rows]


def expand_configurations(scenario: Scenario) -> list[Configuration]:
    """Apply each grid/zip combination to the scenario as written and validate it.

    Raises:
        ConfigError: naming the first invalid combination.
    """
    base = scenario.raw
    out = []
    for index, values in enumerate(_combinations(scenario)):
        data = base
        for key, value in values.items():
            data = set_dotted(data, key, value)
        try:
            config = parse_scenario(data)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise ConfigError(f"sweep point {{{shown}}}: {exc.key}: {exc.reason}",
                              key="sweep.grid" if scenario.sweep.grid else "sweep.zip") from None
        out.append(Configuration(index=index, values=values, scenario=config))
    return out


def drop_unused_sections(resolved: dict[str, Any], scenario: Scenario) -> None:
    """Leave out of a point's identity what cannot change its numbers: option sections of
    schemes the scenario does not run, and optional sections that are absent (``None``)."""
    for section, users in SCHEME_OPTION_SECTIONS.items():
        if not set(users) & set(scenario.schemes):
            resolved.pop(section, None)
    for key in [k for k, v in resolved.items() if v is None]:
        resolved.pop(key)


def expand_points(scenario: Scenario) -> list[Point]:
    """All points of the scenario in run order (configuration-major, then SNR)."""
    snr_key = "ebno_db" if scenario.kind == "ber" else "snr_db"
    points = []
    for cfg in expand_configurations(scenario):
        resolved = cfg.scenario.model_dump(mode="json")
        sweep = resolved.pop("sweep")
        # Identity excludes names, descriptions and the device: they do not change the numbers.
        for key in ("name", "description", "device"):
            resolved.pop(key)
        drop_unused_sections(resolved, cfg.scenario)
        for snr in getattr(cfg.scenario.sweep, snr_key):
            ident = {**resolved, snr_key: float(snr)}
            pid = stable_hash(ident)
            points.append(Point(
                point_id=pid,
                seed=derive_seed(scenario.seed, pid),
                order=len(points),
                config_index=cfg.index,
                values=cfg.values,
                snr_key=snr_key,
                snr_value=float(snr),
                config=cfg.scenario,
                resolved={**ident, "sweep_values": cfg.values, "sweep": sweep},
            ))
    ids = [p.point_id for p in points]
    if len(set(ids)) != len(ids):
        raise ConfigError("the sweep lists the same point twice", key="sweep")
    return points
