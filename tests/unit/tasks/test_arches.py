"""The arch rules of a build: which buildArch subtasks, routed to which arch."""

from __future__ import annotations

import pytest

from koji_adjutant.errors import BuildError
from koji_adjutant.tasks.arches import ArchHeader, build_arches, task_arch


@pytest.mark.parametrize("tag_arches, header, extra, override, expected", [
    ("x86_64 i686", ArchHeader(), None, None, ["x86_64", "i686"]),
    ("x86_64 i686", ArchHeader(buildarchs=("noarch",)), None, None, ["noarch"]),
    ("x86_64 i686", ArchHeader(exclusivearch=("x86_64",)), None, None, ["x86_64"]),
    ("x86_64 i686", ArchHeader(excludearch=("i686",)), None, None, ["x86_64"]),
    ("x86_64", ArchHeader(), "i686", None, ["x86_64"]),            # extra arch the tag cannot build
    ("x86_64 i386", ArchHeader(), "i686", None, ["x86_64", "i386", "i686"]),  # i686 is canonically i386
    ("x86_64 aarch64", ArchHeader(exclusivearch=("noarch", "aarch64")), None, None, ["aarch64", "noarch"]),
    ("x86_64 aarch64", ArchHeader(buildarchs=("noarch",), excludearch=("noarch",)), None, None, []),
    ("x86_64 aarch64", ArchHeader(), None, "aarch64 ppc64le", ["aarch64"]),
])
def test_build_arches_follow_tag_and_srpm(tag_arches, header, extra, override, expected):
    if not expected:
        with pytest.raises(BuildError, match="no arch to build for: the tag has x86_64 aarch64"):
            build_arches(tag_arches, header, extra, override)
    else:
        assert build_arches(tag_arches, header, extra, override) == expected


@pytest.mark.parametrize("tag_arches", [None, "", "  "])
def test_a_tag_without_arches_is_refused_with_what_to_do(tag_arches):
    with pytest.raises(BuildError) as info:
        build_arches(tag_arches, ArchHeader())
    assert "koji edit-tag --arches" in str(info.value)


def test_real_arches_route_to_their_canonical_arch():
    assert task_arch("i686", "x86_64 i686", ArchHeader()) == "i386"
    assert task_arch("x86_64", "x86_64 i686", ArchHeader()) == "x86_64"


def test_literal_task_arches_are_kept_as_given():
    assert task_arch("i686", "x86_64 i686", ArchHeader(), literal_task_arches="i686 armv7*") == "i686"


def test_noarch_picks_among_the_tag_arches_the_srpm_allows():
    seen = []

    def choose(candidates):
        seen.append(candidates)
        return candidates[-1]

    header = ArchHeader(buildarchs=("noarch",), excludearch=("aarch64",))
    assert task_arch("noarch", "x86_64 aarch64 ppc64le", header, choose=choose) == "x86_64"
    assert seen == [["ppc64le", "x86_64"]]


def test_noarch_arches_of_the_tag_narrow_the_choice():
    header = ArchHeader(buildarchs=("noarch",), exclusivearch=("noarch", "x86_64", "aarch64"))
    assert task_arch("noarch", "x86_64 aarch64 ppc64le", header, noarch_arches="aarch64 ppc64le",
                     choose=lambda c: c[0]) == "aarch64"


def test_noarch_with_no_possible_arch_names_all_the_constraints():
    header = ArchHeader(buildarchs=("noarch",), excludearch=("x86_64",))
    with pytest.raises(BuildError) as info:
        task_arch("noarch", "x86_64 aarch64", header, noarch_arches="x86_64")
    message = str(info.value)
    assert "tag arches x86_64 aarch64" in message and "noarch_arches x86_64" in message
    assert "ExcludeArch x86_64" in message and "noarch_arches" in info.value.hint
