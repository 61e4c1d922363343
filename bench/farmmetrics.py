"""What bench/farm.py measures, from what the farm leaves behind (a sibling module).

Per build, from the logs the daemon uploaded to the hub: the dependency
phase's time from state.log (its "Start:/Finish: dependency phase" lines,
stamped to the second, so each build's figure is off by under a second but
their sum is not biased), and whether it made a layer, from root.log (the
runner notes each layer it reuses, cached here or pulled from the shared
cache; a layer it makes leaves dnf's output instead). Per mode, from the
registry: the bytes its blob storage grew by (what builders pushed) and the
bytes of the blobs it served (its access log), for the shared cache's
repository only, not the base image's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from farmstream import Build

_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) - "
_DEPENDENCIES = re.compile(_STAMP + r"(Start|Finish): dependency phase")
#: The runner's note for each layer it pulled from the shared cache (runner._note_reuse).
_PULLED = re.compile(r"\[koji-adjutant\] reusing cached buildroot \S+, pulled from the shared cache \S+: ")
#: The lines of a package-manager step that made a layer: dnf's summary of what it installed.
_INSTALLED = re.compile(r"^Installed:$|^Complete!$", re.MULTILINE)
#: An access log line (combined format) of a blob the registry served.
_BLOB_GET = re.compile(r'"GET /v2/(\S+)/blobs/sha256:[0-9a-f]+ HTTP/[\d.]+" 200 (\d+) ')
_MANIFEST = re.compile(r'"(GET|HEAD|PUT) /v2/(\S+)/manifests/\S+ HTTP/[\d.]+" (\d{3}) ')


def dependency_seconds(state_log: str) -> float:
    """The dependency phase of one build (all of its rounds), from state.log."""
    total, started = 0.0, None
    for stamp, edge in _DEPENDENCIES.findall(state_log):
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp()
        if edge == "Start":
            started = when
        elif started is not None:
            total, started = total + when - started, None
    if started is not None:
        raise ValueError("state.log has a dependency phase that never finished")
    return total


def layers_made(root_log: str) -> int:
    """Layers the build made: each package-manager step that installed something ends with dnf's
    "Complete!"; a layer reused or pulled leaves only the runner's note."""
    return root_log.count("\nComplete!\n")


def layers_pulled(root_log: str) -> int:
    """Layers the build pulled from the shared cache."""
    return len(_PULLED.findall(root_log))


@dataclass
class Outcome:
    """One build as the farm ran it."""

    build: Build
    task_id: int
    finished: float        # time.monotonic() when the scheduler saw it done
    dependency_seconds: float
    made: int              # layers made for this build
    reused: int            # layers it found in its store or pulled from the shared cache
    pulled: int = 0        # of which pulled

    @property
    def hit(self) -> bool:
        return self.made == 0

    @property
    def kind(self) -> str:
        """What its dependency phase did, for the table of costs."""
        if self.made:
            return f"made {self.made}"
        return "pulled" if self.pulled else "hit"


@dataclass
class Traffic:
    """What the shared cache's repository of the registry moved."""

    pushed_bytes: int = 0      # growth of the registry's blob storage
    pulled_bytes: int = 0      # blob bytes served
    pushes: int = 0            # manifests written: layers shared
    pulls: int = 0             # manifests served: layers fetched (each then checked)
    misses: int = 0            # manifests asked for and not there

    @property
    def moved(self) -> int:
        return self.pushed_bytes + self.pulled_bytes


def blob_bytes(storage: Path) -> int:
    """Bytes of every blob the registry stores (docker-registry's filesystem layout)."""
    blobs = storage / "docker" / "registry" / "v2" / "blobs"
    return sum(path.stat().st_size for path in blobs.rglob("data") if path.is_file()) if blobs.exists() else 0


def traffic(access_log: Iterable[str], repository: str, pushed_bytes: int) -> Traffic:
    """The shared cache's traffic from the registry's access log lines of one mode."""
    found = Traffic(pushed_bytes=pushed_bytes)
    for line in access_log:
        blob = _BLOB_GET.search(line)
        if blob and blob.group(1) == repository:
            found.pulled_bytes += int(blob.group(2))
            continue
        manifest = _MANIFEST.search(line)
        if manifest is None or manifest.group(2) != repository:
            continue
        method, status = manifest.group(1), manifest.group(3)
        if method == "PUT" and status == "201":
            found.pushes += 1
        elif method == "GET" and status == "200":
            found.pulls += 1
        elif status == "404":
            found.misses += 1
    return found


@dataclass
class ModeResult:
    mode: str
    outcomes: list[Outcome]
    wall_seconds: float
    traffic: Traffic | None = None          # None: no registry in this mode
    #: layers each builder's store holds at the end, by origin ("built" or the registry)
    origins: dict[str, int] = field(default_factory=dict)
    #: seconds spent emptying stores between builds (the no-cache mode)
    clean_seconds: float = 0.0
    #: pulled layers a builder refused (sharedcache.SharedCache._refusal) and made itself
    refused: int = 0
    #: bytes each layer held at the end adds on disk, by kind ("group", "buildrequires")
    layer_sizes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def hits(self) -> int:
        return sum(outcome.hit for outcome in self.outcomes)

    @property
    def hit_rate(self) -> float:
        return self.hits / len(self.outcomes)

    @property
    def dependency_seconds(self) -> float:
        return sum(outcome.dependency_seconds for outcome in self.outcomes)

    @property
    def per_minute(self) -> float:
        return len(self.outcomes) / self.wall_seconds * 60

    @property
    def layers_made(self) -> int:
        return sum(outcome.made for outcome in self.outcomes)
