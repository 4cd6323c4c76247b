"""Executors: where the points of a sweep run (in process, a local process pool, Ray tasks).

An executor maps a picklable function over picklable tasks and yields ``(index, result)`` pairs
in the order results arrive. It never touches the results store: the calling process commits
each result as it arrives and stays the only writer, so parallel points cannot conflict and a
killed run loses at most the points that were running.

- `LocalExecutor`: in this process, one point after another (the default).
- `ProcessExecutor`: a pool of ``workers`` spawned processes on this machine.
- `RayExecutor`: Ray tasks, on a local Ray instance it starts (``num_cpus=workers``) or on an
  existing cluster it joins (``address="auto"`` or ``"HOST:PORT"``); each point asks Ray for
  ``cpus_per_point`` cores and ``gpus_per_point`` GPUs, so with ``gpus_per_point=1`` a GPU
  cluster runs one point per GPU.

With more than one worker each worker limits torch to ``threads_per_worker`` threads (default:
one per requested core), so ``workers`` processes do not fight over the cores.

Example:
    >>> with make_executor("local") as ex:
    ...     sorted(ex.imap_unordered(abs, [-3, 1, -2]))
    [(0, 3), (1, 1), (2, 2)]
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from link.errors import ConfigError

EXECUTORS: tuple[str, ...] = ("local", "process", "ray")

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """What `link.ber_run.run_ber_points` (and any sweep runner) needs from an executor."""

    name: str
    workers: int

    def imap_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Run ``fn(task)`` for every task; yield ``(index in tasks, result)`` as each ends."""
        ...

    def close(self) -> None:
        """Release workers (idempotent)."""
        ...


def _limit_threads(num_threads: int | None) -> None:
    """Cap torch's (and numba's, for the fast LDPC decoder) threads in this worker."""
    if num_threads is None:
        return
    import torch

    torch.set_num_threads(num_threads)
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(num_threads, numba.config.NUMBA_NUM_THREADS)))


class _ContextManager:
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release."""


class LocalExecutor(_ContextManager):
    """Runs every task in this process, in order (no pickling, no start-up cost)."""

    name = "local"
    workers = 1

    def imap_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        for index, task in enumerate(tasks):
            yield index, fn(task)


# ---------------------------------------------------------------------------------------------
# Local process pool


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Watch the parent from a daemon thread; end this worker when it is gone.

    A parent killed with SIGKILL cannot tell its pool to stop, and an idle worker would wait on
    its queue forever; a worker whose parent changed exits at once instead.
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_process_worker(parent_pid: int, num_threads: int | None) -> None:
    _exit_with_parent(parent_pid)
    _limit_threads(num_threads)


class ProcessExecutor(_ContextManager):
    """A pool of ``workers`` processes (spawned, so no parent state leaks into them).

    Args:
        workers: number of worker processes (>= 1).
        threads_per_worker: torch threads in each worker; default 1 when ``workers > 1``,
            torch's own default otherwise.

    Workers start on first use and are kept until `close`, so per-process caches (built
    links) serve every later task.
    """

    name = "process"

    def __init__(self, workers: int, threads_per_worker: int | None = None):
        if workers < 1:
            raise ConfigError(f"expected at least 1 worker, got {workers}", key="--workers")
        self.workers = workers
        self.threads_per_worker = threads_per_worker if threads_per_worker is not None else (
            1 if workers > 1 else None)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_process_worker,
                initargs=(os.getpid(), self.threads_per_worker))
        return self._pool

    def warm_up(self, hold_s: float = 0.3) -> list[tuple[int, int]]:
        """Start every worker now and import the PHY stack there (e.g. before timing a sweep).

        Returns:
            ``(pid, torch threads)`` of the worker that ran each of ``workers`` warm-up tasks
            (each holds its worker ``hold_s`` seconds, so they spread over the workers).
        """
        pool = self._get_pool()
        futures = [pool.submit(warm_up_worker, hold_s) for _ in range(self.workers)]
        return [future.result() for future in futures]

    def imap_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        pool = self._get_pool()
        pending: dict[Future, int] = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                # Hand over every result that arrived before raising the first failure, so the
                # caller can commit them.
                failed = [f for f in finished if f.exception() is not None]
                for future in sorted(set(finished) - set(failed), key=pending.__getitem__):
                    yield pending.pop(future), future.result()
                if failed:
                    raise failed[0].exception()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def warm_up_worker(hold_s: float) -> tuple[int, int]:
    """Task that imports the PHY stack and holds its worker ``hold_s`` seconds.

    Returns:
        ``(pid, torch threads)`` of the worker, to check placement and thread limits.
    """
    import torch

    import phy.link  # noqa: F401

    time.sleep(hold_s)
    return os.getpid(), torch.get_num_threads()


# ---------------------------------------------------------------------------------------------
# Ray


def _ray_call(fn: Callable[[Any], Any], task: Any, num_threads: int | None) -> Any:
    """Body of every Ray task: limit torch threads, then run ``fn(task)``."""
    _limit_threads(num_threads)
    return fn(task)


class RayExecutor(_ContextManager):
    """Ray tasks, one per point.

    Args:
        workers: CPU slots of the local Ray instance started when ``address`` is None (default:
            this machine's cores). Ignored when joining a cluster (its size decides).
        address: None to start a local instance, ``"auto"`` or ``"HOST:PORT"`` to join one.
        cpus_per_point, gpus_per_point: resources each task asks Ray for (fractions allowed).
        threads_per_worker: torch threads in each task (default: ``ceil(cpus_per_point)``
            when more than one point can run at once).

    Ray is an optional extra (``pip install .[ray]``).
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 cpus_per_point: float = 1.0, gpus_per_point: float = 0.0,
                 threads_per_worker: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("Ray is not installed; install the extra: pip install '.[ray]'",
                              key="--executor") from None
        if workers is not None and workers < 1:
            raise ConfigError(f"expected at least 1 worker, got {workers}", key="--workers")
        self._ray = ray
        self._started_here = address is None
        if address is None:
            # "local": a new instance even when a cluster started by `ray start` is running.
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_point))
        if threads_per_worker is None and self.workers > 1:
            threads_per_worker = max(1, int(-(-cpus_per_point // 1)))
        self.threads_per_worker = threads_per_worker
        self._remote = ray.remote(num_cpus=cpus_per_point, num_gpus=gpus_per_point)(_ray_call)
        self._closed = False

    def imap_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        ray = self._ray
        pending = {self._remote.remote(fn, task, self.threads_per_worker): i
                   for i, task in enumerate(tasks)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index = pending.pop(ref)
                    yield index, ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ray.shutdown()


def make_executor(name: str, workers: int = 1, address: str | None = None,
                  cpus_per_point: float = 1.0, gpus_per_point: float = 0.0) -> Executor:
    """Build the executor ``name`` (one of `EXECUTORS`); see the classes for the arguments.

    Raises:
        ConfigError: unknown name, ``workers < 1``, an address without Ray, Ray not installed.
    """
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r} (valid: {', '.join(EXECUTORS)})",
                          key="--executor")
    if workers < 1:
        raise ConfigError(f"expected at least 1 worker, got {workers}", key="--workers")
    if address is not None and name != "ray":
        raise ConfigError("--ray-address needs --executor ray", key="--ray-address")
    if name == "local":
        if workers != 1:
            raise ConfigError("the local executor runs one point at a time; use --executor "
                              "process or ray for --workers > 1", key="--workers")
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    return RayExecutor(workers, address, cpus_per_point, gpus_per_point)
