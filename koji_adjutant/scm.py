"""Getting a package from its SCM for buildSRPMFromSCM, on the worker's side of the container boundary.

koji.daemon.SCM is kojid's own: URL parsing, the allowed_scms / build_from_scm
checks and the checkout commands (git clone, fetch, reset). The checkout runs
on the host as the worker user, as kojid's does, so the SCM credentials of
that user (ssh keys, netrc) are used there and never enter a container; git
itself runs no code of the repository. Everything of the repository's own
(the source command, its Makefile) runs later, in the buildroot
(docs/adr/0008-scm-checkout.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import koji
from koji.daemon import SCM

from .buildroot.runner import SourceTree
from .errors import BuildError

log = logging.getLogger(__name__)

#: Set by the build system (kojid's macros); a spec must not set them itself.
_BUILD_SYSTEM_TAGS = ("Packager", "Vendor", "Distribution")
#: git reads these from the environment: no prompt for credentials (a task must not hang
#: on a terminal nobody watches), and no hook of any origin runs on the host.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": "/dev/null"}


@dataclass(frozen=True)
class Checkout:
    tree: SourceTree
    #: the task result's 'source': {'url': as given, 'source': pinned to the commit checked out}
    source: dict[str, str]
    log: Path


def allowed_scm(url: str, options, session: koji.ClientSession,
                policy_data: Callable[[], dict]) -> SCM:
    """The parsed SCM, once kojid.conf allowed_scms and/or the hub's build_from_scm policy allow it.

    ``policy_data`` is asked only when the policy is consulted (allowed_scms_use_policy).
    """
    try:
        scm = SCM(url)
    except koji.GenericError as exc:
        raise BuildError(f"invalid SCM URL {url!r}: {exc}",
                         hint="use scheme://host/path/to/repo[?module]#revision, e.g. "
                              "git+https://host/repo.git#COMMIT") from exc
    try:
        scm.assert_allowed(allowed=options.allowed_scms, session=session,
                           by_config=options.allowed_scms_use_config, by_policy=options.allowed_scms_use_policy,
                           policy_data=policy_data() if options.allowed_scms_use_policy else None)
    except koji.BuildError as exc:
        raise BuildError(f"SCM URL {url} refused: {exc}",
                         hint="the builder's kojid.conf allowed_scms (or the hub's build_from_scm policy) "
                              "must allow this host and repository") from exc
    return scm


@contextlib.contextmanager
def _git_environment() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _GIT_ENV}
    os.environ.update(_GIT_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def checkout(scm: SCM, scmdir: Path, session: koji.ClientSession, uploadpath: str) -> Checkout:
    """Check the package out into ``scmdir``; checkout.log goes beside it and to the hub, live."""
    scmdir.mkdir(parents=True, exist_ok=True)
    logfile = scmdir.parent / "checkout.log"
    log.info("checking out %s", scm.url)
    try:
        with _git_environment():
            sourcedir = Path(scm.checkout(str(scmdir), session, uploadpath, str(logfile)))
            source = scm.get_source()
    except koji.GenericError as exc:
        raise BuildError(f"checkout of {scm.url} failed: {exc}",
                         hint="check that the repository and the revision exist and that this builder "
                              "can reach them") from exc
    spec = find_spec(sourcedir)
    check_spec(spec)
    return Checkout(SourceTree(sourcedir, spec.name, tuple(scm.source_cmd) if scm.source_cmd else None),
                    source, logfile)


def find_spec(sourcedir: Path) -> Path:
    """The one spec file of the checked-out directory (kojid's rule: exactly one)."""
    specs = sorted(Path(sourcedir).glob("*.spec"))
    if len(specs) == 1:
        return specs[0]
    if not specs:
        raise BuildError(f"no spec file found in the checkout ({Path(sourcedir).name})",
                         hint="the spec must be at the top of the repository, or in the directory the URL's "
                              "?module names")
    raise BuildError(f"multiple spec files found in the checkout: {', '.join(p.name for p in specs)}",
                     hint="keep exactly one .spec file in the directory the package is built from")


def check_spec(spec: Path) -> None:
    """kojid's spec sanity check: packager, vendor and distribution are the build system's to set."""
    text = Path(spec).read_text(errors="replace")
    for tag in _BUILD_SYSTEM_TAGS:
        if re.search(rf"^\s*{tag}\s*:", text, re.MULTILINE | re.IGNORECASE):
            raise BuildError(f"{tag} is not allowed to be set in the spec file ({Path(spec).name})",
                             hint="remove it: the build system sets it")
        if re.search(rf"^\s*%(define|global)\s+{tag.lower()}\s", text, re.MULTILINE):
            raise BuildError(f"%{tag.lower()} is not allowed to be defined in the spec file ({Path(spec).name})",
                             hint="remove the definition: the build system sets it")
