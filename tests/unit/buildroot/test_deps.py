"""The BuildRequires loop, driven by a scripted fake StepRunner: which steps run, in what order, and when it stops."""

from __future__ import annotations

from collections import deque

import pytest

from koji_adjutant.buildroot import deps
from koji_adjutant.buildroot.deps import (MAX_DYNAMIC_ROUNDS, MAX_STATIC_ROUNDS, RPMBUILD_MORE_DEPS, StepOutput,
                                          check_install, install_build_requires)
from koji_adjutant.errors import BuildError, BuildrootError

OK = StepOutput(0, "")
MORE = StepOutput(RPMBUILD_MORE_DEPS, "")

DNF_NOT_FOUND = """\
Last metadata expiration check: 0:00:01 ago.
No matching package to install: 'libfoo-devel'
No matching package to install: 'pkgconfig(bar) >= 2'
Not all dependencies satisfied
Error: Some packages could not be found.
"""


def snapshot(*names: str) -> StepOutput:
    """A list-installed output holding these packages."""
    return StepOutput(0, "".join(f"{n}\t1\t1\t(none)\tx86_64\tmd5\t1\t1\t1\n" for n in names))


class FakeRunner:
    """Records every step and answers each from its own script, in order; an unscripted call fails the test."""

    def __init__(self, **script: list[StepOutput]):
        self.script = {step.replace("_", "-"): deque(outputs) for step, outputs in script.items()}
        self.calls: list[tuple] = []

    def __call__(self, step: str, *args: str, as_builder: bool = False, quiet: bool = False) -> StepOutput:
        self.calls.append((step, *args) + (("as_builder",) if as_builder else ()) + (("quiet",) if quiet else ()))
        outputs = self.script.get(step)
        if not outputs:
            raise AssertionError(f"unexpected step {step!r} {args!r} after {self.steps}")
        return outputs.popleft()

    @property
    def steps(self) -> list[str]:
        return [call[0] for call in self.calls]

    def unused(self) -> dict[str, int]:
        return {step: len(outputs) for step, outputs in self.script.items() if outputs}


LIST = ("list-installed", "quiet")
REBUILD = ("rebuild-srpm", "as_builder")
BUILDDEP = ("builddep",)
DYNAMIC = ("dynamic-buildrequires", "as_builder")
BUILDDEP_DYNAMIC = ("builddep", "buildreqs.nosrc")


def test_the_bounds_are_as_documented():
    assert (MAX_STATIC_ROUNDS, MAX_DYNAMIC_ROUNDS, RPMBUILD_MORE_DEPS) == (5, 10, 11)


# -- the static loop ------------------------------------------------------------------

def test_one_round_when_nothing_new_is_installed():
    run = FakeRunner(list_installed=[snapshot("a"), snapshot("a")], rebuild_srpm=[OK], builddep=[OK],
                     dynamic_buildrequires=[OK])
    install_build_requires(run)
    assert run.calls == [LIST, REBUILD, BUILDDEP, LIST, DYNAMIC]
    assert run.unused() == {}


def test_static_loop_repeats_until_a_round_installs_nothing_new():
    run = FakeRunner(list_installed=[snapshot("a"), snapshot("a", "b"), snapshot("a", "b", "c"),
                                     snapshot("a", "b", "c")],
                     rebuild_srpm=[OK] * 3, builddep=[OK] * 3, dynamic_buildrequires=[OK])
    install_build_requires(run)
    assert run.calls == [LIST,
                         REBUILD, BUILDDEP, LIST,
                         REBUILD, BUILDDEP, LIST,
                         REBUILD, BUILDDEP, LIST,
                         DYNAMIC]
    assert run.unused() == {}


def test_snapshot_order_does_not_count_as_a_change():
    run = FakeRunner(list_installed=[snapshot("a", "b"), snapshot("b", "a")], rebuild_srpm=[OK],
                     builddep=[OK], dynamic_buildrequires=[OK])
    install_build_requires(run)
    assert run.steps.count("rebuild-srpm") == 1


def test_static_loop_is_bounded():
    rounds = [snapshot(*(f"p{j}" for j in range(i + 1))) for i in range(MAX_STATIC_ROUNDS + 1)]
    run = FakeRunner(list_installed=rounds, rebuild_srpm=[OK] * MAX_STATIC_ROUNDS,
                     builddep=[OK] * MAX_STATIC_ROUNDS)
    with pytest.raises(BuildrootError) as caught:
        install_build_requires(run)
    assert caught.value.message == f"BuildRequires still changed after {MAX_STATIC_ROUNDS} rounds"
    assert run.calls == [LIST] + [REBUILD, BUILDDEP, LIST] * MAX_STATIC_ROUNDS
    assert "dynamic-buildrequires" not in run.steps


def test_static_bound_is_read_from_the_module(monkeypatch):
    monkeypatch.setattr(deps, "MAX_STATIC_ROUNDS", 2)
    run = FakeRunner(list_installed=[snapshot("a"), snapshot("b"), snapshot("c")], rebuild_srpm=[OK] * 2,
                     builddep=[OK] * 2)
    with pytest.raises(BuildrootError, match="after 2 rounds"):
        install_build_requires(run)
    assert run.steps.count("rebuild-srpm") == 2


def test_the_last_allowed_round_may_settle():
    rounds = [snapshot(*(f"p{j}" for j in range(i + 1))) for i in range(MAX_STATIC_ROUNDS)]
    run = FakeRunner(list_installed=rounds + [rounds[-1]], rebuild_srpm=[OK] * MAX_STATIC_ROUNDS,
                     builddep=[OK] * MAX_STATIC_ROUNDS, dynamic_buildrequires=[OK])
    install_build_requires(run)
    assert run.steps.count("rebuild-srpm") == MAX_STATIC_ROUNDS


def test_rebuild_srpm_failure_is_a_build_error():
    run = FakeRunner(list_installed=[snapshot("a")], rebuild_srpm=[StepOutput(1, "error: line 12: bad")])
    with pytest.raises(BuildError) as caught:
        install_build_requires(run)
    assert not isinstance(caught.value, BuildrootError)
    assert "could not be parsed for the target arch" in caught.value.message
    assert run.calls == [LIST, REBUILD]


def test_rebuild_srpm_failure_in_a_later_round():
    run = FakeRunner(list_installed=[snapshot("a"), snapshot("a", "b")], rebuild_srpm=[OK, StepOutput(1, "")],
                     builddep=[OK])
    with pytest.raises(BuildError):
        install_build_requires(run)
    assert run.calls == [LIST, REBUILD, BUILDDEP, LIST, REBUILD]


def test_builddep_missing_package_names_it():
    run = FakeRunner(list_installed=[snapshot("a")], rebuild_srpm=[OK], builddep=[StepOutput(1, DNF_NOT_FOUND)])
    with pytest.raises(BuildrootError) as caught:
        install_build_requires(run)
    assert caught.value.message == ("installing BuildRequires: not found in the buildroot repos: "
                                    "libfoo-devel, pkgconfig(bar) >= 2")
    assert "libfoo-devel" in str(caught.value)
    assert "add the missing packages" in caught.value.hint
    assert run.calls == [LIST, REBUILD, BUILDDEP]


def test_builddep_generic_failure():
    run = FakeRunner(list_installed=[snapshot("a")], rebuild_srpm=[OK],
                     builddep=[StepOutput(1, "Error: Failed to download metadata for repo 'local'")])
    with pytest.raises(BuildrootError) as caught:
        install_build_requires(run)
    assert caught.value.message == "installing BuildRequires failed (dnf exit 1)"
    assert caught.value.hint == ""


def test_list_installed_failure():
    run = FakeRunner(list_installed=[StepOutput(1, "rpmdb broken")])
    with pytest.raises(BuildrootError, match="could not list the packages installed"):
        install_build_requires(run)


# -- the dynamic loop --------------------------------------------------------------------

def settled(*dynamic: StepOutput, snapshots: list[StepOutput] = (), builddeps: int = 0) -> FakeRunner:
    """A runner whose static loop settles at once, then answers the dynamic steps as given."""
    return FakeRunner(list_installed=[snapshot("a"), snapshot("a"), *snapshots], rebuild_srpm=[OK],
                      builddep=[OK] * (1 + builddeps), dynamic_buildrequires=list(dynamic))


STATIC = [LIST, REBUILD, BUILDDEP, LIST]


def test_dynamic_exit_0_is_done():
    run = settled(OK)
    install_build_requires(run)
    assert run.calls == STATIC + [DYNAMIC]


def test_dynamic_more_deps_then_done():
    run = settled(MORE, OK, snapshots=[snapshot("a", "gen-dep")], builddeps=1)
    install_build_requires(run)
    assert run.calls == STATIC + [DYNAMIC, BUILDDEP_DYNAMIC, LIST, DYNAMIC]
    assert run.unused() == {}


def test_dynamic_more_deps_twice_then_done():
    run = settled(MORE, MORE, OK, snapshots=[snapshot("a", "b"), snapshot("a", "b", "c")], builddeps=2)
    install_build_requires(run)
    assert run.calls == STATIC + [DYNAMIC, BUILDDEP_DYNAMIC, LIST] * 2 + [DYNAMIC]


def test_dynamic_more_deps_with_nothing_new_installed():
    run = settled(MORE, snapshots=[snapshot("a")], builddeps=1)
    with pytest.raises(BuildrootError) as caught:
        install_build_requires(run)
    assert caught.value.message == "dynamic BuildRequires are still unmet after installing them"
    assert "rpmbuild -br" in caught.value.hint
    assert run.calls == STATIC + [DYNAMIC, BUILDDEP_DYNAMIC, LIST]


def test_dynamic_nothing_new_is_compared_with_the_previous_round():
    run = settled(MORE, MORE, snapshots=[snapshot("a", "b"), snapshot("a", "b")], builddeps=2)
    with pytest.raises(BuildrootError, match="still unmet"):
        install_build_requires(run)
    assert run.steps.count("dynamic-buildrequires") == 2


@pytest.mark.parametrize("code", [1, 2, 10, 12, 127, -9])
def test_dynamic_other_exit_code_is_a_build_error(code):
    run = settled(StepOutput(code, "error: bad %generate_buildrequires"))
    with pytest.raises(BuildError) as caught:
        install_build_requires(run)
    assert not isinstance(caught.value, BuildrootError)
    assert caught.value.message == f"%generate_buildrequires failed (rpmbuild -br exit {code})"
    assert run.calls == STATIC + [DYNAMIC]


def test_dynamic_builddep_missing_package():
    run = FakeRunner(list_installed=[snapshot("a"), snapshot("a")], rebuild_srpm=[OK],
                     builddep=[OK, StepOutput(1, "No match for argument: python3dist(foo)\n")],
                     dynamic_buildrequires=[MORE])
    with pytest.raises(BuildrootError) as caught:
        install_build_requires(run)
    assert caught.value.message == ("installing dynamic BuildRequires: not found in the buildroot repos: "
                                    "python3dist(foo)")


def test_dynamic_loop_is_bounded():
    growing = [snapshot(*(f"p{j}" for j in range(i + 2))) for i in range(MAX_DYNAMIC_ROUNDS)]
    run = settled(*[MORE] * MAX_DYNAMIC_ROUNDS, snapshots=growing, builddeps=MAX_DYNAMIC_ROUNDS)
    with pytest.raises(BuildrootError) as caught:
        install_build_requires(run)
    assert caught.value.message == f"dynamic BuildRequires still changed after {MAX_DYNAMIC_ROUNDS} rounds"
    assert run.calls == STATIC + [DYNAMIC, BUILDDEP_DYNAMIC, LIST] * MAX_DYNAMIC_ROUNDS
    assert run.unused() == {}


def test_dynamic_last_allowed_round_may_finish():
    growing = [snapshot(*(f"p{j}" for j in range(i + 2))) for i in range(MAX_DYNAMIC_ROUNDS - 1)]
    run = settled(*[MORE] * (MAX_DYNAMIC_ROUNDS - 1), OK, snapshots=growing, builddeps=MAX_DYNAMIC_ROUNDS - 1)
    install_build_requires(run)
    assert run.steps.count("dynamic-buildrequires") == MAX_DYNAMIC_ROUNDS


# -- check_install ----------------------------------------------------------------------

def test_check_install_ok_ignores_the_output():
    check_install(StepOutput(0, "No match for argument: foo"), "anything")


def test_check_install_no_match_for_argument():
    with pytest.raises(BuildrootError) as caught:
        check_install(StepOutput(1, "No match for argument: foo\nError: Unable to find a match: foo\n"),
                      "installing the @build group")
    assert caught.value.message == "installing the @build group: not found in the buildroot repos: foo"
    assert str(caught.value).startswith("installing the @build group: not found in the buildroot repos: foo; ")


def test_check_install_lists_each_missing_package_once_sorted():
    output = ("No match for argument: zlib-devel\nNo match for argument: foo\n"
              "No matching package to install: 'foo'\nNo match for argument: zlib-devel\n")
    with pytest.raises(BuildrootError) as caught:
        check_install(StepOutput(1, output), "x")
    assert caught.value.message == "x: not found in the buildroot repos: foo, zlib-devel"


def test_check_install_generic_failure():
    with pytest.raises(BuildrootError) as caught:
        check_install(StepOutput(3, "Curl error (6): Couldn't resolve host name"), "installing the @build group")
    assert caught.value.message == "installing the @build group failed (dnf exit 3)"
