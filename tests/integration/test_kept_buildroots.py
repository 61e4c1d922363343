"""Failed buildroots kept for the operator (buildroot/kept.py) against real rootless podman.

BuildrootRunner with ``keep_failed`` (kojid.conf failed_buildroot_lifetime),
the dev image and the sample repo of examples/; the package fails in %build
after writing a marker into the buildroot (/builddir/build/BUILD and /tmp) and
noting whether it found one a build before it left there. ``koji-adjutant
enter`` runs in this process as an operator would, with a command (a shell
needs a terminal: test_enter_gives_a_shell_on_a_terminal gives it one).

Every test removes what it kept (``kept.sweep``), the canaries it made and the
environments of its private store.
"""

from __future__ import annotations

import os
import platform
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from koji_adjutant import cli
from koji_adjutant.buildroot import kept
from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import (
    KEPT_NAME_PREFIX,
    LABEL_KEEP_FAILED,
    LABEL_PURPOSE,
    LABEL_TASK,
    LABEL_WORKER,
    ContainerSpec,
)
from koji_adjutant.envstore import EnvironmentStore
from koji_adjutant.errors import BuildError

pytestmark = pytest.mark.podman

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
ARCH = platform.machine()
MARKER = "/builddir/build/BUILD/keep-me-marker"
SAW_PREVIOUS = "SAW-A-PREVIOUS-BUILD"
KEEP_ME = f"""Name: keep-me
Version: 1.0
Release: 1
Summary: fails in %build after leaving a marker
License: MIT
BuildArch: noarch
AutoReqProv: no

%description
Fails in %build after leaving a marker.

%prep
%build
if [ -e {MARKER} ] || [ -e /tmp/keep-me-marker ]; then echo {SAW_PREVIOUS} >&2; fi
cat /proc/sys/kernel/random/uuid > {MARKER}
cp {MARKER} /tmp/keep-me-marker
echo "MARKER $(cat {MARKER})" >&2
exit 1

%files
"""


@pytest.fixture(scope="module")
def keep_me_srpm(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("keep-me")
    spec = out / "keep-me.spec"
    spec.write_text(KEEP_ME)
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {out / 'top'}", str(spec)],
                   check=True, capture_output=True, text=True)
    (srpm,) = (out / "top" / "SRPMS").glob("*.src.rpm")
    return srpm


def new_task() -> str:
    return str(900_000_000 + uuid.uuid4().int % 99_999_999)


class Builds:
    """Failing builds of one worker, and the kojid.conf an operator would enter them with."""

    def __init__(self, manager, worker: str, workdir: Path, repo: Path):
        self.manager, self.worker, self.workdir, self.repo = manager, worker, workdir, repo
        self.store = EnvironmentStore(workdir / "environments.sqlite")
        self.tag = f"kept-{uuid.uuid4().hex[:6]}"
        self.conf = workdir / "kojid.conf"
        self.conf.write_text("[kojid]\nserver = http://127.0.0.1:9/kojihub\ntopurl = http://127.0.0.1:9/kojifiles\n"
                             f"[adjutant]\nworker_id = {worker}\nstate_dir = {workdir / 'state'}\n")
        self.created: list[ContainerSpec] = []

    def fail(self, srpm: Path, task: str, keep_failed: int, cache: bool = False) -> Path:
        """Build ``srpm`` as ``task``; it must fail. Returns its result directory."""
        base = self.manager.ensure_image(DEV_IMAGE)
        spec = BuildrootSpec(image=base.ref, image_digest=base.digest, arch=ARCH,
                             repos=(RepoSource("local", str(self.repo)),), group=InstallGroup.BUILD,
                             macros=kojid_macros(ARCH), timeouts=Timeouts(dependencies=600, rpmbuild=600), tag=self.tag)
        resultdir = self.workdir / f"results-{task}"
        recorder = Recorder(self.manager, self.created)
        runner = BuildrootRunner(recorder, {LABEL_WORKER: self.worker, LABEL_TASK: task},
                                 work_root=self.workdir / "work", keep_failed=keep_failed,
                                 cache=BuildrootCache(self.store, recorder) if cache else None)
        logs = BuildLogs(resultdir)
        try:
            with pytest.raises(BuildError, match="rpmbuild failed"):
                runner.build(spec, srpm, resultdir, logs)
        finally:
            logs.close()
        return resultdir

    def containers(self) -> list:
        return self.manager.list_containers({LABEL_WORKER: self.worker})

    def enter(self, capfd, *argv: str) -> tuple[int, str, str]:
        capfd.readouterr()
        status = cli.main(["enter", "-c", str(self.conf), *argv])
        out, err = capfd.readouterr()
        return status, out, err

    def clean(self) -> None:
        kept.sweep(self.manager, self.worker, time.time(), everything=True)
        self.store.clean(self.manager, [env.name for env in self.store.list()])


class Recorder:
    """Forwards to the real manager; notes the spec of every container made."""

    def __init__(self, inner, created: list[ContainerSpec]):
        self._inner, self._created = inner, created

    def create(self, spec: ContainerSpec):
        self._created.append(spec)
        return self._inner.create(spec)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture
def builds(podman_manager, worker_id, tmp_path, sample_repo):
    builds = Builds(podman_manager, f"{worker_id}-kept-{uuid.uuid4().hex[:4]}", tmp_path, sample_repo)
    try:
        yield builds
    finally:
        builds.clean()
    assert builds.containers() == []
    assert podman_manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}") == []


def marker_of(resultdir: Path) -> str:
    return re.search(r"^MARKER (\S+)$", (resultdir / "build.log").read_text(), re.M).group(1)


def test_a_failed_build_is_kept_entered_and_swept(builds, keep_me_srpm, capfd, podman_manager):
    task = new_task()
    resultdir = builds.fail(keep_me_srpm, task, keep_failed=3600)
    (buildroot,) = kept.list_kept(podman_manager, builds.worker)
    assert (buildroot.task, buildroot.package, buildroot.lifetime) == (task, "keep-me-1.0-1", 3600)
    assert [c.id for c in builds.containers()] == [buildroot.id], "only the build container is kept"
    assert next(c.status for c in builds.containers()) in ("exited", "stopped")
    assert abs(buildroot.expires_at - (time.time() + 3600)) < 120
    assert f"koji-adjutant enter {task}'" in (resultdir / "root.log").read_text()
    # the image made for this build only is still there, by the kept buildroot's name
    assert podman_manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}") == [buildroot.image_ref]
    assert podman_manager.image_info(buildroot.image_ref).id.removeprefix("sha256:") == buildroot.image_id

    status, out, err = builds.enter(capfd, task, "--", "cat", MARKER)
    assert (status, out) == (0, marker_of(resultdir) + "\n"), err
    status, out, err = builds.enter(capfd, task, "--", "sh", "-c", "id -un; pwd; grep -E '^Cap(Eff|Bnd)' "
                                    "/proc/self/status; ls /sys/class/net; ls /builddir/build/SPECS")
    assert status == 0, err
    assert out.split() == ["mockbuild", "/builddir/build", "CapBnd:", "0" * 16, "CapEff:", "0" * 16, "lo",
                           "keep-me.spec"] or out.split() == ["mockbuild", "/builddir/build", "CapEff:", "0" * 16,
                                                              "CapBnd:", "0" * 16, "lo", "keep-me.spec"]
    status, out, err = builds.enter(capfd, task, "--", "sh", "-c", "exit 7")
    assert status == 7
    # what was done inside went with the container: the kept one is as it failed
    status, out, err = builds.enter(capfd, task, "--", "sh", "-c", f"echo changed > {MARKER}")
    status, out, err = builds.enter(capfd, task, "--", "cat", MARKER)
    assert out == marker_of(resultdir) + "\n"
    assert [c.id for c in builds.containers()] == [buildroot.id]
    assert podman_manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}") == [buildroot.image_ref]

    status, out, err = builds.enter(capfd, "--list")
    assert status == 0
    assert re.search(rf"^{task}\s+keep-me-1.0-1\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\s+{buildroot.name}$", out, re.M)

    # the sweep: nothing before expiry, then the kept buildroot and its image, and nothing else
    canary = podman_manager.create(ContainerSpec(image=DEV_IMAGE, command=["true"],
                                                 labels={LABEL_WORKER: builds.worker, LABEL_PURPOSE: "canary",
                                                         LABEL_TASK: task}))
    canary_ref = f"localhost/adjutant-canary-{uuid.uuid4().hex[:8]}:{task}"
    podman_manager.tag_image(DEV_IMAGE, canary_ref)
    try:
        assert kept.sweep(podman_manager, builds.worker, time.time()) == []
        assert podman_manager.image_info(buildroot.image_ref) is not None
        later = buildroot.expires_at + 1
        assert kept.sweep(podman_manager, "another-worker", later) == []
        assert [b.id for b in kept.sweep(podman_manager, builds.worker, later)] == [buildroot.id]
        assert [c.id for c in builds.containers()] == [canary.id]
        assert podman_manager.image_info(canary_ref) is not None
        assert podman_manager.image_info(DEV_IMAGE) is not None
        assert podman_manager.image_info(buildroot.image_id) is None
        assert podman_manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}") == []
    finally:
        podman_manager.remove(canary)
        podman_manager.remove_image(canary_ref)


def test_no_task_kept_and_an_expired_one_cannot_be_entered(builds, keep_me_srpm, capfd, podman_manager):
    status, out, err = builds.enter(capfd, "999999999", "--", "true")
    assert status == 1 and "no failed buildroot of task 999999999 is kept" in err
    assert builds.enter(capfd, "--list")[1] == "no failed buildroots are kept\n"

    task = new_task()
    builds.fail(keep_me_srpm, task, keep_failed=1)
    (buildroot,) = kept.list_kept(podman_manager, builds.worker)
    time.sleep(max(0.0, buildroot.expires_at - time.time()) + 0.1)
    status, out, err = builds.enter(capfd, task, "--", "true")
    assert status == 1 and f"the failed buildroot of task {task} expired at" in err
    assert "(expired)" in builds.enter(capfd, "--list")[1]
    assert [b.id for b in kept.sweep(podman_manager, builds.worker, time.time())] == [buildroot.id]


def test_lifetime_0_keeps_nothing(builds, keep_me_srpm, podman_manager):
    resultdir = builds.fail(keep_me_srpm, new_task(), keep_failed=0)
    assert builds.containers() == []
    assert podman_manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}") == []
    assert "koji-adjutant enter" not in (resultdir / "root.log").read_text()
    assert builds.created and not any(LABEL_KEEP_FAILED in spec.labels for spec in builds.created)


def test_a_later_build_does_not_reuse_the_kept_buildroot(builds, keep_me_srpm, podman_manager):
    first, second = new_task(), new_task()
    builds.fail(keep_me_srpm, first, keep_failed=3600, cache=True)
    (kept_first,) = kept.list_kept(podman_manager, builds.worker)
    made_before = len(builds.created)
    resultdir = builds.fail(keep_me_srpm, second, keep_failed=3600, cache=True)
    log = (resultdir / "build.log").read_text()
    assert SAW_PREVIOUS not in log and marker_of(resultdir)
    assert "reusing cached buildroot" in (resultdir / "root.log").read_text()
    build_specs = [spec for spec in builds.created[made_before:] if spec.labels[LABEL_PURPOSE] == "build"]
    assert len(build_specs) == 1
    assert build_specs[0].image.endswith(":latest") and KEPT_NAME_PREFIX not in build_specs[0].image
    assert {b.task for b in kept.list_kept(podman_manager, builds.worker)} == {first, second}
    assert kept_first.id in {b.id for b in kept.list_kept(podman_manager, builds.worker)}


def test_enter_gives_a_shell_on_a_terminal(builds, keep_me_srpm, podman_manager):
    task = new_task()
    resultdir = builds.fail(keep_me_srpm, task, keep_failed=3600)
    pid, fd = pty.fork()
    if pid == 0:  # the child: koji-adjutant enter on the pty, as an operator's terminal
        os.execv(sys.executable, [sys.executable, "-m", "koji_adjutant.cli", "enter", task, "-c", str(builds.conf)])
    output = b""
    try:
        output += _read_until(fd, b"$ ", 120)
        os.write(fd, f"cat {MARKER}; exit 3\n".encode())
        output += _read_until(fd, None, 60)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 3, output
    assert marker_of(resultdir).encode() in output
    assert b"nothing done in it is kept" in output
    assert [c.name for c in builds.containers()] == [kept.list_kept(podman_manager, builds.worker)[0].name]


def _read_until(fd: int, wanted: bytes | None, timeout: float) -> bytes:
    """What the pty shows until ``wanted`` appears (None: until it closes)."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the pty
            return data
        if not chunk:
            return data
        data += chunk
        if wanted is not None and wanted in data:
            return data
    raise AssertionError(f"the terminal showed no {wanted!r} within {timeout} s: {data!r}")
