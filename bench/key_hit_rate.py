"""How often a build finds its buildroot cached, keyed as now and as before. Not a test.

Before, a cached buildroot was keyed on the SRPM's header: its BuildRequires
as listed there, plus the SRPM's checksum when it had
%generate_buildrequires. Now each layer is keyed on what the package asked
for, evaluated inside the buildroot for the target arch (ADR 0006). This runs
one sequence of builds, as a tag's builds come in (new releases of the same
packages, packages sharing BuildRequires, a generator, arch conditionals),
through the real runner with a cache, and prints for each build:

  now        hit: no layer was made for it (every layer it needed was cached)
  header key hit: the old key of this build had been seen before
  right      the old key's hit would have given the buildroot a fresh build
             gets (the old key's environment held exactly what this build
             installs now); a wrong hit is a build in another buildroot

and the totals. Run as the build user:

    scripts/as-builder.sh python bench/key_hit_rate.py   # as root
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, RepoSource, kojid_macros
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.defaults import DEV_IMAGE
from koji_adjutant.envstore import EnvironmentStore

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCH = platform.machine()
OTHER_ARCH = "aarch64" if ARCH != "aarch64" else "x86_64"
#: Where the arch-conditional packages' SRPMs are made: a builder of neither arch.
SRPM_ARCH = "s390x"

PLAIN = "%prep\n%build\n%install\nmkdir -p %{buildroot}/usr/share/NAME\n%files\n/usr/share/NAME\n"
GENERATOR = ("%prep\n%generate_buildrequires\necho libgreet-devel\n%build\ntest -f /usr/include/greet.h\n"
             "%install\nmkdir -p %{buildroot}/usr/share/NAME\n%files\n/usr/share/NAME\n")


@dataclass(frozen=True)
class Package:
    name: str
    release: str
    headers: str = ""
    sections: str = PLAIN
    arch: str = "noarch"       # BuildArch; "" for an arch package
    srpm_target: str = ""      # rpmbuild -bs --target, as a builder of that arch makes the SRPM


def spec_text(package: Package) -> str:
    build_arch = f"BuildArch: {package.arch}\n" if package.arch else ""
    return (f"Name: {package.name}\nVersion: 1\nRelease: {package.release}\nSummary: key benchmark package\n"
            f"License: MIT\n{build_arch}AutoReqProv: no\n{package.headers}\n%description\nKey benchmark.\n\n"
            + package.sections.replace("NAME", package.name))


def sequence() -> list[Package]:
    greet = "BuildRequires: libgreet-devel\n"
    here = f"%ifarch {ARCH}\nBuildRequires: libgreet-devel\n%endif\n"
    there = f"%ifarch {OTHER_ARCH}\nBuildRequires: libgreet-devel\n%endif\n"
    return [
        Package("plain", "1"),
        Package("plain", "2"),                               # new release, nothing to install
        Package("greet-a", "1", greet),
        Package("greet-a", "2", greet),                      # new release, same BuildRequires
        Package("greet-b", "1", greet),                      # another package, same BuildRequires
        Package("generated", "1", sections=GENERATOR),
        Package("generated", "2", sections=GENERATOR),       # new release of a generator, same output
        Package("generated", "3", sections=GENERATOR),
        Package("arch-there", "1", there, arch="", srpm_target=SRPM_ARCH),
        Package("arch-here", "1", here, arch="", srpm_target=SRPM_ARCH),   # same header as arch-there
        Package("greet-a", "3", greet),
        Package("arch-here", "2", here, arch="", srpm_target=SRPM_ARCH),
    ]


def make_srpm(package: Package, workdir: Path) -> Path:
    directory = workdir / f"{package.name}-{package.release}"
    directory.mkdir()
    spec = directory / f"{package.name}.spec"
    spec.write_text(spec_text(package))
    target = ["--target", package.srpm_target] if package.srpm_target else []
    subprocess.run(["rpmbuild", "-bs", "--quiet", *target, "--define", f"_topdir {directory}", str(spec)],
                   check=True, capture_output=True, text=True)
    (srpm,) = (directory / "SRPMS").glob("*.src.rpm")
    return srpm


def header_key(srpm: Path) -> str:
    """The old key of a build, with everything but the SRPM fixed: its header's BuildRequires, and
    its checksum when it has %generate_buildrequires."""
    requires = subprocess.run(["rpm", "-qp", "--requires", str(srpm)], capture_output=True, text=True,
                              check=True).stdout.splitlines()
    key = sorted(set(requires))
    if any(r.startswith("rpmlib(DynamicBuildRequires)") for r in requires):
        key.append(hashlib.sha256(srpm.read_bytes()).hexdigest())
    return "\n".join(key)


class Counting:
    """The real manager, counting the package-manager containers (one per layer made)."""

    def __init__(self, inner):
        self._inner = inner
        self.layers_made = 0

    def create(self, spec):
        if spec.labels.get(LABEL_PURPOSE) == "dependencies":
            self.layers_made += 1
        return self._inner.create(spec)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="adjutant-keybench-"))
    workdir.chmod(0o755)
    tag, worker = f"keybench-{uuid.uuid4().hex[:6]}", f"keybench-{uuid.uuid4().hex[:6]}"
    store = EnvironmentStore(workdir / "envs.sqlite")
    repo = workdir / "repo"
    subprocess.run([str(REPO_ROOT / "examples" / "make-repo.sh"), str(repo)], check=True, capture_output=True)
    rows = []
    seen_header_keys: dict[str, frozenset[str]] = {}
    try:
        with PodmanManager() as manager:
            base = manager.ensure_image(DEV_IMAGE)
            spec = BuildrootSpec(image=base.ref, image_digest=base.digest, arch=ARCH,
                                 repos=(RepoSource("local", str(repo)),), macros=kojid_macros(ARCH), tag=tag)
            # The group layer exists before the sequence, as on a builder that has built for the tag before.
            first = True
            for package in sequence():
                srpm = make_srpm(package, workdir)
                counting = Counting(manager)
                runner = BuildrootRunner(counting, {LABEL_WORKER: worker}, cache=BuildrootCache(store, counting),
                                         work_root=workdir / "work")
                resultdir = workdir / "results" / srpm.stem
                logs = BuildLogs(resultdir)
                try:
                    result = runner.build(spec, srpm, resultdir, logs)
                finally:
                    logs.close()
                installed = frozenset(p.nevra for p in result.installed)
                key = header_key(srpm)
                old_hit = key in seen_header_keys
                right = not old_hit or seen_header_keys[key] == installed
                seen_header_keys.setdefault(key, installed)
                if not first:
                    rows.append((f"{package.name}-{package.release}", counting.layers_made == 0, old_hit, right))
                first = False
                print(f"  built {package.name}-{package.release}: {counting.layers_made} layer(s) made",
                      file=sys.stderr, flush=True)
    finally:
        with PodmanManager() as manager:
            store.clean(manager, [env.name for env in store.list()])
            manager.remove_by_label({LABEL_WORKER: worker})
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'build':<16}{'now':>6}{'header key':>12}{'right':>8}")
    for name, now, old, right in rows:
        print(f"{name:<16}{'hit' if now else 'miss':>6}{'hit' if old else 'miss':>12}{'' if right else 'WRONG':>8}")
    count = len(rows)
    now_hits = sum(1 for r in rows if r[1])
    old_hits = sum(1 for r in rows if r[2])
    wrong = sum(1 for r in rows if not r[3])
    print(f"hit rate over {count} builds (the first, which makes the group layer, not counted): "
          f"now {now_hits}/{count} ({now_hits / count:.0%}), header key {old_hits}/{count} "
          f"({old_hits / count:.0%}), of which wrong buildroots {wrong}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
