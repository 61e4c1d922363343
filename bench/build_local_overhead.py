"""How much build-local costs over a bare rpmbuild, per sample. Not a test.

For each sample it prints, in one run:
  bare      rpmbuild -bb alone, in a container that already has the build
            group and the BuildRequires installed (the floor any builder pays);
  build-local  koji-adjutant build-local from the spec, end to end (SRPM,
            dependency phase, commit, build phase, results out, cleanup);
  ratio     build-local / bare.
Each number is the median of --repeat runs. Run as the build user:

    scripts/as-builder.sh python bench/build_local_overhead.py   # as root
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bare import bare_rpmbuild  # a sibling module of this script

from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER
from koji_adjutant.container.podman import PodmanManager

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ("hello-noarch", "hello-c", "dynamic-br")
LABELS = {LABEL_WORKER: "bench", LABEL_PURPOSE: "bench"}


def build_local(sample: str, repo: Path, workdir: Path, repeat: int) -> float:
    times = []
    for index in range(repeat):
        started = time.monotonic()
        subprocess.run(["koji-adjutant", "build-local", str(REPO_ROOT / "examples" / sample / f"{sample}.spec"),
                        "--repo", str(repo), "--resultdir", str(workdir / f"{sample}-{index}")],
                       check=True, capture_output=True)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", default=",".join(SAMPLES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adjutant-bench-") as tmp:
        workdir = Path(tmp)
        repo = workdir / "repo"
        subprocess.run([str(REPO_ROOT / "examples" / "make-repo.sh"), str(repo)], check=True, capture_output=True)
        print(f"{'sample':<14} {'bare rpmbuild':>14} {'build-local':>12} {'ratio':>7}")
        with PodmanManager() as manager:
            for sample in args.samples.split(","):
                bare = bare_rpmbuild(manager, REPO_ROOT / "examples" / sample / f"{sample}.spec", repo,
                                     args.repeat, LABELS)
                full = build_local(sample, repo, workdir, args.repeat)
                print(f"{sample:<14} {bare:>13.2f}s {full:>11.2f}s {full / bare:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()
