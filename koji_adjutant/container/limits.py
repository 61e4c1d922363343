"""Applying ResourceLimits, with or without cgroups.

Rootless podman can only set cgroup limits on cgroup v2 with delegated
controllers; on cgroup v1 hosts (such as the project's own machines) it
ignores them with a warning. A limit that is silently ignored is worse than
none, so on such hosts koji-adjutant enforces them itself:

* memory and pids: a watchdog thread sums the resident memory and counts the
  processes of the container's pid namespace (the worker owns the container's
  user namespace, so it may read and kill those processes) and kills the
  container the moment a limit is passed, reporting it as out of memory;
* cpus: the container's processes are pinned to that many CPUs with taskset
  (the images carry util-linux), the same effect cpuset would have.

See docs/adr/0001-container-boundary.md.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .interface import ResourceLimits

log = logging.getLogger(__name__)

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_POLL_INTERVAL = 0.25

#: Processes per container by default: far more than a parallel build uses, far fewer than a
#: fork bomb would take.
DEFAULT_PIDS_LIMIT = 4000


def default_memory_limit_mb() -> int:
    """Half the host's memory: one build cannot take what another needs to finish."""
    return os.sysconf("SC_PHYS_PAGES") * _PAGE_SIZE // 2 // (1 << 20)


def default_limits() -> ResourceLimits:
    return ResourceLimits(memory_bytes=default_memory_limit_mb() << 20, pids=DEFAULT_PIDS_LIMIT)
_CPU_PERIOD_US = 100_000


class LimitMode(str, enum.Enum):
    CGROUP = "cgroup"
    WATCHDOG = "watchdog"


def detect_mode(host_info: dict) -> LimitMode:
    """Choose how limits are enforced from ``podman info``'s host section."""
    rootless = host_info.get("security", {}).get("rootless", True)
    cgroup_v2 = host_info.get("cgroupVersion") == "v2"
    controllers = set(host_info.get("cgroupControllers") or [])
    if not rootless or (cgroup_v2 and {"memory", "pids", "cpu"} <= controllers):
        return LimitMode.CGROUP
    return LimitMode.WATCHDOG


def cgroup_create_args(limits: ResourceLimits) -> dict:
    args: dict = {}
    if limits.memory_bytes is not None:
        args["mem_limit"] = limits.memory_bytes
        args["memswap_limit"] = limits.memory_bytes
    if limits.pids is not None:
        args["pids_limit"] = limits.pids
    if limits.cpus is not None:
        # podman-py ignores nano_cpus without a word; period and quota reach podman.
        args["cpu_period"] = _CPU_PERIOD_US
        args["cpu_quota"] = int(limits.cpus * _CPU_PERIOD_US)
    return args


def pin_command(limits: ResourceLimits, command: Sequence[str]) -> list[str]:
    """Prefix ``command`` with taskset when a cpu limit must be enforced without cgroups."""
    if limits.cpus is None:
        return list(command)
    allowed = sorted(os.sched_getaffinity(0))
    count = min(max(1, math.ceil(limits.cpus)), len(allowed))
    return ["taskset", "-c", ",".join(map(str, allowed[:count])), *command]


@dataclass(frozen=True)
class Breach:
    kind: str  # "memory" or "pids"
    observed: int
    limit: int

    def describe(self) -> str:
        if self.kind == "memory":
            return (f"used {self.observed // (1 << 20)} MiB of memory, over its limit of "
                    f"{self.limit // (1 << 20)} MiB")
        return f"ran {self.observed} processes, over its limit of {self.limit}"


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def namespace_usage(namespace: str) -> tuple[int, int]:
    """Resident bytes and process count of every process in pid namespace ``namespace``."""
    rss = 0
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or _pid_namespace(int(entry.name)) != namespace:
            continue
        try:
            with open(f"/proc/{entry.name}/statm") as statm:
                rss += int(statm.read().split()[1]) * _PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        count += 1
    return rss, count


class Watchdog(threading.Thread):
    """Kills a container whose processes pass its memory or pids limit."""

    def __init__(self, init_pid: int, limits: ResourceLimits, kill: Callable[[], None]):
        super().__init__(name=f"adjutant-watchdog-{init_pid}", daemon=True)
        self._namespace = _pid_namespace(init_pid)
        self._limits = limits
        self._kill = kill
        self._stop_event = threading.Event()
        self.breach: Breach | None = None

    def run(self) -> None:
        if self._namespace is None:
            log.warning("cannot watch the container's processes; memory and pids limits are not enforced")
            return
        while not self._stop_event.wait(_POLL_INTERVAL):
            rss, count = namespace_usage(self._namespace)
            if count == 0:
                return
            breach = None
            if self._limits.memory_bytes is not None and rss > self._limits.memory_bytes:
                breach = Breach("memory", rss, self._limits.memory_bytes)
            elif self._limits.pids is not None and count > self._limits.pids:
                breach = Breach("pids", count, self._limits.pids)
            if breach is not None:
                self.breach = breach
                log.warning("container %s; killing it", breach.describe())
                self._kill()
                return

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
