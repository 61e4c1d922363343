"""How PodmanManager.create turns a ContainerSpec into podman-py's containers.create call.

No podman here: the manager is given a mock client instead of a service, so
only the mapping itself is under test.
"""

from __future__ import annotations

import json
import os

import pytest

from koji_adjutant.container.interface import (
    LABEL_PURPOSE,
    LABEL_TASK,
    LABEL_WORKER,
    ContainerHandle,
    ContainerInfo,
    ContainerRoot,
    ContainerSpec,
    ImageInfo,
    Mount,
    Network,
    Privileges,
    ResourceLimits,
)
from koji_adjutant.container.limits import LimitMode
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.errors import ContainerError, ContainerSpecError, ImageNotFoundError

IMAGE = "localhost/koji-adjutant-buildroot:test"
LABELS = {LABEL_WORKER: "w1", LABEL_PURPOSE: "unit", LABEL_TASK: "42"}


@pytest.fixture
def make_manager(mocker):
    def make(mode: LimitMode = LimitMode.WATCHDOG) -> PodmanManager:
        client = mocker.MagicMock(name="PodmanClient")
        client.containers.create.return_value.id = "c0ffee"
        manager = PodmanManager(container_root=ContainerRoot.SUBORDINATE, client=client)
        manager.limit_mode = mode
        mocker.patch.object(manager, "image_info", return_value=ImageInfo(ref=IMAGE, id="sha256:1", digest="sha256:1"))
        return manager
    return make


def spec(**overrides) -> ContainerSpec:
    values = {"image": IMAGE, "command": ["rpmbuild", "-bb", "x.spec"], "labels": dict(LABELS)}
    values.update(overrides)
    return ContainerSpec(**values)


def create_call(manager: PodmanManager, container_spec: ContainerSpec):
    handle = manager.create(container_spec)
    create = manager._client.containers.create
    create.assert_called_once()
    args, kwargs = create.call_args
    return handle, args, kwargs


def test_basic_mapping(make_manager):
    manager = make_manager()
    s = spec(name="adjutant-build-1", user="1000:1000", workdir="/builddir", env={"HOME": "/builddir", "LANG": "C"})
    handle, args, kwargs = create_call(manager, s)
    assert args == (IMAGE, ["rpmbuild", "-bb", "x.spec"])
    assert kwargs["name"] == "adjutant-build-1"
    assert kwargs["labels"] == LABELS
    assert kwargs["environment"] == {"HOME": "/builddir", "LANG": "C"}
    assert kwargs["user"] == "1000:1000"
    assert kwargs["working_dir"] == "/builddir"
    assert kwargs["log_config"] == {"Type": "k8s-file"}
    assert kwargs["mounts"] == []
    assert handle == ContainerHandle(id="c0ffee", name="adjutant-build-1", spec=s)
    manager.image_info.assert_called_once_with(IMAGE)


def test_generated_name(make_manager):
    manager = make_manager()
    handle, _, kwargs = create_call(manager, spec())
    assert kwargs["name"] == handle.name
    assert handle.name.startswith("adjutant-") and len(handle.name) > len("adjutant-")
    other = make_manager().create(spec())
    assert other.name != handle.name


def test_network_off_by_default(make_manager):
    assert spec().network is Network.NONE
    _, _, kwargs = create_call(make_manager(), spec())
    assert kwargs["network_mode"] == "none"


def test_network_none_when_asked(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(network=Network.NONE))
    assert kwargs["network_mode"] == "none"


def test_private_network_is_podmans_default(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(network=Network.PRIVATE))
    assert "network_mode" not in kwargs


def test_host_network(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(network=Network.HOST))
    assert kwargs["network_mode"] == "host"


def test_mounts_read_only_honoured(make_manager, tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "out").mkdir()
    s = spec(mounts=[Mount(tmp_path / "repo", "/repo"), Mount(tmp_path / "out", "/builddir/out", read_only=False)])
    _, _, kwargs = create_call(make_manager(), s)
    assert kwargs["mounts"] == [
        {"type": "bind", "source": str(tmp_path / "repo"), "target": "/repo", "read_only": True},
        {"type": "bind", "source": str(tmp_path / "out"), "target": "/builddir/out", "read_only": False},
    ]


SUBORDINATE_MAP = [{"container_id": 0, "host_id": 1, "size": 65536}]


def test_every_container_has_a_user_namespace_of_its_own_with_root_at_a_subordinate_id(make_manager):
    _, _, kwargs = create_call(make_manager(), spec())
    assert kwargs["userns_mode"] == {"nsmode": "private"}
    assert kwargs["idmappings"] == {"HostUIDMapping": False, "HostGIDMapping": False,
                                    "UIDMap": SUBORDINATE_MAP, "GIDMap": SUBORDINATE_MAP}


def test_container_root_worker_maps_root_to_the_worker(make_manager):
    manager = make_manager()
    manager._container_root = ContainerRoot.WORKER
    _, _, kwargs = create_call(manager, spec())
    assert kwargs["idmappings"]["UIDMap"] == [{"container_id": 0, "host_id": 0, "size": 65536}]


def test_package_code_gets_no_capability_and_no_new_privileges(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(user="mockbuild"))
    assert kwargs["cap_drop"] == ["ALL"]
    assert "cap_add" not in kwargs
    assert kwargs["no_new_privileges"] is True


def test_the_package_manager_gets_only_its_capabilities(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(privileges=Privileges.PACKAGE_MANAGER))
    assert kwargs["cap_drop"] == ["ALL"]
    assert set(kwargs["cap_add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "SETFCAP"}
    assert kwargs["no_new_privileges"] is True


def test_the_pids_limit_is_also_the_kernels_process_limit(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(limits=ResourceLimits(pids=100)))
    assert kwargs["ulimits"] == [{"Name": "nproc", "Soft": 164, "Hard": 164}]


def test_commit_is_refused_for_a_container_of_package_code(make_manager):
    manager = make_manager()
    handle = manager.create(spec(user="mockbuild"))
    with pytest.raises(ContainerError, match="refusing to commit"):
        manager.commit(handle, "localhost/x:1")
    manager._client.containers.get.return_value.commit.assert_not_called()


def test_commit_is_refused_once_something_ran_as_another_user(make_manager):
    manager = make_manager()
    handle = manager.create(spec(privileges=Privileges.PACKAGE_MANAGER))
    manager._tainted.add(handle.id)  # what exec(user="mockbuild") records
    with pytest.raises(ContainerError, match="refusing to commit"):
        manager.commit(handle, "localhost/x:1")


def test_cgroup_mode_passes_limits_to_podman(make_manager):
    limits = ResourceLimits(memory_bytes=256 << 20, pids=100, cpus=2)
    _, args, kwargs = create_call(make_manager(LimitMode.CGROUP), spec(limits=limits))
    assert args[1] == ["rpmbuild", "-bb", "x.spec"]  # no taskset
    assert kwargs["mem_limit"] == 256 << 20
    assert kwargs["memswap_limit"] == 256 << 20
    assert kwargs["pids_limit"] == 100
    assert kwargs["cpu_quota"] / kwargs["cpu_period"] == 2


def test_watchdog_mode_pins_instead(make_manager, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    limits = ResourceLimits(memory_bytes=256 << 20, pids=100, cpus=2)
    _, args, kwargs = create_call(make_manager(LimitMode.WATCHDOG), spec(limits=limits))
    assert args[1] == ["taskset", "-c", "0,1", "rpmbuild", "-bb", "x.spec"]
    for key in ("mem_limit", "memswap_limit", "pids_limit", "cpu_quota", "cpu_period", "nano_cpus"):
        assert key not in kwargs


def test_watchdog_mode_without_cpu_limit_does_not_pin(make_manager):
    _, args, _ = create_call(make_manager(LimitMode.WATCHDOG), spec(limits=ResourceLimits(memory_bytes=1 << 30)))
    assert args[1] == ["rpmbuild", "-bb", "x.spec"]


@pytest.mark.parametrize("mode", list(LimitMode))
def test_kwargs_are_all_understood_by_podman_py(make_manager, tmp_path, mode):
    """podman-py raises TypeError on unknown keywords; map the call the way it would."""
    from podman.domain.containers_create import CreateMixin

    s = spec(mounts=[Mount(tmp_path, "/ro"), Mount(tmp_path, "/rw", read_only=False)],
             limits=ResourceLimits(memory_bytes=64 << 20, pids=8, cpus=1), privileges=Privileges.PACKAGE_MANAGER,
             user="1000:1000", workdir="/builddir", env={"A": "b"})
    _, args, kwargs = create_call(make_manager(mode), s)
    payload = CreateMixin._render_payload({"image": args[0], "command": args[1], **kwargs})
    assert payload["netns"] == {"nsmode": "none"}
    assert payload["userns"] == {"nsmode": "private"}
    assert payload["idmappings"]["UIDMap"] == SUBORDINATE_MAP
    assert payload["cap_drop"] == ["ALL"] and "SETUID" in payload["cap_add"]
    assert payload["no_new_privileges"] is True
    assert payload["r_limits"] == [{"type": "nproc", "soft": 72, "hard": 72}]
    assert [(m["destination"], m["options"]) for m in payload["mounts"]] == [("/ro", ["ro"]), ("/rw", [])]
    assert payload["log_configuration"]["driver"] == "k8s-file"
    assert payload["labels"] == LABELS
    if mode is LimitMode.CGROUP:
        assert payload["resource_limits"]["memory"]["limit"] == 64 << 20
        assert payload["resource_limits"]["pids"]["limit"] == 8
        cpu = payload["resource_limits"]["cpu"]
        assert cpu["period"] and cpu["quota"] == cpu["period"]


def test_missing_image_raises_before_create(make_manager):
    manager = make_manager()
    manager.image_info.return_value = None
    with pytest.raises(ImageNotFoundError) as info:
        manager.create(spec())
    assert IMAGE in info.value.message
    assert info.value.hint == ImageNotFoundError.hint
    manager._client.containers.create.assert_not_called()


def test_invalid_spec_raises_before_anything(make_manager):
    manager = make_manager()
    with pytest.raises(ContainerSpecError):
        manager.create(spec(labels={LABEL_WORKER: "w1"}))
    manager.image_info.assert_not_called()
    manager._client.containers.create.assert_not_called()


# -- listing by label ------------------------------------------------------------

def listed(mocker, cid: str, name: str, state, labels: dict):
    container = mocker.MagicMock()
    container.id = cid
    container.name = name
    container.attrs = {"Id": cid, "Names": [name], "State": state, "Labels": labels}
    container.labels = labels
    return container


def test_list_containers_filters_by_every_label(make_manager, mocker):
    from podman.api import prepare_filters

    manager = make_manager()
    manager._client.containers.list.return_value = [
        listed(mocker, "a1", "adjutant-a", "exited", LABELS),
        listed(mocker, "b2", "adjutant-b", {"Status": "running"}, LABELS),
    ]
    found = manager.list_containers({LABEL_WORKER: "w1", LABEL_TASK: "42"})
    assert found == [ContainerInfo(id="a1", name="adjutant-a", status="exited", labels=LABELS),
                     ContainerInfo(id="b2", name="adjutant-b", status="running", labels=LABELS)]
    _, kwargs = manager._client.containers.list.call_args
    assert kwargs["all"] is True
    # What podman-py sends: one label filter per label, which podman ANDs.
    assert json.loads(prepare_filters(kwargs["filters"])) == {
        "label": [f"{LABEL_WORKER}=w1", f"{LABEL_TASK}=42"]}


def test_remove_by_label_removes_each_listed_container(make_manager, mocker):
    manager = make_manager()
    manager._client.containers.list.return_value = [listed(mocker, "a1", "adjutant-a", "created", LABELS),
                                                    listed(mocker, "b2", "adjutant-b", "exited", LABELS)]
    assert manager.remove_by_label({LABEL_WORKER: "w1"}) == ["adjutant-a", "adjutant-b"]
    deletes = manager._client.api.delete.call_args_list
    assert [c.args[0] for c in deletes] == ["/containers/a1", "/containers/b2"]
    # force with timeout 0: a running container is killed at once rather than given SIGTERM's grace
    assert all(c.kwargs["params"] == {"force": True, "v": True, "timeout": 0} for c in deletes)


def test_kojid_rlimits_become_the_containers_ulimits(make_manager):
    limits = ResourceLimits(pids=100, rlimits=(("nofile", 1024, 2048), ("nproc", 50, 500), ("core", 0, 0)))
    _, _, kwargs = create_call(make_manager(), spec(limits=limits))
    assert kwargs["ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                 {"Name": "nproc", "Soft": 50, "Hard": 164},   # never above the pids limit's
                                 {"Name": "core", "Soft": 0, "Hard": 0}]


def test_remove_by_label_leaves_kept_failed_buildroots(make_manager, mocker):
    """A task's containers go when it ends, except the one kept for the operator (buildroot/kept.py)."""
    manager = make_manager()
    manager._client.containers.list.return_value = [listed(mocker, "a1", "adjutant-a", "exited", LABELS),
                                                    listed(mocker, "k1", "adjutant-failed-42-k1", "exited", LABELS)]
    assert manager.remove_by_label({LABEL_WORKER: "w1", LABEL_TASK: "42"}) == ["adjutant-a"]
    assert [c.args[0] for c in manager._client.api.delete.call_args_list] == ["/containers/a1"]


def test_a_terminal_container_has_stdin_and_a_tty(make_manager):
    _, _, kwargs = create_call(make_manager(), spec(terminal=True))
    assert kwargs["tty"] is True and kwargs["stdin_open"] is True
    _, _, kwargs = create_call(make_manager(), spec())
    assert "tty" not in kwargs and "stdin_open" not in kwargs


@pytest.mark.parametrize("name, ref", [
    ("adjutant-0123456789ab", "localhost/adjutant-0123456789ab:enter-1"),     # not a kept buildroot
    ("adjutant-failed-42-k1", "localhost/adjutant-failed-42-k1:latest"),      # the cache's tag
    ("adjutant-failed-42-k1", "localhost/adjutant-failed-42-k1"),             # the same, implicitly
    ("adjutant-failed-42-k1", "localhost/adjutant-dev-x86_64-0123456789ab:enter-1"),  # not its own name
    ("adjutant-failed-42-k1", "localhost/adjutant-failed-43-k2:enter-1"),    # another kept one's
])
def test_snapshot_is_refused_but_for_a_kept_buildroot_under_its_own_name(make_manager, name, ref):
    manager = make_manager()
    manager._client.containers.get.return_value.name = name
    with pytest.raises(ContainerError, match="refusing to snapshot"):
        manager.snapshot("k1", ref)
    manager._client.containers.get.return_value.commit.assert_not_called()


def test_snapshot_of_a_kept_buildroot(make_manager):
    manager = make_manager()
    manager._client.containers.get.return_value.name = "adjutant-failed-42-k1"
    manager.snapshot("k1", "localhost/adjutant-failed-42-k1:enter-1")
    manager._client.containers.get.return_value.commit.assert_called_once_with(
        repository="localhost/adjutant-failed-42-k1", tag="enter-1", changes=None)


def test_a_container_without_limits_costs_no_podman_info(mocker):
    """podman info (~0.4 s) tells how limits are enforced; a spec without limits must not ask it."""
    client = mocker.MagicMock(name="PodmanClient")
    client.containers.create.return_value.id = "c0ffee"
    manager = PodmanManager(container_root=ContainerRoot.SUBORDINATE, client=client)
    mocker.patch.object(manager, "image_info", return_value=ImageInfo(ref=IMAGE, id="sha256:1", digest="sha256:1"))
    manager.create(spec(limits=ResourceLimits()))
    client.info.assert_not_called()
    manager.create(spec(limits=ResourceLimits(pids=100)))
    client.info.assert_called_once()
