"""Environment names and image references."""

from __future__ import annotations

import pytest

from koji_adjutant.envstore.errors import EnvironmentStoreError
from koji_adjutant.envstore.names import environment_name, image_ref


def test_environment_name():
    assert environment_name("f40-build", "x86_64", "0123456789abcdef0123") == "adjutant-f40-build-x86_64-0123456789ab"


@pytest.mark.parametrize("tag, expected", [
    ("EL10-Build", "adjutant-el10-build-x86_64-0123456789ab"),
    ("el10+side/build", "adjutant-el10-side-build-x86_64-0123456789ab"),
    ("el10..build", "adjutant-el10-build-x86_64-0123456789ab"),
    ("el10__build", "adjutant-el10__build-x86_64-0123456789ab"),
    ("el10.build", "adjutant-el10.build-x86_64-0123456789ab"),
    ("-el10-", "adjutant-el10-x86_64-0123456789ab"),
    ("el 10 ~ build", "adjutant-el-10-build-x86_64-0123456789ab"),
])
def test_environment_name_replaces_what_an_image_name_cannot_hold(tag, expected):
    assert environment_name(tag, "x86_64", "0123456789ABCDEF") == expected


def test_environment_names_are_valid_image_names():
    import re
    component = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")
    for tag in ("A", "a--b", "a._b", "a_-b", "ümlaut-tag", "x" * 400, "a.-.b", "1"):
        name = environment_name(tag, "aarch64", "f" * 64)
        assert component.fullmatch(name), name
        assert len(name) <= 200
        assert name.endswith("-aarch64-ffffffffffff")


def test_environment_name_needs_every_part():
    with pytest.raises(EnvironmentStoreError):
        environment_name("", "x86_64", "abc")
    with pytest.raises(EnvironmentStoreError):
        environment_name("tag", "x86_64", "")


def test_image_ref():
    assert image_ref("adjutant-f40-x86_64-0123456789ab") == "localhost/adjutant-f40-x86_64-0123456789ab:latest"
