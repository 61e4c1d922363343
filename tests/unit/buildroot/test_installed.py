"""Parsing the init script's list-installed output, and the files and hub entries made from it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from koji_adjutant.buildroot.installed import (
    ORIGIN_IMAGE,
    ORIGIN_REPO,
    InstalledPackage,
    parse_rpm_list,
    write_installed,
)
from koji_adjutant.errors import BuildrootError


def row(*fields: str) -> str:
    return "\t".join(fields) + "\n"


# name, version, release, epoch, arch, sigmd5, size, buildtime, installtime (the --qf of list-installed)
SAMPLE = (
    row("zlib-ng-compat", "2.1.6", "3.fc40", "(none)", "x86_64", "0123abcd", "110000", "1710000003", "1720000003")
    + row("gpg-pubkey", "a15b79cc", "63d04c2c", "(none)", "(none)", "(none)", "0", "1674595372", "1720000000")
    + "\n"
    + row("perl-libs", "5.38.2", "506.fc40", "4", "x86_64", "feedbeef", "10123456", "1710000001", "1720000001")
    + row("bash", "5.2.26", "3.fc40", "(none)", "x86_64", "deadbeef", "8123456", "1710000000", "1720000000")
    + row("fedora-release-common", "40", "39", "0", "noarch", "(none)", "19000", "1710000002", "1720000002")
)

BASH = InstalledPackage(name="bash", version="5.2.26", release="3.fc40", epoch=None, arch="x86_64",
                        payloadhash="deadbeef", size=8123456, buildtime=1710000000, installtime=1720000000,
                        origin=ORIGIN_IMAGE)
FEDORA_RELEASE = InstalledPackage(name="fedora-release-common", version="40", release="39", epoch=0,
                                  arch="noarch", payloadhash="", size=19000, buildtime=1710000002,
                                  installtime=1720000002, origin=ORIGIN_REPO)
PERL_LIBS = InstalledPackage(name="perl-libs", version="5.38.2", release="506.fc40", epoch=4, arch="x86_64",
                             payloadhash="feedbeef", size=10123456, buildtime=1710000001, installtime=1720000001,
                             origin=ORIGIN_IMAGE)
ZLIB = InstalledPackage(name="zlib-ng-compat", version="2.1.6", release="3.fc40", epoch=None, arch="x86_64",
                        payloadhash="0123abcd", size=110000, buildtime=1710000003, installtime=1720000003,
                        origin=ORIGIN_REPO)

IMAGE_NEVRAS = frozenset({"bash-5.2.26-3.fc40.x86_64", "perl-libs-4:5.38.2-506.fc40.x86_64",
                          # not the same NEVRA as the installed one (epoch 0 is written out)
                          "fedora-release-common-40-39.noarch"})


def test_parse_sample():
    assert parse_rpm_list(SAMPLE, IMAGE_NEVRAS) == [BASH, FEDORA_RELEASE, PERL_LIBS, ZLIB]


def test_without_image_nevras_everything_is_from_the_repos():
    packages = parse_rpm_list(SAMPLE)
    assert [p.origin for p in packages] == [ORIGIN_REPO] * 4


def test_gpg_pubkey_and_pseudo_packages_are_skipped():
    names = [p.name for p in parse_rpm_list(SAMPLE + row("weird", "1", "1", "(none)", "(none)", "(none)", "0",
                                                          "1", "1"))]
    assert "gpg-pubkey" not in names and "weird" not in names
    assert len(names) == 4


def test_epoch_none_vs_int():
    by_name = {p.name: p for p in parse_rpm_list(SAMPLE)}
    assert by_name["bash"].epoch is None
    assert by_name["perl-libs"].epoch == 4 and isinstance(by_name["perl-libs"].epoch, int)
    assert by_name["fedora-release-common"].epoch == 0


def test_nevra():
    assert BASH.nevra == "bash-5.2.26-3.fc40.x86_64"
    assert PERL_LIBS.nevra == "perl-libs-4:5.38.2-506.fc40.x86_64"
    assert FEDORA_RELEASE.nevra == "fedora-release-common-0:40-39.noarch"


def test_origin_is_decided_by_the_whole_nevra():
    other_release = frozenset({"bash-5.2.26-4.fc40.x86_64", "perl-libs-5.38.2-506.fc40.x86_64"})
    assert all(p.origin == ORIGIN_REPO for p in parse_rpm_list(SAMPLE, other_release))


def test_sorted_by_nevra():
    lines = SAMPLE.splitlines(keepends=True)
    for shuffled in (lines, lines[::-1], lines[2:] + lines[:2]):
        nevras = [p.nevra for p in parse_rpm_list("".join(shuffled))]
        assert nevras == sorted(nevras)
        assert nevras[0].startswith("bash-") and nevras[-1].startswith("zlib-ng-compat-")


def test_empty_output():
    assert parse_rpm_list("") == []
    assert parse_rpm_list("\n  \n") == []


@pytest.mark.parametrize("line", [
    "bash\t5.2.26\t3.fc40\t(none)\tx86_64\tdeadbeef\t8123456\t1710000000",
    "bash\t5.2.26\t3.fc40\t(none)\tx86_64\tdeadbeef\t8123456\t1710000000\t1\textra",
    "bash 5.2.26 3.fc40 (none) x86_64 deadbeef 8123456 1710000000 1720000000",
    "error: rpmdb: BDB0113 Thread/process failed",
])
def test_malformed_line(line):
    with pytest.raises(BuildrootError) as caught:
        parse_rpm_list(SAMPLE + line + "\n")
    assert caught.value.message == f"unexpected line in the installed package list: {line!r}"


@pytest.mark.parametrize("line", [
    "bash\t5.2.26\t3.fc40\tx\tx86_64\tdeadbeef\t8123456\t1710000000\t1720000000",
    "bash\t5.2.26\t3.fc40\t(none)\tx86_64\tdeadbeef\t(none)\t1710000000\t1720000000",
])
def test_malformed_number(line):
    with pytest.raises(BuildrootError, match="unexpected line"):
        parse_rpm_list(line + "\n")


def test_rpmlist_entry_has_exactly_the_hub_keys():
    entry = PERL_LIBS.rpmlist_entry()
    assert entry == {"name": "perl-libs", "version": "5.38.2", "release": "506.fc40", "epoch": 4,
                     "arch": "x86_64", "payloadhash": "feedbeef", "size": 10123456, "buildtime": 1710000001}
    assert list(entry) == ["name", "version", "release", "epoch", "arch", "payloadhash", "size", "buildtime"]
    assert BASH.rpmlist_entry()["epoch"] is None


def test_write_installed(tmp_path):
    packages = parse_rpm_list(SAMPLE, IMAGE_NEVRAS)
    text_path, json_path = write_installed(packages, tmp_path)
    assert (text_path, json_path) == (tmp_path / "installed_pkgs.log", tmp_path / "installed_pkgs.json")
    assert text_path.read_text() == (
        "bash-5.2.26-3.fc40.x86_64 1710000000 8123456 deadbeef 1720000000 image\n"
        "fedora-release-common-0:40-39.noarch 1710000002 19000 (none) 1720000002 repo\n"
        "perl-libs-4:5.38.2-506.fc40.x86_64 1710000001 10123456 feedbeef 1720000001 image\n"
        "zlib-ng-compat-2.1.6-3.fc40.x86_64 1710000003 110000 0123abcd 1720000003 repo\n")
    data = json.loads(json_path.read_text())
    assert data == [dataclasses.asdict(p) for p in packages]
    assert [InstalledPackage(**item) for item in data] == packages
    assert data[0] == {"name": "bash", "version": "5.2.26", "release": "3.fc40", "epoch": None, "arch": "x86_64",
                       "payloadhash": "deadbeef", "size": 8123456, "buildtime": 1710000000,
                       "installtime": 1720000000, "origin": "image"}
    assert json_path.read_text().endswith("]\n")


def test_write_installed_empty(tmp_path):
    text_path, json_path = write_installed([], tmp_path)
    assert text_path.read_text() == ""
    assert json.loads(json_path.read_text()) == []


def test_write_installed_replaces_old_files(tmp_path):
    write_installed([BASH, ZLIB], tmp_path)
    text_path, json_path = write_installed([ZLIB], tmp_path)
    assert text_path.read_text().count("\n") == 1
    assert len(json.loads(json_path.read_text())) == 1
