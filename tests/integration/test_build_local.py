"""`koji-adjutant build-local` end to end: real podman, the dev image, the sample repo.

The CLI is called in-process through ``cli.main`` (one test runs the
installed console script). Every failure case checks the user's view: exit
1, one error line naming what failed and the log to read, and no container
or buildroot image left behind. The CLI's PodmanManager is a subclass that
notes what it creates, so that check holds even while other runs share the
user's podman; the session check in tests/conftest.py backs it up.
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from localrepo import make_repo

from koji_adjutant.cli import main
from koji_adjutant.container.interface import LABEL_WORKER

pytestmark = pytest.mark.podman

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
ERROR_PREFIX = "koji-adjutant build-local: error: "
LOG_FILES = ("root.log", "build.log", "state.log", "installed_pkgs.log", "installed_pkgs.json")
INSTALLED_KEYS = {"name", "version", "release", "epoch", "arch", "payloadhash", "size", "buildtime", "origin"}
PROGRESS = re.compile(r"^\[\s*(\d+\.\d)s\] (.*)$")


# -- fixtures and helpers -------------------------------------------------------

def build_local(*args: str | Path) -> int:
    return main(["build-local", *(str(a) for a in args)])


@pytest.fixture(scope="module")
def noarch_build(sample_repo, tmp_path_factory) -> Path:
    """A finished spec build of hello-noarch, for the tests that need a real SRPM or binary RPM.

    Module-scoped, so its output is caught here rather than with capsys."""
    resultdir = tmp_path_factory.mktemp("noarch-build") / "results"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = build_local(EXAMPLES / "hello-noarch" / "hello-noarch.spec", "--repo", sample_repo,
                           "--resultdir", resultdir)
    assert code == 0, err.getvalue()
    return resultdir


@pytest.fixture
def cli_containers(podman_manager, monkeypatch):
    """Checked after the test: build-local removed every container and image it made.

    The CLI's PodmanManager is swapped for a subclass that only notes what it
    creates and commits, so the check concerns this test's containers alone,
    even while other runs of build-local share the user's podman."""
    from koji_adjutant.container import podman

    created: list[str] = []
    committed: list[str] = []

    class NotingPodmanManager(podman.PodmanManager):
        def create(self, spec):
            assert spec.labels.get(LABEL_WORKER) == "build-local"
            handle = super().create(spec)
            created.append(handle.id)
            return handle

        def commit(self, handle, ref, labels=None):
            committed.append(ref)
            return super().commit(handle, ref, labels)

    monkeypatch.setattr(podman, "PodmanManager", NotingPodmanManager)
    yield created
    listed = {c.id for c in podman_manager.list_containers({LABEL_WORKER: "build-local"})}
    assert listed & set(created) == set(), "build-local left its containers behind"
    still_there = [cid for cid in created
                   if subprocess.run(["podman", "container", "exists", cid], check=False).returncode == 0]
    assert still_there == [], "build-local left its containers behind"
    assert [ref for ref in committed if podman_manager.image_info(ref) is not None] == []


def rpm_query(path: Path, fmt: str) -> str:
    done = subprocess.run(["rpm", "-qp", "--qf", fmt, str(path)], capture_output=True, text=True, check=True)
    return done.stdout


def write_spec(directory: Path, name: str, body: str, *, release: str = "1", headers: str = "") -> Path:
    """A small noarch spec with no sources; ``body`` holds its sections after %description."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / f"{name}.spec"
    spec.write_text(
        f"Name: {name}\nVersion: 1.0\nRelease: {release}\nSummary: test package {name}\nLicense: MIT\n"
        f"BuildArch: noarch\nAutoReqProv: no\n{headers}\n%description\nTest package {name}.\n\n{body}")
    return spec


MINIMAL_SECTIONS = "%prep\n%build\n%install\nmkdir -p %{buildroot}/usr/share/pkg\n%files\n/usr/share/pkg\n"


def progress_lines(err: str) -> list[tuple[float, str]]:
    return [(float(m.group(1)), m.group(2)) for m in map(PROGRESS.match, err.splitlines()) if m]


def error_line(code: int, out: str, err: str) -> str:
    """The build-local failure contract: exit 1, nothing on stdout, stderr ends with exactly one error line."""
    assert code == 1, err
    assert out == ""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, err
    assert err.rstrip("\n").splitlines()[-1] == errors[0], "the error must be the last line of stderr"
    return errors[0]


def assert_points_to_log(line: str, log: Path) -> None:
    assert f"see {log}" in line
    assert log.is_file() and log.stat().st_size > 0


def check_successful_build(code: int, out: str, err: str, resultdir: Path, nvr: str, arch: str,
                           *, from_spec: bool) -> tuple[Path, Path]:
    """What every successful build must give; returns (binary RPM, SRPM)."""
    assert code == 0, err
    rpm = resultdir / f"{nvr}.{arch}.rpm"
    srpm = resultdir / f"{nvr}.src.rpm"
    assert sorted(p.name for p in resultdir.glob("*.rpm")) == sorted([rpm.name, srpm.name])
    # The names are the N-V-R.A of the headers, not just of the spec.
    assert rpm_query(rpm, "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm") == rpm.name
    assert rpm_query(srpm, "%{NAME}-%{VERSION}-%{RELEASE}.src.rpm") == srpm.name
    assert rpm_query(srpm, "%{SOURCEPACKAGE}") == "1"
    assert rpm_query(rpm, "%{SOURCERPM}") == srpm.name
    # kojid's macros were in effect in the buildroot.
    assert rpm_query(srpm, "%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}") == "Koji|Koji|Koji"
    assert rpm_query(rpm, "%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}") == "Koji|Koji|Koji"

    for name in LOG_FILES:
        assert (resultdir / name).is_file(), name
    state = (resultdir / "state.log").read_text()
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - ((?:Start|Finish): .*)$")
    steps = [m.group(1) for m in map(stamped.match, state.splitlines()) if m]
    assert len(steps) == len(state.splitlines()), state
    expected = ["Start: dependency phase (offline, no network)", "Finish: dependency phase",
                "Start: build phase (no network)", "Finish: build phase"]
    if from_spec:
        spec_name = nvr.rsplit("-", 2)[0] + ".spec"
        expected = [f"Start: making an SRPM from {spec_name}", f"Finish: making an SRPM from {spec_name}", *expected]
    assert [s for s in steps if s in expected] == expected
    build_log = (resultdir / "build.log").read_text()
    assert "Executing(%build)" in build_log
    assert f"Wrote: /builddir/build/RPMS/{rpm.name}" in build_log  # kojid's flat %_rpmfilename
    assert f"Wrote: /builddir/build/SRPMS/{srpm.name}" in build_log

    installed = json.loads((resultdir / "installed_pkgs.json").read_text())
    assert installed
    for entry in installed:
        assert INSTALLED_KEYS <= set(entry), entry
        assert entry["origin"] in ("image", "repo"), entry
    origins = {entry["name"]: entry["origin"] for entry in installed}
    assert origins.get("koji-adjutant-dev-image-provides") == "image"
    assert origins.get("sample-buildsys-build") == "repo"  # the @build group of the sample repo
    log_text = (resultdir / "installed_pkgs.log").read_text()
    assert len(log_text.splitlines()) == len(installed)

    # The summary: the RPMs on stdout, the time of each phase on stderr.
    assert out.splitlines() == [f"  {rpm}", f"  {srpm}"]
    assert "build-local: success" in err
    times = re.search(r"^  time: (.*), total \d+\.\ds$", err, re.MULTILINE)
    assert times, err
    phases = [re.fullmatch(r"(\w+) \d+\.\ds", part) for part in times.group(1).split(", ")]
    assert all(phases), times.group(0)
    assert [m.group(1) for m in phases] == (["srpm"] if from_spec else []) + ["dependencies", "build"]
    return rpm, srpm


# -- the CLI itself ---------------------------------------------------------------

def test_console_script_lists_build_local():
    script = shutil.which("koji-adjutant")
    assert script, "the koji-adjutant console script is not installed on PATH"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\s+build-local\s+build a package locally", done.stdout, re.MULTILINE), done.stdout


# -- successful builds ------------------------------------------------------------

def test_hello_noarch_from_spec(sample_repo, tmp_path, capsys, cli_containers):
    resultdir = tmp_path / "results"
    code = build_local(EXAMPLES / "hello-noarch" / "hello-noarch.spec", "--repo", sample_repo,
                       "--resultdir", resultdir)
    out, err = capsys.readouterr()
    rpm, _ = check_successful_build(code, out, err, resultdir, "hello-noarch-1.0-1", "noarch", from_spec=True)
    assert len(cli_containers) == 4  # srpm, group layer, evaluation and build containers
    assert "/usr/bin/hello-noarch" in rpm_query(rpm, "[%{FILENAMES}\n]").splitlines()


def test_hello_noarch_from_srpm(sample_repo, noarch_build, tmp_path, capsys, cli_containers):
    srpm = tmp_path / "hello-noarch-1.0-1.src.rpm"
    shutil.copyfile(noarch_build / srpm.name, srpm)
    resultdir = tmp_path / "results"
    code = build_local(srpm, "--repo", sample_repo, "--resultdir", resultdir)
    out, err = capsys.readouterr()
    check_successful_build(code, out, err, resultdir, "hello-noarch-1.0-1", "noarch", from_spec=False)
    assert len(cli_containers) == 3  # group layer, evaluation and build containers
    assert "making an SRPM" not in (resultdir / "state.log").read_text()


def test_hello_c_is_built_for_this_machine(sample_repo, tmp_path, capsys, cli_containers):
    arch = platform.machine()
    resultdir = tmp_path / "results"
    code = build_local(EXAMPLES / "hello-c" / "hello-c.spec", "--repo", sample_repo, "--resultdir", resultdir)
    out, err = capsys.readouterr()
    rpm, _ = check_successful_build(code, out, err, resultdir, "hello-c-1.0-1", arch, from_spec=True)
    assert len(cli_containers) == 5  # srpm, group layer, evaluation, BuildRequires layer, build
    listing = subprocess.run(["rpm", "-qpl", str(rpm)], capture_output=True, text=True, check=True).stdout
    assert "/usr/bin/hello-c" in listing.splitlines()
    if arch in ("x86_64", "aarch64"):  # the arch-conditional BuildRequires was evaluated for the target
        origins = {e["name"]: e["origin"] for e in json.loads((resultdir / "installed_pkgs.json").read_text())}
        assert origins.get("libgreet-devel") == "repo"


def test_dynamic_buildrequires(sample_repo, tmp_path, capsys, cli_containers):
    resultdir = tmp_path / "results"
    code = build_local(EXAMPLES / "dynamic-br" / "dynamic-br.spec", "--repo", sample_repo,
                       "--resultdir", resultdir)
    out, err = capsys.readouterr()
    check_successful_build(code, out, err, resultdir, "dynamic-br-1.0-1", "noarch", from_spec=True)
    assert len(cli_containers) == 5  # srpm, group layer, evaluation, BuildRequires layer, build
    installed = json.loads((resultdir / "installed_pkgs.json").read_text())
    libgreet = [e for e in installed if e["name"] == "libgreet-devel"]
    assert [e["origin"] for e in libgreet] == ["repo"]
    root_log = (resultdir / "root.log").read_text()
    assert "Start: evaluating the BuildRequires of dynamic-br.spec" in root_log
    assert "dynamic-br-1.0-1.buildreqs.nosrc.rpm" in root_log


def test_define_reaches_the_build(sample_repo, tmp_path, capsys, cli_containers):
    # None of the sample specs uses %{?dist}, so this one does.
    spec = write_spec(tmp_path / "src", "distcheck", release="1%{?dist}", body=(
        "%prep\n%build\necho \"dist is [%{?dist}] answer is [%{?answer}]\"\n"
        "%install\nmkdir -p %{buildroot}/usr/share/distcheck\n%files\n/usr/share/distcheck\n"))
    resultdir = tmp_path / "results"
    code = build_local(spec, "--repo", sample_repo, "--resultdir", resultdir,
                       "--define", "dist .test1", "--define", "%answer 42")
    out, err = capsys.readouterr()
    rpm, srpm = check_successful_build(code, out, err, resultdir, "distcheck-1.0-1.test1", "noarch",
                                       from_spec=True)
    assert len(cli_containers) == 4  # srpm, group layer, evaluation and build containers
    assert rpm_query(rpm, "%{RELEASE}") == "1.test1"
    assert rpm_query(srpm, "%{RELEASE}") == "1.test1"
    assert "dist is [.test1] answer is [42]" in (resultdir / "build.log").read_text()


def test_progress_is_shown_while_running(sample_repo, tmp_path, capsys, cli_containers):
    spec = write_spec(tmp_path / "src", "slowish", body=MINIMAL_SECTIONS.replace("%build\n", "%build\nsleep 2\n"))
    code = build_local(spec, "--repo", sample_repo, "--resultdir", tmp_path / "results")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(cli_containers) == 4  # srpm, group layer, evaluation and build containers
    lines = progress_lines(err)
    texts = [text for _, text in lines]
    milestones = ["Start: making an SRPM from slowish.spec", "Start: dependency phase (offline, no network)",
                  "Start: installing the @build group", "Finish: dependency phase", "Start: build phase (no network)",
                  "Start: rpmbuild -bb slowish.spec", "Finish: rpmbuild -bb slowish.spec", "Finish: build phase"]
    for milestone in milestones:
        assert milestone in texts, err
    positions = [texts.index(m) for m in milestones]
    assert positions == sorted(positions), err
    stamps = [stamp for stamp, _ in lines]
    assert stamps == sorted(stamps)
    # Printed as it happened: the 2 s of %build lie between the two lines, not after both.
    assert lines[positions[6]][0] - lines[positions[5]][0] >= 1.5, err
    # And all of it before the summary.
    err_lines = err.splitlines()
    last_progress = max(i for i, line in enumerate(err_lines) if PROGRESS.match(line))
    assert last_progress < err_lines.index("build-local: success")


# -- failures ----------------------------------------------------------------------

def test_not_an_srpm(sample_repo, tmp_path, capsys, cli_containers):
    fake = tmp_path / "x.src.rpm"
    fake.write_text("this is not an rpm\n")
    code = build_local(fake, "--repo", sample_repo, "--resultdir", tmp_path / "results")
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 0  # no container: it fails before any is needed
    assert f"{fake} is not an RPM file" in line


def test_binary_rpm_as_input(sample_repo, noarch_build, tmp_path, capsys, cli_containers):
    binary = noarch_build / "hello-noarch-1.0-1.noarch.rpm"
    code = build_local(binary, "--repo", sample_repo, "--resultdir", tmp_path / "results")
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 0  # no container: it fails before any is needed
    assert f"{binary} is a binary RPM" in line


def test_corrupt_srpm(sample_repo, noarch_build, tmp_path, capsys, cli_containers):
    whole = (noarch_build / "hello-noarch-1.0-1.src.rpm").read_bytes()
    corrupt = tmp_path / "hello-noarch-1.0-1.src.rpm"
    corrupt.write_bytes(whole[:len(whole) // 2])
    resultdir = tmp_path / "results"
    code = build_local(corrupt, "--repo", sample_repo, "--resultdir", resultdir)
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 2  # the group layer, and the evaluation that found it corrupt
    assert corrupt.name in line and "corrupt" in line
    assert_points_to_log(line, resultdir / "root.log")
    assert not list(resultdir.glob("*.rpm"))


def test_missing_repo_dir(noarch_build, tmp_path, capsys, cli_containers):
    missing = tmp_path / "no-such-repo"
    code = build_local(noarch_build / "hello-noarch-1.0-1.src.rpm", "--repo", missing,
                       "--resultdir", tmp_path / "results")
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 0  # no container: it fails before any is needed
    assert f"repo directory {missing} does not exist" in line


def test_dir_that_is_not_a_repo(noarch_build, tmp_path, capsys, cli_containers):
    not_repo = tmp_path / "just-a-dir"
    not_repo.mkdir()
    (not_repo / "some.rpm").write_text("")
    code = build_local(noarch_build / "hello-noarch-1.0-1.src.rpm", "--repo", not_repo,
                       "--resultdir", tmp_path / "results")
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 0  # no container: it fails before any is needed
    assert f"{not_repo} is not a package repository" in line


def test_unknown_image(sample_repo, noarch_build, tmp_path, capsys, cli_containers):
    code = build_local(noarch_build / "hello-noarch-1.0-1.src.rpm", "--repo", sample_repo,
                       "--image", "localhost/does-not-exist:1", "--resultdir", tmp_path / "results")
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 0  # no container: it fails before any is needed
    assert "image localhost/does-not-exist:1" in line


def test_unknown_image_says_the_pull_failed(sample_repo, noarch_build, tmp_path, capsys, cli_containers):
    code = build_local(noarch_build / "hello-noarch-1.0-1.src.rpm", "--repo", sample_repo,
                       "--image", "localhost/does-not-exist:1", "--resultdir", tmp_path / "results")
    line = error_line(code, *capsys.readouterr())
    assert "was pulled" not in line
    assert "could not be pulled" in line


def test_spec_syntax_error(sample_repo, tmp_path, capsys, cli_containers):
    spec = write_spec(tmp_path / "src", "broken", body=MINIMAL_SECTIONS.replace("%build\n", "%build\n%if 1\n"))
    resultdir = tmp_path / "results"
    code = build_local(spec, "--repo", sample_repo, "--resultdir", resultdir)
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 1  # the srpm container, where rpmbuild -bs failed
    assert "broken.spec" in line and "rpmbuild -bs failed" in line
    assert_points_to_log(line, resultdir / "root.log")
    assert "Unclosed %if" in (resultdir / "root.log").read_text()


def test_buildrequires_not_found(sample_repo, tmp_path, capsys, cli_containers):
    spec = write_spec(tmp_path / "src", "needs-missing", body=MINIMAL_SECTIONS,
                      headers="BuildRequires: no-such-package-xyz\n")
    resultdir = tmp_path / "results"
    code = build_local(spec, "--repo", sample_repo, "--resultdir", resultdir)
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 4  # srpm, group layer, evaluation, and the failing layer
    assert "BuildRequires" in line and "not found" in line and "no-such-package-xyz" in line
    assert_points_to_log(line, resultdir / "root.log")
    assert not list(resultdir.glob("*.rpm"))


@pytest.fixture(scope="module")
def repo_without_groups(sample_repo, tmp_path_factory) -> Path:
    """The sample repo's packages with no comps groups, as most local repos are."""
    return make_repo(tmp_path_factory.mktemp("no-groups") / "repo", sample_repo.glob("*.rpm"))


def test_a_repo_without_the_build_group_is_said_so(repo_without_groups, noarch_build, tmp_path, capsys,
                                                   cli_containers):
    srpm = shutil.copy(noarch_build / "hello-noarch-1.0-1.src.rpm", tmp_path)
    resultdir = tmp_path / "results"
    line = error_line(build_local(srpm, "--repo", repo_without_groups, "--resultdir", resultdir),
                      *capsys.readouterr())
    assert "installing the @build group: the buildroot repos have no group build" in line
    assert "--no-group" in line and "--install PKG" in line
    assert_points_to_log(line, resultdir / "root.log")


def test_no_group_and_the_packages_of_ones_choice(repo_without_groups, noarch_build, tmp_path, capsys,
                                                  cli_containers):
    srpm = shutil.copy(noarch_build / "hello-noarch-1.0-1.src.rpm", tmp_path)
    resultdir = tmp_path / "results"
    code = build_local(srpm, "--repo", repo_without_groups, "--no-group", "--install", "sample-buildsys-build",
                       "--resultdir", resultdir)
    out, err = capsys.readouterr()
    check_successful_build(code, out, err, resultdir, "hello-noarch-1.0-1", "noarch", from_spec=False)
    assert "Start: installing sample-buildsys-build" in (resultdir / "state.log").read_text()


def test_another_group_by_name(sample_repo, noarch_build, tmp_path, capsys, cli_containers):
    srpm = shutil.copy(noarch_build / "hello-noarch-1.0-1.src.rpm", tmp_path)
    resultdir = tmp_path / "results"
    code = build_local(srpm, "--repo", sample_repo, "--group", "srpm-build", "--resultdir", resultdir)
    out, err = capsys.readouterr()
    check_successful_build(code, out, err, resultdir, "hello-noarch-1.0-1", "noarch", from_spec=False)
    assert "Start: installing the @srpm-build group" in (resultdir / "state.log").read_text()


def test_failing_build(sample_repo, tmp_path, capsys, cli_containers):
    resultdir = tmp_path / "results"
    code = build_local(EXAMPLES / "fail-build" / "fail-build.spec", "--repo", sample_repo,
                       "--resultdir", resultdir)
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 4  # it failed in the build phase, the last
    assert "rpmbuild failed (exit 1)" in line
    assert_points_to_log(line, resultdir / "build.log")
    assert "intentional failure in %build" in (resultdir / "build.log").read_text()
    assert not list(resultdir.glob("*.rpm"))


def test_timeout(sample_repo, tmp_path, capsys, cli_containers):
    spec = write_spec(tmp_path / "src", "sleeper", body=MINIMAL_SECTIONS.replace("%build\n", "%build\nsleep 60\n"))
    resultdir = tmp_path / "results"
    started = time.monotonic()
    code = build_local(spec, "--repo", sample_repo, "--resultdir", resultdir, "--timeout", "3")
    elapsed = time.monotonic() - started
    line = error_line(code, *capsys.readouterr())
    assert len(cli_containers) == 4  # killed in the build phase
    assert "timeout of 3 s" in line
    assert_points_to_log(line, resultdir / "build.log")
    assert "sleep 60" in (resultdir / "build.log").read_text()
    assert elapsed < 30, f"build-local took {elapsed:.0f} s to give up after a 3 s timeout"
    assert not list(resultdir.glob("*.rpm"))


def test_build_container_killed_from_outside(sample_repo, tmp_path, capsys, cli_containers):
    """Killed, the phase script prints no exit status of its own: podman's view of the end is reported."""
    spec = write_spec(tmp_path / "src", "victim",
                      body=MINIMAL_SECTIONS.replace("%build\n", "%build\necho waiting-to-be-killed\nsleep 60\n"))
    resultdir = tmp_path / "results"
    outcome: dict[str, int] = {}
    builder = threading.Thread(target=lambda: outcome.setdefault(
        "code", build_local(spec, "--repo", sample_repo, "--resultdir", resultdir)))
    builder.start()
    try:
        deadline = time.monotonic() + 120
        log = resultdir / "build.log"
        while not (log.exists() and "waiting-to-be-killed" in log.read_text(errors="replace")):
            assert builder.is_alive() and time.monotonic() < deadline, "the build never reached its %build"
            time.sleep(0.1)
        subprocess.run(["podman", "kill", "--signal", "KILL", cli_containers[-1]], check=True, capture_output=True)
    finally:
        builder.join(120)
    line = error_line(outcome["code"], *capsys.readouterr())
    assert len(cli_containers) == 4
    assert "rpmbuild failed (exit 137)" in line
    assert_points_to_log(line, resultdir / "build.log")
    assert not list(resultdir.glob("*.rpm"))
