"""What comes out of an evaluation container is checked before it reaches dnf or a cache key."""

from __future__ import annotations

import pytest

from koji_adjutant.buildroot.requirements import (
    MAX_REQUIREMENTS,
    Evaluation,
    parse_requirements,
    read_evaluation,
    write_expected,
)
from koji_adjutant.errors import BuildError

RPM_REQUIRES = """\
gcc
libgreet-devel >= 1.0
(python3dist(foo) or python3dist(bar))
/usr/bin/make
pkgconfig(glib-2.0)
rpmlib(CompressedFileNames) <= 3.0.4-1
rpmlib(FileDigests) <= 4.6.0-1
"""


def test_rpm_requires_output_is_taken_without_rpmlib():
    assert parse_requirements(RPM_REQUIRES, "x") == {
        "gcc", "libgreet-devel >= 1.0", "(python3dist(foo) or python3dist(bar))", "/usr/bin/make",
        "pkgconfig(glib-2.0)"}


@pytest.mark.parametrize("hostile", [
    "--setopt=reposdir=/tmp/evil",      # would be an option of dnf
    "-y",
    "foo\x1b[2J",                       # control characters
    "ünïcode",
    "foo\tbar",
    "x" * 2000,                         # longer than any dependency
    ";rm -rf /",
])
def test_anything_but_a_dependency_is_refused(hostile):
    with pytest.raises(BuildError) as caught:
        parse_requirements(f"gcc\n{hostile}\n", "the SRPM")
    assert "not a dependency" in caught.value.message
    assert "the SRPM" in caught.value.message


def test_too_many_requirements_are_refused():
    text = "".join(f"pkg{i}\n" for i in range(MAX_REQUIREMENTS + 1))
    with pytest.raises(BuildError, match="more than the"):
        parse_requirements(text, "x")


def test_evaluation_joins_static_and_dynamic(tmp_path):
    (tmp_path / "static").write_text("gcc\n")
    (tmp_path / "dynamic").write_text("gcc\npython3dist(foo)\nrpmlib(DynamicBuildRequires) <= 4.15.0-1\n")
    assert read_evaluation(tmp_path) == Evaluation(frozenset({"gcc", "python3dist(foo)"}))


def test_a_failed_generator_is_pending(tmp_path):
    (tmp_path / "static").write_text("pyproject-rpm-macros\n")
    (tmp_path / "dynamic-failed").touch()
    assert read_evaluation(tmp_path) == Evaluation(frozenset({"pyproject-rpm-macros"}), generator_pending=True)


def test_an_evaluation_without_its_list_is_an_error(tmp_path):
    with pytest.raises(BuildError, match="left no list"):
        read_evaluation(tmp_path)


def test_the_expected_list_sorts_as_c_sort(tmp_path):
    """The build phase compares with `LC_ALL=C comm`: the file must be in byte order."""
    path = write_expected(frozenset({"b", "B", "(a or b)", "/usr/bin/x", "a >= 1"}), tmp_path)
    assert path.read_text() == "(a or b)\n/usr/bin/x\nB\na >= 1\nb\n"
