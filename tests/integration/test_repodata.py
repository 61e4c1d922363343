"""repodata.make_repodata with the real createrepo_c and mergerepo_c: a tag's packages
through repoInit's pkglist and toplink, recycled metadata, and external repos merged."""

from __future__ import annotations

import gzip
import os
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from koji_adjutant.repodata import CREATEREPO, ArchInputs, ExternalRepo, make_repodata

_NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}


def build_rpm(base: Path, name: str) -> Path:
    spec = base / f"{name}.spec"
    spec.write_text(textwrap.dedent(f"""\
        Name: {name}
        Version: 1.0
        Release: 1
        Summary: repodata test package
        License: MIT
        BuildArch: noarch
        %description
        repodata test package
        %files
        """))
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {base / 'rpmbuild'}", str(spec)],
                   check=True, capture_output=True)
    return base / "rpmbuild" / "RPMS" / "noarch" / f"{name}-1.0-1.noarch.rpm"


@pytest.fixture
def tag_repo(tmp_path):
    """A topdir with two packages and the arch dir repoInit would write for them."""
    topdir = tmp_path / "koji"
    lines = []
    for name in ("alpha", "beta"):
        dest = topdir / "packages" / name / "1.0" / "1" / "noarch" / f"{name}-1.0-1.noarch.rpm"
        dest.parent.mkdir(parents=True)
        build_rpm(tmp_path, name).rename(dest)
        lines.append(f"toplink/packages/{name}/1.0/1/noarch/{dest.name}\n")
    repodir = topdir / "repos" / "f40-build" / "7"
    archdir = repodir / "noarch-test"
    archdir.mkdir(parents=True)
    os.symlink(os.path.relpath(topdir, archdir), archdir / "toplink")
    (archdir / "pkglist").write_text("".join(lines))
    (archdir / "blocklist").write_text("blocked-tool\n")
    (repodir / "groups").mkdir()
    (repodir / "groups" / "comps.xml").write_text(
        '<?xml version="1.0"?>\n<comps><group><id>build</id><name>build</name><description/>'
        '<default>true</default><uservisible>true</uservisible><packagelist>'
        '<packagereq type="mandatory">alpha</packagereq></packagelist></group></comps>\n')
    return ArchInputs.read(repodir, "noarch-test")


def metadata(datadir: Path) -> dict[str, Path]:
    """type -> file, as repomd.xml lists them."""
    repomd = ET.parse(datadir / "repomd.xml")
    return {data.get("type"): datadir.parent / data.find("repo:location", _NS).get("href")
            for data in repomd.findall("repo:data", _NS)}


def primary(datadir: Path) -> dict[str, str]:
    """name -> location of the packages in the primary metadata."""
    root = ET.fromstring(gzip.decompress(metadata(datadir)["primary"].read_bytes()))
    return {pkg.findtext("common:name", namespaces=_NS): pkg.find("common:location", _NS).get("href")
            for pkg in root.findall("common:package", _NS)}


def test_tag_packages_and_groups_become_repodata(tag_repo, tmp_path):
    datadir = make_repodata(tag_repo, "noarch-test", tmp_path / "work", tmp_path / "createrepo.log", repo_id=7,
                            old_repodata=None, external=[], update=True, skip_stat=True)
    assert {"primary", "filelists", "other", "group", "primary_db"} <= set(metadata(datadir))
    assert primary(datadir) == {"alpha": "toplink/packages/alpha/1.0/1/noarch/alpha-1.0-1.noarch.rpm",
                        "beta": "toplink/packages/beta/1.0/1/noarch/beta-1.0-1.noarch.rpm"}
    assert "--update" not in (tmp_path / "createrepo.log").read_text()


def test_old_repodata_is_recycled_with_update(tag_repo, tmp_path):
    first = make_repodata(tag_repo, "noarch-test", tmp_path / "one", tmp_path / "one.log", repo_id=7,
                          old_repodata=None, external=[], update=True, skip_stat=True)
    second = make_repodata(tag_repo, "noarch-test", tmp_path / "two", tmp_path / "two.log", repo_id=8,
                           old_repodata=first, external=[], update=True, skip_stat=True)
    assert "--update --skip-stat" in (tmp_path / "two.log").read_text()
    assert primary(second) == primary(first)
    # a missing old repo is only a warning: the metadata is made from scratch
    make_repodata(tag_repo, "noarch-test", tmp_path / "three", tmp_path / "three.log", repo_id=9,
                  old_repodata=tmp_path / "gone", external=[], update=True, skip_stat=True)
    assert "--update" not in (tmp_path / "three.log").read_text()


def test_empty_tag_makes_an_empty_repo_marked_as_such(tag_repo, tmp_path):
    tag_repo.pkglist.write_text("")
    inputs = ArchInputs.read(tag_repo.archdir.parent, "noarch-test")
    datadir = make_repodata(inputs, "noarch-test", tmp_path / "work", tmp_path / "createrepo.log", repo_id=7,
                            old_repodata=None, external=[], update=True, skip_stat=True)
    assert (datadir / "EMPTY_REPO").read_text().startswith("This repo is empty")
    assert primary(datadir) == {} and "group" in metadata(datadir)          # the groups all the same


def test_external_repos_are_merged_with_origins_and_blocklist(tag_repo, tmp_path):
    external = tmp_path / "external"
    external.mkdir()
    for name in ("ext-tool", "blocked-tool"):
        build_rpm(tmp_path, name).rename(external / f"{name}-1.0-1.noarch.rpm")
    subprocess.run([CREATEREPO, "-q", str(external)], check=True)  # what mergerepo_c beside it reads
    repos = [ExternalRepo("ext", f"file://{external}/", "koji")]

    datadir = make_repodata(tag_repo, "noarch-test", tmp_path / "work", tmp_path / "createrepo.log", repo_id=7,
                            old_repodata=None, external=repos, update=True, skip_stat=True)

    assert sorted(primary(datadir)) == ["alpha", "beta", "ext-tool"]          # blocked-tool is blocked
    origins = gzip.decompress(metadata(datadir)["origin"].read_bytes()).decode().splitlines()
    by_package = dict(line.split("\t")[:2] for line in origins)
    assert by_package["ext-tool-1.0-1.noarch"] == f"file://{external}/"
    assert by_package["alpha-1.0-1.noarch"] == f"file://{tmp_path / 'work' / 'repo_7_premerge'}/"
    assert "mergerepo_c --koji -a noarch-test" in (tmp_path / "createrepo.log").read_text()
