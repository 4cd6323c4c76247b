"""``kind: semantic`` runs: schemes x channel x SNR, with BPP, mIoU, FID/KID, PSNR/SSIM, BER/BLER.

Per run, the images, their Inception reference features, the segmenter, the receivers and each
scheme's transmission (independent of the SNR) are prepared once. Per point (scheme, SNR) the
transmission crosses the channel (``link.channel_io.deliver``), the receiver regenerates the
images and the metrics are finalised into one row. The receiver's random generator is seeded
from (run seed, scheme), the same at every SNR (common random numbers), so a receiver that gets
identical inputs at two SNRs (a digital scheme above its threshold) returns identical images; the
runner then reuses them instead of sampling again, which changes no number.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from link.config import ConfigError, Scenario
from link.semantic_link import LINK_LAYER_COLUMNS
from link.store import PointRecord, ResultsStore
from link.sweep import Point, derive_seed, stable_hash

METRICS_COLUMNS: tuple[str, ...] = (
    "scheme", "channel", "snr_db", "num_images", "bpp", "bpp_map", "bpp_image", "bpp_other",
    "channel_uses_per_pixel", "ber", "bler", "stream_failures", "miou", "miou_ci_low",
    "miou_ci_high", "fid", "kid", "kid_std", "psnr", "ssim",
    # Extra columns.
    "psnr_ci_low", "psnr_ci_high", "pixel_accuracy", "miou_original", "bit_errors", "bits",
    "block_errors", "blocks", "fid_protocol", "snr_axis", "point_id", "seed",
    # Quantised receivers (qgesco): e.g. W8A8-int8 or W8A8-simulated (empty for the others).
    "receiver_precision",
    # With a link_layer section (empty without one).
    *LINK_LAYER_COLUMNS,
)


@dataclass
class RunContext:
    """What every point of a run shares (built once)."""

    scenario: Scenario
    device: str
    source: Any
    segment: Callable[[np.ndarray], torch.Tensor]
    miou_original: float
    inception: Any = None
    reference_features: torch.Tensor | None = None
    schemes: dict[str, Any] = field(default_factory=dict)
    transmissions: dict[str, Any] = field(default_factory=dict)
    links: dict[int, Any] = field(default_factory=dict)
    cache: dict[tuple[str, str], Any] = field(default_factory=dict)
    stage_s: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, t0: float) -> None:
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + time.perf_counter() - t0


def _file(path: str, key: str, hint: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: file not found ({hint})", key=key)
    return p


def load_source(scenario: Scenario):
    from semantic.data import build_dataset
    from semantic.schemes.base import SourceBatch

    d = scenario.data
    try:
        ds = build_dataset(d.source, d.root, d.split, num_images=d.num_images,
                           size=tuple(d.size), seed=d.seed)
    except ValueError as exc:
        raise ConfigError(str(exc), key="data.root" if d.root else "data") from None
    batch = ds.batch(slice(0, min(d.num_images, len(ds))))
    return SourceBatch(batch.images, batch.labels, batch.instances, np.asarray(batch.indices))


def make_segment_fn(scenario: Scenario, device: str) -> Callable[[np.ndarray], torch.Tensor]:
    """Labels [B, H, W] of uint8 images [B, H, W, 3] by the scoring segmenter
    (``semantic.segmenter.make_scorer``: scored at the images' own resolution)."""
    from semantic.segmenter import make_scorer

    path = _file(scenario.metrics.segmenter, "metrics.segmenter",
                 "train it with: python simulate.py train segmenter")
    return make_scorer(path, device)


def build_scheme(name: str, scenario: Scenario, device: str, source,
                 segment: Callable[[np.ndarray], torch.Tensor] | None = None) -> Any:
    from semantic.diffusion.receiver import load_receiver
    from semantic.schemes.gesco import GescoConfig, GescoScheme
    from semantic.schemes.separation import SeparationConfig, SeparationScheme
    from semantic.schemes.spic import SpicConfig, SpicScheme

    r = scenario.receiver
    options = dict(sampler=r.sampler, steps=r.steps, guidance_scale=r.guidance_scale,
                   batch_size=r.batch_size)
    hint = "train it with: python simulate.py train receiver --config scenarios/train/..."
    sc = scenario.source_coding
    if name == "gesco":
        receiver = load_receiver(_file(r.map_weights, "receiver.map_weights", hint), device,
                                 **options)
        g = scenario.gesco
        return GescoScheme(GescoConfig(class_presence=g.class_presence, pool=g.pool,
                                       instance_edges=g.instance_edges), receiver,
                           compat=scenario.phy.channel.type == "gesco_compat")
    if name == "spic":
        receiver = load_receiver(_file(r.superres_weights, "receiver.superres_weights", hint),
                                 device, **options)
        return SpicScheme(SpicConfig(map_codec=sc.map_codec, image_codec=sc.image_codec,
                                     qp=sc.qp, factor=sc.factor), receiver)
    if name == "separation":
        opts = scenario.separation
        target = None
        if opts.qp is None:
            # Match SPIC's total bpp on the same images (its transmitter alone, no receiver).
            spic_tx = SpicScheme(SpicConfig(map_codec=sc.map_codec, image_codec=sc.image_codec,
                                            qp=sc.qp, factor=sc.factor), receiver=None)
            h, w = source.size
            target = float(np.mean([p.total_bits for p in spic_tx.transmit(source).payloads])
                           / (h * w))
        return SeparationScheme(SeparationConfig(codec=sc.image_codec, qp=opts.qp or sc.qp,
                                                 target_bpp=target, on_failure=opts.on_failure))
    if name == "diffgo":
        from semantic.schemes.diffgo import build_diffgo

        return build_diffgo(scenario, device, segment)
    if name == "qgesco":
        from semantic.quant.scheme import build_qgesco

        return build_qgesco(scenario, device, source)
    if name in ("deepjscc", "diffjscc"):
        from semantic.jscc.schemes import build_jscc_scheme

        return build_jscc_scheme(name, scenario, device)
    raise ConfigError(f"unknown scheme {name!r}", key="schemes")


def prepare(scenario: Scenario, device: str, progress: Callable[[str], None]) -> RunContext:
    t0 = time.perf_counter()
    source = load_source(scenario)
    segment = make_segment_fn(scenario, device)
    from semantic.metrics.miou import ConfusionMatrix

    cm = ConfusionMatrix(19)
    cm.update(segment(source.images), torch.from_numpy(source.labels).long())
    ctx = RunContext(scenario, device, source, segment, float(cm.miou()))
    ctx.timed("prepare_data_segmenter", t0)
    if scenario.metrics.fid:
        t0 = time.perf_counter()
        from semantic.metrics.fid import InceptionFeatures

        ctx.inception = InceptionFeatures(device=device, protocol=scenario.metrics.fid_protocol)
        ctx.reference_features = ctx.inception(torch.from_numpy(source.images))
        ctx.timed("reference_features", t0)
    for name in scenario.schemes:
        t0 = time.perf_counter()
        ctx.schemes[name] = build_scheme(name, scenario, device, source, segment=segment)
        ctx.transmissions[name] = ctx.schemes[name].transmit(source)
        ctx.timed(f"build_transmit_{name}", t0)
        progress(f"prepared {name}")
    return ctx


def _digest(delivered) -> str:
    h = hashlib.sha256()
    for name in sorted(delivered.digital):
        for d in delivered.digital[name]:
            h.update(b"-" if d is None else bytes([d.ok]) + d.data)
    for name in sorted(delivered.analog):
        h.update(delivered.analog[name].numpy().tobytes())
    return h.hexdigest()


def run_point(ctx: RunContext, point: Point, scheme_name: str) -> dict[str, Any]:
    """One (scheme, SNR) point: channel, receiver, metrics -> a ``metrics.csv`` row."""
    from link.ber_run import build_phy_link
    from link.channel_io import ChannelCounts, deliver
    from link.semantic_link import channel_name
    from semantic.metrics.intervals import bootstrap_mean_ci, bootstrap_miou_ci
    from semantic.metrics.miou import ConfusionMatrix
    from semantic.metrics.pixel import psnr, ssim
    from semantic.schemes.base import Delivered

    scenario, source = point.config, ctx.source
    scheme = ctx.schemes[scheme_name]
    tx = ctx.transmissions[scheme_name]
    h, w = source.size
    snr = point.snr_value
    channel_gen = torch.Generator().manual_seed(derive_seed(point.seed, scheme_name))
    receiver_seed = derive_seed(scenario.seed, "receiver:" + scheme_name)
    t0 = time.perf_counter()
    compat = scenario.phy.channel.type == "gesco_compat"
    transfer = None
    if compat:
        y = scheme.corrupt_compat(tx, snr, channel_gen)
        delivered = Delivered({}, {}, {}, snr, (h, w))
        counts = ChannelCounts(analog_channel_uses=sum(p.total_channel_uses
                                                       for p in tx.payloads))
        key = None
    else:
        if point.config_index not in ctx.links:
            ctx.links[point.config_index] = build_phy_link(scenario.phy, ctx.device)
        if scenario.link_layer is None:
            delivered, counts = deliver(tx, ctx.links[point.config_index], snr, (h, w),
                                        channel_gen)
        else:
            from link.semantic_link import SemanticLinkLayer

            transfer = SemanticLinkLayer(scenario.link_layer, ctx.links[point.config_index])(
                tx, snr, (h, w), seed=derive_seed(point.seed, scheme_name))
            delivered, counts = transfer.delivered, transfer.counts
        y = None
        key = (scheme_name, _digest(delivered))
    ctx.timed("channel", t0)
    t0 = time.perf_counter()
    if key is not None and key in ctx.cache:
        rec, receive_s = ctx.cache[key]
    else:
        gen = torch.Generator().manual_seed(receiver_seed)
        rec = scheme.receive(delivered, gen, y=y) if compat else scheme.receive(delivered, gen)
        # Wall time of the receiver per image (link layer, compute.mode: measured).
        receive_s = (time.perf_counter() - t0) / len(source)
        if key is not None:
            ctx.cache[key] = rec, receive_s
    ctx.timed("receiver", t0)
    link_layer = None
    if transfer is not None:
        link_layer = transfer.finish(receive_s)

    t0 = time.perf_counter()
    m = scenario.metrics
    cm = ConfusionMatrix(19, keep_per_image=True)
    cm.update(ctx.segment(rec.images), torch.from_numpy(source.labels).long())
    miou_ci = bootstrap_miou_ci(cm.per_image(), generator=point.seed % 2**31,
                                n_resamples=m.bootstrap_resamples)
    orig = torch.from_numpy(source.images)
    recon = torch.from_numpy(rec.images)
    psnr_values = psnr(recon, orig, data_range=255.0)
    psnr_ci = bootstrap_mean_ci(psnr_values, generator=point.seed % 2**31,
                                n_resamples=m.bootstrap_resamples)
    ssim_value = float(ssim(recon, orig, data_range=255.0).mean())
    fid = kid = kid_std = None
    if ctx.inception is not None:
        from semantic.metrics.fid import fid_from_features

        feats = ctx.inception(recon)
        res = fid_from_features(feats, ctx.reference_features, m.fid_protocol,
                                kid_subset_size=min(m.kid_subset_size, len(source)),
                                generator=point.seed % 2**31)
        fid, kid, kid_std = res.fid, res.kid, res.kid_std
    ctx.timed("metrics", t0)

    pixels = h * w
    def mean_bits(names: tuple[str, ...] | None, exclude: tuple[str, ...] = ()) -> float:
        total = 0
        for p in tx.payloads:
            for name, s in p.streams.items():
                if s.kind == "digital" and (names is None or name in names) and name not in exclude:
                    total += s.num_bits
        return total / (len(tx.payloads) * pixels)

    uses = (counts.digital_channel_uses + counts.analog_channel_uses) / (len(source) * pixels)
    return {
        # A scheme may report under another name (e.g. an oracle mode labelled as such).
        "scheme": getattr(scheme, "report_name", scheme_name),
        "channel": (scenario.phy.channel.type if link_layer is None
                    else channel_name(scenario.link_layer)),
        "snr_db": snr,
        "num_images": len(source),
        "bpp": mean_bits(None),
        "bpp_map": mean_bits(("map",)),
        "bpp_image": mean_bits(("image",)),
        "bpp_other": mean_bits(None, exclude=("map", "image")),
        "channel_uses_per_pixel": uses,
        "ber": counts.bit_errors / counts.bits if counts.bits else None,
        "bler": counts.block_errors / counts.blocks if counts.blocks else None,
        "stream_failures": counts.stream_failures,
        "miou": miou_ci.estimate,
        "miou_ci_low": miou_ci.low,
        "miou_ci_high": miou_ci.high,
        "fid": fid,
        "kid": kid,
        "kid_std": kid_std,
        "psnr": float(psnr_values.mean()),
        "ssim": ssim_value,
        "psnr_ci_low": psnr_ci.low,
        "psnr_ci_high": psnr_ci.high,
        "pixel_accuracy": float(cm.pixel_accuracy()),
        "miou_original": ctx.miou_original,
        "bit_errors": counts.bit_errors,
        "bits": counts.bits,
        "block_errors": counts.block_errors,
        "blocks": counts.blocks,
        "fid_protocol": m.fid_protocol if fid is not None else "",
        "snr_axis": "gesco_label" if compat else "snr_per_channel_use_db",
        "point_id": point.point_id,
        "seed": point.seed,
        "receiver_precision": getattr(scheme, "receiver_precision", ""),
        "_flags": {k: int(v.sum()) for k, v in rec.flags.items()},
        "_samples": _sample_rows(source, rec),
        **({} if link_layer is None else {**link_layer.columns(),
                                          "_link_layer": link_layer.stored()}),
    }


SAMPLES_PER_POINT = 2


def _png_b64(array: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _sample_rows(source, rec, n: int = SAMPLES_PER_POINT) -> dict[str, Any]:
    """The first ``n`` regenerated images and received maps as base64 PNG, kept in the store
    so that ``report`` can redraw the sample grids without recomputing."""
    maps = [_png_b64(m) for m in rec.maps[:n]] if rec.maps is not None else None
    return {"images": [_png_b64(i) for i in rec.images[:n]], "maps": maps}


def semantic_points(points: list[Point]) -> list[tuple[Point, str, str]]:
    """(point, scheme, id) for every scheme of every configuration/SNR point."""
    out = []
    for p in points:
        for s in p.config.schemes:
            out.append((p, s, stable_hash({"point": p.point_id, "scheme": s})))
    return out


def run_semantic_points(ctx: RunContext, points: list[Point], store: ResultsStore,
                        on_point: Callable[[str, Point, dict[str, Any], float], None]) -> int:
    done = store.finished_ids()
    ran = 0
    for order, (point, scheme, pid) in enumerate(semantic_points(points)):
        if pid in done:
            continue
        t0 = time.perf_counter()
        row = run_point(ctx, point, scheme)
        wall = time.perf_counter() - t0
        store.put(PointRecord(pid, order, point.config_index, point.seed,
                              {**point.resolved, "scheme": scheme}, row, ctx.device, wall))
        ran += 1
        on_point(scheme, point, row, wall)
    return ran


def is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
