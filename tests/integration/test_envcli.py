"""``koji-adjutant env`` against real rootless podman: a cached environment
committed from the dev image is listed, shown, survives a dry run, and is
cleaned (its container, image and record) idempotently."""

from __future__ import annotations

import argparse
import json
import uuid

import pytest

from koji_adjutant import __version__, envcli
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerSpec, Privileges
from koji_adjutant.envstore import LABEL_ENVIRONMENT, Environment, EnvironmentStore, environment_name, image_ref

pytestmark = pytest.mark.podman

#: The same image conftest checks for; conftest is not importable everywhere.
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "state" / "environments.sqlite"


@pytest.fixture
def run_env(store_path, capsys):
    parser = argparse.ArgumentParser(prog="koji-adjutant")
    envcli.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv):
        args = parser.parse_args(["env", "--store", str(store_path), *argv])
        code = args.func(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


@pytest.fixture
def cached_environment(podman_manager, worker_id, store_path):
    """An environment image committed from the dev image and recorded in the store,
    with a container made from it still present; whatever the test leaves is removed."""
    manager = podman_manager
    inputs_hash = uuid.uuid4().hex * 2
    tag = f"itest-{inputs_hash[:6]}"
    name = environment_name(tag, "x86_64", inputs_hash)
    labels = {LABEL_WORKER: worker_id, LABEL_PURPOSE: "integration-test"}
    base = manager.image_info(DEV_IMAGE)
    source = manager.create(ContainerSpec(image=DEV_IMAGE, command=["sleep", "infinity"],
                                          labels={**labels, "io.koji-adjutant.test": name},
                                          privileges=Privileges.PACKAGE_MANAGER))
    try:
        manager.start(source)
        info = manager.commit(source, image_ref(name), labels={LABEL_ENVIRONMENT: name})
        # a container still using the environment, as a task would leave one
        manager.create(ContainerSpec(image=image_ref(name), command=["true"],
                                     labels={**labels, LABEL_ENVIRONMENT: name}))
        env = Environment(name=name, tag=tag, arch="x86_64", inputs_hash=inputs_hash, base_image=DEV_IMAGE,
                          base_digest=base.digest, image_id=info.id, size=info.size,
                          inputs={"base_digest": base.digest, "groups": ["build"], "tag": tag})
        EnvironmentStore(store_path).record(env)
        yield env
    finally:
        manager.remove(source)
        manager.remove_by_label({LABEL_ENVIRONMENT: name})
        manager.remove_image(image_ref(name))


def test_env_list_show_and_clean(podman_manager, cached_environment, run_env, store_path):
    manager, env = podman_manager, cached_environment
    assert manager.image_info(image_ref(env.name)).id == env.image_id
    assert len(manager.list_containers({LABEL_ENVIRONMENT: env.name})) == 1

    code, out, _ = run_env("list")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "TAG", "ARCH", "OWN", "SIZE", "USES", "LAST", "USED", "ORIGIN", "VERSION"]
    assert row.split()[:3] == [env.name, env.tag, "x86_64"]
    assert row.split()[-2:] == ["built", __version__]

    code, out, _ = run_env("show", env.name)
    assert code == 0
    assert f"image_id:    {env.image_id}" in out
    assert f"image:       {image_ref(env.name)}" in out
    assert json.loads(out.split("inputs:", 1)[1]) == env.inputs

    code, out, _ = run_env("clean", "--dry-run", env.name)
    assert (code, out) == (0, f"would remove {env.name} ({envcli.human_size(env.added)})\n")
    assert manager.image_info(image_ref(env.name)) is not None
    assert EnvironmentStore(store_path).get(env.name) == env

    code, out, _ = run_env("clean", env.name)  # starts its own PodmanManager, as the command line does
    assert (code, out) == (0, f"removed {env.name}\n")
    assert manager.image_info(image_ref(env.name)) is None
    assert manager.list_containers({LABEL_ENVIRONMENT: env.name}) == []
    assert EnvironmentStore(store_path).get(env.name) is None
    assert not EnvironmentStore(store_path).lock_path(env.name).exists()

    code, out, err = run_env("clean", env.name)
    assert (code, out) == (0, "nothing to clean\n")
    assert "no record in the store" in err
    assert run_env("list")[:2] == (0, "no cached environments\n")
    assert run_env("clean", "--all")[:2] == (0, "nothing to clean\n")


def test_clean_of_an_environment_whose_image_is_already_gone(podman_manager, cached_environment, store_path):
    manager, env = podman_manager, cached_environment
    manager.remove_by_label({LABEL_ENVIRONMENT: env.name})
    manager.remove_image(image_ref(env.name))
    store = EnvironmentStore(store_path)
    assert store.clean(manager, [env.name]) == [env]
    assert store.get(env.name) is None
    assert store.clean(manager, [env.name]) == []


def test_clean_all_removes_the_images_no_record_names(podman_manager, cached_environment, run_env, store_path,
                                                      worker_id, tmp_path):
    """A worker killed between commit and record leaves an image the store never recorded; when
    that environment is made again, the first image is left dangling. env clean --all finds both
    by the store's label, leaves another store's images alone, and skips an environment being made."""
    manager, recorded = podman_manager, cached_environment
    store, other = EnvironmentStore(store_path), EnvironmentStore(tmp_path / "other" / "environments.sqlite")
    names = {key: environment_name(f"orphan-{key}", "x86_64", uuid.uuid4().hex) for key in ("a", "b", "c", "d")}
    source = manager.create(ContainerSpec(image=DEV_IMAGE, command=["sleep", "infinity"],
                                          labels={LABEL_WORKER: worker_id, LABEL_PURPOSE: "integration-test"},
                                          privileges=Privileges.PACKAGE_MANAGER))
    made = []
    try:
        manager.start(source)

        def commit(key: str, owner: EnvironmentStore):
            made.append(manager.commit(source, image_ref(names[key]), owner.image_labels(names[key])).id)
            return made[-1]

        unnamed = commit("a", store)
        assert manager.exec(source, ["touch", "/tmp/changed"]) == 0
        named = commit("a", store)  # made again: the first image keeps its labels but loses its name
        assert unnamed != named
        commit("b", store)
        commit("c", other)           # another store's: not ours to remove
        being_made = commit("d", store)
        ours = {image.id for image in store.unrecorded_images(manager)}
        assert ours == {unnamed, named, made[2], being_made}

        code, out, _ = run_env("clean", "--all", "--dry-run")
        assert code == 0
        lines = out.splitlines()
        assert f"would remove {recorded.name} ({envcli.human_size(recorded.size)})" in lines
        assert sum(f" of {names['a']} (" in line and line.endswith(", no record)") for line in lines) == 2
        assert len(lines) == 5
        assert {image.id for image in store.unrecorded_images(manager)} == ours  # a dry run removes nothing

        with store.lock(names["d"]):  # a build holds it from before its commit until its record
            assert {image.id for image in store.clean_unrecorded(manager, lock_timeout=0.5)} == ours - {being_made}
        assert [image.id for image in store.unrecorded_images(manager)] == [being_made]

        code, out, _ = run_env("clean", "--all")
        assert code == 0
        assert f"removed {recorded.name}" in out.splitlines()
        assert f"of {names['d']} (" in out
        assert store.unrecorded_images(manager) == [] and store.list() == []
        assert [image.id for image in other.unrecorded_images(manager)] == [made[3]]
        assert run_env("clean", "--all")[:2] == (0, "nothing to clean\n")
    finally:
        manager.remove(source)
        for image_id in made:
            manager.remove_image(image_id)
