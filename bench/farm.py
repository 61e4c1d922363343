"""A build farm on one machine: no cache, per-builder caches, and the shared registry cache. Not a test.

N builders (--workers), each a real ``koji-adjutant run`` daemon with an
environment store and podman storage of its own (farmnodes.py), take a
stream of M builds (--builds) from the hub simulator (hubsim, the e2e
tests' RecordingHub). The builds come from a population of P packages
(--packages) with Zipf-like popularity (--zipf; farmstream.py): each build is
a new release of its package, a tiny noarch package whose BuildRequires are
its own set of the heavy repo's extra packages, so it needs the group layer
(@build of make_heavy_repo.py's synthetic buildroot) and a BuildRequires
layer of its own. The same stream runs three times, in three modes:

  none     no cache: the daemon always caches, so before each build the
           builder's store is emptied, as ``koji-adjutant env clean --all``
           does (EnvironmentStore.clean through the builder's podman
           service); every build makes both its layers
  local    per-builder caches: each builder's own store, no registry
  shared   the same, plus [adjutant] cache_registry: a layer made by one
           builder is pushed to the farm's registry, where the others pull
           it instead of making it

A simple scheduler plays Koji's: whenever a builder is idle, the next build
of the stream is created as a buildArch task and assigned to it (the lowest
idle builder first); each daemon takes one task at a time (maxjobs 1). Every
mode starts with empty stores and storages holding the base image alone.

Per mode it prints the hit rate (builds that made no layer), the dependency
phase's seconds summed over the farm (farmmetrics.py: from each build's
state.log), builds per minute (the stream's wall time), and the bytes the
shared cache's registry moved (pushed: its blob storage's growth; pulled:
the blobs it served, from its access log). Then the shared/local ratio of
dependency time against the goal (at most 1/3), and the hit rate of one
builder that took every build, from a replay of the stream through a set.
Replays of the stream (farmstream.py) bound and extend the measurement:
each mode's builds by kind (made 2 layers, made 1, pulled, hit) with their
median times, and the ideal replay's builds priced at those medians (the
best ratio this stream allows on this machine); the layers an ideal shared
cache would make for this stream against per-builder caches; and the
registry's load at --project builders (as many builds each as here) with
this run's layer sizes. --first-alone starts the
other builds only when the first is done, so that one builder makes the
group layer and the others can pull it (docs/performance.md, "A farm").

The base image must have one digest on every builder, as on a real farm: the
dev image is pushed once to the run's registry (docker-registry, as
tests/registry.py starts it) and every builder's storage pulls it from there.
Everything the run made (storages, containers, images, daemons, services,
registry, hub, temporary files) is removed at the end, also on Ctrl-C. Run as
the build user:

    scripts/as-builder.sh python bench/farm.py [--workers 4] [--builds 40]   # as root
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # tests.e2e.harness, tests.registry

import koji  # noqa: E402 - after the path above, as the imports below
from buildlocal import progress, raise_interrupt  # noqa: E402
from farmmetrics import (  # noqa: E402
    ModeResult,
    Outcome,
    blob_bytes,
    dependency_seconds,
    layers_made,
    layers_pulled,
    traffic,
)
from farmnodes import PASSWORD, Builder, Storage, user_storage_options  # noqa: E402
from farmstream import (  # noqa: E402
    Build,
    describe_popularity,
    make_srpm,
    population,
    replay_farm,
    replay_kinds,
    single_builder_hits,
    stream,
)

from koji_adjutant.defaults import DEV_IMAGE  # noqa: E402
from koji_adjutant.envstore import EnvironmentStore  # noqa: E402
from tests.e2e.harness import ARCH, RecordingHub  # noqa: E402
from tests.registry import Registry  # noqa: E402

MODES = ("none", "local", "shared")
MODE_NAMES = {"none": "no cache", "local": "per-builder cache", "shared": "shared registry cache"}
TAG = "farm-build"
#: The repository of the registry the builders share layers through (sharedcache.REPOSITORY).
CACHE_NAMESPACE = "farm-cache"
BUILD_TIMEOUT = 1800.0
GOAL_RATIO = 1 / 3


# -- the farm's fixed parts: heavy repo, hub, registry with the base image, storages --------------

def make_heavy_repo(root: Path, args: argparse.Namespace) -> str:
    """The heavy repo at ``root/<arch>``, with the extra packages the population BuildRequires."""
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "make_heavy_repo.py"), str(root / ARCH),
                           "--packages", str(args.heavy_packages), "--installed-mb", str(args.heavy_mb),
                           "--extra-packages", str(args.extra_packages), "--extra-mb", str(args.extra_mb),
                           "--jobs", str(len(os.sched_getaffinity(0)))],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"farm: make_heavy_repo.py failed:\n{done.stdout}{done.stderr}")
    root.chmod(0o755)
    return done.stdout.strip().splitlines()[-1]


def repo_rpms(repodir: Path) -> list[dict]:
    """hub.add_rpm's fields of every RPM of a repo, in one rpm query."""
    fields = ("name", "version", "release", "epoch", "arch", "payloadhash", "size", "buildtime")
    fmt = "%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\t%{SIGMD5}\t%{SIZE}\t%{BUILDTIME}\n"
    out = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt,
                          *map(str, sorted(repodir.glob("*.rpm")))], capture_output=True, text=True, check=True)
    rpms = []
    for line in out.stdout.splitlines():
        values = dict(zip(fields, line.split("\t")))
        values["epoch"] = None if values["epoch"] == "(none)" else int(values["epoch"])
        values["size"], values["buildtime"] = int(values["size"]), int(values["buildtime"])
        rpms.append(values)
    return rpms


def setup_hub(hub: RecordingHub, heavy_root: Path, workers: int, run_id: str,
              storages: list[Storage]) -> list[Builder]:
    """The tag, its READY repo (the heavy repo, known RPM by RPM), and one host per builder."""
    hub.add_tag(TAG, arches=ARCH)
    hub.repo_id = hub.add_repo(TAG, heavy_root)
    for rpm in repo_rpms(heavy_root / ARCH):
        hub.add_rpm(**rpm)
    hub.write_repo_rpmlist(hub.repo_id)
    hub.set_policy("buildroot_image", "")  # no rule: each builder's default_image, the registry's base
    (hub.workdir / "farm").mkdir(parents=True)
    builders = []
    for index in range(workers):
        name = f"farm-builder{index + 1}"
        host_id = hub.add_host(name, arches=[ARCH], capacity=2.0, password=PASSWORD)
        builders.append(Builder(index, name, host_id, f"farm-{run_id}-{index + 1}", storages[index]))
    return builders


def publish_base_image(registry: Registry, image: str) -> str:
    """The dev image pushed to the run's registry: every builder pulls it from there, so it has
    one digest everywhere, as a farm's builders pulling one image from a registry would."""
    ref = f"{registry.host}/koji-adjutant-buildroot:bench"
    subprocess.run(["podman", "push", "--quiet", "--tls-verify=false", image, ref], check=True,
                   capture_output=True)
    return ref


def prepare_storage(storage: Storage, base_ref: str, registry_host: str) -> str:
    """A builder's storage, its podman service, and the base image pulled into it; its digest."""
    storage.start()
    with storage.manager((registry_host,)) as manager:
        return manager.pull_image(base_ref).digest


# -- one mode --------------------------------------------------------------------------------------

@dataclass
class Running:
    build: Build
    task_id: int
    submitted: float


@dataclass
class Farm:
    hub: RecordingHub
    registry: Registry
    builders: list[Builder]
    base_ref: str
    srpms: dict[int, str]           # build index -> the SRPM's path under the hub's workdir
    workdir: Path
    logs: Path | None = None        # where to keep the logs (--logs)
    first_alone: bool = False       # the stream's first build runs alone (--first-alone)

    def start(self, mode: str) -> None:
        adjutant = {"default_image": self.base_ref, "image_pull_policy": "never", "offline": "true",
                    "insecure_registries": self.registry.host}
        if mode == "shared":
            adjutant["cache_registry"] = f"{self.registry.host}/{CACHE_NAMESPACE}"
        for builder in self.builders:
            builder.start(self.workdir / mode / builder.name, self.hub, adjutant)
        deadline = time.monotonic() + 120
        while not all(self.hub.hosts[b.host_id]["ready"] for b in self.builders):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the daemons did not report ready within 120 s")
            time.sleep(0.2)

    def check_alive(self) -> None:
        for builder in self.builders:
            if not builder.worker.alive:
                raise RuntimeError(f"the daemon of {builder.name} exited ({builder.worker.proc.returncode}); "
                                   f"its log ends:\n{builder.worker.log_text()[-4000:]}")

    def submit(self, build: Build, builder: Builder) -> int:
        task_id = self.hub.create_task("buildArch", [self.srpms[build.index], TAG, "noarch", True,
                                                     {"repo_id": self.hub.repo_id}], arch="noarch")
        self.hub.assign(task_id, builder.host_id)
        return task_id

    def outcome(self, running: Running, builder: Builder, finished: float) -> Outcome:
        task = self.hub.task(running.task_id)
        if task["state"] != "CLOSED":
            fault = (task.get("fault") or {}).get("faultString", "")
            raise RuntimeError(f"build {running.build.index} ({running.build.package.name}) on {builder.name}: task "
                               f"{running.task_id} {task['state']}: {fault}\nroot.log ends:\n"
                               f"{self.hub.log(running.task_id, 'root.log')[-3000:]}")
        root_log = self.hub.log(running.task_id, "root.log")
        state_log = self.hub.log(running.task_id, "state.log")
        return Outcome(running.build, running.task_id, finished, dependency_seconds(state_log), layers_made(root_log),
                       root_log.count("reusing cached buildroot"), layers_pulled(root_log))


_DONE = {koji.TASK_STATES[state] for state in ("CLOSED", "FAILED", "CANCELED")}


@dataclass
class StreamRun:
    """The stream going through the farm: the scheduler's state and what came of each build."""

    farm: Farm
    mode: str
    pending: list[Build]                       # the next build last
    total: int
    running: dict[int, Running] = field(default_factory=dict)   # by builder index
    outcomes: list[Outcome] = field(default_factory=list)
    clean_seconds: float = 0.0

    def collect(self, builder: Builder) -> None:
        """The builder's build, if it is done (or a failure if it overran its time)."""
        current = self.running.get(builder.index)
        if current is None:
            return
        if self.farm.hub.tasks[current.task_id]["state"] in _DONE:
            outcome = self.farm.outcome(current, builder, time.monotonic())
            self.outcomes.append(outcome)
            del self.running[builder.index]
            progress(f"{self.mode}: {len(self.outcomes)}/{self.total} {outcome.build.package.name}-"
                     f"{outcome.build.release} on {builder.name}: {outcome.made} layers made, {outcome.reused} "
                     f"reused, dependency phase {outcome.dependency_seconds:.0f} s")
        elif time.monotonic() - current.submitted > BUILD_TIMEOUT:
            raise RuntimeError(f"build {current.build.index} on {builder.name} took over {BUILD_TIMEOUT:.0f} s")

    def may_dispatch(self, builder: Builder) -> bool:
        """An idle builder gets the next build; with --first-alone, not while the first one runs."""
        first_running = self.farm.first_alone and self.running and not self.outcomes
        return builder.index not in self.running and bool(self.pending) and not first_running

    def dispatch(self, builder: Builder, manager) -> None:
        """The next build to ``builder``; without a cache (``manager`` given), its store emptied first."""
        if manager is not None:
            began = time.monotonic()
            builder.clean_store(manager)
            self.clean_seconds += time.monotonic() - began
        build = self.pending.pop()
        self.running[builder.index] = Running(build, self.farm.submit(build, builder), time.monotonic())


def run_stream(farm: Farm, builds: list[Build], mode: str) -> tuple[list[Outcome], float, float]:
    """Every build of the stream through the farm: (outcomes, wall seconds, seconds spent emptying stores)."""
    run = StreamRun(farm, mode, list(reversed(builds)), len(builds))
    managers = {b.index: b.storage.manager() for b in farm.builders} if mode == "none" else {}
    started = time.monotonic()
    try:
        while run.pending or run.running:
            farm.check_alive()
            for builder in farm.builders:
                run.collect(builder)
                if run.may_dispatch(builder):
                    run.dispatch(builder, managers.get(builder.index))
            time.sleep(0.2)
    finally:
        for manager in managers.values():
            manager.close()
    wall = max(outcome.finished for outcome in run.outcomes) - started
    return sorted(run.outcomes, key=lambda outcome: outcome.build.index), wall, run.clean_seconds


def keep_logs(farm: Farm, outcomes: list[Outcome], directory: Path) -> None:
    """The daemons' logs and each build's root.log and state.log, for a look afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    for builder in farm.builders:
        shutil.copy(farm.workdir / directory.name / builder.name / "daemon.log", directory / f"{builder.name}.log")
    for outcome in outcomes:
        prefix = f"build{outcome.build.index:03d}-{outcome.build.package.name}-task{outcome.task_id}"
        for name in ("root.log", "state.log"):
            (directory / f"{prefix}-{name}").write_text(farm.hub.log(outcome.task_id, name))


def store_origins(builders: list[Builder]) -> Counter[str]:
    """Layers the builders' stores hold, by origin: "built" here, or the registry pulled from."""
    return Counter(env.origin for builder in builders for env in EnvironmentStore(builder.store_path).list())


def layer_sizes(builders: list[Builder]) -> dict[str, list[int]]:
    """What each layer the builders' stores hold adds on disk, group layers apart from BuildRequires
    layers: the sizes the projection to more builders multiplies."""
    sizes: dict[str, list[int]] = {"group": [], "buildrequires": []}
    for builder in builders:
        for env in EnvironmentStore(builder.store_path).list():
            sizes["buildrequires" if env.inputs.get("parent") else "group"].append(env.added)
    return sizes


def run_mode(farm: Farm, builds: list[Build], mode: str) -> ModeResult:
    progress(f"{mode}: starting {len(farm.builders)} daemons")
    blobs_before = blob_bytes(farm.registry.storage)
    log_offset = farm.registry.access_log_path.stat().st_size
    try:
        farm.start(mode)
        outcomes, wall, clean_seconds = run_stream(farm, builds, mode)
    finally:
        for builder in farm.builders:
            builder.stop()
    origins, sizes = store_origins(farm.builders), layer_sizes(farm.builders)
    refused = sum(builder.saved_log.count("refusing buildroot") for builder in farm.builders)
    with open(farm.registry.access_log_path, errors="replace") as log:
        log.seek(log_offset)
        moved = traffic(log, f"{CACHE_NAMESPACE}/environments", blob_bytes(farm.registry.storage) - blobs_before)
    if farm.logs is not None:
        keep_logs(farm, outcomes, farm.logs / mode)
    progress(f"{mode}: removing the mode's environments")
    for builder in farm.builders:
        builder.clean(farm.base_ref)
    return ModeResult(mode, outcomes, wall, moved if mode == "shared" else None, dict(origins), clean_seconds,
                      refused, sizes)


# -- the report -------------------------------------------------------------------------------------

def mib(count: int) -> str:
    return f"{count / 2**20:.0f} MiB"


def mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def median_costs(result: ModeResult) -> dict[str, tuple[int, float]]:
    """A mode's builds by what their dependency phase did: (count, median seconds) of each kind."""
    kinds: dict[str, list[float]] = {}
    for outcome in result.outcomes:
        kinds.setdefault(outcome.kind, []).append(outcome.dependency_seconds)
    return {kind: (len(times), statistics.median(times)) for kind, times in sorted(kinds.items())}


def print_costs(results: list[ModeResult], builds: list[Build], workers: int) -> None:
    """What a make, a pull and a hit cost here, apart from how often each happened; and what the ideal
    replay's mix of them would cost at those prices: the best ratio this stream allows on this machine."""
    costs = {result.mode: median_costs(result) for result in results}
    for result in results:
        cells = [f"{kind} {count} x {median:.0f} s" for kind, (count, median) in costs[result.mode].items()]
        print(f"{MODE_NAMES[result.mode]}: dependency phase by kind of build (count x median): {', '.join(cells)}")
    if "local" not in costs or "shared" not in costs:
        return
    ideal = replay_kinds(builds, workers)
    priced = {}
    for mode in ("local", "shared"):
        missing = set(ideal[mode]) - set(costs[mode])
        if missing:
            print(f"(no price for an ideal {mode} mix: this run had no build of kind {', '.join(sorted(missing))})")
            return
        priced[mode] = sum(count * costs[mode][kind][1] for kind, count in ideal[mode].items())
    print(f"the ideal replay's builds at these medians: per-builder {priced['local']:.0f} s "
          f"({dict(ideal['local'])}), shared {priced['shared']:.0f} s ({dict(ideal['shared'])}): "
          f"a ratio of {priced['shared'] / priced['local']:.2f} at best for this stream on this machine")


def print_ideal(builds: list[Build], workers: int) -> None:
    """What the stream itself allows: an ideal shared cache against per-builder caches."""
    ideal = replay_farm(builds, workers)
    print(f"an ideal shared cache for this stream (build i on builder i mod {workers}, each layer made once in the "
          f"farm, pulled by each other builder that needs it, nothing evicted) makes {ideal.shared_makes} layers and "
          f"pulls {ideal.shared_pulls}, against {ideal.local_makes} made with per-builder caches: "
          f"{ideal.shared_makes / ideal.local_makes:.2f} of the makes")


def print_projection(projected: list[Build], builders: int, results: list[ModeResult]) -> None:
    """The registry's load at ``builders`` builders: the replay of a longer stream (as many builds per
    builder as here) through an ideal shared cache, times this run's layer sizes."""
    sizes: dict[str, list[int]] = {"group": [], "buildrequires": []}
    for result in results:
        for kind, values in result.layer_sizes.items():
            sizes[kind] += values
    group, buildrequires = mean(sizes["group"]), mean(sizes["buildrequires"])
    ideal = replay_farm(projected, builders)
    pulled = ideal.group_pulls * group + (ideal.shared_pulls - ideal.group_pulls) * buildrequires
    pushed = group + (ideal.shared_makes - 1) * buildrequires
    count = len(projected)
    print(f"projection to {builders} builders ({count} builds, {count // builders} each, same population; the "
          f"replay above; layers of this run: group {mib(int(group))}, BuildRequires {mib(int(buildrequires))} "
          f"on average): per-builder caches make {ideal.local_makes} layers, a shared cache {ideal.shared_makes}; "
          f"the registry takes {ideal.shared_makes} pushes ({mib(int(pushed))}) and serves {ideal.shared_pulls} "
          f"pulls ({mib(int(pulled))}, {ideal.group_pulls} of them the group layer): "
          f"{ideal.shared_pulls / count:.2f} pulls, {ideal.shared_makes / count:.2f} pushes and "
          f"{mib(int((pulled + pushed) / count))} per build")


def print_report(results: list[ModeResult], builds: list[Build], workers: int) -> None:
    header = ("mode", "hit rate", "layers made", "dependency phases (s)", "builds/min", "registry moved")
    rows = [header]
    for result in results:
        moved = "-"
        if result.traffic is not None:
            moved = (f"{mib(result.traffic.moved)} (push {mib(result.traffic.pushed_bytes)}, "
                     f"pull {mib(result.traffic.pulled_bytes)})")
        rows.append((MODE_NAMES[result.mode], f"{result.hit_rate:.0%} ({result.hits}/{len(result.outcomes)})",
                     str(result.layers_made), f"{result.dependency_seconds:.0f}", f"{result.per_minute:.1f}", moved))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        print("  ".join([row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))
    single = single_builder_hits(builds)
    distinct = len({build.package.name for build in builds})
    print(f"one builder with all {len(builds)} builds (replay of the stream through a set): hit rate "
          f"{single / len(builds):.0%} ({single}/{len(builds)}; {distinct} packages built)")
    by_mode = {result.mode: result for result in results}
    for result in results:
        if result.mode == "none" and result.clean_seconds:
            print(f"no cache: emptying the stores before each build took {result.clean_seconds:.0f} s in all, "
                  "inside its wall time")
        if result.traffic is not None:
            t = result.traffic
            print(f"shared: registry {t.pushes} layers pushed, {t.pulls} pulled ({result.refused} of them refused "
                  f"by the builder's checks and made again), {t.misses} lookups missed; "
                  f"stores hold {result.origins.get('built', 0)} layers made here and "
                  f"{sum(n for origin, n in result.origins.items() if origin != 'built')} pulled; "
                  f"{mib(t.moved // len(result.outcomes))} moved per build")
    print_costs(results, builds, workers)
    print_ideal(builds, workers)
    if "local" in by_mode and "shared" in by_mode:
        ratio = by_mode["shared"].dependency_seconds / by_mode["local"].dependency_seconds
        verdict = "met" if ratio <= GOAL_RATIO else "not met"
        print(f"goal, N={workers}: shared / per-builder dependency time = {ratio:.2f} (goal <= {GOAL_RATIO:.2f}): "
              f"{verdict}; hit rate shared {by_mode['shared'].hit_rate:.0%} against one builder's "
              f"{single / len(builds):.0%}")


# -- main ---------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="builders, each a daemon (default 4)")
    parser.add_argument("--builds", type=int, default=40, help="builds in the stream (default 40)")
    parser.add_argument("--packages", type=int, default=40, help="packages of the population (default 40)")
    parser.add_argument("--zipf", type=float, default=1.1, help="popularity exponent s: rank k drawn with "
                                                                "weight 1/k**s (default 1.1)")
    parser.add_argument("--seed", type=int, default=1, help="draws the population and the stream (default 1)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)} (default all)")
    parser.add_argument("--heavy-packages", type=int, default=150, help="packages of @build (default 150)")
    parser.add_argument("--heavy-mb", type=float, default=200, help="their installed MiB (default 200)")
    parser.add_argument("--extra-packages", type=int, default=50,
                        help="packages outside @build that BuildRequires draw from (default 50)")
    parser.add_argument("--extra-mb", type=float, default=400, help="their installed MiB in all (default 400)")
    parser.add_argument("--buildrequires", default="3-6", help="BuildRequires per package, least-most (default 3-6)")
    parser.add_argument("--heavy-repo", type=Path, metavar="DIR",
                        help="make (or reuse) the heavy repo under DIR and keep it (default: a temporary one)")
    parser.add_argument("--base-image", default=DEV_IMAGE, help=f"the buildroot image (default {DEV_IMAGE})")
    parser.add_argument("--project", type=int, default=100, metavar="N",
                        help="project the registry's load to N builders (default 100)")
    parser.add_argument("--first-alone", action="store_true",
                        help="in every mode, start the other builds only when the first is done, so that one "
                             "builder makes the group layer while the others wait (default: all start at once)")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="keep each mode's daemon logs and each build's root.log and state.log under DIR")
    args = parser.parse_args()
    args.modes = [mode for mode in args.modes.split(",") if mode]
    least, _, most = args.buildrequires.partition("-")
    args.buildrequires = (int(least), int(most or least))
    if set(args.modes) - set(MODES) or not args.modes:
        parser.error(f"--modes takes some of {', '.join(MODES)}")
    if min(args.workers, args.builds, args.packages, args.extra_packages, *args.buildrequires) < 1:
        parser.error("--workers, --builds, --packages, --extra-packages and --buildrequires must be positive")
    if args.buildrequires[1] > args.extra_packages or args.buildrequires[0] > args.buildrequires[1]:
        parser.error("--buildrequires must be a range within --extra-packages")
    if os.geteuid() == 0:
        parser.error("run as the unprivileged build user: scripts/as-builder.sh python bench/farm.py")
    return args


def machine_note(load: float) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    podman = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False).stdout.split()
    return (f"machine: {len(os.sched_getaffinity(0))} cores ({cpu}), "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.system()} "
            f"{platform.release()}, podman {podman[-1] if podman else '?'}; load average before the run {load:.2f}")


def prepare_builds(builds: list[Build], hub: RecordingHub, workdir: Path) -> dict[int, str]:
    """Each build's SRPM, made on the host and put where the hub's tasks name it."""
    srpms = {}
    for build in builds:
        srpm = make_srpm(build, workdir / "srpms")
        shutil.copy(srpm, hub.workdir / "farm" / srpm.name)
        srpms[build.index] = f"farm/{srpm.name}"
    return srpms


def run(args: argparse.Namespace, workdir: Path, storages: list[Storage]) -> None:
    run_id = uuid.uuid4().hex[:6]
    heavy_root = args.heavy_repo.resolve() if args.heavy_repo else workdir / "heavy-repo"
    progress(f"making the heavy repo under {heavy_root}")
    summary = make_heavy_repo(heavy_root, args)
    extras = [f"bench-br-{number:04d}" for number in range(1, args.extra_packages + 1)]
    packages = population(args.packages, extras, args.buildrequires, args.seed)
    builds = stream(packages, args.builds, args.zipf, args.seed)
    print(f"heavy repo: {summary}")
    print(f"stream: {len(builds)} builds of {len({b.package.name for b in builds})} distinct packages; "
          f"{describe_popularity(args.packages, args.zipf)}; each package BuildRequires "
          f"{args.buildrequires[0]}-{args.buildrequires[1]} of the {args.extra_packages} extra packages; "
          f"seed {args.seed}", flush=True)
    with Registry(access_log=True) as registry, RecordingHub(workdir / "koji") as hub:
        progress(f"pushing {args.base_image} to the registry {registry.host}")
        base_ref = publish_base_image(registry, args.base_image)
        progress(f"starting {args.workers} podman services, each on a storage of its own, and pulling {base_ref}")
        with ThreadPoolExecutor(max_workers=2) as pool:
            digests = set(pool.map(lambda s: prepare_storage(s, base_ref, registry.host), storages))
        if len(digests) != 1:
            raise RuntimeError(f"the builders' base images differ: {digests}")
        builders = setup_hub(hub, heavy_root, args.workers, run_id, storages)
        farm = Farm(hub, registry, builders, base_ref, prepare_builds(builds, hub, workdir), workdir, args.logs,
                    args.first_alone)
        results = []
        for mode in args.modes:
            results.append(run_mode(farm, builds, mode))
            progress(f"{mode}: hit rate {results[-1].hit_rate:.0%}, dependency phases "
                     f"{results[-1].dependency_seconds:.0f} s, {results[-1].per_minute:.1f} builds/min")
        print()
        print_report(results, builds, args.workers)
        projected = stream(packages, max(1, args.builds // args.workers) * args.project, args.zipf, args.seed)
        print_projection(projected, args.project, results)


def main() -> int:
    args = parse_args()
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    print(machine_note(os.getloadavg()[0]), flush=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)  # unwind into the cleanup, as on Ctrl-C
    os.umask(0o022)
    workdir = Path(tempfile.mkdtemp(prefix="adjutant-farm-"))
    workdir.chmod(0o755)  # the containers' root (a subordinate id) reads the repo under it
    storages = [Storage(workdir / f"storage{index + 1}", user_storage_options()) for index in range(args.workers)]
    started = time.monotonic()
    try:
        run(args, workdir, storages)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}; "
              f"the run took {(time.monotonic() - started) / 60:.1f} min")
        return 0
    except KeyboardInterrupt:
        progress("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress("removing the builders' storages, the registry, the hub and the temporary files")
        for storage in storages:
            storage.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
