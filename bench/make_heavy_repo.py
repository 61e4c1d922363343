"""Make a local yum repo of synthetic RPMs shaped like Fedora's `build` group.

For benchmarks of cached buildroots: `dnf install @build` from this repo pulls
in --packages packages whose installed payload totals about --installed-mb MiB,
with a few large packages (gcc, python3-libs, perl, glibc-devel) and many small
ones, like a real Fedora buildroot. Not a test.

    python bench/make_heavy_repo.py OUTDIR [--packages 150] [--installed-mb 300]
                                           [--extra-packages 0] [--extra-mb 0]
                                           [--seed 1] [--jobs 2]

Every package is named bench-<fedora name> (so nothing clashes with what the
dev image's rpm database provides, e.g. bash or gcc), has AutoReqProv off, and
owns only /usr/share/adjutant-bench/<package>/, filled with pseudo-random bytes.
Most packages are of the host's architecture, a few noarch. The comps groups
`build` and `srpm-build` list the top-level packages; these Require the rest
through a dependency DAG, so @build installs every package. Names, sizes,
dependencies and file contents are all determined by --seed.

--extra-packages adds packages that no group pulls in, bench-br-0001 and on,
with no dependencies, --extra-mb MiB installed in all: what packages
BuildRequires beyond the buildroot, so that a benchmark's packages can each
need a BuildRequires layer of their own (bench/farm.py). They do not change
the @build packages of the same seed.

Needs only the Python standard library plus rpmbuild and createrepo_c. The
packages are built with rpmbuild -bb in a temporary topdir (removed at exit),
uncompressed and without any brp scripts, so generation is fast.

OUTDIR gets a marker file; a rerun with the same options and a complete repo
does nothing, a rerun with other options regenerates it, and a non-empty
OUTDIR without the marker is refused. OUTDIR is made world-readable so that
another user's containers can mount it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

GENERATOR_VERSION = 1
MARKER = ".adjutant-heavy-repo.json"
PREFIX = "bench-"
PAYLOAD_ROOT = "/usr/share/adjutant-bench"
MIB = 1024 * 1024
#: The system's createrepo_c, as the worker runs it (repodata.CREATEREPO): a virtualenv may put
#: PyPI's newer one first on PATH, whose zstd default the tests' readers do not take.
CREATEREPO = "/usr/bin/createrepo_c"
MIN_PACKAGE_BYTES = 1024
FILE_BYTES = 128 * 1024      # typical file size: the file count of a package is size / FILE_BYTES ...
MAX_FILES = 400              # ... but never more than this
FILES_PER_DIR = 32
VERSION = "1.0"
RELEASE = "1.bench"
EPOCH = 1700000000           # fixed build time and mtimes, so a seed gives the same RPMs

# Fedora's `build` group, in its order: the top-level packages of @build.
BUILD_GROUP = (
    "bash", "bzip2", "coreutils", "cpio", "diffutils", "findutils", "gawk",
    "glibc-minimal-langpack", "grep", "gzip", "info", "patch", "redhat-rpm-config",
    "rpm-build", "sed", "tar", "unzip", "util-linux", "which", "xz",
)
# Fedora's `srpm-build` group.
SRPM_BUILD_GROUP = (
    "bash", "fedora-release", "fedpkg-minimal", "glibc-minimal-langpack", "gnupg2",
    "redhat-rpm-config", "rpm-build", "shadow-utils",
)
# Of --packages 150, this many are top-level in @build (at most all of BUILD_GROUP).
TOP_LEVEL_SHARE = len(BUILD_GROUP) / 150

# (Fedora name, rough installed size in MiB, noarch?). Sizes are only weights:
# they are jittered by the seed and scaled to --installed-mb. The order matters:
# the build group first, then the rest roughly by importance, so a smaller
# --packages keeps the big, central packages.
CATALOG: tuple[tuple[str, float, bool], ...] = (
    # the build group
    ("bash", 8.0, False), ("bzip2", 0.1, False), ("coreutils", 6.0, False),
    ("cpio", 1.1, False), ("diffutils", 1.6, False), ("findutils", 1.8, False),
    ("gawk", 1.7, False), ("glibc-minimal-langpack", 0.05, False), ("grep", 1.0, False),
    ("gzip", 0.4, False), ("info", 0.6, False), ("patch", 0.3, False),
    ("redhat-rpm-config", 0.2, True), ("rpm-build", 0.5, False), ("sed", 0.8, False),
    ("tar", 3.0, False), ("unzip", 0.4, False), ("util-linux", 11.0, False),
    ("which", 0.1, False), ("xz", 0.8, False),
    # the big ones
    ("gcc", 60.0, False), ("python3-libs", 40.0, False), ("glibc-devel", 25.0, False),
    ("perl", 18.0, False), ("binutils", 28.0, False), ("cpp", 25.0, False),
    ("gdb-minimal", 12.0, False), ("perl-libs", 10.0, False), ("coreutils-common", 11.0, False),
    ("file-libs", 9.0, False), ("gnupg2", 9.5, False), ("glibc-gconv-extra", 7.5, False),
    ("glibc", 6.5, False), ("openssl-libs", 6.5, False), ("kernel-headers", 6.5, False),
    ("isl", 4.7, False), ("rpm-sequoia", 4.4, False), ("gnutls", 3.2, False),
    ("shadow-utils", 3.8, False), ("elfutils", 3.0, False), ("libstdc++", 2.7, False),
    ("p11-kit", 2.5, False), ("ca-certificates", 2.3, True), ("krb5-libs", 2.2, False),
    ("cyrus-sasl-lib", 2.3, False), ("rpm", 2.6, False), ("make", 1.8, False),
    ("perl-Encode", 5.0, False), ("systemd-libs", 1.9, False), ("libxml2", 1.9, False),
    ("pam", 1.9, False), ("libunistring", 1.7, False), ("python-pip-wheel", 1.5, True),
    # the middle
    ("glibc-common", 1.2, False), ("util-linux-core", 1.4, False), ("sqlite-libs", 1.4, False),
    ("libgcrypt", 1.3, False), ("zstd", 1.2, False), ("elfutils-libelf", 1.1, False),
    ("annobin-plugin-gcc", 1.0, False), ("ncurses-libs", 1.0, False), ("elfutils-libs", 0.9, False),
    ("libarchive", 0.9, False), ("libgpg-error", 0.9, False), ("libevent", 0.9, False),
    ("mpfr", 0.8, False), ("gmp", 0.8, False), ("libzstd", 0.8, False), ("rpm-libs", 0.8, False),
    ("libsepol", 0.8, False), ("libcurl", 0.8, False), ("libbrotli", 0.8, False),
    ("nettle", 0.8, False), ("authselect-libs", 0.8, False), ("setup", 0.7, True),
    ("fedora-release", 0.01, True), ("fedpkg-minimal", 0.02, True),
    ("pcre2", 0.7, False), ("openldap", 0.7, False), ("zip", 0.7, False), ("lua-libs", 0.6, False),
    ("readline", 0.5, False), ("libssh", 0.5, False), ("p11-kit-trust", 0.4, False),
    ("libgomp", 0.4, False), ("curl", 0.4, False), ("libpwquality", 0.4, False),
    ("libksba", 0.4, False), ("libfdisk", 0.37, False), ("libmount", 0.36, False),
    ("audit-libs", 0.33, False), ("dwz", 0.3, False), ("libsemanage", 0.3, False),
    ("libidn2", 0.3, False), ("libgcc", 0.3, False), ("libxcrypt", 0.3, False),
    ("expat", 0.3, False), ("ncurses-base", 0.3, True), ("perl-interpreter", 0.3, False),
    ("perl-Storable", 0.25, False), ("cracklib", 0.25, False), ("pcre2-syntax", 0.23, True),
    ("libmpc", 0.2, False), ("debugedit", 0.2, False), ("rpm-build-libs", 0.2, False),
    ("libselinux", 0.19, False), ("libcap", 0.2, False), ("libtasn1", 0.2, False),
    ("libblkid", 0.2, False), ("libsmartcols", 0.2, False), ("zlib-ng-compat", 0.2, False),
    ("libtirpc", 0.2, False), ("mpdecimal", 0.2, False), ("xz-libs", 0.2, False),
    ("libnghttp2", 0.17, False), ("lz4-libs", 0.15, False), ("fedora-gpg-keys", 0.15, True),
    ("authselect", 0.15, False), ("libassuan", 0.15, False), ("popt", 0.13, False),
    ("pam-libs", 0.13, False), ("gdbm-libs", 0.13, False), ("python3", 0.05, False),
    ("filesystem", 0.1, False), ("file", 0.1, False), ("pkgconf", 0.1, False),
    ("elfutils-debuginfod-client", 0.1, False), ("annobin-docs", 0.1, True),
    ("perl-Scalar-List-Utils", 0.15, False), ("perl-PathTools", 0.18, False),
    ("perl-IO", 0.15, False), ("perl-POSIX", 0.2, False), ("perl-Data-Dumper", 0.12, False),
    ("perl-podlators", 0.3, True), ("perl-Pod-Simple", 0.55, True), ("perl-Getopt-Long", 0.14, True),
    ("perl-File-Temp", 0.16, True), ("perl-Carp", 0.05, True), ("perl-Exporter", 0.05, True),
    ("libffi", 0.07, False), ("libpsl", 0.08, False), ("json-c", 0.08, False),
    ("jansson", 0.08, False), ("bzip2-libs", 0.08, False), ("libcom_err", 0.07, False),
    ("ima-evm-utils", 0.07, False), ("libpkgconf", 0.07, False), ("libeconf", 0.06, False),
    ("libcap-ng", 0.06, False), ("libnsl2", 0.06, False), ("alternatives", 0.06, False),
    ("libutempter", 0.06, False), ("gcc-plugin-annobin", 0.06, False), ("npth", 0.05, False),
    ("keyutils-libs", 0.05, False), ("libuuid", 0.04, False), ("libacl", 0.04, False),
    ("libb2", 0.04, False), ("rpm-sign-libs", 0.04, False), ("libattr", 0.03, False),
    ("libverto", 0.03, False), ("xxhash-libs", 0.03, False), ("libxcrypt-devel", 0.03, False),
    ("fedora-release-common", 0.02, True),
    ("python-srpm-macros", 0.05, True),
    ("perl-srpm-macros", 0.01, True), ("go-srpm-macros", 0.06, True),
    ("rust-srpm-macros", 0.01, True), ("kernel-srpm-macros", 0.01, True),
    ("efi-srpm-macros", 0.04, True), ("forge-srpm-macros", 0.04, True),
    # the tail, used when --packages asks for more than the above
    ("perl-constant", 0.03, True), ("perl-parent", 0.01, True), ("perl-Pod-Usage", 0.09, True),
    ("perl-Text-Tabs+Wrap", 0.02, True), ("perl-Time-Local", 0.07, True),
    ("perl-base", 0.01, True), ("perl-if", 0.01, True), ("perl-Errno", 0.01, False),
    ("perl-MIME-Base64", 0.05, False), ("perl-Fcntl", 0.03, False), ("perl-mro", 0.04, False),
    ("perl-overloading", 0.01, True), ("perl-vars", 0.01, True), ("perl-threads", 0.1, False),
    ("perl-threads-shared", 0.08, False), ("perl-Term-ANSIColor", 0.1, True),
    ("perl-Term-Cap", 0.03, True), ("perl-Text-ParseWords", 0.01, True),
    ("perl-Socket", 0.12, False), ("perl-IPC-Open3", 0.03, True), ("perl-File-stat", 0.02, True),
    ("perl-Symbol", 0.01, True), ("perl-SelectSaver", 0.01, True), ("perl-DynaLoader", 0.03, False),
    ("perl-B", 0.5, False), ("perl-overload", 0.07, True), ("perl-File-Path", 0.06, True),
    ("perl-Pod-Escapes", 0.03, True), ("python3-rpm-macros", 0.02, True),
    ("python-rpm-macros", 0.03, True), ("pyproject-srpm-macros", 0.01, True),
    ("ansible-srpm-macros", 0.04, True), ("fonts-srpm-macros", 0.06, True),
    ("fpc-srpm-macros", 0.01, True), ("ghc-srpm-macros", 0.01, True),
    ("gnat-srpm-macros", 0.01, True), ("lua-srpm-macros", 0.01, True),
    ("ocaml-srpm-macros", 0.01, True), ("openblas-srpm-macros", 0.01, True),
    ("package-notes-srpm-macros", 0.01, True), ("qt5-srpm-macros", 0.01, True),
    ("qt6-srpm-macros", 0.01, True), ("zig-srpm-macros", 0.01, True),
    ("build-reproducibility-srpm-macros", 0.01, True), ("emacs-filesystem", 0.01, True),
    ("fedora-release-identity-basic", 0.01, True), ("fedora-repos", 0.01, True),
    ("basesystem", 0.01, True), ("publicsuffix-list-dafsa", 0.07, True),
    ("libssh-config", 0.01, True), ("crypto-policies", 0.08, True),
    ("elfutils-default-yama-scope", 0.01, True), ("pkgconf-m4", 0.02, True),
    ("pkgconf-pkg-config", 0.01, False),
)


@dataclass(frozen=True)
class Package:
    name: str                         # with the bench- prefix
    size: int                         # payload bytes (= installed size)
    arch: str                         # host architecture or noarch
    requires: tuple[str, ...] = ()    # package names, all in the plan


@dataclass
class Plan:
    packages: list[Package]
    build_group: list[str]
    srpm_group: list[str]
    seed: int
    target_bytes: int = 0
    #: packages outside every group, for BuildRequires (--extra-packages)
    extras: list[Package] = field(default_factory=list)
    by_name: dict[str, Package] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in [*self.packages, *self.extras]}

    @property
    def total_bytes(self) -> int:
        return sum(p.size for p in self.packages)


# -- the pure parts ------------------------------------------------------------

def host_arch() -> str:
    """The rpm architecture of this host (rpm names x86_64, aarch64, ... as the kernel does)."""
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def select_names(count: int) -> tuple[list[tuple[str, float, bool]], int]:
    """The first `count` catalog entries (plus invented ones past its end) and how many are top-level."""
    if count < 1:
        raise ValueError("need at least one package")
    entries = list(CATALOG[:count])
    for extra in range(count - len(entries)):
        entries.append((f"extra-lib{extra + 1:04d}", 0.3, False))
    top = max(1, min(len(BUILD_GROUP), round(count * TOP_LEVEL_SHARE)))
    # The top-level packages are the first `top` names of BUILD_GROUP, which
    # are the first entries of CATALOG; the rest of BUILD_GROUP, if selected,
    # become ordinary (required) packages.
    return entries, top


def scale_sizes(weights: list[float], target: int, minimum: int = MIN_PACKAGE_BYTES) -> list[int]:
    """Integer sizes proportional to `weights`, each at least `minimum`, summing to exactly `target`.

    Where a share would fall below `minimum` it is raised to it and the others
    are scaled down to make up; if even the minimums exceed `target`, every
    size is `minimum` (the sum then overshoots, unavoidably).
    """
    if not weights:
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    n = len(weights)
    if minimum * n >= target:
        return [minimum] * n
    floored: set[int] = set()
    while True:
        free = [i for i in range(n) if i not in floored]
        budget = target - minimum * len(floored)
        total = sum(weights[i] for i in free)
        shares = {i: (budget * weights[i] / total if total > 0 else budget / len(free)) for i in free}
        low = {i for i, s in shares.items() if s < minimum}
        if not low:
            break
        floored |= low
    sizes = [minimum] * n
    for i, share in shares.items():
        sizes[i] = int(share)
    # Largest remainder: hand out what rounding down lost.
    left = target - sum(sizes)
    for i in sorted(shares, key=lambda i: shares[i] - int(shares[i]), reverse=True)[:left]:
        sizes[i] += 1
    return sizes


def make_dag(count: int, top: int, rng: random.Random) -> list[list[int]]:
    """Requires of each node, as indices. Edges only go from a lower to a higher
    index (so the graph is acyclic), and every node at or past `top` is required
    by at least one node before it (so all are reachable from the first `top`)."""
    requires: list[set[int]] = [set() for _ in range(count)]
    for node in range(top, count):
        # A parent among the earlier nodes, leaning towards recent ones so that
        # chains get a few levels deep, as in a real buildroot.
        low = 0 if rng.random() < 0.4 else max(0, node - 12)
        requires[rng.randrange(low, node)].add(node)
    for node in range(count):
        later = count - node - 1
        extra = min(later, rng.choice((0, 0, 1, 1, 2, 3)))
        requires[node].update(rng.sample(range(node + 1, count), extra))
    return [sorted(r) for r in requires]


def make_extras(count: int, installed_mb: float, seed: int, arch: str) -> list[Package]:
    """Packages no group pulls in, of skewed sizes totalling ``installed_mb``; from a random
    stream of their own, so that adding them leaves the rest of the plan as it was."""
    rng = random.Random(f"adjutant-heavy-repo:{seed}:extras")
    sizes = scale_sizes([rng.lognormvariate(0, 0.6) for _ in range(count)], int(round(installed_mb * MIB)))
    return [Package(name=f"{PREFIX}br-{index + 1:04d}", size=size, arch=arch) for index, size in enumerate(sizes)]


def make_plan(packages: int = 150, installed_mb: float = 300, seed: int = 1, arch: str | None = None,
              extra_packages: int = 0, extra_mb: float = 0) -> Plan:
    arch = arch or host_arch()
    rng = random.Random(f"adjutant-heavy-repo:{seed}")
    entries, top = select_names(packages)
    weights = [weight * rng.uniform(0.8, 1.25) for _, weight, _ in entries]
    target = int(round(installed_mb * MIB))
    sizes = scale_sizes(weights, target)
    dag = make_dag(len(entries), top, rng)
    names = [PREFIX + name for name, _, _ in entries]
    result = [Package(name=names[i], size=sizes[i], arch="noarch" if entries[i][2] else arch,
                      requires=tuple(names[j] for j in dag[i]))
              for i in range(len(entries))]
    build_group = names[:top]
    srpm_group = [PREFIX + n for n in SRPM_BUILD_GROUP if PREFIX + n in names] or names[:1]
    return Plan(result, build_group, srpm_group, seed, target, make_extras(extra_packages, extra_mb, seed, arch))


def file_sizes(size: int, rng: random.Random) -> list[int]:
    """Split a package payload into files of skewed sizes summing to `size`."""
    count = max(1, min(MAX_FILES, size // FILE_BYTES))
    return scale_sizes([rng.lognormvariate(0, 1.2) for _ in range(count)], size, minimum=1)


def payload_rng(seed: int, name: str) -> random.Random:
    return random.Random(f"adjutant-heavy-repo:{seed}:{name}")


def spec_text(package: Package, staging: Path) -> str:
    lines = [
        "%global debug_package %{nil}",
        "%define __os_install_post %{nil}",
        "%define __arch_install_post %{nil}",
        "%define _build_id_links none",
        f"Name:           {package.name}",
        f"Version:        {VERSION}",
        f"Release:        {RELEASE}",
        f"Summary:        Synthetic stand-in for {package.name[len(PREFIX):]} (koji-adjutant benchmark)",
        "License:        MIT",
        f"BuildArch:      {package.arch}",
        "AutoReqProv:    no",
    ]
    lines += [f"Requires:       {r}" for r in package.requires]
    lines += [
        "",
        "%description",
        f"{package.size} bytes of pseudo-random data under {PAYLOAD_ROOT}/{package.name},",
        "made by bench/make_heavy_repo.py of koji-adjutant for benchmarks of cached buildroots.",
        "",
        "%install",
        f"mkdir -p %{{buildroot}}{PAYLOAD_ROOT}",
        f"mv '{staging}' %{{buildroot}}{PAYLOAD_ROOT}/{package.name}",
        f"touch -d @{EPOCH} %{{buildroot}}{PAYLOAD_ROOT}",
        "",
        "%files",
        f"%dir {PAYLOAD_ROOT}",
        f"{PAYLOAD_ROOT}/{package.name}",
        "",
    ]
    return "\n".join(lines)


def comps_xml(plan: Plan) -> str:
    def group(gid: str, description: str, members: list[str]) -> list[str]:
        return [
            "  <group>",
            f"    <id>{gid}</id>",
            f"    <name>{gid}</name>",
            f"    <description>{escape(description)}</description>",
            "    <default>false</default>",
            "    <uservisible>false</uservisible>",
            "    <packagelist>",
            *(f'      <packagereq type="mandatory">{escape(m)}</packagereq>' for m in members),
            "    </packagelist>",
            "  </group>",
        ]
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">',
        "<comps>",
        *group("build", "Synthetic buildroot (koji-adjutant benchmark)", plan.build_group),
        *group("srpm-build", "Synthetic SRPM buildroot (koji-adjutant benchmark)", plan.srpm_group),
        "</comps>",
        "",
    ])


def rpm_filename(package: Package) -> str:
    return f"{package.name}-{VERSION}-{RELEASE}.{package.arch}.rpm"


# -- building ------------------------------------------------------------------

def write_payload(package: Package, seed: int, staging: Path) -> None:
    rng = payload_rng(seed, package.name)
    for index, size in enumerate(file_sizes(package.size, rng)):
        directory = staging / f"d{index // FILES_PER_DIR:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"f{index:04d}.bin"
        path.write_bytes(rng.randbytes(size))
        os.utime(path, (EPOCH, EPOCH))
    for directory in [*staging.iterdir(), staging]:
        os.utime(directory, (EPOCH, EPOCH))


def build_package(package: Package, seed: int, topdir: Path, outdir: Path) -> str:
    """Build one package into outdir (runs in a worker process)."""
    work = topdir / package.name
    staging = work / "payload"
    (work / "build").mkdir(parents=True)
    write_payload(package, seed, staging)
    spec = work / f"{package.name}.spec"
    spec.write_text(spec_text(package, staging))
    defines = {
        "_topdir": str(work),
        "_builddir": str(work / "build"),
        "_buildrootdir": str(work / "buildroot"),
        "_tmppath": str(work),
        "_rpmdir": str(outdir),
        "_build_name_fmt": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        "_binary_payload": "w0.ufdio",
        "_buildhost": "adjutant-bench",
        "use_source_date_epoch_as_buildtime": "1",
    }
    command = ["rpmbuild", "-bb", "--quiet", "--nodeps"]
    for key, value in defines.items():
        command += ["--define", f"{key} {value}"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "LC_ALL": "C"}
    done = subprocess.run(command + [str(spec)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rpmbuild of {package.name} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-4000:]}")
    shutil.rmtree(work, ignore_errors=True)
    return rpm_filename(package)


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group; let the parent decide.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def build_all(plan: Plan, topdir: Path, outdir: Path, jobs: int) -> None:
    # Biggest first, so a large package does not end the run alone.
    ordered = sorted([*plan.packages, *plan.extras], key=lambda p: p.size, reverse=True)
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
    try:
        futures = [pool.submit(build_package, p, plan.seed, topdir, outdir) for p in ordered]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                raise future.exception()
    finally:
        # On a failure or Ctrl-C, drop what has not started; wait for the rest.
        pool.shutdown(wait=True, cancel_futures=True)


# -- OUTDIR handling -------------------------------------------------------------

def _options(plan: Plan, installed_mb: float) -> dict:
    return {"generator": GENERATOR_VERSION, "packages": len(plan.packages), "installed_mb": installed_mb,
            "extra_packages": len(plan.extras), "extra_mb": sum(p.size for p in plan.extras) / MIB,
            "seed": plan.seed, "arch": sorted({p.arch for p in plan.packages} - {"noarch"})}


def prepare_outdir(outdir: Path, options: dict) -> dict | None:
    """Make OUTDIR ready for a fresh generation. Returns the marker's summary
    if OUTDIR already holds a complete repo made with the same options."""
    marker = outdir / MARKER
    if outdir.exists() and not outdir.is_dir():
        raise SystemExit(f"make_heavy_repo: {outdir} exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    if marker.exists():
        try:
            state = json.loads(marker.read_text())
        except ValueError:
            state = {}
        if (state.get("complete") and state.get("options") == options
                and (outdir / "repodata" / "repomd.xml").exists()):
            return state.get("summary", {})
        # Ours, but stale or incomplete: clear what we make, nothing else.
        for path in outdir.iterdir():
            if path.name == "repodata" or path.name == ".repodata":
                shutil.rmtree(path)
            elif path.name == "comps.xml" or (path.name.startswith(PREFIX) and path.name.endswith(".rpm")):
                path.unlink()
    elif any(outdir.iterdir()):
        raise SystemExit(f"make_heavy_repo: {outdir} is not empty and has no {MARKER}; "
                         "refusing to write into it (pick an empty or new directory)")
    marker.write_text(json.dumps({"complete": False, "options": options}, indent=2) + "\n")
    return None


def installed_bytes(outdir: Path, plan: Plan) -> int:
    """The installed size the RPM headers declare (falls back to the plan)."""
    rpms = [str(outdir / rpm_filename(p)) for p in plan.packages]
    done = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{SIZE}\n", *rpms],
                          capture_output=True, text=True, check=False)
    values = [int(v) for v in done.stdout.split() if v.isdigit()]
    return sum(values) if done.returncode == 0 and len(values) == len(rpms) else plan.total_bytes


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def make_readable(outdir: Path) -> None:
    for directory, dirs, files in os.walk(outdir):
        os.chmod(directory, os.stat(directory).st_mode | 0o555)
        for name in files:
            path = os.path.join(directory, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)


def print_summary(summary: dict, note: str = "") -> None:
    extras = (f"  extra: {summary['extra_packages']} packages, {summary['extra_mb']:.1f} MiB"
              if summary.get("extra_packages") else "")
    print(f"packages: {summary['packages']}  installed: {summary['installed_mb']:.1f} MiB{extras}  "
          f"repo: {summary['repo_mb']:.1f} MiB  took: {summary['seconds']:.1f} s{note}")


def generate(outdir: Path, packages: int, installed_mb: float, seed: int, jobs: int,
             extra_packages: int = 0, extra_mb: float = 0) -> dict:
    started = time.monotonic()
    for tool in ("rpmbuild", CREATEREPO):
        if shutil.which(tool) is None:
            raise SystemExit(f"make_heavy_repo: {tool} is not installed")
    plan = make_plan(packages, installed_mb, seed, extra_packages=extra_packages, extra_mb=extra_mb)
    outdir = outdir.resolve()
    options = _options(plan, installed_mb)
    previous = prepare_outdir(outdir, options)
    if previous is not None:
        print(f"{outdir}: up to date")
        print_summary(previous, " (when made)")
        return previous
    os.chmod(outdir, 0o755)
    topdir = Path(tempfile.mkdtemp(prefix="adjutant-heavy-repo-"))
    try:
        build_all(plan, topdir, outdir, jobs)
    finally:
        shutil.rmtree(topdir, ignore_errors=True)
    (outdir / "comps.xml").write_text(comps_xml(plan))
    subprocess.run([CREATEREPO, "-q", "--workers", str(jobs), "-g", "comps.xml", str(outdir)], check=True)
    make_readable(outdir)
    summary = {
        "packages": len(plan.packages),
        "installed_mb": installed_bytes(outdir, plan) / MIB,
        "extra_packages": len(plan.extras),
        "extra_mb": sum(p.size for p in plan.extras) / MIB,
        "repo_mb": tree_bytes(outdir) / MIB,
        "seconds": time.monotonic() - started,
    }
    (outdir / MARKER).write_text(json.dumps({"complete": True, "options": options, "summary": summary},
                                            indent=2) + "\n")
    os.chmod(outdir / MARKER, 0o644)
    print_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--packages", type=int, default=150, help="number of packages (default 150)")
    parser.add_argument("--installed-mb", type=float, default=300,
                        help="total installed size in MiB (default 300)")
    parser.add_argument("--extra-packages", type=int, default=0,
                        help="packages outside every group, for BuildRequires (default 0)")
    parser.add_argument("--extra-mb", type=float, default=0, help="their installed MiB in all (default 0)")
    parser.add_argument("--seed", type=int, default=1, help="makes names, sizes, deps and contents (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel rpmbuilds (default 2)")
    args = parser.parse_args(argv)
    if args.packages < 1 or args.installed_mb <= 0 or args.jobs < 1:
        parser.error("--packages, --installed-mb and --jobs must be positive")
    if args.extra_packages < 0 or (args.extra_packages and args.extra_mb <= 0):
        parser.error("--extra-packages must not be negative, and extra packages need a positive --extra-mb")
    os.umask(0o022)
    # SIGTERM unwinds like Ctrl-C, so the temporary topdir is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        generate(args.outdir, args.packages, args.installed_mb, args.seed, args.jobs, args.extra_packages,
                 args.extra_mb)
    except RuntimeError as error:
        print(f"make_heavy_repo: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
