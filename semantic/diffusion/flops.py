"""Multiply-accumulate (MAC) counter for :class:`~semantic.diffusion.unet.SDMUNet` forward passes.

Method: **forward hooks, analytic counts from shapes.** A hook on every ``nn.Conv1d`` /
``nn.Conv2d`` / ``nn.Linear`` counts ``output elements × (in_channels / groups) × kernel size``
MACs, and a hook on every :class:`~semantic.diffusion.nn_blocks.QKVAttention` counts its two
matrix products ``2 × (B·heads) × T² × head_channels``. Normalisation, activations, resampling
and element-wise modulation are not counted (they are memory-bound, not MAC-bound). One MAC = two
FLOPs; ``torch.utils.flop_counter.FlopCounterMode`` reports exactly ``2 × total`` for the same
pass (checked in the tests).

Because hooks only fire for modules that run, the count of a pass that uses a
:class:`~semantic.diffusion.unet.ConditionCache` automatically excludes the SPADE convolutions;
:func:`count_condition_macs` counts what building the cache costs.

Counting also works on the ``meta`` device (no memory, no compute), so the published 675 M
parameter models can be costed at 256×512 with :func:`estimate_macs`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from semantic.diffusion.nn_blocks import SPADE, QKVAttention
from semantic.diffusion.unet import ConditionCache, SDMUNet, UNetConfig

__all__ = [
    "CATEGORIES",
    "ForwardTiming",
    "MacCount",
    "count_condition_macs",
    "count_forward_macs",
    "count_module_macs",
    "estimate_macs",
    "time_forward",
]

#: Breakdown categories of :class:`MacCount`.
CATEGORIES = ("spade_conv", "conv", "attention_proj", "attention_matmul", "linear")


@dataclass(frozen=True)
class MacCount:
    """MACs of one counted call.

    Attributes:
        total: MACs of the whole batch.
        batch_size: B of the counted call.
        by_category: category (see :data:`CATEGORIES`) → MACs; ``spade_conv`` are the
            convolutions inside SPADE layers, ``conv`` every other 2-D convolution,
            ``attention_proj`` the qkv / proj_out 1×1 convs, ``attention_matmul`` QKᵀ and AV,
            ``linear`` the time-embedding MLP and the per-block time projections.
        by_module: qualified module name → MACs (attention products under ``<block>.attention``).
    """

    total: int
    batch_size: int
    by_category: dict[str, int]
    by_module: dict[str, int]

    @property
    def per_image(self) -> float:
        return self.total / self.batch_size

    @property
    def gmac_per_image(self) -> float:
        return self.per_image / 1e9

    def summary(self) -> str:
        """One line: GMAC/image and the category split."""
        parts = ", ".join(
            f"{k} {v / self.batch_size / 1e9:.3f}" for k, v in self.by_category.items() if v
        )
        return f"{self.gmac_per_image:.3f} GMAC/image ({parts})"


def _layer_macs(module: nn.Module, inputs: tuple, output: Tensor) -> int:
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        return output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, QKVAttention):
        qkv = inputs[0]
        batch, width, length = qkv.shape
        # QKᵀ: [B·h, T, T] each a dot of d = C/h; AV: [B·h, d, T] each a sum over T.
        return 2 * batch * (width // 3) * length * length
    raise TypeError(type(module))


def _category(name: str, module: nn.Module, spade_names: set[str]) -> str:
    if isinstance(module, QKVAttention):
        return "attention_matmul"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv1d):
        return "attention_proj"
    if any(name.startswith(prefix + ".") for prefix in spade_names):
        return "spade_conv"
    return "conv"


def _count(model: nn.Module, run: Callable[[], object], batch_size: int) -> MacCount:
    spade_names = {n for n, m in model.named_modules() if isinstance(m, SPADE)}
    by_module: dict[str, int] = defaultdict(int)
    by_category = dict.fromkeys(CATEGORIES, 0)
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Linear | QKVAttention):
            category = _category(name, module, spade_names)

            def hook(mod, inputs, output, name=name, category=category):
                macs = _layer_macs(mod, inputs, output)
                by_module[name] += macs
                by_category[category] += macs

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    total = sum(by_category.values())
    return MacCount(total, batch_size, by_category, dict(by_module))


def count_module_macs(module: nn.Module, *args, **kwargs) -> MacCount:
    """Count the MACs of ``module(*args, **kwargs)`` for any module (batch = ``args[0]`` rows).

    Example:
        >>> conv = nn.Conv2d(4, 8, 3, padding=1)
        >>> count_module_macs(conv, torch.zeros(2, 4, 5, 5)).total == 2 * 8 * 5 * 5 * 4 * 9
        True
    """
    return _count(module, lambda: module(*args, **kwargs), args[0].shape[0])


def count_forward_macs(
    model: SDMUNet,
    x: Tensor,
    t: Tensor,
    y: Tensor | None = None,
    low_res: Tensor | None = None,
    *,
    cache: ConditionCache | None = None,
) -> MacCount:
    """Count the MACs of ``model(x, t, y, low_res, cache=cache)`` (arguments as in the model).

    Example:
        >>> cfg = UNetConfig(image_size=32, model_channels=32, num_res_blocks=1,
        ...                  channel_mult=(1, 1), num_label_channels=6,
        ...                  attention_resolutions=(2,), num_head_channels=16)
        >>> model = SDMUNet(cfg)
        >>> x, y = torch.zeros(1, 3, 32, 32), torch.zeros(1, 6, 32, 32)
        >>> full = count_forward_macs(model, x, torch.tensor([5]), y)
        >>> cached = count_forward_macs(model, x, torch.tensor([5]),
        ...                             cache=model.precompute_condition(y))
        >>> cached.by_category["spade_conv"], full.by_category["spade_conv"] > 0
        (0, True)
    """
    return _count(model, lambda: model(x, t, y, low_res, cache=cache), x.shape[0])


def count_condition_macs(model: SDMUNet, y: Tensor, low_res: Tensor | None = None) -> MacCount:
    """Count the MACs of ``model.precompute_condition(y, low_res)`` (the SPADE convolutions)."""
    return _count(model, lambda: model.precompute_condition(y, low_res), y.shape[0])


def estimate_macs(
    config: UNetConfig, height: int, width: int, *, use_cache: bool, batch_size: int = 1
) -> MacCount:
    """MACs of one forward at H×W, counted on the ``meta`` device (no weights allocated).

    Args:
        config: network structure. height, width: input size.
        use_cache: True: the per-step cost with a precomputed condition (no SPADE convs);
            False: a full forward (training, or sampling without the cache).

    Example:
        >>> m = estimate_macs(UNetConfig.small_cpu_map((64, 128)), 64, 128, use_cache=True)
        >>> m.by_category["spade_conv"]
        0
    """
    with torch.device("meta"):
        model = SDMUNet(config)
        x = torch.zeros(batch_size, config.image_channels, height, width)
        t = torch.zeros(batch_size, dtype=torch.long)
        y = torch.zeros(batch_size, config.num_label_channels, height, width)
        low = None
        if config.super_res:
            low = torch.zeros(batch_size, config.image_channels, height // 2, width // 2)
        if not use_cache:
            return count_forward_macs(model, x, t, y, low)
        with torch.no_grad():
            cache = model.precompute_condition(y, low)
        return count_forward_macs(model, x, t, cache=cache)


@dataclass(frozen=True)
class ForwardTiming:
    """Wall-clock of one :func:`time_forward` measurement (milliseconds, best of ``repeats``).

    Attributes:
        cached_ms: ``model(x, t, cache=cache)`` for the whole batch.
        uncached_ms: ``model(x, t, y, low_res)`` (SPADE convolutions included).
        condition_ms: ``model.precompute_condition(y, low_res)`` (once per image batch).
        cached_cpu_ms: process CPU time of the fastest cached call, summed over threads; on a
            busy machine it estimates the cost better than wall time (single thread: the wall
            time the call would take on an idle core).
        threads: ``torch.get_num_threads()`` during the measurement.
    """

    cached_ms: float
    uncached_ms: float
    condition_ms: float
    cached_cpu_ms: float
    threads: int


def time_forward(
    config: UNetConfig,
    height: int,
    width: int,
    *,
    batch_size: int = 16,
    threads: int = 2,
    repeats: int = 3,
    channels_last: bool = True,
) -> ForwardTiming:
    """Measure CPU forward times of a randomly initialised model (inference mode, float32).

    Args:
        config, height, width: network and input size. batch_size: images per call.
        threads: ``torch.set_num_threads`` for the measurement (restored afterwards).
        repeats: best-of count after one warm-up call.
        channels_last: run the model in the channels-last memory format (faster convolutions
            on CPU for narrow layers).
    """
    import time

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        model = SDMUNet(config).eval()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        x = torch.randn(batch_size, config.image_channels, height, width, generator=gen)
        labels = torch.randint(0, config.num_label_channels, (batch_size, height, width))
        y = torch.nn.functional.one_hot(labels, config.num_label_channels)
        y = y.permute(0, 3, 1, 2).float()
        low = None
        if config.super_res:
            low = torch.rand(batch_size, config.image_channels, height // 2, width // 2)
        t = torch.full((batch_size,), 500)

        def best(fn: Callable[[], object]) -> tuple[float, float]:
            times = []
            for _ in range(repeats):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                times.append(
                    ((time.perf_counter() - start) * 1e3, (time.process_time() - start_cpu) * 1e3)
                )
            return min(times)

        with torch.inference_mode():
            cache = model.precompute_condition(y, low)
            model(x, t, cache=cache)
            condition_ms = best(lambda: model.precompute_condition(y, low))[0]
            cached_ms, cached_cpu_ms = best(lambda: model(x, t, cache=cache))
            uncached_ms = best(lambda: model(x, t, y, low))[0]
        return ForwardTiming(cached_ms, uncached_ms, condition_ms, cached_cpu_ms, threads)
    finally:
        torch.set_num_threads(previous)


def _main() -> None:
    import argparse
    import os

    parser = argparse.ArgumentParser(
        description="MACs (and optionally CPU time) of an SDMUNet forward pass."
    )
    parser.add_argument(
        "--preset",
        default="small_cpu_map",
        choices=["small_cpu_map", "small_cpu_superres", "gesco_cityscapes256", "spic_cityscapes"],
    )
    parser.add_argument("--size", type=int, nargs=2, default=[64, 128], metavar=("H", "W"))
    parser.add_argument("--time", action="store_true", help="also measure CPU forward times")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nchw", action="store_true", help="time without channels-last")
    args = parser.parse_args()
    height, width = args.size
    factory = getattr(UNetConfig, args.preset)
    config = factory((height, width)) if args.preset.startswith("small") else factory()
    for use_cache in (False, True):
        count = estimate_macs(config, height, width, use_cache=use_cache)
        label = "cached step" if use_cache else "full forward"
        print(f"{args.preset} {height}x{width} {label}: {count.summary()}")
    if args.time:
        timing = time_forward(
            config,
            height,
            width,
            batch_size=args.batch,
            threads=args.threads,
            channels_last=not args.nchw,
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"batch {args.batch}, {timing.threads} threads, load {load:.1f}: cached "
            f"{timing.cached_ms:.0f} ms (CPU {timing.cached_cpu_ms:.0f} ms), uncached "
            f"{timing.uncached_ms:.0f} ms, "
            f"condition cache {timing.condition_ms:.0f} ms"
        )


if __name__ == "__main__":
    _main()
