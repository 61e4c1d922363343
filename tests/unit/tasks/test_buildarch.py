"""kojid's rpmdiff hashes of the noarch RPMs a buildArch made (noarch_rpmdiff.json), on RPMs
built with the host's rpmbuild."""

from __future__ import annotations

import koji.rpmdiff
import pytest
from noarchrpms import build_noarch_copies

from koji_adjutant.errors import BuildError
from koji_adjutant.tasks.buildarch import noarch_rpmdiff

ARCHES = ["x86_64", "i686"]


@pytest.fixture(scope="module")
def same(tmp_path_factory):
    return build_noarch_copies(tmp_path_factory.mktemp("same"), "same", ARCHES, arch_dependent=False)


@pytest.fixture(scope="module")
def differing(tmp_path_factory):
    return build_noarch_copies(tmp_path_factory.mktemp("differing"), "differing", ARCHES, arch_dependent=True)


def test_only_noarch_rpms_are_hashed_by_file_name(same):
    arch_rpm = same["i686"].parent / "same-1.0-1.i686.rpm"
    assert arch_rpm.is_file()
    assert list(noarch_rpmdiff([arch_rpm, same["i686"]])) == ["same-data-1.0-1.noarch.rpm"]
    assert noarch_rpmdiff([arch_rpm]) == {}


def test_the_hash_is_kojis_own_ignoring_size_digest_and_mtime(same):
    path = str(same["x86_64"])
    expected = koji.rpmdiff.Rpmdiff(path, path, ignore="S5TN").kojihash()
    assert noarch_rpmdiff([same["x86_64"]]) == {"same-data-1.0-1.noarch.rpm": expected}


def test_copies_that_differ_only_in_file_content_hash_alike(same):
    """The data file holds the arch it was built for; the hub's comparison ignores contents."""
    assert noarch_rpmdiff([same["x86_64"]]) == noarch_rpmdiff([same["i686"]])


def test_copies_with_a_file_named_after_the_arch_hash_differently(differing):
    assert noarch_rpmdiff([differing["x86_64"]]) != noarch_rpmdiff([differing["i686"]])


def test_a_noarch_file_that_is_no_rpm_fails_the_build(tmp_path):
    forged = tmp_path / "forged-1-1.noarch.rpm"
    forged.write_bytes(b"\xed\xab\xee\xdb" + bytes(200))
    with pytest.raises(BuildError, match="forged-1-1.noarch.rpm is not a readable RPM"):
        noarch_rpmdiff([forged])
