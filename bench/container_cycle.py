"""What one fresh container per build costs, and how it scales on this machine. Not a test.

A cycle is what podman does for each warm build, without the build: create a
container of the dev image, start it attached, read its output to the end,
remove it (PodmanManager.create, start_attached and remove, as the runner's
build phase uses them), against one podman service, as the daemon's tasks
share one. The command is ``true``, or with --loop N a shell loop of N rounds
to stand in for a build's own CPU.

For 1 worker process and then 2, each cycling for --seconds, it prints the
cycles per minute, the CPU seconds per cycle of the whole machine (from
/proc/stat: user, nice, system, irq, softirq) and of podman's processes
alone (the service, conmon, runc, fuse-overlayfs: podmancpu.py), and how busy
the machine was. Then it prints the 2/1 throughput ratio. A cycle that keeps
more than one core busy (the CPU per cycle is above its wall time) bounds the
ratio below 2 on a 2-core machine. docs/performance.md explains why. Run as
the build user:

    scripts/as-builder.sh python bench/container_cycle.py [--seconds 20] [--loop 0]   # as root

Every container is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid

from workers import measure_window  # a sibling module of this script

from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerSpec
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.container.service import PodmanService
from koji_adjutant.defaults import DEV_IMAGE


def _cycle_worker(socket: str, labels: dict[str, str], command: list[str], seconds: float, start_at: float,
                  stop, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; the cycle under way finishes
    count = 0
    try:
        with PodmanManager(socket=socket) as manager:
            spec = ContainerSpec(image=DEV_IMAGE, command=command, labels=labels)
            stop.wait(max(0.0, start_at - time.monotonic()))
            while time.monotonic() < start_at + seconds and not stop.is_set():
                handle = manager.create(spec)
                try:
                    manager.start_attached(handle, lambda _stream, _data: None, timeout=60)
                finally:
                    manager.remove(handle)
                count += 1
        results.put(("ok", count))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def measure(socket: str, labels: dict[str, str], command: list[str], workers: int,
            seconds: float) -> tuple[float, str]:
    """Cycles per minute, and a line with them, the wall and CPU seconds per cycle and how busy the machine was."""
    window = measure_window(_cycle_worker, [(socket, labels, command, seconds)] * workers, timeout=seconds + 120)
    errors = [value for status, value in window.outcomes if status != "ok"]
    if errors:
        raise RuntimeError("a cycle worker failed: " + "; ".join(errors))
    cycles = sum(value for _, value in window.outcomes)
    if not cycles:
        raise RuntimeError("no cycle finished in the window")
    return cycles / window.seconds * 60, window.summary(workers, cycles, "cycle")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="wall time per measurement (default 20)")
    parser.add_argument("--loop", type=int, default=0,
                        help="rounds of a shell loop each container runs, for CPU of its own (default 0: true)")
    args = parser.parse_args()
    if os.geteuid() == 0:
        parser.error("run as the unprivileged build user: scripts/as-builder.sh python bench/container_cycle.py")
    if args.seconds <= 0 or args.loop < 0:
        parser.error("--seconds must be positive and --loop not negative")
    command = (["sh", "-c", 'i=0; while [ "$i" -lt "$1" ]; do i=$((i+1)); done', "loop", str(args.loop)]
               if args.loop else ["true"])
    labels = {LABEL_WORKER: f"bench-cycle-{uuid.uuid4().hex[:8]}", LABEL_PURPOSE: "bench-cycle"}
    print(f"$ python bench/container_cycle.py --seconds {args.seconds:g} --loop {args.loop}")
    print(f"{len(os.sched_getaffinity(0))} cores; image {DEV_IMAGE}; command {' '.join(command)}")
    service = PodmanService(None)
    try:
        rates = []
        for workers in (1, 2):
            rate, line = measure(service.uri, labels, command, workers, args.seconds)
            rates.append(rate)
            print(line, flush=True)
        print(f"ratio 2/1: {rates[1] / rates[0]:.2f}x")
    except KeyboardInterrupt:
        print("interrupted; removing the run's containers", file=sys.stderr)
        return 130
    finally:
        with PodmanManager(socket=service.uri) as manager:
            manager.remove_by_label({LABEL_WORKER: labels[LABEL_WORKER]})
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
