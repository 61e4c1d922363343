"""bench/make_repo_metadata.py: valid createrepo metadata (read by createrepo_c and dnf), Fedora's shape,
determined by the seed."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import createrepo_c as cr
import pytest

from koji_adjutant.repomd import REPO_NS
from tests import benchscripts

mrm = benchscripts.load("make_repo_metadata")
PACKAGES = 200


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("synthetic")
    assert mrm.main([str(directory), "--packages", str(PACKAGES), "--seed", "3"]) == 0
    return directory


def _records(repo: Path) -> dict[str, ET.Element]:
    root = ET.parse(repo / "repodata" / "repomd.xml").getroot()
    return {data.get("type"): data for data in root.findall(f"{REPO_NS}data")}


def _parsed(repo: Path) -> dict[str, list]:
    """Every package of each metadata file, as createrepo_c's own parsers read them."""
    records = _records(repo)
    found: dict[str, list] = {"primary": [], "filelists": [], "other": []}
    path = {kind: str(repo / records[kind].find(f"{REPO_NS}location").get("href")) for kind in found}
    cr.xml_parse_primary(path["primary"], pkgcb=found["primary"].append, do_files=True)
    cr.xml_parse_filelists(path["filelists"], newpkgcb=None, pkgcb=found["filelists"].append,
                           warningcb=None)
    cr.xml_parse_other(path["other"], newpkgcb=None, pkgcb=found["other"].append, warningcb=None)
    return found


def test_repomd_lists_each_file_with_its_right_checksums_and_sizes(repo):
    records = _records(repo)
    assert set(records) == {"primary", "filelists", "other"}
    for kind, data in records.items():
        href = data.find(f"{REPO_NS}location").get("href")
        raw = (repo / href).read_bytes()
        opened = gzip.decompress(raw)
        assert href.startswith("repodata/") and href.endswith(f"-{kind}.xml.gz")
        assert data.findtext(f"{REPO_NS}checksum") == hashlib.sha256(raw).hexdigest()
        assert data.findtext(f"{REPO_NS}open-checksum") == hashlib.sha256(opened).hexdigest()
        assert int(data.findtext(f"{REPO_NS}size")) == len(raw)
        assert int(data.findtext(f"{REPO_NS}open-size")) == len(opened)


def test_createrepo_c_reads_every_package_from_each_file(repo):
    found = _parsed(repo)
    assert all(len(packages) == PACKAGES for packages in found.values())
    pkgids = [pkg.pkgId for pkg in found["primary"]]
    assert len(set(pkgids)) == PACKAGES and all(len(p) == 64 for p in pkgids)
    assert [pkg.pkgId for pkg in found["filelists"]] == pkgids == [pkg.pkgId for pkg in found["other"]]


def test_packages_look_like_fedoras(repo):
    primary = _parsed(repo)["primary"]
    names = [pkg.name for pkg in primary]
    assert len(set(names)) == len(names)
    prefixes = Counter(name.split("-")[0] for name in names)
    assert prefixes["rust"] and prefixes["python3"] and prefixes["perl"]
    assert {pkg.arch for pkg in primary} == {"x86_64", "noarch"}
    assert all(pkg.rpm_sourcerpm.endswith(".src.rpm") and pkg.location_href.startswith("Packages/")
               for pkg in primary)
    assert sum(len(pkg.provides) for pkg in primary) / PACKAGES >= 2
    assert sum(len(pkg.requires) for pkg in primary) / PACKAGES >= 3
    # primary keeps the files of /usr/bin and /etc, as createrepo does; filelists has all of them
    primary_files = {d + f for pkg in primary for _, d, f, *_ in pkg.files}
    assert primary_files and all(path.startswith(("/usr/bin/", "/etc/")) for path in primary_files)
    all_files = {d + f for pkg in _parsed(repo)["filelists"] for _, d, f, *_ in pkg.files}
    assert primary_files < all_files


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_packages(tmp_path):
    def files(directory: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (directory / "repodata").iterdir()}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        mrm.write_repo(tmp_path / name, packages=50, seed=seed)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a").keys() != files(tmp_path / "c").keys()


@pytest.mark.skipif(shutil.which("dnf") is None, reason="dnf is not installed")
def test_dnf_reads_the_repo(repo, tmp_path):
    root = tmp_path / "root"
    result = subprocess.run(
        ["dnf", "-q", f"--installroot={root}", f"--setopt=cachedir={tmp_path / 'cache'}", "--setopt=reposdir=/dev/null",
         "--releasever=41", f"--repofrompath=synthetic,file://{repo}", "--repo=synthetic",
         "repoquery", "--qf", "%{name}"], check=True, capture_output=True, text=True)
    assert len(set(result.stdout.split())) == PACKAGES
