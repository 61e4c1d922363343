"""How resource limits are enforced: mode detection, cgroup arguments, cpu pinning, breach reports."""

from __future__ import annotations

import os

import pytest

from koji_adjutant.container.interface import ResourceLimits
from koji_adjutant.container.limits import Breach, LimitMode, cgroup_create_args, detect_mode, pin_command

ALL_CONTROLLERS = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]


# -- detect_mode ---------------------------------------------------------------

@pytest.mark.parametrize("cgroup", [
    {"cgroupVersion": "v1", "cgroupControllers": []},
    {"cgroupVersion": "v2", "cgroupControllers": []},
    {"cgroupVersion": "v2", "cgroupControllers": ALL_CONTROLLERS},
])
def test_rootful_always_uses_cgroups(cgroup):
    assert detect_mode({**cgroup, "security": {"rootless": False}}) is LimitMode.CGROUP


def test_rootless_cgroup_v2_with_delegated_controllers():
    host = {"cgroupVersion": "v2", "cgroupControllers": ALL_CONTROLLERS, "security": {"rootless": True}}
    assert detect_mode(host) is LimitMode.CGROUP


def test_rootless_cgroup_v2_with_exactly_the_needed_controllers():
    host = {"cgroupVersion": "v2", "cgroupControllers": ["memory", "pids", "cpu"], "security": {"rootless": True}}
    assert detect_mode(host) is LimitMode.CGROUP


@pytest.mark.parametrize("missing", ["memory", "pids", "cpu"])
def test_rootless_cgroup_v2_lacking_a_controller(missing):
    controllers = [c for c in ALL_CONTROLLERS if c != missing]
    host = {"cgroupVersion": "v2", "cgroupControllers": controllers, "security": {"rootless": True}}
    assert detect_mode(host) is LimitMode.WATCHDOG


@pytest.mark.parametrize("controllers", [None, [], ALL_CONTROLLERS])
def test_rootless_cgroup_v1_uses_the_watchdog(controllers):
    # podman lists controllers even on v1; rootless v1 still cannot use them.
    host = {"cgroupVersion": "v1", "cgroupControllers": controllers, "security": {"rootless": True}}
    assert detect_mode(host) is LimitMode.WATCHDOG


def test_unknown_host_is_treated_as_rootless_without_cgroups():
    assert detect_mode({}) is LimitMode.WATCHDOG
    assert detect_mode({"cgroupVersion": "v2", "cgroupControllers": ALL_CONTROLLERS}) is LimitMode.CGROUP


# -- cgroup_create_args --------------------------------------------------------

def test_cgroup_args_empty_without_limits():
    assert cgroup_create_args(ResourceLimits()) == {}


def test_cgroup_args_memory_without_extra_swap():
    args = cgroup_create_args(ResourceLimits(memory_bytes=512 << 20))
    assert args == {"mem_limit": 512 << 20, "memswap_limit": 512 << 20}


def test_cgroup_args_pids():
    assert cgroup_create_args(ResourceLimits(pids=64)) == {"pids_limit": 64}


@pytest.mark.parametrize("cpus, quota", [(1, 100_000), (1.5, 150_000), (0.25, 25_000), (4, 400_000)])
def test_cgroup_args_cpus_as_period_and_quota(cpus, quota):
    args = cgroup_create_args(ResourceLimits(cpus=cpus))
    assert args["cpu_quota"] / args["cpu_period"] == pytest.approx(cpus)
    assert args == {"cpu_period": 100_000, "cpu_quota": quota}


def test_cgroup_args_reach_podman():
    """Every argument must survive podman-py's mapping into the API payload.

    podman-py ignores some docker-py keywords (nano_cpus among them) without a
    word, so checking the dict alone would not show a limit that never arrives.
    """
    from podman.domain.containers_create import CreateMixin

    limits = ResourceLimits(memory_bytes=64 << 20, pids=8, cpus=1.5)
    payload = CreateMixin._render_payload({"image": "img", "command": ["true"], **cgroup_create_args(limits)})
    resources = payload["resource_limits"]
    assert resources["memory"]["limit"] == 64 << 20
    assert resources["memory"]["swap"] == 64 << 20
    assert resources["pids"]["limit"] == 8
    assert resources["cpu"]["quota"] / resources["cpu"]["period"] == pytest.approx(1.5)


# -- pin_command ---------------------------------------------------------------

@pytest.fixture
def cpu_count(monkeypatch):
    """The CPUs this process may run on: 0..count-1."""
    def set_count(count):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(count or 1)))
    return set_count


def test_no_cpu_limit_leaves_the_command_alone(cpu_count):
    cpu_count(8)
    command = ("make", "-j4")
    pinned = pin_command(ResourceLimits(memory_bytes=1 << 30, pids=10), command)
    assert pinned == ["make", "-j4"]
    assert isinstance(pinned, list)


@pytest.mark.parametrize("cpus, expected", [
    (1, "0"),
    (0.1, "0"),
    (0.5, "0"),
    (1.0001, "0,1"),
    (1.5, "0,1"),
    (2, "0,1"),
    (2.01, "0,1,2"),
    (3, "0,1,2"),
    (8, "0,1,2,3,4,5,6,7"),
])
def test_fractional_cpus_round_up(cpu_count, cpus, expected):
    cpu_count(8)
    assert pin_command(ResourceLimits(cpus=cpus), ["make", "-j4"]) == ["taskset", "-c", expected, "make", "-j4"]


@pytest.mark.parametrize("cpus, count, expected", [(16, 4, "0,1,2,3"), (5, 4, "0,1,2,3"), (2, 1, "0"), (3, None, "0")])
def test_cpus_capped_at_cpu_count(cpu_count, cpus, count, expected):
    cpu_count(count)
    assert pin_command(ResourceLimits(cpus=cpus), ["true"]) == ["taskset", "-c", expected, "true"]


def test_pins_to_the_cpus_this_worker_may_use(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 2, 7})
    assert pin_command(ResourceLimits(cpus=2), ["true"]) == ["taskset", "-c", "2,5", "true"]


def test_pin_command_does_not_change_its_input(cpu_count):
    cpu_count(4)
    command = ["sh", "-c", "nproc"]
    pin_command(ResourceLimits(cpus=2), command)
    assert command == ["sh", "-c", "nproc"]


# -- Breach --------------------------------------------------------------------

def test_memory_breach_in_mib():
    breach = Breach("memory", observed=300 * (1 << 20) + 12345, limit=64 << 20)
    assert breach.describe() == "used 300 MiB of memory, over its limit of 64 MiB"


def test_pids_breach():
    assert Breach("pids", observed=31, limit=8).describe() == "ran 31 processes, over its limit of 8"
