"""bench/podmancpu.py: which processes' CPU counts as podman's, on a made-up /proc."""

from __future__ import annotations

import pytest

from tests import benchscripts

podmancpu = benchscripts.load("podmancpu")
USER, SUBORDINATE, OTHER = 1004, 231072, 1003


class FakeProc:
    """pid -> (uid, Stat), changed between polls by the test."""

    def __init__(self):
        self.table: dict[int, tuple[int, object]] = {}

    def set(self, pid, command, parent, own, children=0.0, uid=USER, started=None):
        self.table[pid] = (uid, podmancpu.Stat(command, parent, started or pid, own, children))

    def pids(self):
        return set(self.table)

    def stat(self, pid):
        return self.table[pid][1] if pid in self.table else None

    def arguments(self, pid):
        return ["podman", "system", "service"] if pid == 10 else ["podman", "container", "cleanup"]

    def uid(self, pid):
        return self.table[pid][0] if pid in self.table else None


@pytest.fixture
def proc():
    return FakeProc()


def sampler(proc):
    return podmancpu.PodmanCpu(proc=proc, uid=USER, subordinate=[range(SUBORDINATE, SUBORDINATE + 65536)])


def since(start, now):
    return {kind: pytest.approx(seconds - start.get(kind, 0.0)) for kind, seconds in now.items()
            if seconds - start.get(kind, 0.0)}


def test_a_container_counts_podman_and_not_the_build(proc):
    cpu = sampler(proc)
    proc.set(10, "podman", 1, 1.0)                         # the service
    proc.set(50, "conmon", 1, 0.5, 9.0, uid=OTHER)         # another user's
    start = cpu.poll()
    proc.set(10, "podman", 1, 1.2, 0.1)                    # reaped a runc start it was never seen with
    proc.set(20, "conmon", 1, 0.01)
    proc.set(21, "runc", 20, 0.02)                         # runc create
    proc.set(22, "runc:[2:INIT]", 21, 0.005, uid=SUBORDINATE + 1)
    proc.set(23, "fuse-overlayfs", 1, 0.01)
    proc.set(99, "podman", 22, 0.5, uid=SUBORDINATE + 1)   # a build's own program of that name
    cpu.poll()
    del proc.table[21], proc.table[99]
    proc.set(20, "conmon", 1, 0.01, 0.05)                  # reaped runc create, with its stages
    proc.set(22, "runc:[2:INIT]", 20, 0.01, uid=SUBORDINATE + 1)
    cpu.poll()
    proc.set(22, "bash", 20, 0.02, uid=SUBORDINATE + 1)    # the container's command
    cpu.poll()
    proc.set(22, "bash", 20, 5.0, 3.0, uid=SUBORDINATE + 1)
    cpu.poll()
    del proc.table[22]
    proc.set(20, "conmon", 1, 0.02, 8.07)                  # reaped the container: the build
    proc.set(24, "podman", 20, 0.03, 0.01)                 # podman container cleanup
    proc.set(23, "fuse-overlayfs", 1, 0.02)
    cpu.poll()
    for pid in (20, 23, 24):
        del proc.table[pid]
    proc.set(10, "podman", 1, 1.3, 0.15)
    assert since(start, cpu.poll()) == {"podman service": 0.45, "conmon": 0.02 + 0.05,  # runc create in conmon's
                                        "runc": 0.01, "other podman": 0.04, "fuse-overlayfs": 0.02}


def test_a_reused_pid_is_a_new_process(proc):
    cpu = sampler(proc)
    proc.set(30, "runc", 1, 0.0)
    start = cpu.poll()
    proc.set(30, "runc", 1, 0.04)
    cpu.poll()
    proc.set(30, "runc", 1, 0.01, started=1000)            # the first ended, a second got its pid
    assert since(start, cpu.poll()) == {"runc": 0.05}
