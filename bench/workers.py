"""Worker processes for the throughput measurements of the benchmarks (a sibling module, not a script)."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from podmancpu import PodmanCpu  # a sibling module

#: Seconds the spawned interpreters get to start and import before the measured work begins.
STARTUP = 5.0


@contextmanager
def worker_processes(target: Callable, argument_lists: Sequence[tuple]) -> Iterator[multiprocessing.Queue]:
    """One spawned process per argument list, each running ``target(*arguments, stop, results)``;
    yields ``results``, the queue they report on.

    On the way out ``stop`` is set (a worker finishes the build or cycle under way
    and cleans up), and each process is waited for; one that still runs after
    that is terminated, the last resort.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop = context.Event()
    processes = [context.Process(target=target, args=(*arguments, stop, results)) for arguments in argument_lists]
    for process in processes:
        process.start()
    try:
        yield results
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=120)
            if process.is_alive():
                process.terminate()
                process.join(timeout=120)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent working since boot: user, nice, system, irq and
    softirq of /proc/stat (idle, iowait and a VM's steal left out)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """What worker processes reported, from their common start on, and what the machine spent meanwhile."""

    outcomes: list        # one report of each worker
    seconds: float        # wall time from the start until the last report
    busy: float           # CPU seconds of the whole machine (machine_busy_seconds)
    podman: float         # of which this user's podman processes spent (podmancpu.py)
    podman_by_kind: dict[str, float]  # the same, by process (PodmanCpu.by_kind)
    sampler: float        # and the sampling of podman's processes

    @property
    def busy_share(self) -> float:
        """The share of all cores that was busy."""
        return self.busy / self.seconds / len(os.sched_getaffinity(0))

    def summary(self, workers: int, count: int, unit: str) -> str:
        """The window in one line, per unit of work done (a build, a container cycle): the rate,
        the wall and CPU seconds each took, podman's share, and how busy the machine was."""
        return (f"{workers} worker{'s' if workers > 1 else ' '}: {count / self.seconds * 60:6.2f} {unit}s/min, "
                f"{self.seconds * workers / count:6.3f} s per {unit} per worker, "
                f"{self.busy / count:6.3f} CPU-s per {unit} (podman {self.podman / count:.3f}), "
                f"machine {self.busy_share:.0%} busy")


def measure_window(target: Callable, argument_lists: Sequence[tuple], timeout: float) -> Window:
    """Run ``target(*arguments, start_at, stop, results)`` in one process per argument list (see
    worker_processes), each starting its work at ``start_at``, and wait up to ``timeout`` seconds for
    each one's report on ``results``; the machine's and podman's CPU are counted from ``start_at``."""
    start_at = time.monotonic() + STARTUP
    with worker_processes(target, [(*arguments, start_at) for arguments in argument_lists]) as results:
        time.sleep(max(0.0, start_at - time.monotonic()))
        busy_before = machine_busy_seconds()
        with PodmanCpu() as podman:
            outcomes = [results.get(timeout=timeout) for _ in argument_lists]
            busy = machine_busy_seconds() - busy_before
            seconds = time.monotonic() - start_at
    return Window(outcomes, seconds, busy, podman.seconds, podman.by_kind, podman.sampler_seconds)
