"""What a cached buildroot saves: cold vs warm build-local, per sample and on a heavy buildroot. Not a test.

For each sample of examples/ (against the sample repo) and for "heavy", a tiny
package whose buildroot is the synthetic heavy repo of make_heavy_repo.py
(@build pulls --heavy-packages packages, --heavy-mb MiB installed), it prints
one table row:

  bare        rpmbuild -bb alone in a container already provisioned with
              plain dnf (the floor any builder pays; the method of
              build_local_overhead.py);
  cold        one build-local --cache with an empty environment store:
              dependency phase, commit, record, build phase;
  warm        the same build again: the SRPM's resolution is remembered,
              build phase only;
  warm-bare   what build-local still costs over bare rpmbuild;
  new rel.    a new release of the package (another SRPM, the same
              BuildRequires) on the warm cache: one evaluation of its
              BuildRequires, every layer reused, then the build phase;
  cold/warm   the speed-up of a hit;
  setup cut   (cold dependency phase - warm dependency phase) / cold
              dependency phase, from the runner's per-phase times.

and below it the throughput of warm hello-c builds: one worker process
building one after another, then two worker processes at once, each for the
same wall time (--throughput-seconds); builds per minute and their ratio,
with the CPU seconds the whole machine spent per build and how busy it was
(from /proc/stat), which bound that ratio (docs/performance.md).

"build-local" here is what ``koji-adjutant build-local SRPM --cache`` does
(cli.cmd_build_local), done through the Python API because the CLI has no
option for another environment store: a PodmanManager of its own, an
EnvironmentStore in this run's temporary directory, BuildrootRunner +
BuildrootCache, ensure_image, build. It starts from an SRPM made once
beforehand (Koji builds from SRPMs), so the time of making one is not
counted; nor is the interpreter's start-up and import (see --breakdown).
Every number is the median of --repeat runs. Every container, image and
temporary file is removed at the end, also on Ctrl-C. Run as the build user:

    scripts/as-builder.sh python bench/cache_benchmark.py [--repeat 3]   # as root

--shared-service connects every build to one podman service started for the
run (as the daemon's tasks share the daemon's), instead of each build-local
finding the user's socket or starting a private service. --breakdown prints,
instead of the table, where the time of one cold and one warm build of
hello-c goes (podman calls, key, store), and the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bare import bare_rpmbuild  # sibling modules of this script
from workers import machine_busy_seconds, worker_processes

from koji_adjutant.buildroot import cachekey
from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.container.service import PodmanService
from koji_adjutant.defaults import DEV_IMAGE
from koji_adjutant.envstore import EnvironmentStore

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ("hello-noarch", "hello-c", "dynamic-br")
ARCH = platform.machine()
THROUGHPUT_SAMPLE = "hello-c"
#: The podman API socket every build connects to; None: each PodmanManager finds or starts its own
#: service, as build-local does (--shared-service sets it).
SOCKET: str | None = None


def podman() -> PodmanManager:
    return PodmanManager(socket=SOCKET)


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- what is built ---------------------------------------------------------------

@dataclass
class Target:
    name: str
    spec: Path        # the spec, with its sources beside it
    repo: Path
    srpm: Path | None = None
    #: new releases of the package, one per warm run (an SRPM is new only once)
    releases: list[Path] = field(default_factory=list)

    @property
    def dynamic(self) -> bool:
        return "%generate_buildrequires" in self.spec.read_text()


def heavy_spec(directory: Path, buildrequires: str) -> Path:
    """A tiny noarch package: its cost is all in the buildroot it needs."""
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    spec = directory / "heavy-hello.spec"
    spec.write_text(f"""\
Name:           heavy-hello
Version:        1.0
Release:        1
Summary:        Tiny package built in the heavy synthetic buildroot (koji-adjutant benchmark)
License:        MIT
BuildArch:      noarch
AutoReqProv:    no
BuildRequires:  {buildrequires}

%description
Checks that its BuildRequires came from the heavy repo, and writes one file.

%prep

%build
test -d /usr/share/adjutant-bench/{buildrequires}
echo "built in the heavy buildroot" > heavy-hello.txt

%install
install -D -m 0644 heavy-hello.txt %{{buildroot}}%{{_datadir}}/heavy-hello/heavy-hello.txt

%files
%{{_datadir}}/heavy-hello/
""")
    spec.chmod(0o644)
    return spec


def make_heavy_repo(outdir: Path, packages: int, installed_mb: float) -> tuple[str, str]:
    """The heavy repo (make_heavy_repo.py), and the package the heavy spec BuildRequires."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import make_heavy_repo as heavy  # noqa: E402 - a sibling script, not a package

    plan = heavy.make_plan(packages, installed_mb)
    names = [p.name for p in plan.packages]
    buildrequires = "bench-gcc" if "bench-gcc" in names else names[-1]
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "make_heavy_repo.py"), str(outdir),
                           "--packages", str(packages), "--installed-mb", str(installed_mb),
                           "--jobs", str(len(os.sched_getaffinity(0)))],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench: make_heavy_repo.py failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1], buildrequires


def new_release(target: Target, workdir: Path, release: int) -> Path:
    """A copy of the target's spec and sources with another Release: a new SRPM, the same BuildRequires."""
    directory = workdir / f"{target.name}-release-{release}"
    shutil.copytree(target.spec.parent, directory)
    spec = directory / target.spec.name
    text, count = re.subn(r"^(Release:\s+)1$", rf"\g<1>{release}", spec.read_text(), flags=re.MULTILINE)
    if count != 1:
        sys.exit(f"bench: {target.spec} has no 'Release: 1' line to bump")
    spec.write_text(text)
    return spec


# -- one build-local -------------------------------------------------------------------

@dataclass
class Run:
    seconds: float
    phases: dict[str, float]


def buildroot_spec(manager, repo: Path, tag: str) -> BuildrootSpec:
    image = manager.ensure_image(DEV_IMAGE)
    return BuildrootSpec(image=image.ref, image_digest=image.digest, arch=ARCH,
                         repos=(RepoSource(repo_id="local", location=str(repo)),),
                         group=InstallGroup.BUILD, macros=kojid_macros(ARCH), timeouts=Timeouts(), tag=tag)


def build_local(store_path: Path, srpm: Path, repo: Path, resultdir: Path, tag: str, worker: str,
                wrap=None) -> Run:
    """One ``build-local SRPM --cache``, as cli.cmd_build_local does it, with a private store."""
    started = time.monotonic()
    with podman() as manager:
        used = wrap(manager) if wrap else manager
        cache = BuildrootCache(EnvironmentStore(store_path), used)
        runner = BuildrootRunner(used, {LABEL_WORKER: worker}, cache=cache)
        spec = buildroot_spec(used, repo, tag)
        logs = BuildLogs(resultdir)
        try:
            result = runner.build(spec, srpm, resultdir, logs)
        finally:
            logs.close()
    seconds = time.monotonic() - started
    shutil.rmtree(resultdir, ignore_errors=True)
    return Run(seconds, dict(result.phase_seconds))


# -- bare rpmbuild -------------------------------------------------------------------------

# -- the run's resources, removed at the end -----------------------------------------------------

@dataclass
class Bench:
    workdir: Path
    tag: str                  # in every environment name: adjutant-<tag>-<arch>-<hash12>
    worker: str               # the worker label of every container
    stores: list[Path] = field(default_factory=list)

    def new_store(self, label: str) -> Path:
        path = self.workdir / "stores" / f"{label}-{len(self.stores)}" / "environments.sqlite"
        self.stores.append(path)
        return path

    def clean_store(self, manager, path: Path) -> None:
        if path.exists():
            store = EnvironmentStore(path)
            store.clean(manager, [env.name for env in store.list()])

    def clean_everything(self) -> None:
        """Every environment of every store of the run, then anything else with the run's tag or label."""
        with podman() as manager:
            for path in self.stores:
                try:
                    self.clean_store(manager, path)
                except Exception as exc:  # keep cleaning
                    progress(f"cleaning {path}: {exc}")
            manager.remove_by_label({LABEL_WORKER: self.worker})
            listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}",
                                     "--filter", f"reference=localhost/adjutant-{self.tag}-*"],
                                    capture_output=True, text=True, check=False).stdout.split()
            for ref in listed:
                manager.remove_image(ref)


# -- per target ------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    bare: float
    cold: float
    warm: float
    cold_deps: float
    warm_deps: float
    new_release: float


def measure(bench: Bench, target: Target, repeat: int) -> Row:
    with podman() as manager:
        progress(f"{target.name}: bare rpmbuild (provisioning a container with dnf)")
        bare = bare_rpmbuild(manager, target.spec, target.repo, repeat,
                             {LABEL_WORKER: bench.worker, LABEL_PURPOSE: "bench-bare"})
    colds: list[Run] = []
    store = None
    for index in range(repeat):
        with podman() as manager:
            if store is not None:
                bench.clean_store(manager, store)  # the next cold build starts from an empty store again
        store = bench.new_store(f"{target.name}-cold")
        progress(f"{target.name}: cold build-local {index + 1}/{repeat}")
        colds.append(build_local(store, target.srpm, target.repo, bench.workdir / "results", bench.tag,
                                 bench.worker))
    warms: list[Run] = []
    for index in range(repeat):
        progress(f"{target.name}: warm build-local {index + 1}/{repeat}")
        warms.append(build_local(store, target.srpm, target.repo, bench.workdir / "results", bench.tag,
                                 bench.worker))
    releases: list[Run] = []
    for index, srpm in enumerate(target.releases[:repeat]):
        progress(f"{target.name}: new release on the warm cache {index + 1}/{repeat}")
        releases.append(build_local(store, srpm, target.repo, bench.workdir / "results", bench.tag, bench.worker))
    with podman() as manager:
        bench.clean_store(manager, store)
    return Row(target.name, bare, statistics.median(r.seconds for r in colds),
               statistics.median(r.seconds for r in warms),
               statistics.median(r.phases["dependencies"] for r in colds),
               statistics.median(r.phases["dependencies"] for r in warms),
               statistics.median(r.seconds for r in releases))


# -- throughput --------------------------------------------------------------------------------

def _raise_interrupt(*_args) -> None:
    raise KeyboardInterrupt


def _throughput_worker(index: int, start_at: float, deadline: float, store_path: str, srpm: str, repo: str,
                       workdir: str, tag: str, worker: str, socket: str | None, stop, results) -> None:
    """In its own process: build-local, one after another, from start_at until deadline
    or until the parent sets ``stop`` (it does on Ctrl-C: the build under way finishes
    and cleans up; SIGTERM is only the last resort)."""
    global SOCKET
    SOCKET = socket
    signal.signal(signal.SIGINT, signal.SIG_IGN)         # the parent decides
    signal.signal(signal.SIGTERM, _raise_interrupt)      # unwind: containers and podman service removed
    try:
        stop.wait(max(0.0, start_at - time.monotonic()))
        spans = []
        count = 0
        while time.monotonic() < deadline and not stop.is_set():
            began = time.monotonic()
            build_local(Path(store_path), Path(srpm), Path(repo), Path(workdir) / f"tp-{index}-{count}", tag, worker)
            spans.append((began, time.monotonic()))
            count += 1
        results.put(("ok", index, spans))
    except KeyboardInterrupt:
        results.put(("interrupted", index, []))
    except BaseException:  # noqa: BLE001 - reported to the parent
        results.put(("error", index, traceback.format_exc()))


@dataclass
class Throughput:
    per_minute: float
    builds: int
    cpu_per_build: float  # CPU seconds of the whole machine per build (workers, podman, kernel)
    busy: float           # the share of all cores that was busy

    def describe(self) -> str:
        return (f"{self.per_minute:.1f} builds/min ({self.builds} builds, {self.cpu_per_build:.2f} CPU-s each, "
                f"machine {self.busy:.0%} busy)")


def throughput(bench: Bench, target: Target, workers: int, seconds: float) -> Throughput:
    """Builds per minute of ``workers`` processes building for ``seconds`` of wall time, and what
    they cost the machine: the inputs of the ratio's bound in docs/performance.md."""
    store = bench.stores[-1]
    start_at = time.monotonic() + 5  # time for the spawned interpreters to start
    deadline = start_at + seconds
    arguments = [(i, start_at, deadline, str(store), str(target.srpm), str(target.repo), str(bench.workdir),
                  bench.tag, bench.worker, SOCKET) for i in range(workers)]
    with worker_processes(_throughput_worker, arguments) as results:
        time.sleep(max(0.0, start_at - time.monotonic()))
        busy_before = machine_busy_seconds()
        outcomes = [results.get(timeout=seconds + 600) for _ in range(workers)]
        busy, busy_window = machine_busy_seconds() - busy_before, time.monotonic() - start_at
    spans = []
    for status, index, value in outcomes:
        if status != "ok":
            raise RuntimeError(f"throughput worker {index}: {status}\n{value if status == 'error' else ''}")
        spans += value
    if not spans:
        raise RuntimeError("no build finished in the throughput window")
    elapsed = max(end for _, end in spans) - start_at
    return Throughput(len(spans) / elapsed * 60, len(spans), busy / len(spans),
                      busy / busy_window / len(os.sched_getaffinity(0)))


# -- breakdown ---------------------------------------------------------------------------------

class TimingManager:
    """Forwards to a real manager and adds up the time of each method."""

    def __init__(self, inner, totals: dict[str, list[float]]):
        self._inner = inner
        self._totals = totals

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def timed(*args, **kwargs):
            started = time.monotonic()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._totals[name].append(time.monotonic() - started)
        return timed


def breakdown(bench: Bench, target: Target) -> None:
    python = Path(sys.executable).name

    def best_of(argv: list[str], runs: int = 5) -> float:
        times = []
        for _ in range(runs):
            started = time.monotonic()
            subprocess.run(argv, check=True, capture_output=True)
            times.append(time.monotonic() - started)
        return min(times)

    bare_python = best_of([sys.executable, "-c", "pass"])
    cli_import = best_of([sys.executable, "-c", "import koji_adjutant.cli"])
    cli_help = best_of([shutil.which("koji-adjutant") or "koji-adjutant", "--help"])
    started = time.monotonic()
    podman().close()
    connect = time.monotonic() - started
    with podman() as manager:
        spec = buildroot_spec(manager, target.repo, bench.tag)
        started = time.monotonic()
        cachekey.key_of(cachekey.group_inputs(spec))
        key_seconds = time.monotonic() - started
    store = bench.new_store("breakdown")
    rows = []
    for label in ("cold", "warm"):
        totals: dict[str, list[float]] = defaultdict(list)
        run = build_local(store, target.srpm, target.repo, bench.workdir / "results", bench.tag, bench.worker,
                          wrap=lambda manager, totals=totals: TimingManager(manager, totals))
        rows.append((label, run, totals))
    print(f"where the time of build-local {target.name} goes (one cold and one warm build, seconds)")
    print(f"  {python} -c pass: {bare_python:.2f}; {python} -c 'import koji_adjutant.cli': {cli_import:.2f}; "
          f"koji-adjutant --help: {cli_help:.2f}")
    how = "connects to the run's shared service" if SOCKET else "the user's socket, or a private service it starts"
    print(f"  PodmanManager() + close ({how}): {connect:.2f}")
    print(f"  group layer key (repo package sets): {key_seconds:.3f}")
    methods = sorted({name for _, _, totals in rows for name in totals},
                     key=lambda name: -max(sum(t.get(name, [])) for _, _, t in rows))
    print(f"  {'':<20}" + "".join(f"{label:>16}" for label, _, _ in rows))
    print(f"  {'total':<20}" + "".join(f"{run.seconds:>16.2f}" for _, run, _ in rows))
    for phase in ("dependencies", "build"):
        print(f"  {'phase ' + phase:<20}" + "".join(f"{run.phases[phase]:>16.2f}" for _, run, _ in rows))
    for name in methods:
        cells = "".join(f"{sum(t.get(name, [])):>10.2f} ({len(t.get(name, [])):>2}x)" for _, _, t in rows)
        print(f"  {'podman ' + name:<20}{cells}")


# -- main ----------------------------------------------------------------------------------------

def print_table(rows: list[Row], single: Throughput, double: Throughput, seconds: float) -> None:
    header = ("package", "bare rpmbuild", "cold", "warm", "warm-bare", "new rel.", "new rel.-bare", "cold/warm",
              "setup cut")
    units = ("", "(s)", "build-local (s)", "build-local (s)", "(s)", "build-local (s)", "(s)", "", "(%)")
    lines = [header, units]
    for row in rows:
        cut = (row.cold_deps - row.warm_deps) / row.cold_deps * 100 if row.cold_deps else float("nan")
        lines.append((row.name, f"{row.bare:.2f}", f"{row.cold:.2f}", f"{row.warm:.2f}",
                      f"{row.warm - row.bare:+.2f}", f"{row.new_release:.2f}", f"{row.new_release - row.bare:+.2f}",
                      f"{row.cold / row.warm:.1f}x", f"{cut:.1f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for number, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]
        print("  ".join(cells).rstrip())
        if number == 1:
            print("  ".join("-" * width for width in widths))
    print(f"throughput, warm {THROUGHPUT_SAMPLE}, {seconds:g} s of wall time each: "
          f"1 sequential {single.describe()}, 2 parallel {double.describe()}, "
          f"ratio {double.per_minute / single.per_minute:.2f}x")


def main() -> int:
    global SOCKET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--samples", default=",".join(SAMPLES), help="samples of examples/ (default all three)")
    parser.add_argument("--heavy-packages", type=int, default=150, help="packages of the heavy repo (default 150)")
    parser.add_argument("--heavy-mb", type=float, default=300, help="its installed MiB (default 300)")
    parser.add_argument("--heavy-repo", type=Path, metavar="DIR",
                        help="make (or reuse) the heavy repo here and keep it (default: a temporary one)")
    parser.add_argument("--no-heavy", action="store_true", help="leave the heavy package out")
    parser.add_argument("--throughput-seconds", type=float, default=60,
                        help="wall time of each throughput run (default 60)")
    parser.add_argument("--shared-service", action="store_true",
                        help="start one podman service for the run and connect every build to it, as the "
                             "daemon's tasks do (default: each build-local finds or starts its own)")
    parser.add_argument("--breakdown", action="store_true",
                        help="print where the time of a cold and a warm hello-c build goes, instead of the table")
    args = parser.parse_args()
    if args.repeat < 1 or args.throughput_seconds <= 0:
        parser.error("--repeat and --throughput-seconds must be positive")
    if os.geteuid() == 0:
        parser.error("run as the unprivileged build user: scripts/as-builder.sh python bench/cache_benchmark.py")

    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    load_before = os.getloadavg()[0]
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _raise_interrupt)  # unwind into the cleanup, as on Ctrl-C
    os.umask(0o022)
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="adjutant-cache-bench-"))
    workdir.chmod(0o755)
    bench = Bench(workdir, tag=f"bench-{run_id}", worker=f"bench-{run_id}")
    service = None
    try:
        if args.shared_service:
            service = PodmanService(None)
            SOCKET = service.uri
        sample_repo = workdir / "sample-repo"
        subprocess.run([str(REPO_ROOT / "examples" / "make-repo.sh"), str(sample_repo)], check=True,
                       capture_output=True)
        samples = [s for s in args.samples.split(",") if s]
        if args.breakdown:
            samples = [THROUGHPUT_SAMPLE]
        targets = [Target(s, REPO_ROOT / "examples" / s / f"{s}.spec", sample_repo) for s in samples]
        heavy_note = ""
        if not args.no_heavy and not args.breakdown:
            heavy_repo = (args.heavy_repo.resolve() if args.heavy_repo else workdir / "heavy-repo")
            progress(f"making the heavy repo in {heavy_repo} ({args.heavy_packages} packages, {args.heavy_mb:g} MiB)")
            summary, buildrequires = make_heavy_repo(heavy_repo, args.heavy_packages, args.heavy_mb)
            heavy_note = f"heavy repo: {summary}"
            targets.append(Target("heavy", heavy_spec(workdir / "heavy-src", buildrequires), heavy_repo))
        with podman() as manager:
            runner = BuildrootRunner(manager, {LABEL_WORKER: bench.worker})
            for target in targets:
                logs = BuildLogs(workdir / "srpm-logs" / target.name)
                try:
                    target.srpm = runner.srpm_from_spec(DEV_IMAGE, target.spec, workdir / "srpms", logs)
                    target.releases = [
                        runner.srpm_from_spec(DEV_IMAGE, new_release(target, workdir / "releases", release),
                                              workdir / "srpms", logs) for release in range(2, args.repeat + 2)]
                finally:
                    logs.close()
        podman_version = subprocess.run(["podman", "--version"], capture_output=True, text=True,
                                        check=False).stdout.split()[-1:] or ["?"]
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor() or "?")
        if SOCKET:
            print(f"every build connects to one podman service started for the run ({SOCKET})")
        print(f"machine: {len(os.sched_getaffinity(0))} cores ({cpu}), "
              f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
              f"{platform.system()} {platform.release()}, podman {podman_version[0]}, image {DEV_IMAGE}; "
              f"load average before the run {load_before:.2f} (other work on the host skews every number)")
        if heavy_note:
            print(heavy_note)
        if args.breakdown:
            breakdown(bench, targets[0])
            return 0
        print(f"medians of {args.repeat} runs", flush=True)
        rows = [measure(bench, target, args.repeat) for target in targets]

        tp_target = next((t for t in targets if t.name == THROUGHPUT_SAMPLE), None)
        if tp_target is None:
            tp_target = Target(THROUGHPUT_SAMPLE, REPO_ROOT / "examples" / THROUGHPUT_SAMPLE /
                               f"{THROUGHPUT_SAMPLE}.spec", sample_repo)
            with podman() as manager:
                logs = BuildLogs(workdir / "srpm-logs" / tp_target.name)
                try:
                    tp_target.srpm = BuildrootRunner(manager, {LABEL_WORKER: bench.worker}).srpm_from_spec(
                        DEV_IMAGE, tp_target.spec, workdir / "srpms", logs)
                finally:
                    logs.close()
        store = bench.new_store("throughput")
        progress(f"throughput: warming {THROUGHPUT_SAMPLE}")
        build_local(store, tp_target.srpm, tp_target.repo, workdir / "results", bench.tag, bench.worker)
        progress(f"throughput: 1 worker for {args.throughput_seconds:g} s")
        single = throughput(bench, tp_target, 1, args.throughput_seconds)
        progress(f"throughput: 2 workers for {args.throughput_seconds:g} s")
        double = throughput(bench, tp_target, 2, args.throughput_seconds)
        print()
        print_table(rows, single, double, args.throughput_seconds)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        return 0
    except KeyboardInterrupt:
        progress("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress("removing the run's environments, containers and temporary files")
        try:
            bench.clean_everything()
        finally:
            if service is not None:
                service.close()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
