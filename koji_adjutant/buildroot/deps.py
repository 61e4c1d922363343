"""The BuildRequires loop, as mock runs it.

The SRPM is rebuilt inside the buildroot for the target arch, so arch
conditionals and macros from packages already installed are evaluated
there; its BuildRequires are installed; and that repeats until a round
installs nothing new (a BuildRequires may bring macros that change the
next evaluation). Then ``rpmbuild -br`` loops over %generate_buildrequires:
exit 11 means "more to install". Both loops are bounded.

The loop only decides; the steps themselves run in the container through a
StepRunner, which keeps this logic testable without podman.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BuildError, BuildrootError

log = logging.getLogger(__name__)

MAX_STATIC_ROUNDS = 5
MAX_DYNAMIC_ROUNDS = 10
RPMBUILD_MORE_DEPS = 11

_NOT_FOUND = re.compile(r"No matching package to install: '([^']+)'")
_NO_MATCH = re.compile(r"No match for argument: (\S+)")


@dataclass(frozen=True)
class StepOutput:
    exit_code: int
    output: str


#: Runs one step of buildroot-init.sh: (step, args, as_builder) -> output.
StepRunner = Callable[..., StepOutput]


def _missing_packages(output: str) -> list[str]:
    return sorted(set(_NOT_FOUND.findall(output)) | set(_NO_MATCH.findall(output)))


def check_install(result: StepOutput, what: str) -> None:
    if result.exit_code == 0:
        return
    missing = _missing_packages(result.output)
    if missing:
        raise BuildrootError(f"{what}: not found in the buildroot repos: {', '.join(missing)}",
                             hint="add the missing packages to the build tag (or the --repo), "
                                  "or fix the name in the spec")
    raise BuildrootError(f"{what} failed (dnf exit {result.exit_code})")


def _snapshot(run: StepRunner) -> frozenset[str]:
    result = run("list-installed", quiet=True)
    if result.exit_code != 0:
        raise BuildrootError("could not list the packages installed in the buildroot")
    return frozenset(result.output.splitlines())


def install_build_requires(run: StepRunner) -> None:
    before = _snapshot(run)
    for round_number in range(1, MAX_STATIC_ROUNDS + 1):
        rebuilt = run("rebuild-srpm", as_builder=True)
        if rebuilt.exit_code != 0:
            raise BuildError("the spec could not be parsed for the target arch (rpmbuild -bs failed)")
        check_install(run("builddep"), "installing BuildRequires")
        after = _snapshot(run)
        if after == before:
            log.debug("BuildRequires settled after %d round(s)", round_number)
            break
        before = after
    else:
        raise BuildrootError(f"BuildRequires still changed after {MAX_STATIC_ROUNDS} rounds")

    for _ in range(MAX_DYNAMIC_ROUNDS):
        generated = run("dynamic-buildrequires", as_builder=True)
        if generated.exit_code == 0:
            return
        if generated.exit_code != RPMBUILD_MORE_DEPS:
            raise BuildError(f"%generate_buildrequires failed (rpmbuild -br exit {generated.exit_code})")
        check_install(run("builddep", "buildreqs.nosrc"), "installing dynamic BuildRequires")
        after = _snapshot(run)
        if after == before:
            raise BuildrootError("dynamic BuildRequires are still unmet after installing them",
                                 hint="rpmbuild -br keeps asking for packages that the repos do not satisfy")
        before = after
    raise BuildrootError(f"dynamic BuildRequires still changed after {MAX_DYNAMIC_ROUNDS} rounds")
