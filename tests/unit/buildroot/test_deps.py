"""The BuildRequires loop, driven by scripted evaluations: which layers it asks for, and when it stops."""

from __future__ import annotations

from collections import deque

import pytest

from koji_adjutant.buildroot.deps import MAX_ROUNDS, check_install, resolve
from koji_adjutant.buildroot.requirements import Evaluation
from koji_adjutant.errors import BuildError, BuildrootError

DNF_NOT_FOUND = """\
Last metadata expiration check: 0:00:01 ago.
No matching package to install: 'libfoo-devel'
No matching package to install: 'pkgconfig(bar) >= 2'
Not all dependencies satisfied
Error: Some packages could not be found.
"""


class Script:
    """Answers each evaluation in turn; an image is the tuple of requirement sets installed so far."""

    def __init__(self, *evaluations: Evaluation):
        self.evaluations = deque(evaluations)
        self.evaluated_in: list[tuple] = []
        self.installed: list[frozenset[str]] = []

    def evaluate(self, image: tuple) -> Evaluation:
        self.evaluated_in.append(image)
        if not self.evaluations:
            raise AssertionError(f"unexpected evaluation in {image}")
        return self.evaluations.popleft()

    def install(self, image: tuple, wanted: frozenset[str]) -> tuple:
        self.installed.append(wanted)
        return (*image, wanted)


def asks(*names: str, pending: bool = False) -> Evaluation:
    return Evaluation(frozenset(names), generator_pending=pending)


def test_no_buildrequires_stays_in_the_group_layer():
    script = Script(asks())
    image, asked = resolve((), frozenset(), script.evaluate, script.install)
    assert image == () and asked == frozenset()
    assert script.installed == []


def test_one_round_installs_then_leaves_the_check_to_the_build_phase():
    script = Script(asks("gcc", "libfoo-devel >= 2"))
    image, asked = resolve((), frozenset(), script.evaluate, script.install)
    assert script.installed == [frozenset({"gcc", "libfoo-devel >= 2"})]
    assert image == (asked,) and asked == {"gcc", "libfoo-devel >= 2"}
    assert script.evaluated_in == [()]  # no second evaluation: the build phase checks


def test_an_arch_conditional_asks_for_its_own_set():
    """What the package asks, evaluated in the buildroot, is the layer's key: not what its header said."""
    x86 = Script(asks("a", "only-on-x86_64"))
    aarch = Script(asks("a"))
    assert resolve((), frozenset(), x86.evaluate, x86.install)[1] != resolve((), frozenset(), aarch.evaluate,
                                                                                aarch.install)[1]


def test_a_pending_generator_gets_another_round_in_the_new_layer():
    script = Script(asks("pyproject-rpm-macros", pending=True), asks("pyproject-rpm-macros", "python3dist(foo)"))
    image, asked = resolve((), frozenset(), script.evaluate, script.install)
    assert script.installed == [frozenset({"pyproject-rpm-macros"}),
                                frozenset({"pyproject-rpm-macros", "python3dist(foo)"})]
    assert script.evaluated_in == [(), (frozenset({"pyproject-rpm-macros"}),)]
    assert asked == {"pyproject-rpm-macros", "python3dist(foo)"}


def test_rounds_accumulate_like_mocks_loop():
    """A round never uninstalls: each layer holds everything asked so far."""
    script = Script(asks("a", pending=True), asks("b"))
    _image, asked = resolve((), frozenset(), script.evaluate, script.install)
    assert asked == {"a", "b"}
    assert script.installed[-1] == {"a", "b"}


def test_continuing_from_an_image_that_holds_requirements():
    """The build phase said the package asks for more: the loop goes on from that image."""
    held = frozenset({"a"})
    script = Script(asks("a", "b"))
    image, asked = resolve(("layer-a",), held, script.evaluate, script.install)
    assert image == ("layer-a", frozenset({"a", "b"}))
    assert asked == {"a", "b"}


def test_a_generator_failing_with_everything_installed_is_the_packages_error():
    script = Script(asks("a", pending=True), asks("a", pending=True))
    with pytest.raises(BuildError) as caught:
        resolve((), frozenset(), script.evaluate, script.install)
    assert not isinstance(caught.value, BuildrootError)
    assert "%generate_buildrequires failed" in caught.value.message


def test_the_loop_is_bounded():
    script = Script(*(asks(*(f"p{j}" for j in range(i + 1)), pending=True) for i in range(MAX_ROUNDS)))
    with pytest.raises(BuildrootError) as caught:
        resolve((), frozenset(), script.evaluate, script.install)
    assert caught.value.message == f"BuildRequires still changed after {MAX_ROUNDS} rounds"
    assert len(script.installed) == MAX_ROUNDS


# -- check_install ----------------------------------------------------------------------

def test_check_install_ok_ignores_the_output():
    check_install(0, "No match for argument: foo", "anything")


def test_check_install_names_what_the_repos_lack():
    with pytest.raises(BuildrootError) as caught:
        check_install(1, DNF_NOT_FOUND, "installing BuildRequires")
    assert caught.value.message == ("installing BuildRequires: not found in the buildroot repos: "
                                    "libfoo-devel, pkgconfig(bar) >= 2")
    assert "add the missing packages" in caught.value.hint


def test_check_install_no_match_for_argument():
    with pytest.raises(BuildrootError) as caught:
        check_install(1, "No match for argument: foo\nError: Unable to find a match: foo\n",
                      "installing the @build group")
    assert caught.value.message == "installing the @build group: not found in the buildroot repos: foo"


@pytest.mark.parametrize("output", [
    "Module or Group 'build' is not available.\nError: Nothing to do.\n",   # dnf 4
    "No match for argument: @build\n",
])
def test_check_install_says_the_repos_have_no_such_group(output):
    with pytest.raises(BuildrootError) as caught:
        check_install(1, output, "installing the @build group")
    assert caught.value.message == ("installing the @build group: the buildroot repos have no group build "
                                    "(their repodata holds no comps group of that id)")
    assert "koji add-group TAG build" in caught.value.hint and "--no-group" in caught.value.hint


def test_check_install_dnf_install_of_reldeps():
    """dnf install (our install step) names what it lacks only in its final line."""
    with pytest.raises(BuildrootError) as caught:
        check_install(1, "Error: Unable to find a match: libgreet-devel > 99\n", "installing BuildRequires")
    assert caught.value.message == "installing BuildRequires: not found in the buildroot repos: libgreet-devel > 99"


def test_check_install_lists_each_missing_package_once_sorted():
    output = ("No match for argument: zlib-devel\nNo match for argument: foo\n"
              "No matching package to install: 'foo'\nNo match for argument: zlib-devel\n")
    with pytest.raises(BuildrootError) as caught:
        check_install(1, output, "x")
    assert caught.value.message == "x: not found in the buildroot repos: foo, zlib-devel"


def test_check_install_generic_failure():
    with pytest.raises(BuildrootError) as caught:
        check_install(3, "Curl error (6): Couldn't resolve host name", "installing the @build group")
    assert caught.value.message == "installing the @build group failed (dnf exit 3)"
