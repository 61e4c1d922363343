"""The e2e harness: a hub simulator that also records what its state does not keep,
the sample inputs (repo and SRPMs), and the worker process with all it starts.

conftest.py turns these into fixtures; the tests use the query helpers
(worker_containers, worker_images, cached_environments, unrecorded_images).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import koji

from hubsim import HubSimulator
from koji_adjutant.envstore import EnvironmentStore

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
REPO_SPECS = EXAMPLES / "repo"
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
LABEL_WORKER = "io.koji-adjutant.worker"
ARCH = platform.machine()
TAG = "dev-build"
#: A build tag whose repo Koji itself makes (newRepo), from builds tagged into it.
KOJI_REPO_TAG = "regen-build"
HOST = "e2e-builder"
PASSWORD = "e2e-secret"
TIMEOUT = 180.0
SAMPLES = ("hello-noarch", "hello-c", "dynamic-br", "fail-build")
#: Samples written here: %build sleeps (seconds), to be caught mid-build.
SLEEPERS = {"sleep-long": 90, "sleep-short": 8}
NOARCH = {"hello-noarch", "dynamic-br", "fail-build", *SLEEPERS}


# -- hub --------------------------------------------------------------------------

class RecordingHub(HubSimulator):
    """The hub simulator, also noting what its state alone does not show."""

    def __init__(self, topdir):
        self.br_history: dict[int, list[str]] = {}
        self.updates: list[tuple[float, float, bool]] = []
        self.freed: list[tuple[float, int]] = []
        self.policy_data: list[dict] = []
        #: (policy, data) of each host.assertPolicy, in order, refused ones too
        self.asserted_policies: list[tuple[str, dict]] = []
        super().__init__(topdir)
        self.builder_id = None
        self.repo_id = None
        self.srpms: dict[str, str] = {}

    # the host calls of interest, recorded after the hub accepted them
    def host_newBuildRoot(self, repo, arch, task_id=None):
        brootid = super().host_newBuildRoot(repo, arch, task_id=task_id)
        self.br_history[brootid] = ["INIT"]
        return brootid

    def host_setBuildRootState(self, brootid, state, task_id=None):
        before = self.brs[int(brootid)]["state"]
        result = super().host_setBuildRootState(brootid, state, task_id=task_id)
        after = self.brs[int(brootid)]["state"]
        if after != before:
            self.br_history[int(brootid)].append(koji.BR_STATES[after])
        return result

    def host_updateHost(self, task_load, ready, data=None):
        result = super().host_updateHost(task_load, ready, data=data)
        self.updates.append((time.time(), float(task_load), bool(ready)))
        return result

    def host_freeTasks(self, tasks):
        result = super().host_freeTasks(tasks)
        self.freed.extend((time.time(), int(t)) for t in tasks)
        return result

    def host_evalPolicy(self, name, data):
        self.policy_data.append(dict(data))
        return super().host_evalPolicy(name, data)

    def host_assertPolicy(self, name, data, default="deny"):
        self.asserted_policies.append((name, dict(data)))
        return super().host_assertPolicy(name, data, default=default)

    # test helpers
    def submit(self, sample: str, keep_srpm: bool = True) -> int:
        """A buildArch task of a sample, as kojid's build task would create it."""
        arch = "noarch" if sample in NOARCH else ARCH
        return self.create_task("buildArch", [self.srpms[sample], TAG, arch, keep_srpm,
                                              {"repo_id": self.repo_id}], arch=arch)

    def log(self, task_id: int, name: str) -> str:
        try:
            return self.uploaded(f"{koji.pathinfo.taskrelpath(task_id)}/{name}").decode(errors="replace")
        except FileNotFoundError:
            return ""

    def buildroots_of(self, task_id: int) -> list[dict]:
        return [br for br in self.buildroots if br["task_id"] == task_id]


@dataclass(frozen=True)
class Inputs:
    repo: Path
    repo_rpms: tuple[dict, ...]
    srpms: dict[str, Path]


def _rpm_query(path: Path, fmt: str) -> str:
    return subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, str(path)],
                          capture_output=True, text=True, check=True).stdout


def _sleeper_spec(directory: Path, name: str, seconds: int) -> Path:
    spec = directory / f"{name}.spec"
    spec.write_text(textwrap.dedent(f"""\
        Name: {name}
        Version: 1.0
        Release: 1
        Summary: e2e sample whose build takes {seconds} s
        License: MIT
        BuildArch: noarch
        AutoReqProv: no

        %description
        Sleeps in %build so that tests can act while it builds.

        %prep

        %build
        echo "{name}: sleeping {seconds} s"
        sleep {seconds}

        %install
        mkdir -p %{{buildroot}}/usr/share/{name}

        %files
        /usr/share/{name}
        """))
    return spec


@contextlib.contextmanager
def scratch(prefix: str):
    """A directory of our own, not under pytest's basetemp: concurrent pytest runs of the
    same user prune each other's numbered basetemps."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def host_rpmbuild(spec: Path, topdir: Path, mode: str = "-ba") -> tuple[Path, list[Path]]:
    """Build ``spec`` (its sources beside it) with the host's rpmbuild: (SRPM, binary RPMs)."""
    subprocess.run(["rpmbuild", mode, "--quiet", "--define", f"_topdir {topdir}",
                    "--define", f"_sourcedir {spec.parent}",
                    "--define", "_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                    "--define", "_binary_payload w9.gzdio", str(spec)],
                   check=True, capture_output=True, text=True)
    (srpm,) = (topdir / "SRPMS").glob(f"{spec.stem}-*.src.rpm")
    return srpm, sorted((topdir / "RPMS").glob("*.rpm"))


def make_inputs(base: Path) -> Inputs:
    repo = base / "repo"
    subprocess.run([str(EXAMPLES / "make-repo.sh"), str(repo)], check=True, capture_output=True, text=True)
    fields = ("name", "version", "release", "epoch", "arch", "payloadhash", "size", "buildtime")
    fmt = "%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\t%{SIGMD5}\t%{SIZE}\t%{BUILDTIME}\n"
    rpms = []
    for path in sorted(repo.glob("*.rpm")):
        values = dict(zip(fields, _rpm_query(path, fmt).rstrip("\n").split("\t")))
        values["epoch"] = None if values["epoch"] == "(none)" else int(values["epoch"])
        values["size"], values["buildtime"] = int(values["size"]), int(values["buildtime"])
        rpms.append(values)
    assert {r["name"] for r in rpms} == {"libgreet-devel", "sample-buildsys-build"}
    specs = {name: EXAMPLES / name / f"{name}.spec" for name in SAMPLES}
    specs.update({name: _sleeper_spec(base, name, seconds) for name, seconds in SLEEPERS.items()})
    srpms = {}
    for name, spec in specs.items():
        srpms[name], _ = host_rpmbuild(spec, base / "rpmbuild", mode="-bs")
    return Inputs(repo=repo, repo_rpms=tuple(rpms), srpms=srpms)


# -- worker -----------------------------------------------------------------------

def _podman(*args: str) -> list[str]:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    return [line for line in out.stdout.splitlines() if line.strip()]


def worker_containers(worker_id: str) -> list[str]:
    """IDs of the containers that carry this worker's label, whatever their state."""
    return _podman("ps", "-a", "-q", "--no-trunc", "--filter", f"label={LABEL_WORKER}={worker_id}")


def worker_images(worker_id: str) -> list[str]:
    """Images that carry this worker's label (committed buildroots: podman commit keeps the
    container's labels), as bare image ids."""
    return [image.removeprefix("sha256:") for image in
            _podman("images", "-q", "--no-trunc", "--filter", f"label={LABEL_WORKER}={worker_id}")]


def cached_environments(hub) -> list:
    """The worker's cached buildroots (records of its environment store)."""
    path = hub.worker_state_dir / "environments.sqlite"
    return EnvironmentStore(path).list() if path.exists() else []


def unrecorded_images(hub, worker_id: str) -> list[str]:
    """Images of the worker that are not a cached environment: leftovers."""
    recorded = {env.image_id.removeprefix("sha256:") for env in cached_environments(hub)}
    return [image for image in worker_images(worker_id) if image not in recorded]


def _state_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])  # after the command: state ppid pgrp session


def _describe(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid} (gone)"
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return f"{pid} [{comm}, state {state}, parent {ppid}] {_cmdline(pid)}".rstrip()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Worker:
    """One `koji-adjutant run` process and everything it started."""

    def __init__(self, conf: Path, log: Path, tmpdir: Path, worker_id: str, launcher: list[str] | None = None,
                 force_lock: bool = True):
        self.conf, self.log, self.tmpdir, self.worker_id = conf, log, tmpdir, worker_id
        #: how `koji-adjutant` is invoked (default: the virtualenv's console script)
        self.launcher = launcher or [str(Path(sys.executable).parent / "koji-adjutant")]
        self.force_lock = force_lock
        self.proc: subprocess.Popen | None = None
        self.pids: set[int] = set()
        #: set when the test itself stopped or killed it
        self.stopped = False
        self.saved_log = ""

    def start(self) -> Worker:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(self.tmpdir), "PYTHONUNBUFFERED": "1"}
        command = [*self.launcher, "run", "--fg", *(["--force-lock"] if self.force_lock else []),
                   "-c", str(self.conf)]
        with open(self.log, "ab") as log:
            log.write(f"==== starting {' '.join(command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        self.pids.add(self.proc.pid)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def processes(self) -> list[int]:
        """Live processes of this worker: its sessions (the daemon and its forked tasks)
        and whatever names its TMPDIR (its private podman service)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            pid = int(entry.name)
            try:
                if entry.stat().st_uid != os.getuid():
                    continue
            except OSError:
                continue
            if _state_of(pid) in (None, "Z"):
                continue
            if _session_of(pid) in self.pids or str(self.tmpdir) in _cmdline(pid):
                found.append(pid)
        return found

    def signal(self, sig: int) -> None:
        self.stopped = True
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill_all(self) -> list[str]:
        """SIGKILL the daemon and every process it started, all at the same instant (as
        systemd does to the unit's cgroup after its main process died): they are all
        stopped first, so none of them sees another one go. What was killed, as 'pid cmdline'."""
        self.stopped = True
        found = sorted(set(self.processes()) | ({self.proc.pid} if self.alive else set()))
        for pid in found:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        killed = []
        for pid in found:
            killed.append(_describe(pid))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        return [entry for entry in killed if not entry.startswith(f"{self.proc.pid} ")]

    def lingering(self, timeout: float = 5.0) -> list[int]:
        """Processes of this worker still there after `timeout` s (they may be on their way out)."""
        deadline = time.monotonic() + timeout
        while (found := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    def log_text(self) -> str:
        """The log (kept once the test's directory is gone)."""
        if self.log.exists():
            self.saved_log = self.log.read_text(errors="replace")
        return self.saved_log


def dnf_repoquery(repodir: Path, cachedir: Path, qf: str = "%{name}", arch: str | None = None) -> list[str]:
    """What dnf itself finds in the repo (as a machine of ``arch`` would). dnf run as a user makes
    /var/tmp/dnf-USER-* whatever its cachedir; the one this call made is removed."""
    import getpass
    import glob

    pattern = f"/var/tmp/dnf-{getpass.getuser()}-*"
    before = set(glob.glob(pattern))
    try:
        out = subprocess.run(["dnf", "-q", "--releasever=1", *([f"--forcearch={arch}"] if arch else []),
                              "--setopt=reposdir=/dev/null", f"--setopt=cachedir={cachedir}",
                              f"--repofrompath=r,file://{repodir}", "--repo=r", "repoquery", "--qf", qf],
                             capture_output=True, text=True, check=True).stdout
    finally:
        for made in set(glob.glob(pattern)) - before:
            shutil.rmtree(made, ignore_errors=True)
    return sorted(set(out.split()))
