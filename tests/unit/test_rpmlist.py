"""The buildroot list the hub is sent: Koji RPMs with the hub's ids as kojid maps them, external
ones under their repo, image packages only under the operator's external repo (kojihub
BuildRoot._setList refuses them otherwise)."""

from __future__ import annotations

import pytest

from koji_adjutant.buildroot.installed import ORIGIN_IMAGE, ORIGIN_REPO, InstalledPackage
from koji_adjutant.errors import BuildrootError
from koji_adjutant.rpmlist import RepoContent, image_packages_repo, rpmlist

HASH = "ab" * 16


def package(name: str, origin: str, payloadhash: str = HASH) -> InstalledPackage:
    return InstalledPackage(name=name, version="1", release="1", epoch=None, arch="x86_64",
                            payloadhash=payloadhash, size=10, buildtime=1, installtime=2, origin=origin)


PACKAGES = [package("gcc", ORIGIN_IMAGE), package("libgreet-devel", ORIGIN_REPO), package("zlib", ORIGIN_REPO),
            package("gpg-pubkey", ORIGIN_REPO)]
CONTENT = RepoContent(internal={"libgreet-devel-1-1.x86_64": {"id": 77, "payloadhash": HASH}},
                      external={"zlib-1-1.x86_64": {"external_repo_id": 4, "external_repo_name": "centos-base"}})


def test_koji_rpms_carry_the_hubs_id_external_ones_their_repo():
    entries = rpmlist(PACKAGES, CONTENT)
    assert [e["name"] for e in entries] == ["libgreet-devel", "zlib"]
    assert entries[0]["id"] == 77 and "location" not in entries[0]
    assert entries[1]["location"] == 4 and "id" not in entries[1]


def test_a_koji_rpm_whose_file_differs_is_refused_as_kojid_does():
    content = RepoContent(internal={"libgreet-devel-1-1.x86_64": {"id": 77, "payloadhash": "cd" * 16}})
    with pytest.raises(BuildrootError) as caught:
        rpmlist([package("libgreet-devel", ORIGIN_REPO)], content)
    assert caught.value.message == (f"RPM: libgreet-devel-1-1.x86_64: payloadhash: {HASH} mismatch expected "
                                    f"{'cd' * 16} in rpmlist.jsonl")


@pytest.mark.parametrize("compat, warned", [(False, True), (True, False)])
def test_a_koji_rpm_missing_from_rpmlist_jsonl_is_sent_by_name(caplog, compat, warned):
    (entry,) = rpmlist([package("libgreet-devel", ORIGIN_REPO)], RepoContent(compat=compat))
    assert "id" not in entry
    assert ("libgreet-devel-1-1.x86_64 not found in rpmlist.jsonl" in caplog.text) is warned


def test_with_an_image_repo_the_images_packages_are_listed_under_it():
    entries = rpmlist(PACKAGES, CONTENT, image_repo="adjutant-image-packages")
    by_name = {e["name"]: e for e in entries}
    assert list(by_name) == ["gcc", "libgreet-devel", "zlib"]
    assert by_name["gcc"]["location"] == "adjutant-image-packages"
    assert set(by_name["gcc"]) == {"name", "version", "release", "epoch", "arch", "payloadhash", "size",
                                   "buildtime", "location"}
    assert by_name["zlib"]["location"] == 4 and by_name["libgreet-devel"]["id"] == 77


def test_a_missing_external_repo_is_said_before_any_build(mocker):
    session = mocker.Mock()
    session.getExternalRepo.return_value = None
    with pytest.raises(BuildrootError) as caught:
        image_packages_repo(session, "adjutant-image-packages")
    assert caught.value.message == ("[adjutant] image_packages_repo = adjutant-image-packages: the hub has no "
                                    "external repo of that name")
    assert "koji add-external-repo adjutant-image-packages" in caught.value.hint
    session.getExternalRepo.assert_called_once_with("adjutant-image-packages", strict=False)


def test_no_image_repo_asks_the_hub_nothing(mocker):
    session = mocker.Mock()
    assert image_packages_repo(session, None) is None
    session.getExternalRepo.assert_not_called()
