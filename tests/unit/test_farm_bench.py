"""bench/farm.py's pure parts: the stream of builds (farmstream.py) and what is read from the logs (farmmetrics.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # bench/ is not a package: its scripts import their siblings by name

import farmmetrics  # noqa: E402
import farmstream  # noqa: E402

EXTRAS = [f"bench-br-{number:04d}" for number in range(1, 31)]


def test_population_has_distinct_buildrequires_sets_within_the_range():
    packages = farmstream.population(20, EXTRAS, (3, 6), seed=1)
    assert [p.rank for p in packages] == list(range(1, 21))
    assert len({p.buildrequires for p in packages}) == 20
    assert all(3 <= len(p.buildrequires) <= 6 and set(p.buildrequires) <= set(EXTRAS) for p in packages)
    assert packages == farmstream.population(20, EXTRAS, (3, 6), seed=1)


def test_stream_is_skewed_numbers_releases_and_depends_on_the_seed_only():
    packages = farmstream.population(40, EXTRAS, (3, 6), seed=1)
    builds = farmstream.stream(packages, 2000, 1.1, seed=3)
    counts = {p.name: sum(b.package is p for b in builds) for p in packages}
    assert counts["farm-pkg001"] > 5 * counts["farm-pkg020"] > 0
    for package in packages:
        releases = [b.release for b in builds if b.package is package]
        assert releases == list(range(1, len(releases) + 1))
    assert builds == farmstream.stream(packages, 2000, 1.1, seed=3)
    assert builds != farmstream.stream(packages, 2000, 1.1, seed=4)


def test_zipf_weights_sum_to_one_and_fall_by_rank():
    weights = farmstream.zipf_weights(40, 1.1)
    assert sum(weights) == pytest.approx(1)
    assert weights[0] / weights[1] == pytest.approx(2 ** 1.1)


def test_one_builder_hits_every_build_but_each_package_s_first():
    packages = farmstream.population(3, EXTRAS, (3, 3), seed=1)
    builds = [farmstream.Build(i, packages[rank], 1) for i, rank in enumerate([0, 0, 1, 0, 2, 1])]
    assert farmstream.single_builder_hits(builds) == 3


def test_spec_asks_for_and_checks_each_buildrequires():
    package = farmstream.Package("farm-pkg007", 7, ("bench-br-0002", "bench-br-0009"))
    text = farmstream.spec_text(farmstream.Build(0, package, 4))
    assert "Release:        4\n" in text
    assert [line.split()[1] for line in text.splitlines() if line.startswith("BuildRequires:")] == \
        ["bench-br-0002", "bench-br-0009"]
    assert "test -d /usr/share/adjutant-bench/bench-br-0009\n" in text


STATE_LOG = """\
2026-12-03 17:19:52 - Start: dependency phase (offline, no network)
2026-12-03 17:19:55 - Start: installing the @build group
2026-12-03 17:20:26 - Finish: installing the @build group
2026-12-03 17:21:58 - Finish: dependency phase
2026-12-03 17:21:58 - Start: build phase (no network)
2026-12-03 17:22:04 - Start: dependency phase
2026-12-03 17:22:07 - Finish: dependency phase
2026-12-03 17:22:09 - Finish: build phase
"""


def test_dependency_seconds_adds_every_round():
    assert farmmetrics.dependency_seconds(STATE_LOG) == 126 + 3
    with pytest.raises(ValueError):
        farmmetrics.dependency_seconds("2026-12-03 17:19:52 - Start: dependency phase\n")


def test_layers_made_counts_dnf_runs_that_completed():
    made = "Installing:\n bench-bash\n\nInstalled:\n  bench-bash-1.0\n\nComplete!\n"
    reused = "[koji-adjutant] reusing cached buildroot adjutant-x-1: no dependency installation\n"
    assert farmmetrics.layers_made("header\n" + made + made + reused) == 2
    assert farmmetrics.layers_made("header\n" + reused + reused) == 0


_LINE = '127.0.0.1 - - [03/Dec/2026:17:07:23 +0000] "{} /v2/{} HTTP/1.1" {} {} "" "containers/5.23.1"'
ACCESS_LOG = [
    _LINE.format("GET", "farm-cache/environments/manifests/abc", 404, 96),
    _LINE.format("PUT", "farm-cache/environments/manifests/abc", 201, 0),
    _LINE.format("GET", "farm-cache/environments/manifests/abc", 200, 429),
    _LINE.format("GET", "farm-cache/environments/blobs/sha256:" + "a" * 64, 200, 1000),
    _LINE.format("GET", "koji-adjutant-buildroot/blobs/sha256:" + "b" * 64, 200, 5000),
    _LINE.format("HEAD", "farm-cache/environments/blobs/sha256:" + "a" * 64, 200, 1000),
]


def test_traffic_counts_the_cache_repository_only():
    found = farmmetrics.traffic(ACCESS_LOG, "farm-cache/environments", pushed_bytes=700)
    assert (found.pulled_bytes, found.pushes, found.pulls, found.misses) == (1000, 1, 1, 1)
    assert found.moved == 1700


def test_replay_counts_a_group_layer_per_builder_and_a_layer_per_package_and_builder():
    packages = farmstream.population(3, EXTRAS, (3, 3), seed=1)
    # builder 0 takes builds 0, 2, 4 (packages 0, 1, 2); builder 1 takes 1, 3, 5 (packages 0, 0, 1)
    builds = [farmstream.Build(i, packages[rank], 1) for i, rank in enumerate([0, 0, 1, 0, 2, 1])]
    replay = farmstream.replay_farm(builds, 2)
    assert (replay.local_makes, replay.shared_makes) == (3 + 1 + 2 + 1, 3 + 1)
    assert (replay.shared_pulls, replay.group_pulls) == (3, 1)
    assert farmstream.replay_farm(builds, 10).group_pulls == 5


def test_replay_kinds_says_what_each_builds_dependency_phase_does():
    packages = farmstream.population(3, EXTRAS, (3, 3), seed=1)
    builds = [farmstream.Build(i, packages[rank], 1) for i, rank in enumerate([0, 0, 1, 0, 2, 1])]
    kinds = farmstream.replay_kinds(builds, 2)
    assert kinds["local"] == {"made 2": 2, "made 1": 3, "hit": 1}
    assert kinds["shared"] == {"made 2": 1, "made 1": 2, "pulled": 2, "hit": 1}


def test_layers_pulled_counts_the_shared_caches_notes_only():
    pulled = ("[koji-adjutant] reusing cached buildroot adjutant-x-1, pulled from the shared cache "
              "127.0.0.1:5000/farm: no dependency installation\n")
    local = "[koji-adjutant] reusing cached buildroot adjutant-x-2: no dependency installation\n"
    assert farmmetrics.layers_pulled(pulled + local + pulled) == 2
    assert farmmetrics.layers_pulled(local) == 0


@pytest.mark.parametrize("made, pulled, kind", [(2, 0, "made 2"), (1, 1, "made 1"), (0, 1, "pulled"), (0, 0, "hit")])
def test_a_build_is_classed_by_what_its_dependency_phase_did(made, pulled, kind):
    assert farmmetrics.Outcome(None, 1, 0.0, 3.0, made, 2 - made, pulled).kind == kind
