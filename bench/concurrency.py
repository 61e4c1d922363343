"""Do two builds at once get twice the throughput of one? Warm builds of a CPU-bound sample. Not a test.

examples/cpu-bound's %build is one single-threaded computation of about 11 s
here (the cpu_work macro sets its size), so a build's time is its own CPU on
one core, as a real compile's is, and not podman's fixed cost per container,
which bounds the ratio of a 0.3 s build (container_cycle.py,
docs/performance.md). With the buildroot cached (one cold build first), and
every build connected to one podman service, as the daemon's tasks share the
daemon's, it runs:

  bare       rpmbuild -bb alone, once, in a container provisioned with plain
             dnf (bare.py): the build's own time;
  1 worker   one worker process: --builds warm build-locals one after another;
  2 workers  two worker processes at once, --builds each, on the same
             environment store and service.

and prints for each run builds per minute, the wall time per build, the CPU
seconds the whole machine spent per build (/proc/stat), how busy it was, and
podman's CPU seconds per build: the service, conmon, runc and fuse-overlayfs,
sampled from /proc (podmancpu.py: a lower bound). Then the 2/1 ratio, split as
2 cores x u x W / C: u, how busy two workers kept the machine (below 1 when a
build waits for the other: a lock, a serialized service, an idle core); W, the
wall time per build of one worker alone; C, the machine's CPU per build with
two. The ratio reaches 2 only when u is 1 and each build spends no more CPU
than its wall time alone; a single-threaded build leaves the second core to
podman and the worker when run alone, and that CPU costs throughput once both
cores build.

"build-local" is koji-adjutant build-local SRPM --cache through the Python API
(buildlocal.py). Every container, image and temporary file is removed at the
end, also on Ctrl-C. Run as the build user:

    scripts/as-builder.sh python bench/concurrency.py [--builds 4]   # as root

--private-services: each build-local finds the user's socket or starts its own
service instead, as the CLI does. --sample another of examples/, e.g. hello-c
(with more --builds).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path

from bare import bare_rpmbuild  # sibling modules of this script
from buildlocal import REPO_ROOT, Bench, bench_run, progress, raise_interrupt
from podmancpu import INTERVAL
from workers import Window, measure_window

from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER

GOAL = 1.85


def _build_worker(bench: Bench, store: Path, srpm: Path, repo: Path, index: int, builds: int, start_at: float,
                  stop, results) -> None:
    """In its own process: ``builds`` build-locals one after another from ``start_at``, or until the
    parent sets ``stop`` (it does on Ctrl-C: the build under way finishes and cleans up)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides
    signal.signal(signal.SIGTERM, raise_interrupt)  # the last resort: unwind, containers removed
    try:
        stop.wait(max(0.0, start_at - time.monotonic()))
        done = 0
        while done < builds and not stop.is_set():
            bench.build_local(store, srpm, repo, bench.workdir / f"results-{index}-{done}")
            done += 1
        results.put(("ok", done))
    except KeyboardInterrupt:
        results.put(("interrupted", 0))
    except BaseException:  # noqa: BLE001 - reported to the parent
        results.put(("error", traceback.format_exc()))


def run_workers(bench: Bench, store: Path, srpm: Path, repo: Path, workers: int, builds: int) -> tuple[Window, int]:
    """A window of ``workers`` processes building ``builds`` times each; and how many builds were made."""
    window = measure_window(_build_worker, [(bench, store, srpm, repo, i, builds) for i in range(workers)],
                            timeout=builds * 300 + 300)
    failed = [value for status, value in window.outcomes if status != "ok"]
    if failed:
        raise RuntimeError(f"a build worker failed:\n{failed[0]}")
    return window, sum(value for _, value in window.outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=4, help="builds per worker in each run (default 4)")
    parser.add_argument("--sample", default="cpu-bound", help="the sample of examples/ (default cpu-bound)")
    parser.add_argument("--private-services", action="store_true",
                        help="each build-local finds or starts its own podman service, as the CLI does "
                             "(default: one service for the run, as the daemon's tasks share the daemon's)")
    args = parser.parse_args()
    if args.builds < 1:
        parser.error("--builds must be positive")
    if os.geteuid() == 0:
        parser.error("run as the unprivileged build user: scripts/as-builder.sh python bench/concurrency.py")
    spec = REPO_ROOT / "examples" / args.sample / f"{args.sample}.spec"
    if not spec.is_file():
        parser.error(f"no sample {spec}")

    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    load_before = os.getloadavg()
    try:
        with bench_run(shared_service=not args.private_services) as bench:
            repo = bench.sample_repo()
            [srpm] = bench.srpms(args.sample, [spec])
            print(bench.describe(load_before[0]), flush=True)
            progress(f"{args.sample}: bare rpmbuild (provisioning a container with dnf)")
            with bench.podman() as manager:
                bare = bare_rpmbuild(manager, spec, repo, 1,
                                     {LABEL_WORKER: bench.worker, LABEL_PURPOSE: "bench-bare"})
            progress(f"{args.sample}: a cold build-local, to cache its buildroot")
            store = bench.new_store(args.sample)
            bench.build_local(store, srpm, repo, bench.workdir / "results")
            runs = {}
            for workers in (1, 2):
                progress(f"{workers} worker(s), {args.builds} warm builds each")
                runs[workers] = run_workers(bench, store, srpm, repo, workers, args.builds)
            (one, one_builds), (two, two_builds) = runs[1], runs[2]
            ratio = (two_builds / two.seconds) / (one_builds / one.seconds)
            alone, side_by_side = one.seconds / one_builds, two.busy / two_builds
            cores = len(os.sched_getaffinity(0))
            print(f"{args.sample}: bare rpmbuild -bb {bare:.2f} s; warm build-local, {args.builds} builds per worker")
            print(one.summary(1, one_builds, "build"))
            print(two.summary(2, two_builds, "build"))
            print(f"ratio 2/1: {ratio:.2f}x = {cores} cores x {two.busy_share:.3f} busy x {alone:.2f} s per build "
                  f"alone / {side_by_side:.2f} CPU-s per build side by side; "
                  f"goal >= {GOAL}x: {'met' if ratio >= GOAL else 'not met'}")
            for workers, (window, builds) in runs.items():
                split = ", ".join(f"{kind} {seconds / builds:.3f}"
                                  for kind, seconds in sorted(window.podman_by_kind.items(), key=lambda k: -k[1]))
                print(f"podman's CPU-s per build, {workers} worker{'s' if workers > 1 else ''}: {split}")
            print(f"(podman's processes sampled from /proc every {INTERVAL * 1000:.0f} ms: a lower bound, see "
                  f"bench/podmancpu.py; the sampling itself took {one.sampler:.2f} + {two.sampler:.2f} CPU-s)")
            print(f"load average (1 min): {load_before[0]:.2f} before the run, {os.getloadavg()[0]:.2f} at the end")
            return 0
    except KeyboardInterrupt:
        progress("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
