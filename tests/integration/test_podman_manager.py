"""PodmanManager against real rootless podman and the offline dev image.

Every test removes what it makes (containers through fixtures, committed
images in finally blocks); the session check in conftest fails the run if
anything is left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from koji_adjutant.container.interface import (
    LABEL_PURPOSE,
    LABEL_WORKER,
    ContainerSpec,
    Mount,
    Network,
    Privileges,
    PullPolicy,
    ResourceLimits,
    Stream,
)
from koji_adjutant.container.limits import LimitMode
from koji_adjutant.errors import ContainerError, ContainerOOMError, ContainerTimeoutError, ImageNotFoundError

pytestmark = pytest.mark.podman

#: The same image conftest checks for; conftest is not importable everywhere.
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
LABEL_TEST = "io.koji-adjutant.test"
MiB = 1 << 20


@pytest.fixture
def manager(podman_manager):
    return podman_manager


@pytest.fixture
def labels(worker_id):
    """Labels of this test's containers; the test label is unique to the test."""
    return {LABEL_WORKER: worker_id, LABEL_PURPOSE: "integration-test", LABEL_TEST: uuid.uuid4().hex[:12]}


@pytest.fixture
def make_spec(labels):
    def make(command, **fields) -> ContainerSpec:
        fields.setdefault("image", DEV_IMAGE)
        fields.setdefault("labels", labels)
        return ContainerSpec(command=list(command), **fields)
    return make


@pytest.fixture
def containers(manager, make_spec):
    """Creates (and by default starts) containers; removes them all afterwards."""
    made = []

    def make(command=("sleep", "infinity"), start=True, **fields):
        handle = manager.create(make_spec(command, **fields))
        made.append(handle)
        if start:
            manager.start(handle)
        return handle

    yield make
    for handle in made:
        manager.remove(handle)


class Recorder:
    """A LogSink that keeps every chunk with the time it arrived."""

    def __init__(self):
        self.chunks: list[tuple[float, Stream, bytes]] = []

    def __call__(self, stream: Stream, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.chunks.append((time.monotonic(), stream, data))

    def text(self, stream: Stream) -> str:
        return b"".join(data for _, s, data in self.chunks if s is stream).decode()

    def arrival(self, stream: Stream, needle: bytes) -> float:
        return next(t for t, s, data in self.chunks if s is stream and needle in data)


def exec_output(manager, handle, command, **kwargs) -> tuple[int, str, str]:
    recorder = Recorder()
    code = manager.exec(handle, command, recorder, **kwargs)
    return code, recorder.text(Stream.STDOUT), recorder.text(Stream.STDERR)


def interfaces(proc_net_dev: str) -> set[str]:
    return {line.split(":", 1)[0].strip() for line in proc_net_dev.splitlines()[2:] if ":" in line}


# -- running, streaming, exit codes, timeouts --------------------------------------

def test_run_streams_stdout_and_stderr_while_running(manager, make_spec):
    recorder = Recorder()
    command = ["sh", "-c", "echo out1; echo err1 >&2; sleep 1; echo out2; echo err2 >&2"]
    result = manager.run(make_spec(command), recorder, timeout=30)
    finished = time.monotonic()
    assert result.exit_code == 0
    assert result.duration >= 1
    assert recorder.text(Stream.STDOUT) == "out1\nout2\n"
    assert recorder.text(Stream.STDERR) == "err1\nerr2\n"
    # The first lines reached the sink while the container was still sleeping.
    assert recorder.arrival(Stream.STDOUT, b"out1") < finished - 0.5
    assert recorder.arrival(Stream.STDERR, b"err1") < finished - 0.5
    assert recorder.arrival(Stream.STDOUT, b"out1") < recorder.arrival(Stream.STDOUT, b"out2")
    assert recorder.arrival(Stream.STDERR, b"err1") < recorder.arrival(Stream.STDERR, b"err2")


def test_start_attached_loses_no_output_of_instant_commands(manager, containers):
    """Attached before the start: a command that prints and exits at once is never cut short."""
    for index in range(10):
        handle = containers(["sh", "-c", f"echo out{index}; echo err{index} >&2; printf tail"], start=False)
        recorder = Recorder()
        manager.start_attached(handle, recorder, timeout=30)
        assert recorder.text(Stream.STDOUT) == f"out{index}\ntail"
        assert recorder.text(Stream.STDERR) == f"err{index}\n"
        assert manager.wait(handle, timeout=30).exit_code == 0


def test_start_attached_carries_binary_output_whole(manager, containers):
    """stdout is a byte channel (the runner sends results through it as a tar stream)."""
    handle = containers(["sh", "-c", "head -c 3000000 /dev/urandom > /tmp/sent && cat /tmp/sent && "
                                     "sha256sum /tmp/sent >&2"], start=False)
    recorder = Recorder()
    manager.start_attached(handle, recorder, timeout=60)
    received = b"".join(data for _, stream, data in recorder.chunks if stream is Stream.STDOUT)
    assert len(received) == 3000000
    assert recorder.text(Stream.STDERR).split()[0] == hashlib.sha256(received).hexdigest()


def test_start_attached_timeout_kills(manager, containers):
    handle = containers(["sleep", "60"], start=False)
    started = time.monotonic()
    with pytest.raises(ContainerTimeoutError, match="timeout of 1 s"):
        manager.start_attached(handle, Recorder(), timeout=1)
    assert time.monotonic() - started < 8
    assert manager.wait(handle, timeout=30).exit_code != 0


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_codes(manager, make_spec, code):
    result = manager.run(make_spec(["sh", "-c", f"exit {code}"]), timeout=30)
    assert result.exit_code == code


def test_timeout_kills_and_removes(manager, make_spec, labels):
    started = time.monotonic()
    with pytest.raises(ContainerTimeoutError) as info:
        manager.run(make_spec(["sleep", "60"]), timeout=1)
    assert time.monotonic() - started < 8
    assert "timeout of 1 s" in str(info.value)
    assert manager.list_containers(labels) == []


# -- exec -------------------------------------------------------------------------

def test_exec_returns_exit_code_and_runs_once(manager, containers):
    handle = containers()
    assert manager.exec(handle, ["sh", "-c", "echo ran >> /tmp/once; exit 7"]) == 7
    code, out, _ = exec_output(manager, handle, ["cat", "/tmp/once"])
    assert code == 0
    assert out.splitlines() == ["ran"]
    assert manager.exec(handle, ["true"]) == 0
    assert manager.exec(handle, ["cat", "/does/not/exist"]) == 1


def test_exec_separates_stdout_and_stderr(manager, containers):
    handle = containers()
    code, out, err = exec_output(manager, handle, ["sh", "-c", "echo o1; echo e1 >&2; echo o2; echo e2 >&2; exit 4"])
    assert code == 4
    assert out == "o1\no2\n"
    assert err == "e1\ne2\n"


def test_exec_user_env_workdir(manager, containers):
    handle = containers()
    code, out, _ = exec_output(manager, handle, ["sh", "-c", 'id -u; pwd; echo "$FOO"'],
                               user="1000", env={"FOO": "bar baz"}, workdir="/builddir")
    assert code == 0
    assert out == "1000\n/builddir\nbar baz\n"


def test_exec_ends_when_the_container_dies_under_it(manager, containers):
    """A container killed from outside (watchdog, operator, OOM) must not leave the exec waiting forever."""
    handle = containers()
    killer = threading.Timer(1.0, manager.kill, args=(handle,))
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(ContainerError) as info:
            manager.exec(handle, ["sleep", "120"])
    finally:
        killer.cancel()
    assert time.monotonic() - started < 30
    assert "stopped while 'sleep' ran in it" in str(info.value)

# -- committing -----------------------------------------------------------


def test_commit(manager, containers, make_spec):
    handle = containers(privileges=Privileges.PACKAGE_MANAGER)
    assert manager.exec(handle, ["sh", "-c", "echo committed > /etc/adjutant-marker"]) == 0
    ref = f"localhost/adjutant-test-commit:{uuid.uuid4().hex[:8]}"
    image_labels = {"io.koji-adjutant.test-commit": "yes", "io.koji-adjutant.task": "1234",
                    "io.koji-adjutant.test-note": "two words"}
    try:
        info = manager.commit(handle, ref, labels=image_labels)
        assert info.ref == ref
        found = manager.image_info(ref)
        assert found is not None and found.id == info.id
        for key, value in image_labels.items():
            assert found.labels.get(key) == value
        assert found.id != manager.image_info(DEV_IMAGE).id
        recorder = Recorder()
        result = manager.run(make_spec(["cat", "/etc/adjutant-marker"], image=ref), recorder, timeout=30)
        assert (result.exit_code, recorder.text(Stream.STDOUT)) == (0, "committed\n")
    finally:
        manager.remove_image(ref)
    assert manager.image_info(ref) is None
    manager.remove_image(ref)  # a second time is fine
    assert manager.image_info(DEV_IMAGE) is not None


# -- resource limits ----------------------------------------------------------------

def test_memory_limit_kills(manager, make_spec, labels):
    allocate = "import time; b = b'x' * (300 << 20); time.sleep(30)"
    spec = make_spec(["python3", "-c", allocate], limits=ResourceLimits(memory_bytes=64 * MiB))
    started = time.monotonic()
    with pytest.raises(ContainerOOMError) as info:
        manager.run(spec, timeout=60)
    assert time.monotonic() - started < 20
    assert "memory" in str(info.value)
    assert manager.list_containers(labels) == []


def test_memory_under_limit_succeeds(manager, make_spec):
    allocate = "import time; b = b'x' * (16 << 20); time.sleep(1); print(len(b))"
    recorder = Recorder()
    result = manager.run(make_spec(["python3", "-c", allocate], limits=ResourceLimits(memory_bytes=64 * MiB)),
                         recorder, timeout=30)
    assert result.exit_code == 0
    assert recorder.text(Stream.STDOUT) == f"{16 * MiB}\n"


def test_pids_limit_kills(manager, containers, labels):
    if manager.limit_mode is not LimitMode.WATCHDOG:
        pytest.skip("with cgroup limits podman refuses the forks instead of killing the container")
    started = time.monotonic()
    handle = containers(["sh", "-c", "for i in $(seq 30); do sleep 30 & done; wait"],
                        limits=ResourceLimits(pids=8))
    with pytest.raises(ContainerError) as info:
        manager.wait(handle, timeout=60)
    assert time.monotonic() - started < 15
    assert not isinstance(info.value, (ContainerOOMError, ContainerTimeoutError))
    assert "processes" in str(info.value) and "limit of 8" in str(info.value)
    [container] = manager.list_containers(labels)
    assert container.status in ("exited", "stopped")  # podman reports "stopped" until its cleanup ran


def test_cpus_limit(manager, containers, make_spec):
    recorder = Recorder()
    if manager.limit_mode is LimitMode.WATCHDOG:
        assert manager.run(make_spec(["nproc"], limits=ResourceLimits(cpus=1)), recorder).exit_code == 0
        assert recorder.text(Stream.STDOUT) == "1\n"
        # exec in a limited container is pinned too
        handle = containers(limits=ResourceLimits(cpus=1))
        assert exec_output(manager, handle, ["nproc"]) == (0, "1\n", "")
    else:
        assert manager.run(make_spec(["cat", "/sys/fs/cgroup/cpu.max"], limits=ResourceLimits(cpus=1)),
                           recorder).exit_code == 0
        quota, period = recorder.text(Stream.STDOUT).split()
        assert int(quota) == int(period)
    if (os.cpu_count() or 1) > 1:  # without a limit the container sees every cpu
        unlimited = Recorder()
        manager.run(make_spec(["nproc"]), unlimited)
        assert int(unlimited.text(Stream.STDOUT)) > 1


# -- network, mounts ------------------------------------------------------------------

def container_interfaces(manager, make_spec, **fields) -> set[str]:
    recorder = Recorder()
    assert manager.run(make_spec(["cat", "/proc/net/dev"], **fields), recorder, timeout=30).exit_code == 0
    return interfaces(recorder.text(Stream.STDOUT))


def test_network_off(manager, make_spec):
    assert container_interfaces(manager, make_spec) == {"lo"}
    assert container_interfaces(manager, make_spec, network=Network.NONE) == {"lo"}


def test_network_private(manager, make_spec):
    found = container_interfaces(manager, make_spec, network=Network.PRIVATE)
    assert "lo" in found and found - {"lo"}


def test_network_host(manager, make_spec):
    host = interfaces(Path("/proc/net/dev").read_text())
    assert container_interfaces(manager, make_spec, network=Network.HOST) == host


def test_read_only_mount(manager, make_spec, tmp_path):
    tmp_path.chmod(0o755)  # container users are subordinate ids: a mount must be readable by others
    (tmp_path / "given.txt").write_text("given\n")
    spec = make_spec(["sh", "-c", "cat /ro/given.txt && touch /ro/new"], mounts=[Mount(tmp_path, "/ro")])
    recorder = Recorder()
    result = manager.run(spec, recorder, timeout=30)
    assert recorder.text(Stream.STDOUT) == "given\n"  # readable
    assert result.exit_code != 0
    assert "Read-only file system" in recorder.text(Stream.STDERR)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("user, privileges", [("mockbuild", Privileges.PACKAGE_MANAGER), (None, Privileges.NONE)])
def test_commit_is_refused_where_package_code_may_have_run(manager, containers, user, privileges):
    handle = containers(user=user, privileges=privileges)
    with pytest.raises(ContainerError, match="refusing to commit"):
        manager.commit(handle, f"localhost/adjutant-test-refused:{uuid.uuid4().hex[:8]}")


def test_commit_is_refused_after_an_exec_as_another_user(manager, containers):
    handle = containers(privileges=Privileges.PACKAGE_MANAGER)
    assert manager.exec(handle, ["true"], user="mockbuild") == 0
    with pytest.raises(ContainerError, match="refusing to commit"):
        manager.commit(handle, f"localhost/adjutant-test-refused:{uuid.uuid4().hex[:8]}")


def test_root_inside_is_a_subordinate_id_and_counts_its_own_processes(manager, make_spec):
    recorder = Recorder()
    spec = make_spec(["sh", "-c", "cat /proc/self/uid_map; readlink /proc/self/ns/user"])
    assert manager.run(spec, recorder, timeout=30).exit_code == 0
    uid_map, userns = recorder.text(Stream.STDOUT).splitlines()
    assert uid_map.split() == ["0", "1", "65536"]
    assert userns != os.readlink("/proc/self/ns/user"), "each container has a user namespace of its own"


# -- labels and removal --------------------------------------------------------------

def test_list_and_remove_by_label(manager, containers, labels, worker_id):
    first = containers(start=False)
    second = containers(start=False)
    other = containers(start=False, labels={**labels, LABEL_TEST: labels[LABEL_TEST] + "-other"})

    found = manager.list_containers({LABEL_TEST: labels[LABEL_TEST]})
    assert sorted(c.name for c in found) == sorted([first.name, second.name])
    assert {c.id for c in found} == {first.id, second.id}
    assert all(c.labels[LABEL_WORKER] == worker_id and c.labels[LABEL_PURPOSE] == "integration-test" for c in found)
    both = manager.list_containers({LABEL_WORKER: worker_id, LABEL_TEST: labels[LABEL_TEST]})
    assert {c.id for c in both} == {first.id, second.id}

    removed = manager.remove_by_label({LABEL_TEST: labels[LABEL_TEST]})
    assert sorted(removed) == sorted([first.name, second.name])
    assert manager.list_containers({LABEL_TEST: labels[LABEL_TEST]}) == []
    assert manager.remove_by_label({LABEL_TEST: labels[LABEL_TEST]}) == []
    # the container with another label value is untouched
    assert [c.id for c in manager.list_containers({LABEL_TEST: other.spec.labels[LABEL_TEST]})] == [other.id]


def test_remove_is_idempotent(manager, containers, labels):
    handle = containers()
    manager.remove(handle)
    assert manager.list_containers(labels) == []
    manager.remove(handle)
    manager.remove(handle.id)
    manager.remove("0" * 64)
    manager.remove("adjutant-no-such-container")


# -- images and the service ---------------------------------------------------------

def test_ensure_image_present(manager):
    for policy in (PullPolicy.NEVER, PullPolicy.IF_NOT_PRESENT):
        info = manager.ensure_image(DEV_IMAGE, policy)
        assert info.ref == DEV_IMAGE and info.id and info.digest


def test_ensure_image_never_pulls_missing(manager):
    ref = f"localhost/adjutant-missing:{uuid.uuid4().hex[:8]}"
    with pytest.raises(ImageNotFoundError) as info:
        manager.ensure_image(ref, PullPolicy.NEVER)
    assert ref in str(info.value)
    assert ImageNotFoundError.hint in str(info.value)
    assert manager.image_info(ref) is None


def test_create_with_missing_image(manager, make_spec, labels):
    ref = f"localhost/adjutant-missing:{uuid.uuid4().hex[:8]}"
    with pytest.raises(ImageNotFoundError, match=ref):
        manager.create(make_spec(["true"], image=ref))
    assert manager.list_containers(labels) == []


@pytest.fixture
def own_service_manager():
    """A PodmanManager that started a podman service of its own (skipped where one already answers)."""
    from koji_adjutant.container.podman import PodmanManager

    manager = PodmanManager()
    try:
        if manager._service._process is None:
            pytest.skip(f"a podman service already answers on {manager._service.uri}; none was started")
        yield manager
    finally:
        manager.close()


def test_own_service_is_stopped_on_close(own_service_manager):
    service = own_service_manager._service
    socket = Path(service.uri.removeprefix("unix://"))
    pid = service._process.pid
    assert socket.exists()
    assert own_service_manager.image_info(DEV_IMAGE) is not None
    own_service_manager.close()
    assert not socket.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_own_service_stops_when_its_worker_is_killed(tmp_path):
    """SIGKILL gives the worker no chance to close its service; the service must not outlive it."""
    script = ("import sys, time\n"
              "from koji_adjutant.container.service import PodmanService\n"
              "service = PodmanService()\n"
              "print(service._process.pid if service._process else 0, service.uri, flush=True)\n"
              "time.sleep(120)\n")
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid, uri = worker.stdout.readline().split()
    finally:
        worker.kill()
        worker.wait()
        worker.stdout.close()
    socket_dir = Path(uri.removeprefix("unix://")).parent
    if int(pid) == 0:
        pytest.skip(f"a podman service already answers on {uri}; none was started")
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), "podman service outlived its killed worker"
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)  # the killed worker could not remove it


def test_own_service_is_started_again_on_the_same_socket_after_it_died(own_service_manager):
    """A long-running worker outlives a podman crash: clients keep their socket path."""
    service = own_service_manager._service
    assert service.ensure_running() is False
    first = service._process.pid
    os.kill(first, signal.SIGKILL)
    service._process.wait()
    assert service.ensure_running() is True
    assert service._process.pid != first
    assert own_service_manager.image_info(DEV_IMAGE) is not None  # the same client, through the same socket
