"""What a package asks of its buildroot, learned where its code can harm nothing.

The SRPM is unpacked and rebuilt for the target arch, and its
%generate_buildrequires run, by the init script's ``evaluate`` step in a
throwaway container (phase.py) of the buildroot made so far: as the build
user, with no network and no capabilities, its writes discarded. So arch
conditionals and macros of what is already installed are evaluated as rpmbuild
will see them. Only lists of requirement strings come out, and they are
untrusted: each is checked here before it becomes an argument of dnf or part
of a cache key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError

#: More than any real package asks for (texlive-base asks for about 200).
MAX_REQUIREMENTS = 5000
MAX_LENGTH = 1024

#: Printable ASCII, starting as a package name, a file path or a rich dependency does;
#: so never an option of dnf, never a line break in the file the build phase compares.
_REQUIREMENT = re.compile(r"[A-Za-z0-9_/(][\x20-\x7e]*")

STATIC_FILE = "static"
DYNAMIC_FILE = "dynamic"
GENERATOR_FAILED_FILE = "dynamic-failed"
#: The file of the build phase's input naming what its buildroot was made for.
EXPECTED_FILE = "requirements"


@dataclass(frozen=True)
class Evaluation:
    """What the package asked for in one buildroot."""

    requirements: frozenset[str]
    #: %generate_buildrequires could not run yet (what it needs is not installed)
    generator_pending: bool = False


def parse_requirements(text: str, origin: str) -> frozenset[str]:
    """The requirement strings of ``text``, one per line, each checked."""
    found = set()
    for line in text.splitlines():
        requirement = line.strip()
        if not requirement or requirement.startswith("rpmlib("):
            continue
        if len(requirement) > MAX_LENGTH or not _REQUIREMENT.fullmatch(requirement):
            raise BuildError(f"{origin} holds a BuildRequires that is not a dependency: {requirement[:80]!r}",
                             hint="BuildRequires are package names, file paths or rich dependencies in "
                                  "printable ASCII; fix the spec")
        found.add(requirement)
    if len(found) > MAX_REQUIREMENTS:
        raise BuildError(f"{origin} asks for {len(found)} BuildRequires, more than the {MAX_REQUIREMENTS} allowed")
    return frozenset(found)


def read_evaluation(results: Path) -> Evaluation:
    """The evaluate step's results: its static BuildRequires and, when the generator ran, the dynamic ones."""
    static = results / STATIC_FILE
    if not static.is_file():
        raise BuildError("evaluating the BuildRequires left no list of them")
    requirements = parse_requirements(static.read_text(errors="replace"), "the SRPM rebuilt for the target arch")
    dynamic = results / DYNAMIC_FILE
    if dynamic.is_file():
        requirements |= parse_requirements(dynamic.read_text(errors="replace"), "%generate_buildrequires")
    return Evaluation(requirements, generator_pending=(results / GENERATOR_FAILED_FILE).exists())


def write_expected(requirements: frozenset[str], directory: Path) -> Path:
    """The list the build phase checks the package's own evaluation against, sorted as ``LC_ALL=C sort``."""
    path = directory / EXPECTED_FILE
    path.write_text("".join(f"{requirement}\n" for requirement in sorted(requirements)))
    path.chmod(0o644)
    return path
