"""The farm's shared buildroot cache through a real registry (docs/adr/0012-shared-buildroot-cache.md).

Debian's docker-registry runs on 127.0.0.1 (tests/registry.py), with and
without credentials. Builders are BuildrootCaches over stores of their own;
they share this user's podman storage, so a "second builder" first evicts
the first one's environments: its pull then really downloads their layers.
Each test uses a namespace of its own in the registry.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from cachebuilds import ARCH, rpmbuild_srpm
from registry import Registry

from koji_adjutant.buildroot.sharedcache import LABEL_DESCRIPTION, REPOSITORY, SharedCache
from koji_adjutant.container.interface import RegistryAuth
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.envstore import EnvironmentStore
from koji_adjutant.envstore.records import ORIGIN_BUILT

pytestmark = pytest.mark.podman

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PULLED = "pulled buildroot"
REFUSED = "refusing buildroot"


@pytest.fixture(scope="module")
def srpms(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("shared-srpms")
    return {sample: rpmbuild_srpm(EXAMPLES / sample / f"{sample}.spec", EXAMPLES / sample, out)
            for sample in ("hello-noarch", "hello-c")}


@pytest.fixture
def stores(tmp_path, podman_manager):
    """More builders' stores; their environments are removed at the end."""
    made: list[EnvironmentStore] = []

    def new() -> EnvironmentStore:
        made.append(EnvironmentStore(tmp_path / f"builder-{len(made)}.sqlite"))
        return made[-1]
    yield new
    for store in made:
        store.clean(podman_manager, [env.name for env in store.list()])


def namespace(registry: Registry) -> str:
    return f"{registry.host}/t{uuid.uuid4().hex[:10]}"


def evict_all(store: EnvironmentStore, manager) -> None:
    store.clean(manager, [env.name for env in store.list()])
    assert store.list() == []


def test_a_layer_made_on_one_builder_is_pulled_verified_and_used_by_another(
        cache_harness, srpms, registry, registry_manager, stores, podman_manager, caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot")
    shared = SharedCache(namespace(registry))
    first = cache_harness.build(srpms["hello-c"], manager=registry_manager, shared=shared)
    assert first.layers_made == 2
    made = {env.inputs_hash: env for env in cache_harness.store.list()}
    assert {env.origin for env in made.values()} == {ORIGIN_BUILT}
    repository = f"{shared.registry.split('/', 1)[1]}/{REPOSITORY}"
    assert registry.tags(repository) == sorted(made), "each layer is pushed under its full inputs hash"
    assert podman_manager.image_refs(registry.host) == [], "the registry name is not kept locally"

    # The first builder's environments are evicted; the second builder has none of its own.
    evict_all(cache_harness.store, podman_manager)
    second_store = stores()
    second = cache_harness.build(srpms["hello-c"], manager=registry_manager, store=second_store, shared=shared)
    assert second.layers_made == 0, second.recorder.purposes
    assert second.recorder.purposes == ["evaluate", "build"]
    assert second.rpm_names == [f"hello-c-1.0-1.{ARCH}.rpm"]
    assert second.installed_names == first.installed_names
    pulled = {env.inputs_hash: env for env in second_store.list()}
    assert set(pulled) == set(made)
    for key, env in pulled.items():
        assert env.origin == shared.registry
        assert env.inputs == made[key].inputs and env.base_digest == made[key].base_digest
        assert 0 < env.added < env.size and env.base_size == made[key].base_size > 0
    assert sum(PULLED in r.getMessage() for r in caplog.records) == 2
    assert second.root_log.count(f", pulled from the shared cache {shared.registry}: no dependency") == 2

    # Evicted on this builder too: the registry still has it, so it is pulled again.
    evict_all(second_store, podman_manager)
    again = cache_harness.build(srpms["hello-c"], manager=registry_manager, store=second_store, shared=shared)
    assert again.layers_made == 0 and again.rpm_names == second.rpm_names
    assert registry.tags(repository) == sorted(made)


@pytest.fixture(scope="module")
def registry_with_auth():
    with Registry(user="farm", password="s3cret pass") as running:
        yield running


def test_credentials_are_needed_to_push_and_pull(cache_harness, srpms, registry_with_auth, stores,
                                                 podman_manager, caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot")
    ns = namespace(registry_with_auth)
    repository = f"{ns.split('/', 1)[1]}/{REPOSITORY}"
    with PodmanManager(insecure_registries=[registry_with_auth.host]) as manager:
        wrong = SharedCache(ns, RegistryAuth("farm", "wrong"))
        denied = cache_harness.build(srpms["hello-noarch"], manager=manager, shared=wrong)
        assert denied.layers_made == 1 and denied.error is None, "a registry that refuses costs no build"
        assert any("could not share buildroot" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)
        assert registry_with_auth.tags(repository) == []
        evict_all(cache_harness.store, podman_manager)

        right = SharedCache(ns, RegistryAuth("farm", "s3cret pass"))
        cache_harness.build(srpms["hello-noarch"], manager=manager, shared=right)
        assert len(registry_with_auth.tags(repository)) == 1
        evict_all(cache_harness.store, podman_manager)

        anonymous = cache_harness.build(srpms["hello-noarch"], manager=manager, store=stores(),
                                        shared=SharedCache(ns))
        assert anonymous.layers_made == 1, "without credentials nothing is pulled"
        pulled = cache_harness.build(srpms["hello-noarch"], manager=manager, store=stores(), shared=right)
        assert pulled.layers_made == 0


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout.strip()


def push_tampered(manager, registry: Registry, remote: str, containerfile: str, tmp_path: Path,
                  labels: dict[str, str] | None = None) -> None:
    """Build an image from the remote one with ``containerfile`` and push it over the remote tag."""
    manager.pull_image(remote)
    context = tmp_path / f"tamper-{uuid.uuid4().hex[:6]}"
    context.mkdir()
    (context / "Containerfile").write_text(containerfile.format(image=remote))
    ref = f"localhost/adjutant-tampered-{uuid.uuid4().hex[:8]}"
    label_args = [arg for key, value in (labels or {}).items() for arg in ("--label", f"{key}={value}")]
    try:
        podman("build", "-q", "--network", "none", "--pull=never", *label_args, "-t", ref, str(context))
        podman("push", "-q", "--tls-verify=false", ref, remote)
    finally:
        for name in (ref, remote):
            manager.remove_image(name)


@pytest.mark.parametrize("tamper", ["inputs", "layers"])
def test_a_tampered_image_is_refused_and_the_layer_made_here(tamper, cache_harness, srpms, registry, registry_manager,
                                                              stores, podman_manager, caplog, tmp_path):
    shared = SharedCache(namespace(registry))
    cache_harness.build(srpms["hello-noarch"], manager=registry_manager, shared=shared)
    (env,) = cache_harness.store.list()
    remote = shared.remote_ref(env.inputs_hash)
    description = podman_manager.image_info(env.image_ref).labels[LABEL_DESCRIPTION]
    if tamper == "inputs":
        # Same key and name, other inputs: the label no longer hashes to the key it claims.
        claims = json.loads(description)
        claims["inputs"]["key"]["macros"] = {**claims["inputs"]["key"].get("macros", {}), "forged": "1"}
        forged = json.dumps(claims, sort_keys=True)
        push_tampered(registry_manager, registry, remote, "FROM {image}\n", tmp_path, {LABEL_DESCRIPTION: forged})
    else:
        # The description untouched, a layer of the attacker's on top.
        push_tampered(registry_manager, registry, remote, "FROM {image}\nRUN echo planted > /usr/bin/gcc-wrapper\n",
                      tmp_path)
    evict_all(cache_harness.store, podman_manager)

    caplog.clear()
    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot")
    store = stores()
    build = cache_harness.build(srpms["hello-noarch"], manager=registry_manager, store=store, shared=shared)
    refusals = [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    reason = "do not hash to its key" if tamper == "inputs" else "layers are not those"
    assert len(refusals) == 1 and reason in refusals[0], refusals
    assert build.layers_made == 1
    (made,) = store.list()
    assert made.origin == ORIGIN_BUILT
    assert podman_manager.image_refs(registry.host) == [], "the refused image is not kept"
    # The layer made here replaced the forgery: the next builder pulls and accepts it.
    evict_all(store, podman_manager)
    after = cache_harness.build(srpms["hello-noarch"], manager=registry_manager, store=stores(), shared=shared)
    assert after.layers_made == 0


def test_a_registry_that_is_down_costs_a_warning_not_a_build(cache_harness, srpms, caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot")
    with Registry() as down:
        down.stop()
        with PodmanManager(insecure_registries=[down.host]) as manager:
            build = cache_harness.build(srpms["hello-noarch"], manager=manager, shared=SharedCache(namespace(down)))
    assert build.error is None and build.layers_made == 1
    assert build.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("is not in the shared cache" in m for m in messages)
    assert any("could not share buildroot" in m for m in messages)


def test_two_builders_making_the_same_layer_at_once_both_succeed(cache_harness, srpms, registry, stores,
                                                                 podman_manager):
    shared = SharedCache(namespace(registry))
    repository = f"{shared.registry.split('/', 1)[1]}/{REPOSITORY}"
    builder_stores = [stores(), stores()]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(index: int) -> None:
        try:
            with PodmanManager(insecure_registries=[registry.host]) as manager:
                barrier.wait(timeout=60)
                results[index] = cache_harness.build(srpms["hello-noarch"], manager=manager,
                                                     store=builder_stores[index], shared=shared, check=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    assert not any(t.is_alive() for t in threads)
    for result in results:
        assert not isinstance(result, BaseException), result
        assert result.error is None and result.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert len(registry.tags(repository)) == 1
    for store in builder_stores:
        evict_all(store, podman_manager)
    with PodmanManager(insecure_registries=[registry.host]) as manager:
        third = cache_harness.build(srpms["hello-noarch"], manager=manager, store=stores(), shared=shared)
    assert third.layers_made == 0, "what the registry holds after the race is whole and verifies"


def test_a_layer_made_on_another_builders_copy_of_its_parent_is_used(
        cache_harness, srpms, registry, registry_manager, stores, podman_manager, caplog):
    """Builders that miss the group layer at once each make a copy of it (same files, other
    layer digests). A BuildRequires layer pushed by one verifies on the others by its own
    chain: it is pulled, not made again (the farm's herd, docs/adr/0012-shared-buildroot-cache.md)."""
    shared = SharedCache(namespace(registry))
    cache_harness.build(srpms["hello-c"], manager=registry_manager, shared=shared)
    first = {env.inputs_hash: env for env in cache_harness.store.list()}
    first_group = podman_manager.image_info(next(e for e in first.values() if not e.inputs["parent"]).image_ref)
    evict_all(cache_harness.store, podman_manager)

    # The second builder made both layers before the first pushed them; its child is evicted.
    store = stores()
    cache_harness.build(srpms["hello-c"], manager=registry_manager, store=store)
    group, child = sorted(store.list(), key=lambda env: bool(env.inputs["parent"]))
    own_group = podman_manager.image_info(group.image_ref)
    assert own_group.layers != first_group.layers, "each builder's copy of the group layer is its own"
    store.clean(podman_manager, [child.name])

    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot")
    build = cache_harness.build(srpms["hello-c"], manager=registry_manager, store=store, shared=shared)
    assert build.layers_made == 0, build.recorder.purposes
    assert not [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    assert build.rpm_names == [f"hello-c-1.0-1.{ARCH}.rpm"]
    assert f"reusing cached buildroot {child.name}, pulled from the shared cache" in build.root_log
    pulled = store.get(child.name)
    assert pulled.origin == shared.registry and pulled.inputs_hash == child.inputs_hash
    image = podman_manager.image_info(pulled.image_ref)
    assert image.layers[:-1] == first_group.layers, "it stands on the first builder's copy"
    assert pulled.own_size > first[child.inputs_hash].own_size, "that copy is counted as its own on this disk"


PEEK_SPEC = """Name: peek-credentials
Version: 1
Release: 1
Summary: looks for the farm's registry credentials from inside its build
License: MIT
BuildArch: noarch
%description
Fails its build if it can see the credentials file or the password.
%build
test ! -e {path}
! env | grep -F '{password}'
! grep -rsF '{password}' /etc /root /builddir /tmp /var/tmp 2>/dev/null
%install
mkdir -p %{{buildroot}}/usr/share/peek-credentials
%files
/usr/share/peek-credentials
"""


def test_package_code_never_sees_the_registry_credentials(cache_harness, registry_with_auth, tmp_path):
    from koji_adjutant.container.registries import read_auth

    password = "farm-secret-" + uuid.uuid4().hex[:8]
    creds = tmp_path / "cache-registry.auth"
    creds.write_text(f"farm:{password}\n")
    creds.chmod(0o600)
    spec = tmp_path / "peek" / "peek-credentials.spec"
    spec.parent.mkdir()
    spec.write_text(PEEK_SPEC.format(path=creds, password=password))
    srpm = rpmbuild_srpm(spec, spec.parent, tmp_path)
    with PodmanManager(insecure_registries=[registry_with_auth.host]) as manager:
        build = cache_harness.build(srpm, manager=manager,
                                    shared=SharedCache(namespace(registry_with_auth), read_auth(creds)))
    assert build.rpm_names == ["peek-credentials-1-1.noarch.rpm"]
