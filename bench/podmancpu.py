"""CPU seconds of this user's podman processes, sampled from /proc (a sibling module of the benchmark
scripts, not a script).

What podman spends on a build is spread over processes that are mostly no
children of the benchmark: the podman service (one for the run, or one per
build-local), a conmon and a fuse-overlayfs per container (both double-fork,
so init adopts them), runc (``runc create`` as conmon's child; start, kill and
delete as the service's) and ``podman container cleanup``, which conmon starts
when the container exits. Here they share no cgroup of their own (cgroup v1:
rootless podman makes none), and process accounting needs root. So a thread
polls /proc every ``interval`` seconds and follows each process of this user
whose command is podman, conmon, runc, fuse-overlayfs or slirp4netns, and
runc's own stages (``runc:[0:PARENT]`` to ``runc:[2:INIT]``, also at a
subordinate uid) until the container's command replaces them:

- a process's CPU is utime + stime of /proc/<pid>/stat, plus cutime + cstime,
  what its children spent (the kernel adds that when it reaps them), so a
  ``runc start`` the service runs and reaps between two samples is counted in
  full; a followed process whose parent counts it that way stops counting when
  it exits;
- conmon also reaps the container's init, so its cutime ends up holding the
  build itself. It is counted only while the container's init (runc's stage,
  then the container's command, followed for that) is alive: by then it holds
  ``runc create``; conmon's children that exit after that (the cleanup) count
  on their own.

A followed process that exits between two samples, and whose parent does not
count it (the cleanup, an unmounted fuse-overlayfs), loses the CPU it spent
since the last sample; so does a ``runc create`` whose container exits before
the next sample: the figure is a lower bound, off by at most ``interval`` per
such process, a few per container. What the kernel spends on a container's
namespaces and mounts outside these processes is not in it either, nor what
/proc's 10 ms ticks round off each process. Checked once against a cpuacct
cgroup that root made for the podman service's whole tree: on cycles of a
container that sleeps 0.3 s, this counted about three quarters of the
cgroup's figure (0.14-0.18 against 0.20-0.23 CPU-s per container). The
polling costs CPU of its own (``sampler_seconds``).
"""

from __future__ import annotations

import os
import pwd
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

COMMANDS = frozenset({"podman", "conmon", "runc", "fuse-overlayfs", "slirp4netns"})
RUNC_STAGE = "runc:["  # runc init before it execs the container's command
#: Seconds between two samples: short enough for a cleanup or runc's stage (0.1-0.4 s each) to be seen,
#: long enough that the polling costs little (1-3 % of a core here; 20 ms counted hardly more, for 3x that).
INTERVAL = 0.05
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Stat:
    """The fields of /proc/<pid>/stat used here."""

    command: str
    parent: int
    started: int     # clock ticks after boot: tells a reused pid from the process it followed
    own: float       # utime + stime, seconds
    children: float  # cutime + cstime, seconds


class Proc:
    """The /proc of this machine; a test passes another."""

    def pids(self) -> set[int]:
        return {int(name) for name in os.listdir("/proc") if name.isdigit()}

    def stat(self, pid: int) -> Stat | None:
        try:
            fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        except OSError:  # gone
            return None
        try:
            text = os.read(fd, 4096).decode(errors="replace")
        except OSError:
            return None
        finally:
            os.close(fd)
        close = text.rindex(")")
        fields = text[close + 2:].split()  # from the 3rd field, the state
        return Stat(text[text.index("(") + 1:close], int(fields[1]), int(fields[19]),
                    (int(fields[11]) + int(fields[12])) / _TICK, (int(fields[13]) + int(fields[14])) / _TICK)

    def arguments(self, pid: int) -> list[str]:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return []

    def uid(self, pid: int) -> int | None:
        try:
            return os.stat(f"/proc/{pid}").st_uid
        except OSError:
            return None


def _subordinate_uids(user: str) -> list[range]:
    try:
        lines = Path("/etc/subuid").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        name, _, rest = line.partition(":")
        start, _, count = rest.partition(":")
        if name == user and start.isdigit() and count.isdigit():
            found.append(range(int(start), int(start) + int(count)))
    return found


def _is_podman(command: str) -> bool:
    return command in COMMANDS or command.startswith(RUNC_STAGE)


class PodmanCpu:
    """``with PodmanCpu() as cpu: ...``, then ``cpu.seconds``: the CPU seconds podman spent in the block,
    and ``cpu.by_kind``, split by process: "podman service" (with the runc it starts), "conmon" (with
    ``runc create``), "runc" (runc's stages), "other podman" (the cleanup, with its runc), "fuse-overlayfs"."""

    def __init__(self, interval: float = INTERVAL, proc: Proc | None = None, uid: int | None = None,
                 subordinate: list[range] | None = None):
        self.interval = interval
        self.seconds = 0.0
        self.by_kind: dict[str, float] = {}
        self.sampler_seconds = 0.0  # the CPU time of the polling thread
        self._proc = proc or Proc()
        self._uid = os.getuid() if uid is None else uid
        self._subordinate = (_subordinate_uids(pwd.getpwuid(self._uid).pw_name) if subordinate is None
                             else subordinate)
        self._followed: dict[int, Stat] = {}  # podman's processes
        self._inits: dict[int, Stat] = {}     # containers' inits, once runc's stage became their command
        self._conmon: dict[int, float] = {}   # conmon's children's CPU, as last seen while its container lived
        self._services: dict[int, bool] = {}  # of each podman process, whether it is a service
        self._ignored: set[int] = set()       # pids seen and not followed, kept while they exist
        self._ended: dict[str, float] = defaultdict(float)  # what ended processes had counted, by kind
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="podman-cpu", daemon=True)
        self._baseline: dict[str, float] = {}

    def __enter__(self) -> PodmanCpu:
        self._baseline = self.poll()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.by_kind = {kind: seconds - self._baseline.get(kind, 0.0) for kind, seconds in self.poll().items()}
        self.seconds = sum(self.by_kind.values())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
        self.sampler_seconds = time.thread_time()

    def _ours(self, pid: int, stat: Stat) -> bool:
        uid = self._proc.uid(pid)
        # a build's own process, at a subordinate uid, may well be called podman; runc's stages only are podman's
        return uid == self._uid or (stat.command.startswith(RUNC_STAGE) and any(uid in r for r in self._subordinate))

    def _counted(self, pid: int, stat: Stat) -> float:
        return stat.own + (self._conmon.get(pid, 0.0) if stat.command == "conmon" else stat.children)

    def _end(self, pid: int, last: Stat) -> None:
        self._ended[self._kind(pid, last)] += self._counted(pid, last)

    def _kind(self, pid: int, stat: Stat) -> str:
        if stat.command.startswith(RUNC_STAGE):
            return "runc"
        if stat.command != "podman":
            return stat.command
        if pid not in self._services:
            self._services[pid] = "service" in self._proc.arguments(pid)
        return "podman service" if self._services[pid] else "other podman"

    def _alive(self, known: dict[int, Stat], pids: set[int]) -> dict[int, Stat]:
        """Those of ``known`` still there (not a new process on a reused pid), as they are now."""
        now = {pid: self._proc.stat(pid) if pid in pids else None for pid in known}
        return {pid: stat for pid, stat in now.items() if stat is not None and stat.started == known[pid].started}

    def poll(self) -> dict[str, float]:
        """Update every followed process, follow the new ones; the CPU counted so far, by kind."""
        pids = self._proc.pids()
        self._ignored &= pids
        alive = self._alive(self._followed, pids)
        self._inits = self._alive(self._inits, pids)
        containers_of = {stat.parent for stat in self._inits.values()} | {
            stat.parent for stat in alive.values() if stat.command.startswith(RUNC_STAGE)}
        for pid, stat in alive.items():
            if stat.command == "conmon" and pid in containers_of:
                self._conmon[pid] = stat.children
        for pid, last in list(self._followed.items()):
            stat = alive.get(pid)
            if stat is not None and _is_podman(stat.command):
                self._followed[pid] = stat
                continue
            del self._followed[pid]
            if stat is not None:  # runc's stage became the container's command
                self._ignored.add(pid)
                self._inits[pid] = stat
                self._end(pid, last)
                continue
            parent = alive.get(last.parent)
            counted_by_parent = parent is not None and (
                parent.command != "conmon" or last.parent not in self._conmon or last.parent in containers_of)
            if not counted_by_parent:
                self._end(pid, last)
            self._conmon.pop(pid, None)
            self._services.pop(pid, None)
        for pid in pids - self._ignored - self._followed.keys():
            stat = self._proc.stat(pid)
            if stat is not None and _is_podman(stat.command) and self._ours(pid, stat):
                self._followed[pid] = stat
            else:
                self._ignored.add(pid)
        totals = dict(self._ended)
        for pid, stat in self._followed.items():
            kind = self._kind(pid, stat)
            totals[kind] = totals.get(kind, 0.0) + self._counted(pid, stat)
        return totals
