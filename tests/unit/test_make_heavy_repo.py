"""bench/make_heavy_repo.py: sizes, the dependency DAG, names, determinism, and one small real run."""

from __future__ import annotations

import gzip
import random
import shutil
import xml.etree.ElementTree as ET

import pytest

from tests import benchscripts

mhr = benchscripts.load("make_heavy_repo")


def _reachable(plan) -> set[str]:
    seen: set[str] = set()
    todo = list(plan.build_group)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(plan.by_name[name].requires)
    return seen


def _assert_acyclic(plan) -> None:
    state: dict[str, int] = {}   # 1 = on the stack, 2 = done

    def visit(name: str) -> None:
        state[name] = 1
        for dep in plan.by_name[name].requires:
            assert state.get(dep) != 1, f"cycle through {name} -> {dep}"
            if dep not in state:
                visit(dep)
        state[name] = 2

    for package in plan.packages:
        if package.name not in state:
            visit(package.name)


# -- sizes -----------------------------------------------------------------------

@pytest.mark.parametrize("packages,installed_mb", [(150, 300), (12, 3), (40, 50), (225, 1000), (260, 80)])
@pytest.mark.parametrize("seed", [1, 2, 99])
def test_total_installed_size_hits_the_target(packages, installed_mb, seed):
    plan = mhr.make_plan(packages, installed_mb, seed, arch="x86_64")
    target = installed_mb * mhr.MIB
    assert abs(plan.total_bytes - target) <= 0.05 * target
    assert all(p.size >= mhr.MIN_PACKAGE_BYTES for p in plan.packages)


def test_sizes_are_skewed_like_a_buildroot():
    plan = mhr.make_plan(150, 300, 1, arch="x86_64")
    sizes = sorted((p.size for p in plan.packages), reverse=True)
    biggest = max(plan.packages, key=lambda p: p.size)
    assert biggest.name == "bench-gcc"
    assert sum(sizes[:10]) > 0.5 * plan.total_bytes          # a few large ones ...
    assert sizes[len(sizes) // 2] < 0.01 * plan.total_bytes   # ... and many small


def test_scale_sizes_is_exact_and_respects_the_minimum():
    sizes = mhr.scale_sizes([100.0, 1.0, 0.0001, 0.0, 50.0], 10_000, minimum=100)
    assert sum(sizes) == 10_000
    assert min(sizes) == 100
    assert sizes[0] > sizes[4] > sizes[1]
    assert mhr.scale_sizes([1.0, 1.0], 3, minimum=1) in ([2, 1], [1, 2])
    # Minimums that cannot fit: every package gets the minimum.
    assert mhr.scale_sizes([1.0] * 4, 100, minimum=50) == [50] * 4


def test_file_sizes_sum_to_the_package_size():
    rng = random.Random(0)
    for size in (1, 1000, mhr.FILE_BYTES * 3 + 7, 60 * mhr.MIB):
        parts = mhr.file_sizes(size, rng)
        assert sum(parts) == size
        assert 1 <= len(parts) <= mhr.MAX_FILES
        assert min(parts) >= 1


# -- the DAG and the groups ----------------------------------------------------------

@pytest.mark.parametrize("packages", [1, 2, 12, 150, 225, 300])
@pytest.mark.parametrize("seed", [1, 7])
def test_dag_is_acyclic_and_build_group_reaches_everything(packages, seed):
    plan = mhr.make_plan(packages, 100, seed, arch="x86_64")
    assert len(plan.packages) == packages
    for package in plan.packages:
        assert set(package.requires) <= set(plan.by_name), package.name
        assert package.name not in package.requires
    _assert_acyclic(plan)
    assert _reachable(plan) == set(plan.by_name)
    assert set(plan.srpm_group) <= set(plan.by_name) and plan.srpm_group


def test_groups_look_like_fedoras():
    plan = mhr.make_plan(150, 300, 1, arch="x86_64")
    assert plan.build_group == ["bench-" + name for name in mhr.BUILD_GROUP]
    assert plan.srpm_group == ["bench-" + name for name in mhr.SRPM_BUILD_GROUP]
    small = mhr.make_plan(12, 3, 1, arch="x86_64")
    assert 1 <= len(small.build_group) < 12


def test_names_are_unique_and_prefixed():
    for packages in (12, 150, 300):
        names = [p.name for p in mhr.make_plan(packages, 100, 1, arch="x86_64").packages]
        assert len(names) == len(set(names))
        assert all(name.startswith("bench-") for name in names)
    catalog = [name for name, _, _ in mhr.CATALOG]
    assert len(catalog) == len(set(catalog))


def test_extras_are_outside_every_group_and_leave_the_rest_alone():
    plain = mhr.make_plan(150, 300, 1, arch="x86_64")
    plan = mhr.make_plan(150, 300, 1, arch="x86_64", extra_packages=40, extra_mb=200)
    assert plan.packages == plain.packages and plan.build_group == plain.build_group
    assert [p.name for p in plan.extras] == [f"bench-br-{i:04d}" for i in range(1, 41)]
    assert all(not p.requires and p.arch == "x86_64" for p in plan.extras)
    assert abs(sum(p.size for p in plan.extras) - 200 * mhr.MIB) <= mhr.MIB
    assert _reachable(plan).isdisjoint(p.name for p in plan.extras)
    assert plan.by_name["bench-br-0001"] is plan.extras[0]


def test_most_packages_are_of_the_host_arch():
    plan = mhr.make_plan(150, 300, 1, arch="aarch64")
    arches = [p.arch for p in plan.packages]
    assert set(arches) == {"aarch64", "noarch"}
    assert 0 < arches.count("noarch") < 0.2 * len(arches)


def test_deterministic_for_a_seed_and_different_for_another():
    one = mhr.make_plan(150, 300, 5, arch="x86_64")
    assert one.packages == mhr.make_plan(150, 300, 5, arch="x86_64").packages
    other = mhr.make_plan(150, 300, 6, arch="x86_64")
    assert [p.name for p in one.packages] == [p.name for p in other.packages]
    assert [(p.size, p.requires) for p in one.packages] != [(p.size, p.requires) for p in other.packages]
    name = one.packages[0].name
    assert mhr.payload_rng(5, name).randbytes(64) == mhr.payload_rng(5, name).randbytes(64)
    assert mhr.payload_rng(5, name).randbytes(64) != mhr.payload_rng(6, name).randbytes(64)


def test_spec_owns_only_the_bench_directory_and_skips_brp_scripts(tmp_path):
    package = mhr.make_plan(150, 300, 1, arch="x86_64").by_name["bench-gcc"]
    text = mhr.spec_text(package, tmp_path / "payload")
    files = text.split("%files", 1)[1].split()
    assert files == ["%dir", "/usr/share/adjutant-bench", "/usr/share/adjutant-bench/bench-gcc"]
    for line in ("AutoReqProv:    no", "BuildArch:      x86_64", "%define __os_install_post %{nil}",
                 "%global debug_package %{nil}", "%define _build_id_links none"):
        assert line in text
    assert [line.split()[1] for line in text.splitlines() if line.startswith("Requires:")] == list(package.requires)
    assert "Provides:" not in text


def test_comps_lists_both_groups_as_mandatory():
    plan = mhr.make_plan(30, 10, 1, arch="x86_64")
    root = ET.fromstring(mhr.comps_xml(plan).encode())
    groups = {g.findtext("id"): [(r.text, r.get("type")) for r in g.iter("packagereq")] for g in root.iter("group")}
    assert groups["build"] == [(name, "mandatory") for name in plan.build_group]
    assert groups["srpm-build"] == [(name, "mandatory") for name in plan.srpm_group]


# -- OUTDIR ----------------------------------------------------------------------------

def test_refuses_a_non_empty_outdir_without_the_marker(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not empty"):
        mhr.prepare_outdir(tmp_path, {"seed": 1})
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_stale_outdir_is_cleared_of_its_own_files_only(tmp_path):
    assert mhr.prepare_outdir(tmp_path, {"seed": 1}) is None
    (tmp_path / "bench-x-1.0-1.bench.noarch.rpm").write_bytes(b"old")
    (tmp_path / "repodata").mkdir()
    (tmp_path / "notes.txt").write_text("user's")
    assert mhr.prepare_outdir(tmp_path, {"seed": 2}) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [mhr.MARKER, "notes.txt"]


# -- one small real run ------------------------------------------------------------------

def test_small_real_run(tmp_path, capsys):
    missing = [tool for tool in ("rpmbuild", mhr.CREATEREPO) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: the real generation run is not tested")
    outdir = tmp_path / "repo"
    assert mhr.main([str(outdir), "--packages", "12", "--installed-mb", "3", "--jobs", "2"]) == 0
    assert "packages: 12" in capsys.readouterr().out

    plan = mhr.make_plan(12, 3, 1)
    rpms = sorted(p.name for p in outdir.glob("*.rpm"))
    assert rpms == sorted(mhr.rpm_filename(p) for p in plan.packages)

    ns = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}
    repomd = ET.parse(outdir / "repodata" / "repomd.xml").getroot()
    locations = {d.get("type"): d.find("repo:location", ns).get("href") for d in repomd.findall("repo:data", ns)}
    assert {"primary", "group"} <= set(locations)
    comps = ET.parse(outdir / locations["group"]).getroot()
    build = next(g for g in comps.iter("group") if g.findtext("id") == "build")
    assert [r.text for r in build.iter("packagereq")] == plan.build_group
    with gzip.open(outdir / locations["primary"]) as primary:
        names = sorted(p.findtext("common:name", namespaces=ns)
                       for p in ET.parse(primary).getroot().findall("common:package", ns))
    assert names == sorted(p.name for p in plan.packages)

    # A rerun with the same options leaves the repo alone.
    stamp = (outdir / "repodata" / "repomd.xml").stat().st_mtime_ns
    assert mhr.main([str(outdir), "--packages", "12", "--installed-mb", "3"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (outdir / "repodata" / "repomd.xml").stat().st_mtime_ns == stamp
