"""The BuildRequires loop, as mock runs it, one buildroot layer per round.

mock rebuilds the SRPM in the buildroot for the target arch, installs its
BuildRequires, and repeats until a round installs nothing new (a BuildRequires
may bring macros that change the next evaluation); then %generate_buildrequires
loops the same way. Here each evaluation runs in a throwaway container and
each round's installation is a new layer made by the package manager alone
(provision.py), keyed on everything asked for so far. A round whose
evaluation was complete ends the loop: the build phase evaluates the package
once more in the final layer and asks to come back here only when it wants
more (the init script's exit 75), which saves a container per build.

The loop only decides; evaluating and installing are callables, which keeps
this logic testable without podman.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

from ..errors import BuildError, BuildrootError
from .requirements import Evaluation

log = logging.getLogger(__name__)

#: Rounds of installation one build may need, static and dynamic together.
MAX_ROUNDS = 10

#: The init script's build step exits so when the package asks for more than its buildroot has.
MORE_REQUIREMENTS = 75

_NOT_FOUND = re.compile(r"No matching package to install: '([^']+)'")
_NO_MATCH = re.compile(r"No match for argument: (.+)")
_UNABLE = re.compile(r"Unable to find a match: (.+)")
#: dnf 4 says "Module or Group 'build' is not available."; dnf 5 is taken to name the unmatched
#: "@build" argument (unverified: no dnf 5 image here).
_NO_GROUP = re.compile(r"Module or Group '([^']+)' is not available|No match for argument: @(\S+)")

Image = TypeVar("Image")


def _missing_packages(output: str) -> list[str]:
    found = set(_NOT_FOUND.findall(output)) | {m.strip() for m in _NO_MATCH.findall(output)
                                                if not m.startswith("@")}
    if not found:
        found = {m.strip() for m in _UNABLE.findall(output)}
    return sorted(found)


def check_install(exit_code: int, output: str, what: str) -> None:
    """A failed dnf run as an error naming what the repos lack, when dnf said so."""
    if exit_code == 0:
        return
    groups = sorted({first or second for first, second in _NO_GROUP.findall(output)})
    if groups:
        raise BuildrootError(f"{what}: the buildroot repos have no group {', '.join(groups)} "
                             "(their repodata holds no comps group of that id)",
                             hint="in Koji, add it to the build tag (koji add-group TAG build; koji add-group-pkg "
                                  "TAG build PKG...); with build-local, name another group (--group) or none "
                                  "(--no-group) and the packages to install (--install PKG)")
    missing = _missing_packages(output)
    if missing:
        raise BuildrootError(f"{what}: not found in the buildroot repos: {', '.join(missing)}",
                             hint="add the missing packages to the build tag (or the --repo), "
                                  "or fix the name in the spec")
    raise BuildrootError(f"{what} failed (dnf exit {exit_code})")


def resolve(image: Image, asked: frozenset[str], evaluate: Callable[[Image], Evaluation],
            install: Callable[[Image, frozenset[str]], Image]) -> tuple[Image, frozenset[str]]:
    """From ``image``, which holds what ``asked`` names, to the image holding all the package asks for.

    Returns that image and everything asked for. It stops after installing a
    round whose evaluation was complete, without evaluating again: the build
    phase checks that nothing more is asked (see MORE_REQUIREMENTS).
    """
    for _ in range(MAX_ROUNDS):
        evaluation = evaluate(image)
        wanted = asked | evaluation.requirements
        if wanted == asked:
            if evaluation.generator_pending:
                raise BuildError("%generate_buildrequires failed, although every BuildRequires it could "
                                 "need is installed", hint="read the end of root.log: the generator's error")
            return image, asked
        log.debug("installing %d BuildRequires (%d new)", len(wanted), len(wanted - asked))
        image, asked = install(image, wanted), wanted
        if not evaluation.generator_pending:
            return image, asked
    raise BuildrootError(f"BuildRequires still changed after {MAX_ROUNDS} rounds",
                         hint="each round's BuildRequires brought macros that asked for more; "
                              "check the spec's conditionals")
