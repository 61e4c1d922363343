"""Worker processes for the throughput measurements of the benchmarks (a sibling module, not a script)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


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
