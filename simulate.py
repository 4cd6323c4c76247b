#!/usr/bin/env python3
"""semlink: end-to-end generative semantic-communication link simulator.

Usage:
  python simulate.py SCENARIO.yaml [--out DIR] [--set dotted.key=value ...]
                     [--device auto|cpu|cuda] [--resume] [--debug]
                     [--executor local|process|ray] [--workers N] [--ray-address auto|HOST:PORT]
  python simulate.py report RUN_DIR
  python simulate.py data preview --source synthetic --n 16 --out DIR
  python simulate.py fid PATH_A PATH_B [--json]
  python simulate.py train segmenter|receiver|jscc ...
  python simulate.py eval receiver WEIGHTS [--n 100] [--steps 20] [--guidance 1.5] [--json]

Exit codes: 0 success; 2 invalid configuration or input (one line on stderr naming the file,
the dotted key and the reason); 1 runtime failure (traceback only with --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from link.errors import ConfigError

SUBCOMMANDS = ("report", "data", "fid", "train", "eval")


def _catalogue() -> str:
    from link.config import (
        CHANNEL_TYPES,
        CODE_TYPES,
        DECODERS,
        MODULATIONS,
        SCENARIO_KINDS,
        TDL_MODELS,
    )

    return (
        "scenario kinds: " + ", ".join(SCENARIO_KINDS) + "\n"
        "modulations (phy.modulation): " + ", ".join(MODULATIONS) + "\n"
        "codes (phy.coding.type): " + ", ".join(CODE_TYPES)
        + "  [ldpc5g: 3GPP 38.212 LDPC with rate matching; k, n; decoder: "
        + "|".join(DECODERS) + "]\n"
        "channels (phy.channel.type): " + ", ".join(CHANNEL_TYPES)
        + "  [rayleigh/rician: fading block|fast; tdl: models " + "/".join(TDL_MODELS)
        + " over OFDM, csi perfect|ls]\n"
        "\nsubcommands:\n"
        "  report RUN_DIR                      regenerate CSVs and plots from a run's store\n"
        "  data preview --source synthetic --n 16 --out DIR\n"
        "  fid PATH_A PATH_B [--json]          FID/KID between two image folders\n"
        "  train segmenter|receiver|jscc ...   train the shipped models\n"
        "  eval receiver WEIGHTS [--json]      a receiver's mIoU ratio, FID/KID on val scenes\n"
        "\nexamples:\n"
        "  python simulate.py scenarios/ber_uncoded_awgn.yaml\n"
        "  python simulate.py scenarios/ber_ldpc_awgn.yaml --set sweep.ebno_db=[1,2,3] "
        "--out /tmp/run\n"
    )


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simulate.py",
        description="Run a scenario (YAML) of the semantic link simulator.",
        epilog=_catalogue(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", help="scenario YAML file (see scenarios/)")
    parser.add_argument("--out", metavar="DIR",
                        help="output directory (default: results/<scenario-name>/<run-id>/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="dotted.key=value",
                        help="override a scenario key (value parsed as YAML); repeatable")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="compute device (default: the scenario's 'device', itself 'auto')")
    parser.add_argument("--resume", action="store_true",
                        help="continue the newest run of this config (or --out DIR), "
                             "skipping finished points")
    parser.add_argument("--executor", choices=("local", "process", "ray"), default="local",
                        help="where points run: in this process (default), a local process "
                             "pool, or Ray tasks (pip install '.[ray]')")
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="points run at once (process pool size; CPU slots of the local "
                             "Ray instance)")
    parser.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                        help="join this Ray cluster instead of starting a local instance")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("cuda requested but no CUDA device is available", key="device")
    return requested


def run_scenario(args: argparse.Namespace) -> int:
    from link.config import load_scenario, parse_scenario, to_yaml
    from link.results import Manifest, atomic_write_text, make_run_dir
    from link.sweep import drop_unused_sections, expand_points, stable_hash

    if args.ray_address is not None and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray", key="--ray-address")
    if args.executor == "local" and args.workers > 1:
        raise ConfigError("the local executor runs one point at a time; add --executor process "
                          "or --executor ray", key="--workers")
    scenario = load_scenario(args.scenario, args.overrides)
    if args.device:
        raw = scenario.raw
        raw["device"] = args.device
        scenario = parse_scenario(raw, source=str(args.scenario))
    device = resolve_device(scenario.device)
    try:
        points = expand_points(scenario)
    except ConfigError as exc:
        raise exc.with_source(str(args.scenario)) from None
    resolved = scenario.model_dump(mode="json")
    drop_unused_sections(resolved, scenario)  # as point ids do: new sections keep old run dirs
    config_hash = stable_hash({k: v for k, v in resolved.items() if k != "device"}, 8)
    run_dir, existed = make_run_dir(scenario.name, config_hash, args.out, args.resume)
    if existed and not args.resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it",
                          key="--out")
    atomic_write_text(run_dir / "config.resolved.yaml", to_yaml(scenario))
    manifest = Manifest(run_dir, scenario.name, scenario.seed, device)
    if scenario.kind == "ber":
        return _run_ber(scenario, points, run_dir, device, manifest, args)
    try:
        return _run_semantic(scenario, points, run_dir, device, manifest)
    except ConfigError as exc:
        raise exc.with_source(str(args.scenario)) from None


def _run_semantic(scenario, points, run_dir: Path, device: str, manifest) -> int:
    from tqdm import tqdm

    from link.semantic_report import store_sample_sources, write_semantic_report
    from link.semantic_run import SAMPLES_PER_POINT, prepare, run_semantic_points, semantic_points
    from link.store import ResultsStore

    total = len(semantic_points(points))
    with ResultsStore(run_dir / "store.sqlite") as store:
        ids = {pid for _p, _s, pid in semantic_points(points)}
        already = len(store.finished_ids() & ids)
        bar = tqdm(total=total, initial=already, desc="points", unit="pt", file=sys.stderr,
                   dynamic_ncols=True, disable=None)
        store.set_meta("scenario", scenario.name)
        ctx = prepare(scenario, device, lambda msg: bar.write(msg, file=sys.stderr))
        store_sample_sources(store, ctx.source.images[:SAMPLES_PER_POINT],
                             ctx.source.labels[:SAMPLES_PER_POINT])

        def on_point(scheme, point, row, wall):
            bar.update(1)
            fid = "-" if row["fid"] is None else f"{row['fid']:.1f}"
            bar.write(f"{scheme:>10} {row['channel']} SNR={row['snr_db']:g} dB  "
                      f"bpp={row['bpp']:.3f}  mIoU={row['miou']:.3f}  FID={fid}  "
                      f"PSNR={row['psnr']:.2f}  failures={row['stream_failures']}  "
                      f"({wall:.1f} s)", file=sys.stderr)

        ran = run_semantic_points(ctx, points, store, on_point)
        bar.close()
        for stage, seconds in ctx.stage_s.items():
            manifest.add_stage(stage, seconds)
        t0 = time.perf_counter()
        written = write_semantic_report(run_dir, store, title=scenario.name)
        manifest.add_stage("report", time.perf_counter() - t0)
        manifest.write(points={"total": total, "ran": ran, "resumed": already},
                       miou_original_images=ctx.miou_original)
    _print_summary(store_path=run_dir / "store.sqlite")
    print(f"{scenario.name}: {total} points ({ran} computed, {already} resumed) -> {run_dir}")
    for path in written:
        print(f"  {path}")
    return 0


def _print_summary(store_path: Path) -> None:
    from link.semantic_report import metrics_rows
    from link.store import ResultsStore

    with ResultsStore(store_path) as store:
        rows = metrics_rows(store)
    # Runs through the link layer also show latency and deadline misses.
    link = any(r.get("latency_p95_s") is not None for r in rows)
    extra = f" {'p95 ms':>8} {'miss':>5}" if link else ""
    print(f"{'scheme':>10} {'SNR':>6} {'bpp':>7} {'cu/px':>7} {'BLER':>8} {'mIoU':>6} "
          f"{'FID':>7} {'PSNR':>6} {'fail':>4}{extra}")
    for r in sorted(rows, key=lambda r: (r["scheme"], r["snr_db"])):
        bler = "" if r["bler"] is None else f"{r['bler']:.2e}"
        fid = "" if r["fid"] is None else f"{r['fid']:.1f}"
        tail = ""
        if link:
            p95 = r.get("latency_p95_s")
            miss = r.get("deadline_miss_rate")
            tail = (f" {'' if p95 is None else f'{1e3 * p95:.1f}':>8}"
                    f" {'' if miss is None else f'{miss:.2f}':>5}")
        print(f"{r['scheme']:>10} {r['snr_db']:>6g} {r['bpp']:>7.3f} "
              f"{r['channel_uses_per_pixel']:>7.3f} {bler:>8} {r['miou']:>6.3f} {fid:>7} "
              f"{r['psnr']:>6.2f} {r['stream_failures']:>4}{tail}")


def _run_ber(scenario, points, run_dir: Path, device: str, manifest,
             args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from link.ber_run import run_ber_points
    from link.executors import make_executor
    from link.report import write_run_report
    from link.store import ResultsStore

    resources = scenario.resources
    if args.executor == "ray" and resources.gpus_per_point > 0 and scenario.device == "auto":
        # Ray places each point on a GPU of the cluster, which the driver may not have itself.
        device = "cuda"

    with ResultsStore(run_dir / "store.sqlite") as store:
        store.set_meta("scenario", scenario.name)
        already = len(store.finished_ids() & {p.point_id for p in points})
        bar = tqdm(total=len(points), initial=already, desc="points", unit="pt",
                   file=sys.stderr, dynamic_ncols=True, disable=None)

        def on_point(point, row, wall):
            bar.update(1)
            bar.write(f"[{point.order + 1}/{len(points)}] {row['channel']} {row['modulation']} "
                      f"{row['code']} Eb/N0={row['ebno_db']:g} dB  BER={row['ber']:.3e} "
                      f"BLER={row['bler']:.3e}  ({row['bit_errors']} bit / "
                      f"{row['block_errors']} block errors, {wall:.1f} s)", file=sys.stderr)

        t0 = time.perf_counter()
        with make_executor(args.executor, args.workers, args.ray_address,
                           resources.cpus_per_point, resources.gpus_per_point) as executor:
            manifest.add_stage("executor_start", time.perf_counter() - t0)
            t0 = time.perf_counter()
            ran = run_ber_points(points, store, device, on_point, executor)
        bar.close()
        manifest.add_stage("simulate", time.perf_counter() - t0)
        t0 = time.perf_counter()
        written = write_run_report(run_dir, store, title=scenario.name)
        manifest.add_stage("report", time.perf_counter() - t0)
        manifest.write(points={"total": len(points), "ran": ran, "resumed": already},
                       executor={"name": args.executor, "workers": executor.workers,
                                 "ray_address": args.ray_address,
                                 **resources.model_dump(mode="json")})
    print(f"{scenario.name}: {len(points)} points ({ran} simulated, {already} resumed) -> {run_dir}")
    for path in written:
        print(f"  {path}")
    return 0


def cmd_report(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="simulate.py report",
                                     description="Regenerate CSVs and plots from a run's store.")
    parser.add_argument("run_dir")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from link.report import write_run_report
    from link.store import ResultsStore

    run_dir = Path(args.run_dir)
    if not (run_dir / "store.sqlite").is_file():
        raise ConfigError("no store.sqlite here (not a run directory)", source=str(run_dir))
    with ResultsStore(run_dir / "store.sqlite") as store:
        written = write_run_report(run_dir, store,
                                   title=store.get_meta("scenario", run_dir.parent.name))
    for path in written:
        print(path)
    return 0


def _data_error(exc: Exception, key: str = "data") -> ConfigError:
    message = str(exc)
    if ": " in message and message.split(": ", 1)[0].startswith("data."):
        key, message = message.split(": ", 1)
    return ConfigError(message, key=key, source="command line")


def cmd_data(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="simulate.py data",
                                     description="Inspect data sets (synthetic, cityscapes, folder).")
    sub = parser.add_subparsers(dest="action", required=True)
    for action, text in (("preview", "write a PNG grid: image | colourised labels | instance edges"),
                         ("stats", "print per-class pixel shares and scene counts")):
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("--source", choices=("synthetic", "cityscapes", "folder"),
                       default="synthetic")
        p.add_argument("--root", default=None, help="data set root (cityscapes, folder)")
        p.add_argument("--split", default="val")
        p.add_argument("--n", type=int, default=16, help="number of scenes")
        p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None)
        p.add_argument("--seed", type=int, default=0)
        if action == "preview":
            p.add_argument("--out", required=True, metavar="DIR")
        p.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from semantic.data import build_dataset
    from semantic.data.preview import write_preview

    if args.n <= 0:
        raise ConfigError(f"expected a positive number, got {args.n}", key="--n",
                          source="command line")
    size = tuple(args.size) if args.size else None
    try:
        dataset = build_dataset(args.source, args.root, args.split, num_images=args.n, size=size,
                                seed=args.seed)
    except ValueError as exc:
        raise _data_error(exc) from None
    if args.action == "preview":
        print(write_preview(dataset, args.n, Path(args.out)))
    else:
        from semantic.data.stats import class_statistics

        print(class_statistics(dataset, args.n).table(dataset.class_names))
    return 0


def _train_receiver(args: argparse.Namespace) -> int:
    from semantic.diffusion.train_data import make_batch_fn
    from semantic.diffusion.training import ReceiverTrainConfig, train_receiver

    try:
        config = ReceiverTrainConfig.from_yaml(args.config)
        if args.max_minutes is not None:
            config.max_minutes = args.max_minutes
        if args.steps is not None:
            config.num_steps = args.steps
        num_classes = config.unet["num_label_channels"] - int(
            config.data.get("instance_edges", True))
        batch_fn = make_batch_fn(config.data, config.batch_size, num_classes=num_classes,
                                 super_res=config.super_res, lowres_factor=config.lowres_factor)
        val_batch_fn = None
        if config.early_stopping is not None:
            val_batch_fn = make_batch_fn(config.data, config.batch_size, num_classes=num_classes,
                                         super_res=config.super_res,
                                         lowres_factor=config.lowres_factor, split="val")
    except FileNotFoundError:
        raise ConfigError("file not found", source=args.config) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(str(exc), key="receiver", source=args.config) from None
    out = Path(args.out or Path("results") / "train" / Path(args.config).stem)
    summary = train_receiver(config, out, batch_fn=batch_fn, progress=not args.quiet,
                             val_batch_fn=val_batch_fn)
    print(f"step {summary.step}/{config.num_steps} (started at {summary.start_step}), "
          f"final loss {summary.final_loss}, {summary.wall_s:.0f} s -> {out}")
    return 0


def _train_jscc(args: argparse.Namespace) -> int:
    from semantic.jscc.training import train_from_yaml

    try:
        line = train_from_yaml(args.config, args.out, steps=args.steps,
                               max_minutes=args.max_minutes, progress=not args.quiet)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc) if exc.args else "file not found", source=args.config) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(str(exc), key="jscc", source=args.config) from None
    print(line)
    return 0


def _without_budget(argv: Sequence[str]) -> list[str]:
    """The command line without ``--max-minutes X``: how long one call ran is not part of how
    the model was trained (a model card records the command that reproduces it)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--max-minutes":
            skip = True
        elif not arg.startswith("--max-minutes="):
            out.append(arg)
    return out


def _train_segmenter(args: argparse.Namespace) -> int:
    from semantic.segmenter import train_segmenter

    out = Path(args.out or "semantic/weights/segmenter.pt")
    from semantic.segmenter import SegmenterConfig

    model_config = SegmenterConfig(full_res_channels=args.full_res_channels)
    result = train_segmenter(out_path=out, steps=args.steps or 1600, batch_size=args.batch_size,
                             size=tuple(args.size), seed=args.seed, resume=True, lr=args.lr,
                             class_weighting=args.class_weighting, model_config=model_config,
                             checkpoint=args.checkpoint, max_minutes=args.max_minutes,
                             precision=args.precision,
                             command="python simulate.py " + " ".join(_without_budget(sys.argv[1:])))
    print(result)
    return 0


def cmd_train(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="simulate.py train",
                                     description="Train the project's models (resumable).")
    sub = parser.add_subparsers(dest="what", required=True)
    rec = sub.add_parser("receiver", help="diffusion receiver from a training YAML")
    rec.add_argument("--config", required=True, help="training YAML (see scenarios/train/)")
    rec.add_argument("--out", default=None, help="run folder (default results/train/<config>)")
    rec.add_argument("--steps", type=int, default=None, help="override num_steps")
    rec.add_argument("--max-minutes", type=float, default=None,
                     help="stop at a checkpoint after this long; rerun to resume")
    rec.add_argument("--quiet", action="store_true")
    jscc = sub.add_parser("jscc", help="deep-JSCC codec or diffjscc refiner from a training YAML")
    jscc.add_argument("--config", required=True, help="training YAML (scenarios/train/jscc_*)")
    jscc.add_argument("--out", default=None, help="run folder (default results/train/<config>)")
    jscc.add_argument("--steps", type=int, default=None, help="override num_steps")
    jscc.add_argument("--max-minutes", type=float, default=None,
                      help="stop at a checkpoint after this long; rerun to resume")
    jscc.add_argument("--quiet", action="store_true")
    seg = sub.add_parser("segmenter", help="the mIoU segmenter on synthetic street scenes")
    seg.add_argument("--out", default=None, help="weights file (default semantic/weights/)")
    seg.add_argument("--steps", type=int, default=None,
                     help="total optimiser steps (default 1600; the defaults are the shipped model's)")
    seg.add_argument("--batch-size", type=int, default=16)
    seg.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    seg.add_argument("--seed", type=int, default=0)
    seg.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    seg.add_argument("--class-weighting", choices=("none", "enet"), default="enet",
                     help="cross-entropy class weights (enet: 1/ln(1.02+p_c))")
    seg.add_argument("--full-res-channels", type=int, default=16,
                     help="width of the full-resolution branch (0: none)")
    seg.add_argument("--max-minutes", type=float, default=None,
                     help="stop after this long, write the snapshot's weights and card; rerun "
                          "to resume (0: export the checkpoint as it is)")
    seg.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                     help="bf16: CPU/GPU bf16 autocast (may change when a run resumes)")
    seg.add_argument("--checkpoint", default=None,
                     help="resumable checkpoint (default: <out stem>.ckpt.pt beside the weights)")
    for p in (rec, seg, jscc):
        p.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "jscc":
        return _train_jscc(args)
    return _train_receiver(args) if args.what == "receiver" else _train_segmenter(args)


def cmd_fid(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="simulate.py fid",
        description="FID and KID (TF-Inception pool3 features) between two image folders.")
    parser.add_argument("path_a")
    parser.add_argument("path_b")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--protocol", choices=("pytorch-fid", "tf"), default="pytorch-fid")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    import json

    from semantic.metrics.fid import fid_between_folders, list_images

    for key, path in (("path_a", args.path_a), ("path_b", args.path_b)):
        if not Path(path).is_dir():
            raise ConfigError("not a folder", key=key, source=path)
        if not list_images(path):
            raise ConfigError("no PNG/JPEG images in this folder", key=key, source=path)
    result = fid_between_folders(args.path_a, args.path_b, protocol=args.protocol,
                                 device=resolve_device(args.device), batch_size=args.batch_size,
                                 kid_subset_size=args.kid_subset_size, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"FID {result.fid:.3f}  KID {result.kid:.5f} +- {result.kid_std:.5f}  "
              f"(n_a={result.n_a}, n_b={result.n_b}, protocol {result.protocol})")
        if result.warning:
            print(f"warning: {result.warning}", file=sys.stderr)
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="simulate.py eval",
        description="Score a trained model on held-out synthetic val scenes.")
    sub = parser.add_subparsers(dest="what", required=True)
    rec = sub.add_parser("receiver", help="a diffusion receiver from a noiseless condition: "
                         "mIoU ratio to the originals, FID/KID, PSNR/SSIM (and the bicubic "
                         "baseline for map+coarse receivers)")
    rec.add_argument("weights", help="receiver file (semantic/weights/receiver_*.pt)")
    rec.add_argument("--n", type=int, default=100, help="val scenes (the first n)")
    rec.add_argument("--steps", type=int, default=20)
    rec.add_argument("--sampler", choices=("ddim", "ddpm", "dpmpp2m"), default="ddim")
    rec.add_argument("--guidance", type=float, default=1.5, help="classifier-free scale s")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--batch-size", type=int, default=16)
    rec.add_argument("--segmenter", default="semantic/weights/segmenter.pt")
    rec.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    rec.add_argument("--grid", default=None, help="write a sample grid PNG here")
    rec.add_argument("--json", action="store_true", help="print one JSON object")
    rec.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    import json

    from semantic.diffusion.evaluate import EvalConfig, evaluate_receiver, format_report

    for key, path in (("weights", args.weights), ("--segmenter", args.segmenter)):
        if not Path(path).is_file():
            raise ConfigError("file not found", key=key, source=path)
    try:
        config = EvalConfig(n=args.n, steps=args.steps, sampler=args.sampler,
                            guidance_scale=args.guidance, seed=args.seed,
                            batch_size=args.batch_size, segmenter=args.segmenter,
                            device=args.device)
    except ValueError as exc:
        raise ConfigError(str(exc), key="eval receiver") from None
    try:
        result = evaluate_receiver(args.weights, config, grid_path=args.grid)
    except (ValueError, KeyError, RuntimeError) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).removeprefix(f"{args.weights}: ").split())[:200]
        raise ConfigError(message, key="eval receiver", source=args.weights) from None
    print(json.dumps(result.to_dict()) if args.json else format_report(result))
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "fid": cmd_fid, "eval": cmd_eval,
    "report": cmd_report, "data": cmd_data, "train": cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        args = _run_parser().parse_args(argv)
        return run_scenario(args)
    except ConfigError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished points are kept (rerun with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        message = " ".join(str(exc).split())[:300]
        print(f"error: runtime failure: {type(exc).__name__}: {message}"
              + ("" if debug else " (rerun with --debug for a traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
