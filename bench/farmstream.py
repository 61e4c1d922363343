"""The packages and the stream of builds of bench/farm.py (a sibling module).

A population of P packages, each with a BuildRequires set of its own drawn
from the heavy repo's extra packages (make_heavy_repo.py --extra-packages),
so that each package needs the group layer plus a BuildRequires layer of its
own. Popularity is Zipf-like: the package of rank k is drawn with weight
1/k**s, so a few packages are rebuilt often and most rarely. The stream of M
builds is drawn from it with the seed, the same for every mode; each build is
a new release of its package (a new SRPM, the same BuildRequires), so it can
reuse layers but never a remembered resolution.
"""

from __future__ import annotations

import random
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import host_rpmbuild

#: Where the extra packages put their files (make_heavy_repo.PAYLOAD_ROOT).
PAYLOAD_ROOT = "/usr/share/adjutant-bench"


@dataclass(frozen=True)
class Package:
    name: str
    rank: int                        # 1 is the most popular
    buildrequires: tuple[str, ...]


@dataclass(frozen=True)
class Build:
    index: int                       # its place in the stream, from 0
    package: Package
    release: int                     # the how-manieth build of its package, from 1


def population(count: int, extras: list[str], per_package: tuple[int, int], seed: int) -> list[Package]:
    """``count`` packages, each with a distinct BuildRequires set of ``per_package`` (least, most)
    names of ``extras``."""
    rng = random.Random(f"farm-population:{seed}")
    seen: set[frozenset[str]] = set()
    packages = []
    while len(packages) < count:
        chosen = frozenset(rng.sample(extras, rng.randint(*per_package)))
        if chosen in seen:
            continue
        seen.add(chosen)
        rank = len(packages) + 1
        packages.append(Package(f"farm-pkg{rank:03d}", rank, tuple(sorted(chosen))))
    return packages


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Popularity of ranks 1..count: 1/k**exponent, normalised."""
    weights = [1 / rank ** exponent for rank in range(1, count + 1)]
    total = sum(weights)
    return [weight / total for weight in weights]


def stream(packages: list[Package], builds: int, exponent: float, seed: int) -> list[Build]:
    rng = random.Random(f"farm-stream:{seed}")
    drawn = rng.choices(packages, weights=zipf_weights(len(packages), exponent), k=builds)
    releases: Counter[str] = Counter()
    result = []
    for index, package in enumerate(drawn):
        releases[package.name] += 1
        result.append(Build(index, package, releases[package.name]))
    return result


def describe_popularity(count: int, exponent: float) -> str:
    """The distribution in a line: the shares of the top packages and of the bottom half."""
    weights = zipf_weights(count, exponent)
    return (f"Zipf s={exponent:g} over {count} packages: the most popular draws {weights[0]:.0%} of builds, "
            f"the top 5 {sum(weights[:5]):.0%}, the bottom half {sum(weights[count // 2:]):.0%} "
            f"({weights[-1]:.1%} each at the least)")


def single_builder_hits(builds: list[Build]) -> int:
    """Hits one builder with every build of the stream would see, by replaying the stream through
    a set of the layers it holds (no eviction): a build hits when its package was built before,
    as the group layer was then made too."""
    seen: set[str] = set()
    hits = 0
    for build in builds:
        hits += build.package.name in seen
        seen.add(build.package.name)
    return hits


@dataclass(frozen=True)
class Replay:
    """Layers a farm needs for a stream when builders take builds in turn and nothing is evicted."""

    builders: int
    builds: int
    local_makes: int      # per-builder caches: each builder makes each layer it needs once
    shared_makes: int     # an ideal shared cache: each layer made once in the farm
    shared_pulls: int     # ... and pulled once by every other builder that needs it
    group_pulls: int      # of which group layers


def replay_farm(builds: list[Build], builders: int) -> Replay:
    """A stream through ``builders`` builders in turn (build i on builder i mod N), counting the
    layers made and pulled: a group layer per builder, a BuildRequires layer per package and builder."""
    needed: list[set[str]] = [set() for _ in range(builders)]
    for build in builds:
        needed[build.index % builders].add(build.package.name)
    used = [held for held in needed if held]
    local = sum(len(held) + 1 for held in used)
    shared = len(set().union(*used)) + 1 if used else 0
    return Replay(builders, len(builds), local, shared, local - shared, len(used) - 1 if used else 0)


def replay_kinds(builds: list[Build], builders: int) -> dict[str, Counter[str]]:
    """The same replay, build by build: what each build's dependency phase does under per-builder
    caches ("local") and an ideal shared cache ("shared"), in the kinds of farmmetrics.Outcome.kind."""
    held: list[set[str]] = [set() for _ in range(builders)]
    in_farm: set[str] = set()
    kinds: dict[str, Counter[str]] = {"local": Counter(), "shared": Counter()}
    for build in builds:
        mine, name = held[build.index % builders], build.package.name
        if name in mine:
            kinds["local"]["hit"] += 1
            kinds["shared"]["hit"] += 1
            continue
        kinds["local"]["made 1" if mine else "made 2"] += 1
        kinds["shared"]["pulled" if name in in_farm else "made 2" if not in_farm else "made 1"] += 1
        mine.add(name)
        in_farm.add(name)
    return kinds


def spec_text(build: Build) -> str:
    """A tiny noarch package whose cost is all in its buildroot: it checks that each of its
    BuildRequires is installed, and writes one file."""
    package = build.package
    requires = "\n".join(f"BuildRequires:  {name}" for name in package.buildrequires)
    checks = "\n".join(f"test -d {PAYLOAD_ROOT}/{name}" for name in package.buildrequires)
    return textwrap.dedent("""\
        Name:           {name}
        Version:        1.0
        Release:        {release}
        Summary:        A package of the farm benchmark (koji-adjutant)
        License:        MIT
        BuildArch:      noarch
        AutoReqProv:    no
        {requires}

        %description
        Built by bench/farm.py in a buildroot of the synthetic heavy repo.

        %prep

        %build
        {checks}
        echo "{name}-{release}" > {name}.txt

        %install
        install -D -m 0644 {name}.txt %{{buildroot}}%{{_datadir}}/{name}/{name}.txt

        %files
        %{{_datadir}}/{name}/
        """).format(name=package.name, release=build.release, requires=requires, checks=checks)


def make_srpm(build: Build, workdir: Path) -> Path:
    """The build's SRPM, made with the host's rpmbuild."""
    directory = workdir / f"{build.package.name}-{build.release}"
    directory.mkdir(parents=True)
    spec = directory / f"{build.package.name}.spec"
    spec.write_text(spec_text(build))
    srpm, _ = host_rpmbuild(spec, directory / "rpmbuild", mode="-bs")
    return srpm
