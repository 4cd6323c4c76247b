"""The scenario schema: YAML in, a typed and validated ``Scenario`` out.

Every section is a pydantic model that forbids unknown keys, so a typo is an error that names the
dotted key and suggests the closest valid one. YAML is read with ``yaml.safe_load`` only; no value
in a scenario is ever imported or executed.

Example:
    >>> s = parse_scenario({"name": "t", "kind": "ber", "sweep": {"ebno_db": [0, 2]}})
    >>> s.phy.modulation, s.phy.channel.type, s.sweep.ebno_db
    ('qpsk', 'awgn', [0.0, 2.0])
"""

from __future__ import annotations

import copy
import difflib
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from link.des.config import LinkLayerConfig
from link.errors import ConfigError

Modulation = Literal["bpsk", "qpsk", "8psk", "16qam", "64qam", "256qam"]
ChannelType = Literal["awgn", "rayleigh", "rician", "tdl", "gesco_compat"]
CodeType = Literal["none", "ldpc5g"]
Decoder = Literal["auto", "sionna", "fast"]
DeviceName = Literal["auto", "cpu", "cuda"]
PositiveInt = Annotated[int, Field(gt=0)]

MODULATIONS: tuple[str, ...] = Modulation.__args__
CHANNEL_TYPES: tuple[str, ...] = ChannelType.__args__
CODE_TYPES: tuple[str, ...] = CodeType.__args__
DECODERS: tuple[str, ...] = Decoder.__args__
SCENARIO_KINDS: tuple[str, ...] = ("ber", "semantic")
TDL_MODELS: tuple[str, ...] = ("A", "B", "C", "D", "E")
CRC_TYPES: tuple[str, ...] = ("CRC24A", "CRC24B", "CRC24C", "CRC16", "CRC11", "CRC6")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _int_like(value: Any) -> Any:
    """Accept YAML floats such as ``1e7`` for counts when they are whole numbers."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


class CodingConfig(_Strict):
    """Channel code. ``k``/``n``: information / coded bits per block (uncoded: block of ``k`` bits)."""

    type: CodeType = "none"
    k: PositiveInt | None = None
    n: PositiveInt | None = None
    decoder: Decoder = "auto"
    num_iter: PositiveInt = 20
    cn_update: Literal["boxplus-phi", "boxplus", "minsum", "offset-minsum"] = "boxplus-phi"
    crc: Literal["CRC24A", "CRC24B", "CRC24C", "CRC16", "CRC11", "CRC6"] | None = None

    @model_validator(mode="after")
    def _check_lengths(self) -> CodingConfig:
        if self.type == "none":
            if self.k is None:
                self.k = 1024
            if self.n is not None and self.n != self.k:
                raise ValueError("uncoded links send k bits per block: leave n empty or equal to k")
            self.n = self.k
        else:
            if self.k is None or self.n is None:
                raise ValueError("ldpc5g needs both k and n")
            if not self.k < self.n:
                raise ValueError(f"ldpc5g needs k < n, got k={self.k}, n={self.n}")
            if self.k > 8448:
                raise ValueError(f"5G LDPC supports k <= 8448, got {self.k}")
        return self


class ChannelConfig(_Strict):
    """Channel model. Rayleigh/Rician are flat; ``tdl`` runs over OFDM (see ``phy.ofdm``)."""

    type: ChannelType = "awgn"
    fading: Literal["block", "fast"] = "block"
    rician_k_db: float = 6.0
    tdl_model: Literal["A", "B", "C", "D", "E"] = "A"
    delay_spread_s: float = Field(300e-9, gt=0)
    carrier_frequency_hz: float = Field(3.5e9, gt=0)
    max_speed_mps: float = Field(0.0, ge=0)
    csi: Literal["perfect", "ls"] = "perfect"
    normalize_channel: bool = False


class OfdmConfig(_Strict):
    """OFDM numerology for the TDL link (defaults: 30 kHz SCS, 64 used subcarriers, 2 pilot symbols)."""

    num_ofdm_symbols: PositiveInt = 14
    fft_size: PositiveInt = 76
    subcarrier_spacing_hz: float = Field(30e3, gt=0)
    cyclic_prefix_length: int = Field(6, ge=0)
    num_guard_carriers: tuple[int, int] = (5, 6)
    dc_null: bool = True
    pilot_ofdm_symbol_indices: tuple[int, ...] = (2, 11)

    @model_validator(mode="after")
    def _check_grid(self) -> OfdmConfig:
        bad = [i for i in self.pilot_ofdm_symbol_indices if not 0 <= i < self.num_ofdm_symbols]
        if bad:
            raise ValueError(f"pilot symbol indices {bad} outside 0..{self.num_ofdm_symbols - 1}")
        if sum(self.num_guard_carriers) + int(self.dc_null) >= self.fft_size:
            raise ValueError("guard carriers and DC null leave no subcarrier")
        return self


_BITS_PER_SYMBOL = {"bpsk": 1, "qpsk": 2, "8psk": 3, "16qam": 4, "64qam": 6, "256qam": 8}


class PhyConfig(_Strict):
    modulation: Modulation = "qpsk"
    coding: CodingConfig = CodingConfig()
    channel: ChannelConfig = ChannelConfig()
    ofdm: OfdmConfig = OfdmConfig()

    @model_validator(mode="after")
    def _uncoded_block_fits(self) -> PhyConfig:
        m = _BITS_PER_SYMBOL[self.modulation]
        if self.coding.type == "none" and self.coding.k % m:
            raise ValueError(f"uncoded block of k={self.coding.k} bits is not a multiple of "
                             f"{m} bits per {self.modulation} symbol")
        return self


class SweepConfig(_Strict):
    """What varies. ``grid``: cartesian product over dotted keys; ``zip``: parallel lists."""

    ebno_db: list[float] | None = None
    snr_db: list[float] | None = None
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}

    @field_validator("ebno_db", "snr_db")
    @classmethod
    def _non_empty_finite(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if not value:
                raise ValueError("expected a non-empty list of numbers")
            if not all(math.isfinite(v) for v in value):
                raise ValueError("expected finite numbers")
        return value

    @field_validator("grid", "zip")
    @classmethod
    def _lists_non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"{key}: expected a non-empty list of values")
            if key.startswith(("sweep.", "resources.")) or key in ("name", "kind", "resources"):
                raise ValueError(f"{key}: this key cannot be swept")
        return value

    @model_validator(mode="after")
    def _zip_lengths(self) -> SweepConfig:
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have equal lengths, got {sorted(lengths)}")
        overlap = set(self.grid) & set(self.zip)
        if overlap:
            raise ValueError(f"keys in both grid and zip: {sorted(overlap)}")
        return self


class BerConfig(_Strict):
    """Monte-Carlo stopping rule: run each point until both error targets or ``max_bits``."""

    target_bit_errors: PositiveInt = 1000
    target_block_errors: PositiveInt = 100
    max_bits: PositiveInt = 10_000_000
    batch_size: PositiveInt = 1000

    @field_validator("target_bit_errors", "target_block_errors", "max_bits", "batch_size",
                     mode="before")
    @classmethod
    def _counts(cls, value: Any) -> Any:
        return _int_like(value)


class ResourcesConfig(_Strict):
    """What one point asks of the executor: CPU cores and GPUs (fractions allowed, as in Ray).

    ``gpus_per_point: 1`` on a GPU cluster runs one point (one receiver) per GPU. The local and
    process executors run on the device the scenario names and ignore these numbers.
    """

    cpus_per_point: float = Field(1.0, gt=0)
    gpus_per_point: float = Field(0.0, ge=0)


SchemeName = Literal["gesco", "spic", "separation", "diffgo", "qgesco", "deepjscc", "diffjscc"]
SCHEMES: tuple[str, ...] = SchemeName.__args__

# Option sections that only some schemes read: section -> the schemes that read it. A point's id
# leaves out the sections of schemes its scenario does not run, so that adding a scheme (and its
# section) to the project does not change the ids, and so the stores, of existing scenarios.
SCHEME_OPTION_SECTIONS: dict[str, tuple[str, ...]] = {"diffgo": ("diffgo",),
                                                       "qgesco": ("qgesco",),
                                                       "jscc": ("deepjscc", "diffjscc")}


class DataConfig(_Strict):
    """Where the images come from (``semantic`` scenarios)."""

    source: Literal["synthetic", "cityscapes", "folder"] = "synthetic"
    root: str | None = None
    split: str = "val"
    num_images: PositiveInt = 16
    size: tuple[PositiveInt, PositiveInt] = (64, 128)
    seed: int = Field(0, ge=0)


class ReceiverConfig(_Strict):
    """The diffusion receivers: weights, sampler, steps and classifier-free guidance."""

    steps: PositiveInt = 20
    sampler: Literal["ddim", "ddpm", "dpmpp2m"] = "ddim"
    guidance_scale: float = Field(1.5, ge=0)
    batch_size: PositiveInt = 16
    map_weights: str = "semantic/weights/receiver_map_64x128.pt"
    superres_weights: str = "semantic/weights/receiver_superres_64x128.pt"


class SourceCodingConfig(_Strict):
    """Source codecs of the digital schemes (SPIC's map and coarse image)."""

    map_codec: Literal["jxl", "png", "webp", "zstd"] = "jxl"
    image_codec: Literal["hevc", "jpeg", "webp", "avif", "jxl"] = "hevc"
    qp: int = Field(32, ge=0, le=51)
    factor: int = Field(2, ge=1, le=8)


class SeparationOptions(_Strict):
    """``qp: null`` picks the quantiser whose bpp matches SPIC's total bpp on the same images."""

    qp: int | None = Field(None, ge=0, le=51)
    on_failure: Literal["erase", "decode_anyway"] = "erase"


class GescoOptions(_Strict):
    class_presence: Literal["none", "sent"] = "none"
    pool: bool = True
    instance_edges: bool = True


class QGescoOptions(_Strict):
    """Q-GESCO: GESCO with a post-training-quantised receiver (``semantic.quant``).

    ``backend``: ``int8`` (PyTorch int8 CPU kernels; needs ``activation_bits: 8``),
    ``weight_only`` (int8 storage, float32 compute; ``activation_bits: null``) or ``fake_quant``
    (simulated; any bits). ``reduce_range`` (null: on for ``int8``) halves the activation input
    levels, as the x86 int8 kernels need. Calibration: ``calibration_images`` train-split scenes
    through the scenario's channel at ``calibration_snr_db`` (null: 0, 10, 20 dB; on
    ``gesco_compat`` GESCO labels 1, 10, 20, 100), ``calibration_timesteps`` chain steps each.
    """

    backend: Literal["int8", "weight_only", "fake_quant"] = "int8"
    weight_bits: int = Field(8, ge=2, le=8)
    activation_bits: int | None = Field(8, ge=2, le=8)
    activation_range: Literal["mse", "percentile", "minmax"] = "mse"
    percentile: float = Field(99.99, gt=50, le=100)
    reduce_range: bool | None = None
    calibration_images: PositiveInt = 8
    calibration_timesteps: PositiveInt = 5
    calibration_snr_db: list[float] | None = None
    calibration_seed: int = Field(0, ge=0)

    @field_validator("weight_bits")
    @classmethod
    def _weight_bits_fit(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("backend") in ("int8", "weight_only") and value != 8:
            raise ValueError(f"backend {info.data['backend']} stores 8-bit weights")
        return value

    @field_validator("activation_bits")
    @classmethod
    def _activation_bits_fit(cls, value: int | None, info: ValidationInfo) -> int | None:
        backend = info.data.get("backend")
        if backend == "int8" and value != 8:
            raise ValueError("backend int8 runs 8-bit activations (set 8)")
        if backend == "weight_only" and value is not None:
            raise ValueError("backend weight_only keeps float activations (set null)")
        return value


class DiffgoOptions(_Strict):
    """Diff-GO^n: shared noise bank (seed, size N), candidates tried per image, selection goal.

    The index costs ceil(log2 bank_size) bits; ``candidates >= bank_size`` tries every entry.
    ``instance_edges`` must match the map receiver's label channels (sent as a counted stream).
    ``num_threads``: torch threads pinned while generating (transmitter and receiver agree).
    """

    bank_seed: int = Field(0, ge=0)
    bank_size: int = Field(16, ge=1, le=2**62)
    candidates: PositiveInt = 16
    goal: Literal["miou", "psnr"] = "miou"
    instance_edges: bool = True
    selection_seed: int = Field(0, ge=0)
    num_threads: PositiveInt = 1


class JsccOptions(_Strict):
    """``deepjscc`` / ``diffjscc`` (``semantic.jscc``): trained codec and diffusion refiner.

    ``channel_uses_per_pixel`` (complex channel uses per image pixel) is fixed by the codec's
    weights; when given it must match them. ``oracle_start`` starts the refiner's chain from the
    DDIM inversion of the ORIGINAL image (Diff_JSCC's published mode; needs ``sampler: ddim``);
    its results are labelled ``diffjscc_oracle_start``.
    """

    codec_weights: str = "semantic/weights/jscc_deepjscc_64x128.pt"
    refiner_weights: str = "semantic/weights/jscc_diffjscc_refiner_64x128.pt"
    channel_uses_per_pixel: float | None = Field(None, gt=0)
    oracle_start: bool = False
    sampler: Literal["ddim", "ddpm", "dpmpp2m"] = "ddim"
    steps: PositiveInt = 20
    batch_size: PositiveInt = 16

    @model_validator(mode="after")
    def _oracle_needs_ddim(self) -> JsccOptions:
        if self.oracle_start and self.sampler != "ddim":
            raise ValueError("oracle_start inverts the chain with DDIM: set sampler: ddim")
        return self


class MetricsConfig(_Strict):
    """``segmenter``: shipped weights (``.pt``) or a TorchScript model returning logits."""

    segmenter: str = "semantic/weights/segmenter.pt"
    fid: bool = True
    fid_protocol: Literal["pytorch-fid", "tf"] = "pytorch-fid"
    kid_subset_size: PositiveInt = 1000
    bootstrap_resamples: PositiveInt = 1000


class Scenario(_Strict):
    """A whole scenario file."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["ber", "semantic"]
    description: str = ""
    seed: int = Field(0, ge=0)
    device: DeviceName = "auto"
    phy: PhyConfig = PhyConfig()
    sweep: SweepConfig = SweepConfig()
    ber: BerConfig = BerConfig()
    schemes: list[SchemeName] = []
    data: DataConfig = DataConfig()
    receiver: ReceiverConfig = ReceiverConfig()
    source_coding: SourceCodingConfig = SourceCodingConfig()
    separation: SeparationOptions = SeparationOptions()
    gesco: GescoOptions = GescoOptions()
    qgesco: QGescoOptions = QGescoOptions()
    diffgo: DiffgoOptions = DiffgoOptions()
    jscc: JsccOptions = JsccOptions()
    metrics: MetricsConfig = MetricsConfig()
    # Frames, transport blocks, slots, fading over time, HARQ and receiver compute (link.des);
    # absent: each image crosses the channel in one shot (link.channel_io.deliver).
    link_layer: LinkLayerConfig | None = None
    # How points are scheduled does not change their numbers: left out of ``model_dump`` so that
    # point ids and run hashes ignore it (``to_yaml`` writes it back for the resolved file).
    resources: ResourcesConfig = Field(ResourcesConfig(), exclude=True)
    # The mapping as written (after --set), before defaults: sweeps apply their values to it so
    # that derived defaults (e.g. an uncoded block's n) are re-derived for every point.
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_absent_link_layer(self, handler: Any) -> dict[str, Any]:
        # No link_layer section: the resolved file and the run hash stay what they were.
        data = handler(self)
        if isinstance(data, dict) and data.get("link_layer", False) is None:
            del data["link_layer"]
        return data

    @property
    def raw(self) -> dict[str, Any]:
        return copy.deepcopy(self._raw) if self._raw else self.model_dump(mode="json")

    @field_validator("link_layer")
    @classmethod
    def _link_layer_fits(cls, value: LinkLayerConfig | None, info: ValidationInfo
                         ) -> LinkLayerConfig | None:
        if value is not None and "phy" in info.data and "kind" in info.data:
            from link.semantic_link import check_scenario_link_layer

            check_scenario_link_layer(value, info.data["phy"], info.data["kind"])
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> Scenario:
        if self.kind == "ber" and self.sweep.ebno_db is None:
            raise ValueError("kind 'ber' needs sweep.ebno_db (a list of Eb/N0 values in dB)")
        if self.kind == "semantic" and self.sweep.snr_db is None:
            raise ValueError("kind 'semantic' needs sweep.snr_db (a list of SNR values in dB)")
        if self.kind == "semantic" and not self.schemes:
            raise ValueError("kind 'semantic' needs schemes (a list of: " + ", ".join(SCHEMES)
                             + ")")
        if self.kind == "ber" and self.phy.channel.type == "gesco_compat":
            raise ValueError("phy.channel.type 'gesco_compat' is GESCO's map corruption, not a "
                             "bit channel; use it in semantic scenarios")
        if self.phy.channel.type == "gesco_compat":
            bad = [s for s in self.schemes if s not in ("gesco", "qgesco")]
            if bad:
                raise ValueError(f"gesco_compat carries only the gesco/qgesco schemes, not {bad}")
            from semantic.schemes.gesco_channel import GESCO_SNR_LABEL_TO_SIGMA

            labels = [v for v in self.sweep.snr_db or [] if v not in GESCO_SNR_LABEL_TO_SIGMA]
            if labels:
                raise ValueError(f"gesco_compat takes GESCO's SNR labels "
                                 f"{sorted(GESCO_SNR_LABEL_TO_SIGMA)} in sweep.snr_db, got {labels}")
        return self


# ---------------------------------------------------------------------------------------------
# Loading, overrides and error messages


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors become one-line ``ConfigError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}{problem}", source=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}",
                          source=str(path))
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is parsed as YAML (``[1,2]``, ``3``, ``true``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"expected dotted.key=value, got {text!r}", source="--set")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Return a deep copy of ``data`` with ``key`` (dotted) set to ``value``."""
    out = copy.deepcopy(data)
    node = out
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a section", key=key)
        node = nxt
    node[parts[-1]] = value
    return out


def get_dotted(data: dict[str, Any], key: str, default: Any = None) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (for key suggestions)."""
    model: type[BaseModel] | None = Scenario
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return model
        annotation = model.model_fields[part].annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)),
                     None)
    return model


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_TYPE_WORDS = {
    "list_type": "expected a list",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "missing": "required key is missing",
}


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    """Turn one pydantic error into (dotted key, reason)."""
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        valid = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return _dotted(loc), f"unknown key{hint} (valid: {', '.join(valid)})"
    if kind == "missing":
        return _dotted(loc), "required key is missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return _dotted(loc), f"expected one of {expected}, got {value!r}"
    if kind == "value_error":
        return _dotted(loc), str(error.get("ctx", {}).get("error", error["msg"]))
    if loc and isinstance(loc[-1], int) and kind in ("float_parsing", "float_type"):
        return _dotted(loc[:-1]), f"expected a list of numbers, got {value!r} at position {loc[-1]}"
    if kind == "list_type" and loc and loc[-1] in ("ebno_db", "snr_db"):
        return _dotted(loc), f"expected a list of numbers, got {value!r}"
    reason = _TYPE_WORDS.get(kind, error["msg"][0].lower() + error["msg"][1:])
    return _dotted(loc), f"{reason}, got {value!r}"


def parse_scenario(data: dict[str, Any], source: str | None = None,
                   overridden: tuple[str, ...] = ()) -> Scenario:
    """Validate a raw mapping. Raises ``ConfigError`` naming the first bad key."""
    try:
        scenario = Scenario.model_validate(data)
        scenario._raw = copy.deepcopy(data)
        return scenario
    except ValidationError as exc:
        key, reason = _describe(exc.errors()[0])
        origin = "--set" if any(key == k or key.startswith(k + ".") for k in overridden) else source
        raise ConfigError(reason, key=key or None, source=origin) from None


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, apply ``--set`` overrides and validate a scenario file.

    Args:
        path: the YAML file.
        overrides: ``dotted.key=value`` strings applied before validation.
    Returns:
        The validated ``Scenario``.
    Raises:
        ConfigError: with the file, dotted key and reason.
    """
    data = load_yaml(path)
    keys = []
    for text in overrides:
        key, value = parse_override(text)
        try:
            data = set_dotted(data, key, value)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key=key, source="--set") from None
        keys.append(key)
    return parse_scenario(data, source=str(path), overridden=tuple(keys))


def to_yaml(scenario: Scenario) -> str:
    """The resolved scenario (defaults filled in) as YAML, for ``config.resolved.yaml``."""
    data = scenario.model_dump(mode="json")
    data["resources"] = scenario.resources.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False)
