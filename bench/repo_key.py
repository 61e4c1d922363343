"""What reading a repo's package set for the group layer's cache key costs at Fedora's size. Not a test.

    python bench/repo_key.py [--packages 70000] [--seed 1] [--repo DIR] [--repeat 3]

Writes the synthetic repo metadata of make_repo_metadata.py (--packages
packages) in a temporary directory, removed at exit, or uses DIR's (--repo,
written there first when it has none), serves it over HTTP on 127.0.0.1
(http.server in a thread, as a hub serves its repos), and measures, each in a
fresh interpreter so that the peak RSS of one does not include another's:

  floor          one pass over primary.xml.gz: download, decompress, read the
                 bytes, nothing else;
  cold key       packageset.read_package_set: repomd.xml, then primary
                 streamed, checked against repomd's checksum and scanned;
                 what a build does the first time it meets a repo;
  warm key       packageset.repo_package_set with the memo of a real
                 EnvironmentStore that has the repo's package set: what every
                 later build from the repo does (opening the store counted);
  createrepo_c   primary downloaded to a file, then parsed by createrepo_c's
                 xml_parse_primary (do_files=False), for comparison: why
                 packageset.py does not use it; and the same parse with
                 every package skipped (newpkgcb returns None), its least
                 possible cost, which gives no pkgid;
  ElementTree    the implementation before packageset.py: the whole file read,
                 decompressed and parsed into a tree.

Times are the wall seconds of the call alone, without the interpreter's
start-up or imports: the median of --repeat rounds, each of which measures
every method once (ElementTree in the first round only), so that a change in
the machine's load touches them alike. Peak RSS is the child's VmHWM, imports
included. The goals (the issue's) are printed with whether each is met: cold
key at most 2x the floor, warm key at most 50 ms, peak RSS at most 150 MB.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from functools import partial
from pathlib import Path

from koji_adjutant.buildroot.packageset import CHUNK_BYTES, read_package_set, repo_package_set
from koji_adjutant.buildroot.spec import RepoSource
from koji_adjutant.envstore.store import EnvironmentStore
from koji_adjutant.repomd import REPO_NS, location_href

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
GOAL_RATIO = 2.0
GOAL_WARM_SECONDS = 0.050
GOAL_RSS_MB = 150
#: what is measured, in the order printed
MODES = ("floor", "cold", "warm", "createrepo_c", "createrepo_c_skip", "elementtree")
LABELS = {"floor": "floor (download + decompress)", "cold": "cold key (streaming)",
          "warm": "warm key (remembered)", "createrepo_c": "createrepo_c xml_parse_primary",
          "createrepo_c_skip": "createrepo_c, every package skipped",
          "elementtree": "ElementTree (before)"}


def elementtree_package_set(location: str) -> str:
    """The package set as cachekey.repo_package_set computed it before packageset.py (its code,
    reading a URL only): the reference the streaming digest must equal."""
    def read(relative: str) -> bytes:
        with urllib.request.urlopen(f"{location.rstrip('/')}/{relative}", timeout=120) as response:
            return response.read()
    repomd = ET.fromstring(read("repodata/repomd.xml"))
    primary = next(d for d in repomd.findall(f"{REPO_NS}data") if d.get("type") == "primary")
    href = location_href(primary)
    data = read(href)
    if href.endswith(".gz"):
        data = gzip.decompress(data)
    root = ET.fromstring(data)
    pkgids = sorted(checksum.text or "" for checksum in root.iter("{http://linux.duke.edu/metadata/common}checksum")
                    if checksum.get("pkgid") == "YES")
    return hashlib.sha256("\n".join(pkgids).encode()).hexdigest()


def primary_href(repodir: Path) -> str:
    repomd = ET.parse(repodir / "repodata" / "repomd.xml").getroot()
    return location_href(next(d for d in repomd.findall(f"{REPO_NS}data") if d.get("type") == "primary"))


def floor(url: str) -> str:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    with urllib.request.urlopen(url, timeout=120) as response:
        while chunk := response.read(CHUNK_BYTES):
            total += len(decompressor.decompress(chunk))
    return f"{total} bytes"


def createrepo_c_package_set(url: str, skip: bool = False) -> str:
    import createrepo_c as cr
    pkgids: list[str] = []
    with tempfile.NamedTemporaryFile(suffix=".xml.gz") as spool:
        with urllib.request.urlopen(url, timeout=120) as response:
            while chunk := response.read(CHUNK_BYTES):
                spool.write(chunk)
        spool.flush()
        if skip:
            cr.xml_parse_primary(spool.name, newpkgcb=lambda *_: None, do_files=False)
            return "(every package skipped)"
        cr.xml_parse_primary(spool.name, pkgcb=lambda pkg: pkgids.append(pkg.pkgId or ""), do_files=False)
    return hashlib.sha256("\n".join(sorted(pkgids)).encode()).hexdigest()


def measure(mode: str, location: str, href: str, store_path: str) -> dict:
    """One measurement, in this (fresh) process."""
    repo = RepoSource("koji-1", location, immutable=True)
    started = time.perf_counter()
    if mode == "floor":
        result = floor(f"{location}/{href}")
    elif mode == "cold":
        result = read_package_set(repo)
    elif mode == "warm":
        result = repo_package_set(repo, EnvironmentStore(store_path))
    elif mode.startswith("createrepo_c"):
        result = createrepo_c_package_set(f"{location}/{href}", skip=mode == "createrepo_c_skip")
    else:
        result = elementtree_package_set(location)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "result": result}


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM: ru_maxrss would count the parent's, which
    getrusage carries across the fork and exec)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def in_child(mode: str, location: str, href: str, store_path: str) -> dict:
    output = subprocess.run([sys.executable, __file__, "--measure", mode, location, href, store_path],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs ({cpu})"


def run(repodir: Path, packages: int, seed: int, repeat: int) -> int:
    sys.path.insert(0, str(HERE))
    import make_repo_metadata
    if not (repodir / "repodata" / "repomd.xml").is_file():
        started = time.monotonic()
        make_repo_metadata.write_repo(repodir, packages, seed)
        print(f"wrote {packages} packages' metadata in {time.monotonic() - started:.1f} s")
    href = primary_href(repodir)
    size = (repodir / href).stat().st_size
    with gzip.open(repodir / href) as stream:
        open_size = sum(len(block) for block in iter(partial(stream.read, 16 * MB), b""))
    server, location = serve(repodir)
    with tempfile.TemporaryDirectory(prefix="repo-key-store-") as state:
        store_path = str(Path(state) / "environments.sqlite")
        try:
            repo_package_set(RepoSource("koji-1", location, immutable=True), EnvironmentStore(store_path))
            rows: dict[str, list[dict]] = {mode: [] for mode in MODES}
            for index in range(repeat):
                for mode in MODES if index == 0 else MODES[:-1]:
                    rows[mode].append(in_child(mode, location, href, store_path))
        finally:
            server.shutdown()
    print(f"{machine()}; primary {size / 1e6:.1f} MB gzip, {open_size / 1e6:.1f} MB decompressed")
    keys = {sample["result"] for mode in ("cold", "warm", "createrepo_c", "elementtree") for sample in rows[mode]}
    print(f"package set: {', '.join(sorted(keys))} ({'the same from every method' if len(keys) == 1 else 'DIFFERS'})")
    seconds = {mode: statistics.median(sample["seconds"] for sample in runs) for mode, runs in rows.items()}
    rss = {mode: max(sample["rss_mb"] for sample in runs) for mode, runs in rows.items()}
    print(f"{'':36} {'time (s)':>9} {'/ floor':>8} {'peak RSS (MB)':>14}")
    for mode in MODES:
        print(f"{LABELS[mode]:36} {seconds[mode]:9.3f} {seconds[mode] / seconds['floor']:7.2f}x {rss[mode]:14.0f}")
    goals = [(f"cold key <= {GOAL_RATIO:g}x the floor", seconds["cold"] <= GOAL_RATIO * seconds["floor"]),
             (f"warm key <= {GOAL_WARM_SECONDS * 1000:g} ms", seconds["warm"] <= GOAL_WARM_SECONDS),
             (f"peak RSS <= {GOAL_RSS_MB} MB (cold and warm key)", max(rss["cold"], rss["warm"]) <= GOAL_RSS_MB)]
    for goal, met in goals:
        print(f"goal: {goal}: {'met' if met else 'NOT met'}")
    return 0 if len(keys) == 1 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=70000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repo", type=Path, help="use (or write) the synthetic repo here, and keep it")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement but ElementTree's")
    parser.add_argument("--measure", nargs=4, metavar=("MODE", "LOCATION", "HREF", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    if args.repo:
        return run(args.repo, args.packages, args.seed, args.repeat)
    with tempfile.TemporaryDirectory(prefix="repo-key-") as tmp:
        return run(Path(tmp), args.packages, args.seed, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
