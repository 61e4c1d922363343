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

"build-local" is what ``koji-adjutant build-local SRPM --cache`` does, through
the Python API and from an SRPM made beforehand (buildlocal.py). Throughput,
builds side by side, is concurrency.py's. Every number is the median of
--repeat runs. Every container, image and temporary file is removed at the
end, also on Ctrl-C. Run as the build user:

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
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bare import bare_rpmbuild  # sibling modules of this script
from buildlocal import REPO_ROOT, Bench, Run, bench_run, buildroot_spec, progress

from koji_adjutant.buildroot import cachekey
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER

SAMPLES = ("hello-noarch", "hello-c", "dynamic-br")
BREAKDOWN_SAMPLE = "hello-c"


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
    with bench.podman() as manager:
        progress(f"{target.name}: bare rpmbuild (provisioning a container with dnf)")
        bare = bare_rpmbuild(manager, target.spec, target.repo, repeat,
                             {LABEL_WORKER: bench.worker, LABEL_PURPOSE: "bench-bare"})
    colds: list[Run] = []
    store = None
    for index in range(repeat):
        with bench.podman() as manager:
            if store is not None:
                bench.clean_store(manager, store)  # the next cold build starts from an empty store again
        store = bench.new_store(f"{target.name}-cold")
        progress(f"{target.name}: cold build-local {index + 1}/{repeat}")
        colds.append(bench.build_local(store, target.srpm, target.repo, bench.workdir / "results"))
    warms: list[Run] = []
    for index in range(repeat):
        progress(f"{target.name}: warm build-local {index + 1}/{repeat}")
        warms.append(bench.build_local(store, target.srpm, target.repo, bench.workdir / "results"))
    releases: list[Run] = []
    for index, srpm in enumerate(target.releases[:repeat]):
        progress(f"{target.name}: new release on the warm cache {index + 1}/{repeat}")
        releases.append(bench.build_local(store, srpm, target.repo, bench.workdir / "results"))
    with bench.podman() as manager:
        bench.clean_store(manager, store)
    return Row(target.name, bare, statistics.median(r.seconds for r in colds),
               statistics.median(r.seconds for r in warms),
               statistics.median(r.phases["dependencies"] for r in colds),
               statistics.median(r.phases["dependencies"] for r in warms),
               statistics.median(r.seconds for r in releases))


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
    bench.podman().close()
    connect = time.monotonic() - started
    with bench.podman() as manager:
        spec = buildroot_spec(manager, target.repo, bench.tag)
        started = time.monotonic()
        cachekey.key_of(cachekey.group_inputs(spec))
        key_seconds = time.monotonic() - started
    store = bench.new_store("breakdown")
    rows = []
    for label in ("cold", "warm"):
        totals: dict[str, list[float]] = defaultdict(list)
        run = bench.build_local(store, target.srpm, target.repo, bench.workdir / "results",
                                wrap=lambda manager, totals=totals: TimingManager(manager, totals))
        rows.append((label, run, totals))
    print(f"where the time of build-local {target.name} goes (one cold and one warm build, seconds)")
    print(f"  {python} -c pass: {bare_python:.2f}; {python} -c 'import koji_adjutant.cli': {cli_import:.2f}; "
          f"koji-adjutant --help: {cli_help:.2f}")
    how = ("connects to the run's shared service" if bench.socket
           else "the user's socket, or a private service it starts")
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

def print_table(rows: list[Row]) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--samples", default=",".join(SAMPLES), help="samples of examples/ (default all three)")
    parser.add_argument("--heavy-packages", type=int, default=150, help="packages of the heavy repo (default 150)")
    parser.add_argument("--heavy-mb", type=float, default=300, help="its installed MiB (default 300)")
    parser.add_argument("--heavy-repo", type=Path, metavar="DIR",
                        help="make (or reuse) the heavy repo here and keep it (default: a temporary one)")
    parser.add_argument("--no-heavy", action="store_true", help="leave the heavy package out")
    parser.add_argument("--shared-service", action="store_true",
                        help="start one podman service for the run and connect every build to it, as the "
                             "daemon's tasks do (default: each build-local finds or starts its own)")
    parser.add_argument("--breakdown", action="store_true",
                        help="print where the time of a cold and a warm hello-c build goes, instead of the table")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    if os.geteuid() == 0:
        parser.error("run as the unprivileged build user: scripts/as-builder.sh python bench/cache_benchmark.py")

    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    load_before = os.getloadavg()[0]
    try:
        with bench_run(args.shared_service) as bench:
            sample_repo = bench.sample_repo()
            samples = [BREAKDOWN_SAMPLE] if args.breakdown else [s for s in args.samples.split(",") if s]
            targets = [Target(s, REPO_ROOT / "examples" / s / f"{s}.spec", sample_repo) for s in samples]
            heavy_note = ""
            if not args.no_heavy and not args.breakdown:
                heavy_repo = (args.heavy_repo.resolve() if args.heavy_repo else bench.workdir / "heavy-repo")
                progress(f"making the heavy repo in {heavy_repo} "
                         f"({args.heavy_packages} packages, {args.heavy_mb:g} MiB)")
                summary, buildrequires = make_heavy_repo(heavy_repo, args.heavy_packages, args.heavy_mb)
                heavy_note = f"heavy repo: {summary}"
                targets.append(Target("heavy", heavy_spec(bench.workdir / "heavy-src", buildrequires), heavy_repo))
            for target in targets:
                releases = [new_release(target, bench.workdir / "releases", release)
                            for release in range(2, args.repeat + 2)]
                target.srpm, *target.releases = bench.srpms(target.name, [target.spec, *releases])
            print(bench.describe(load_before))
            if heavy_note:
                print(heavy_note)
            if args.breakdown:
                breakdown(bench, targets[0])
                return 0
            print(f"medians of {args.repeat} runs", flush=True)
            rows = [measure(bench, target, args.repeat) for target in targets]
            print()
            print_table(rows)
            print(f"load average at the end: {os.getloadavg()[0]:.2f}")
            return 0
    except KeyboardInterrupt:
        progress("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
