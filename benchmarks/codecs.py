"""Rates and speeds of the source codecs on synthetic street scenes and the real sample.

For every map codec (lossless) and image codec (lossy, a few settings) it reports the mean
bits per pixel of the transmitted bytes (everything the receiver needs, see docs/codecs.md),
the mean PSNR of decoded images, and encode/decode CPU milliseconds per image. Map rates are
also given relative to PNG measured in the same run. Prints a Markdown table:

    .venv/bin/python benchmarks/codecs.py --n 200
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semantic.codecs import build_image_codec, build_map_codec

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/cityscapes_sample"
SAMPLE_LABELS = "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png"
SAMPLE_IMAGE = "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"

MAP_SETTINGS = [
    ("jxl", {"effort": 9}),
    ("jxl", {"effort": 7}),
    ("png", {}),
    ("webp", {}),
    ("zstd", {}),
]
IMAGE_SETTINGS = [
    ("hevc", {"qp": 22}),
    ("hevc", {"qp": 32}),
    ("hevc", {"qp": 42}),
    ("hevc", {"qp": 32, "factor": 4}),
    ("jpeg", {"quality": 75}),
    ("webp", {"quality": 75}),
    ("avif", {"quality": 50}),
    ("jxl", {"quality": 75}),
]


@dataclass(frozen=True)
class Row:
    kind: str
    codec: str
    setting: str
    data: str
    bpp: float
    psnr_db: float | None
    encode_ms: float
    decode_ms: float


def _psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def measure(kind: str, name: str, params: dict, arrays: np.ndarray, data_name: str) -> Row:
    """Encode and decode every array; check the decode; return mean rate, PSNR and times."""
    codec = build_map_codec(name, **params) if kind == "map" else build_image_codec(name, **params)
    codec.decode(codec.encode(arrays[0]), arrays[0].shape)  # warm-up
    bits, psnrs, encode_s, decode_s = [], [], 0.0, 0.0
    for array in arrays:
        t0 = time.process_time()
        data = codec.encode(array)
        t1 = time.process_time()
        result = codec.decode(data, array.shape)
        decode_s += time.process_time() - t1
        encode_s += t1 - t0
        if not result.ok:
            raise RuntimeError(f"{name} {params}: decoding failed: {result.error}")
        if kind == "map" and not np.array_equal(result.array, array):
            raise RuntimeError(f"{name} {params}: lossless round trip is not exact")
        bits.append(8 * len(data))
        if kind == "image":
            psnrs.append(_psnr_db(array, result.array))
    num_pixels = arrays.shape[1] * arrays.shape[2]
    setting = ", ".join(f"{k}={v}" for k, v in params.items()) or "default"
    return Row(
        kind, name, setting, data_name, float(np.mean(bits)) / num_pixels,
        float(np.mean(psnrs)) if psnrs else None,
        1e3 * encode_s / len(arrays), 1e3 * decode_s / len(arrays),
    )  # fmt: skip


def load_sample(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """The real Cityscapes sample as ``([1, H, W, 3], [1, H, W])``, or ``None`` if absent."""
    if not (SAMPLE / SAMPLE_IMAGE).is_file():
        return None
    image = Image.open(SAMPLE / SAMPLE_IMAGE).convert("RGB")
    labels = Image.open(SAMPLE / SAMPLE_LABELS)
    if image.size != size[::-1]:
        image = image.resize(size[::-1], Image.Resampling.LANCZOS)
        labels = labels.resize(size[::-1], Image.Resampling.NEAREST)
    return np.array(image)[None], np.array(labels)[None]


def markdown(rows: list[Row]) -> str:
    png = {r.data: r.bpp for r in rows if r.kind == "map" and r.codec == "png"}
    lines = [
        "| kind | codec | setting | data | mean bpp | vs PNG | PSNR dB | encode ms | decode ms |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r.bpp / png[r.data]:.2f}" if r.kind == "map" and r.data in png else ""
        psnr = f"{r.psnr_db:.2f}" if r.psnr_db is not None else ""
        lines.append(
            f"| {r.kind} | {r.codec} | {r.setting} | {r.data} | {r.bpp:.4f} | {ratio} | {psnr} "
            f"| {r.encode_ms:.2f} | {r.decode_ms:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="synthetic scenes")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sample-repeats", type=int, default=5, help="timing repeats of the sample"
    )
    args = parser.parse_args()
    size = (args.size[0], args.size[1])

    datasets: list[tuple[str, np.ndarray, np.ndarray]] = []
    try:
        from semantic.data.synthetic import SyntheticStreetScenes
    except ImportError:
        print("semantic.data.synthetic is not importable: real sample only")
    else:
        batch = SyntheticStreetScenes(size=size, seed=args.seed).batch(np.arange(args.n))
        datasets.append((f"synthetic (N={args.n})", batch.images, batch.labels))
    sample = load_sample(size)
    if sample is not None:
        repeats = max(1, args.sample_repeats)
        images, labels = (np.repeat(a, repeats, axis=0) for a in sample)
        datasets.append(("Cityscapes sample", images, labels))

    rows = []
    for data_name, images, labels in datasets:
        for name, params in MAP_SETTINGS:
            rows.append(measure("map", name, params, labels, data_name))
        for name, params in IMAGE_SETTINGS:
            rows.append(measure("image", name, params, images, data_name))
    print(f"codecs at {size[0]}x{size[1]}; bpp per original pixel; CPU ms per image, one process")
    print()
    order = {name: i for i, (name, _, _) in enumerate(datasets)}
    print(markdown(sorted(rows, key=lambda r: (r.kind != "map", order[r.data]))))


if __name__ == "__main__":
    main()
