"""Sweep executors: speed-up of an 8-point BER sweep with 2 workers, and Ray's per-point cost.

The sweep is eight uncoded 16-QAM points over Rayleigh fast fading that each run to exactly
``--max-bits`` bits (the error target is out of reach), so every point costs the same and the
ideal speed-up with 2 workers is 2 (target: >= 1.7 on 2 free cores). Every executor is warm when
timed (workers started, PHY stack imported, links built), torch runs one thread per worker (and
in the local reference), and every run is checked to give the same rows as the local one.

A control runs a fixed pure-Python loop the same way: its speed-up is what the machine gives two
processes at that moment (on a shared or CPU-capped machine it is well below 2, and the sweep's
speed-up cannot be higher).

Ray's per-point overhead is measured twice against the local executor: on eight points of one
block each (pure scheduling and transfer cost) and on the full sweep, both with one Ray worker.

    .venv/bin/python benchmarks/sweep_scaling.py [--max-bits 24000000] [--repeats 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import torch

from link.ber_run import BerTask, ber_task, compute_ber_point
from link.config import parse_scenario
from link.executors import Executor, LocalExecutor, ProcessExecutor, RayExecutor
from link.sweep import expand_points


def sweep_tasks(max_bits: int) -> list[BerTask]:
    """The eight points: Eb/N0 0..14 dB in 2 dB steps, ``max_bits`` bits each."""
    scenario = parse_scenario({
        "name": "sweep_scaling", "kind": "ber", "seed": 7,
        "phy": {"modulation": "16qam", "coding": {"type": "none", "k": 1024},
                "channel": {"type": "rayleigh", "fading": "fast"}},
        "sweep": {"ebno_db": [0, 2, 4, 6, 8, 10, 12, 14]},
        "ber": {"target_bit_errors": 10**12, "target_block_errors": 1, "max_bits": max_bits,
                "batch_size": 256},
    })
    return [ber_task(p, "cpu") for p in expand_points(scenario)]


@dataclass(frozen=True)
class Timing:
    """Best of ``repeats`` passes: wall seconds of the sweep, and the sum of the points' own
    Monte-Carlo seconds (what `compute_ber_point` reports) in that pass."""

    wall_s: float
    compute_s: float
    rows: list[dict]

    def overhead_ms(self, n: int) -> float:
        """Per-point time outside the Monte-Carlo loop, for an executor running one at a time."""
        return (self.wall_s - self.compute_s) / n * 1e3


def timed_sweep(executor: Executor, tasks: list[BerTask], repeats: int = 1) -> Timing:
    best: Timing | None = None
    for _ in range(repeats):
        rows: list[dict] = [{}] * len(tasks)
        compute_s = 0.0
        t0 = time.perf_counter()
        for index, (row, wall_s) in executor.imap_unordered(compute_ber_point, tasks):
            rows[index] = row
            compute_s += wall_s
        timing = Timing(time.perf_counter() - t0, compute_s, rows)
        if best is None or timing.wall_s < best.wall_s:
            best = timing
    assert best is not None
    return best


def burn(iterations: int) -> int:
    """The control task: a fixed amount of pure-Python work."""
    total = 0
    for i in range(iterations):
        total += i
    return total


def timed_control(executor: Executor, iterations: int, count: int) -> float:
    t0 = time.perf_counter()
    for _ in executor.imap_unordered(burn, [iterations] * count):
        pass
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-bits", type=int, default=24_000_000, help="bits per point")
    parser.add_argument("--repeats", type=int, default=2, help="passes per executor (best kept)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray measurements")
    args = parser.parse_args()
    tasks = sweep_tasks(args.max_bits)
    tiny = sweep_tasks(1024)
    n, rep = len(tasks), args.repeats
    print(f"8-point BER sweep, {args.max_bits:.2g} bits per point, best of {rep}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'executor':24s}{'sweep s':>9s}{'s/point':>9s}{'overhead ms/pt':>16s}{'speed-up':>10s}")

    def show(name: str, t: Timing, serial: bool, speed_up: float | None = None) -> None:
        overhead = f"{t.overhead_ms(n):16.1f}" if serial else f"{'':16s}"
        ratio = f"{speed_up:10.2f}" if speed_up is not None else ""
        print(f"{name:24s}{t.wall_s:9.2f}{t.wall_s / n:9.2f}{overhead}{ratio}")

    torch.set_num_threads(1)
    local = LocalExecutor()
    timed_sweep(local, tasks[:1])  # warm-up: imports and the link

    # Both pools stay up and their passes alternate, so a change in the machine's load hits
    # both alike; the best pass of each is kept.
    with ProcessExecutor(1, threads_per_worker=1) as one, \
            ProcessExecutor(2, threads_per_worker=1) as two:
        pools = {1: one, 2: two}
        for workers, ex in pools.items():
            ex.warm_up()
            timed_sweep(ex, tasks[:workers])  # every worker builds its link
        passes: dict[int, list[Timing]] = {1: [], 2: []}
        control: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rep):
            for workers, ex in pools.items():
                passes[workers].append(timed_sweep(ex, tasks))
                control[workers].append(timed_control(ex, 5_000_000, 4))
    times = {w: min(ts, key=lambda t: t.wall_s) for w, ts in passes.items()}
    t_local = timed_sweep(local, tasks, rep)
    show("local (1 thread)", t_local, serial=True)
    for workers, timing in times.items():
        assert timing.rows == t_local.rows, "process rows differ from the local ones"
        show(f"process, {workers} worker(s)", timing, serial=workers == 1,
             speed_up=times[1].wall_s / timing.wall_s)
    speed_up = times[1].wall_s / times[2].wall_s
    verdict = "met" if speed_up >= 1.7 else "NOT met"
    print(f"speed-up with 2 workers: {speed_up:.2f} (target >= 1.7 on 2 free cores: {verdict}); "
          f"control, a pure-Python loop on the same pools: "
          f"{min(control[1]) / min(control[2]):.2f}")

    if args.no_ray:
        return
    t0 = time.perf_counter()
    with RayExecutor(workers=1, threads_per_worker=1) as ex:
        t_start = time.perf_counter() - t0
        timed_sweep(ex, tasks[:1])  # worker start, imports, link
        pairs = [(timed_sweep(local, tiny), timed_sweep(ex, tiny), timed_sweep(local, tasks),
                  timed_sweep(ex, tasks)) for _ in range(rep)]
    t_local_tiny, t_ray_tiny, t_local, t_ray = (min((p[i] for p in pairs),
                                                    key=lambda t: t.wall_s) for i in range(4))
    assert t_ray.rows == t_local.rows, "Ray rows differ from the local ones"
    show("local (1 thread)", t_local, serial=True)
    show("ray, 1 worker", t_ray, serial=True)
    print(f"Ray start-up (local instance): {t_start:.1f} s")
    print(f"Ray per-point overhead vs local: "
          f"{t_ray_tiny.overhead_ms(n) - t_local_tiny.overhead_ms(n):.1f} ms (one-block points), "
          f"{t_ray.overhead_ms(n) - t_local.overhead_ms(n):.1f} ms (full sweep)")


if __name__ == "__main__":
    main()
