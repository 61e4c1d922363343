"""Which arches a build runs for, and which host arch each buildArch subtask goes to.

Pure rules, as kojid applies them: the tag's arches narrowed by the SRPM's
BuildArch/ExclusiveArch/ExcludeArch; a noarch package is built once, on an
arch the tag (or its ``noarch_arches`` extra) allows and the SRPM does not
exclude. The hub routes a subtask by its task arch, so that choice decides
which hosts may take it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import koji
import koji.util

from ..errors import BuildError
from ..rpmheader import RpmHeader


@dataclass(frozen=True)
class ArchHeader:
    """The arch fields of an SRPM header (empty when the spec does not set them)."""

    buildarchs: tuple[str, ...] = ()
    exclusivearch: tuple[str, ...] = ()
    excludearch: tuple[str, ...] = ()


def arch_fields(header: RpmHeader) -> ArchHeader:
    return ArchHeader(buildarchs=header.buildarchs, exclusivearch=header.exclusivearch,
                      excludearch=header.excludearch)


def _unique(arches: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(arches))


def build_arches(tag_arches: str | None, header: ArchHeader, extra_arches: str | None = None,
                 arch_override: str | None = None) -> list[str]:
    """The arches of the buildArch subtasks of one build.

    ``extra_arches`` comes from the package's listing in the destination tag;
    ``arch_override`` (scratch builds only) replaces the SRPM's choice but is
    still limited to what the tag can build.
    """
    if not tag_arches or not tag_arches.split():
        raise BuildError("the build tag has no arches", hint="set the tag's arches (koji edit-tag --arches)")
    canonical_tag_arches = {koji.canonArch(arch) for arch in tag_arches.split()}
    archlist = tag_arches.split() + (extra_arches or "").split()
    if header.buildarchs:
        archlist = list(header.buildarchs)
    if header.exclusivearch:
        archlist = [arch for arch in archlist if arch in header.exclusivearch]
    if header.excludearch:
        archlist = [arch for arch in archlist if arch not in header.excludearch]
    if "noarch" not in header.excludearch and ("noarch" in header.buildarchs or "noarch" in header.exclusivearch):
        archlist.append("noarch")
    if arch_override:
        archlist = arch_override.split()
    arches = _unique([arch for arch in archlist if arch == "noarch" or koji.canonArch(arch) in canonical_tag_arches])
    if not arches:
        raise BuildError(f"no arch to build for: the tag has {tag_arches}, the SRPM allows "
                         f"{' '.join(header.buildarchs or header.exclusivearch) or 'any'}"
                         f"{' but excludes ' + ' '.join(header.excludearch) if header.excludearch else ''}",
                         hint="add one of the package's arches to the build tag, or fix the spec's arch lines")
    return arches


def task_arch(arch: str, tag_arches: str, header: ArchHeader, noarch_arches: str | None = None,
              literal_task_arches: str = "", choose: Callable[[list[str]], str] = random.choice) -> str:
    """The task arch of the buildArch subtask building ``arch``.

    A noarch build still needs a real buildroot arch: one of the tag's arches
    (only those in ``noarch_arches`` when the tag sets it) that the SRPM does
    not exclude, picked at random so noarch builds spread over the hosts.
    """
    if literal_task_arches and koji.util.multi_fnmatch(arch, literal_task_arches.split()):
        return arch
    if arch != "noarch":
        return koji.canonArch(arch)
    candidates = _unique([koji.canonArch(a) for a in tag_arches.split()])
    if noarch_arches:
        allowed = {koji.canonArch(a) for a in noarch_arches.split()}
        candidates = [a for a in candidates if a in allowed]
    exclusive = set(header.exclusivearch) - {"noarch"}
    if exclusive:
        candidates = [a for a in candidates if a in exclusive]
    candidates = [a for a in candidates if a not in header.excludearch]
    if not candidates:
        raise BuildError(f"no arch can build this noarch package: tag arches {tag_arches}, "
                         f"noarch_arches {noarch_arches or '(unset)'}, ExclusiveArch "
                         f"{' '.join(header.exclusivearch) or '(unset)'}, ExcludeArch "
                         f"{' '.join(header.excludearch) or '(unset)'}",
                         hint="allow one of the tag's arches in the spec, or in the tag extra noarch_arches")
    return choose(sorted(candidates))
