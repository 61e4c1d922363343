"""Getting a package from its SCM for buildSRPMFromSCM, on the worker's side of the container boundary.

koji.daemon.SCM is kojid's own: URL parsing, the allowed_scms / build_from_scm
checks and the checkout commands (git clone, fetch, reset). The checkout runs
on the host as the worker user, as kojid's does, so the SCM credentials of
that user (ssh keys, netrc) are used there and never enter a container; git
itself runs no code of the repository. Everything of the repository's own
(the source command, its Makefile) runs later, in the buildroot
(docs/adr/0008-scm-checkout.md).

An SCM URL is untrusted: any Koji user submits one, and koji.daemon.SCM puts
its revision straight into git, svn and cvs command lines and joins its
module onto the checkout directory. So the URL's fields are checked right
after parsing, before any permission check or network (``check_url``), and
what the checkout left is checked before anything reads it: the directory
built from and its spec must resolve (symlinks followed) inside the checkout
(``source_directory``, ``find_spec``).
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

#: One /-separated part of a revision: a git commit id, branch or tag (``origin/`` may lead), with
#: an optional ``~N`` or ``^``; an svn revision number; a CVS tag. Starting with a letter or digit,
#: no part can be read as an option: koji passes the revision after ``origin/`` on its own.
_REVISION_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~^@-]*", re.ASCII)
_REVISION_CHARS = "letters, digits and . _ / + ~ ^ @ -"
#: One /-separated part of a ?module path: a plain directory name, never '.', '..' or an option.
_MODULE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*", re.ASCII)
#: A host name or IPv4/IPv6 address, optionally with a port; never an option of ssh (cvs+ssh).
_HOST = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?", re.ASCII)
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*", re.ASCII)
_URL_HINT = ("use scheme://[user@]host/path/to/repo[?module]#revision: the revision a commit id, branch, "
             f"tag, origin/branch or revision number ({_REVISION_CHARS}; each /-part starting with a letter "
             "or digit, no '..'); the module a relative path of directory names (letters, digits and . _ + -, "
             "each starting with a letter, digit or _)")


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
        scm = SCM(url, allow_password=options.allow_password_in_scm_url)
    except koji.GenericError as exc:
        raise BuildError(f"invalid SCM URL {url!r}: {exc}",
                         hint="use scheme://host/path/to/repo[?module]#revision, e.g. "
                              "git+https://host/repo.git#COMMIT") from exc
    check_url(scm)
    try:
        scm.assert_allowed(allowed=options.allowed_scms, session=session,
                           by_config=options.allowed_scms_use_config, by_policy=options.allowed_scms_use_policy,
                           policy_data=policy_data() if options.allowed_scms_use_policy else None)
    except koji.BuildError as exc:
        raise BuildError(f"SCM URL {url} refused: {exc}",
                         hint="the builder's kojid.conf allowed_scms (or the hub's build_from_scm policy) "
                              "must allow this host and repository") from exc
    if scm.use_common:
        # koji would clone the sibling "common" repository and link it beside the package's
        # directory, outside the checkout when the module is a link; only the package's
        # directory reaches the buildroot anyway (ADR 0008).
        log.info("not checking out the 'common' repository of %s: only the package directory is built", url)
        scm.use_common = False
    return scm


def check_url(scm: SCM) -> None:
    """Refuse a URL whose fields koji.daemon.SCM would put unchecked into a command line or a path.

    Run before any permission check or network: a revision like ``--upload-pack=CMD`` becomes an
    option of ``git fetch`` that runs CMD on the worker, and a module like ``../../etc`` a
    directory outside the checkout.
    """
    problem = (_control_problem(scm.url) or _user_problem(scm.user) or _host_problem(scm.host)
               or _revision_problem(scm.revision) or _module_problem(scm.module))
    if problem:
        log.warning("refusing SCM URL %r: %s", scm.url, problem)
        raise BuildError(f"SCM URL {scm.url!r} refused: {problem}", hint=_URL_HINT)


def _control_problem(url: str) -> str | None:
    """Checked on the URL as given: the URL parser silently drops tabs and newlines."""
    if any(ord(char) < 32 or ord(char) == 127 for char in url):
        return "it contains control characters (a newline, a tab or the like)"
    return None


def _user_problem(user: str | None) -> str | None:
    """koji.daemon.SCM joins a password allowed by allow_password_in_scm_url on as ``user:password``;
    either way it lands in a URL argument, so only the name itself is held to a plain form."""
    name, _, password = (user or "").partition(":")
    if user is None or (_USER.fullmatch(name) and not any(ch.isspace() or ch in "@/" for ch in password)):
        return None
    return (f"the user {name!r} is not a plain user name (letters, digits and . _ -, "
            "starting with a letter, digit or _)")


def _host_problem(host: str) -> str | None:
    if _HOST.fullmatch(host):
        return None
    return f"the host {host!r} is not a host name or an address, with an optional :port"


def _revision_problem(revision: str) -> str | None:
    """git check-ref-format's rules, as far as they matter here, and nothing that is an option.

    Besides the characters allowed: no part may start with '-' (koji hands the part after
    ``origin/`` to git on its own) nor with '.', no '..' (a range, not one commit), no '//',
    and no final '/' or '.'. Refspec syntax ('+' or '^' first, ':') cannot get in.
    """
    if not revision:
        return "the revision (#...) is empty"
    if revision.startswith("-") or "/-" in revision:
        return f"the revision {revision!r} (or a /-part of it) starts with '-': it would be read as a command option"
    unusual = sorted({char for char in revision if not (char.isascii() and (char.isalnum() or char in "._/+~^@-"))})
    if unusual:
        return (f"the revision {revision!r} contains {' '.join(map(repr, unusual))}: "
                f"only {_REVISION_CHARS} are accepted")
    parts_fit = all(_REVISION_PART.fullmatch(part) for part in revision.split("/"))
    if not parts_fit or ".." in revision or revision.endswith("."):
        return (f"the revision {revision!r} is not a git ref name or commit: each /-separated part must "
                "start with a letter or digit, and '..' or a final '.' are not allowed")
    return None


def _module_problem(module: str) -> str | None:
    """The module (?path) is a directory inside the repository: relative, with no way out of it."""
    if not module:
        return None
    if module.startswith("/"):
        return f"the module path {module!r} is absolute: it must be relative to the repository"
    parts = module.split("/")
    if ".." in parts or "." in parts:
        return f"the module path {module!r} has a '.' or '..' part: it must stay inside the repository"
    if any(part.startswith("-") for part in parts):
        return f"the module path {module!r} starts with '-': it would be read as a command option"
    if not all(_MODULE_PART.fullmatch(part) for part in parts):
        return (f"the module path {module!r} is not a plain relative path: each /-separated part must be "
                "letters, digits and . _ + -, starting with a letter, digit or _")
    return None


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


def checkout(scm: SCM, scmdir: Path, session: koji.ClientSession, uploadpath: str,
             rpm_layout: bool = True) -> Checkout:
    """Check the package out into ``scmdir``; checkout.log goes beside it and to the hub, live.

    ``rpm_layout`` (kojid.conf support_rpm_source_layout): the spec may be in SPECS/, and a
    SOURCES/ directory holds the sources.
    """
    scmdir.mkdir(parents=True, exist_ok=True)
    logfile = scmdir.parent / "checkout.log"
    log.info("checking out %s", scm.url)
    try:
        with _git_environment():
            checked_out = Path(scm.checkout(str(scmdir), session, uploadpath, str(logfile)))
            sourcedir = source_directory(checked_out, scmdir)
            source = scm.get_source()
    except koji.GenericError as exc:
        raise BuildError(f"checkout of {scm.url} failed: {exc}",
                         hint="check that the repository and the revision exist and that this builder "
                              "can reach them") from exc
    spec = find_spec(sourcedir, rpm_layout, name=checked_out.name)
    check_spec(spec)
    sources = sourcedir / "SOURCES"
    sources_dir = "SOURCES" if rpm_layout and sources.is_dir() and sources.resolve() == sources else "."
    return Checkout(SourceTree(sourcedir, str(spec.relative_to(sourcedir)),
                               tuple(scm.source_cmd) if scm.source_cmd else None, sources_dir),
                    source, logfile)


def source_directory(sourcedir: Path, scmdir: Path) -> Path:
    """The directory the package is built from, resolved; refused when it leads out of ``scmdir``.

    The repository chooses what its paths are: a ?module that is a symlink to /etc or to
    ../../.. would otherwise have the worker read, and copy into the build, host files.
    The resolved path is what is handed on, so nothing later follows that link again.
    """
    resolved, shown = sourcedir.resolve(), sourcedir.relative_to(scmdir)
    if not resolved.is_relative_to(scmdir.resolve()):
        raise BuildError(f"the checked-out directory {shown} is a symbolic link that leads out of the checkout",
                         hint="the URL's ?module must name a directory of the repository itself")
    if not resolved.is_dir():
        raise BuildError(f"the checked-out directory {shown} does not exist or is not a directory",
                         hint="the URL's ?module must name a directory of the repository")
    return resolved


def find_spec(sourcedir: Path, rpm_layout: bool = True, name: str | None = None) -> Path:
    """The spec file of the checked-out directory, by kojid's rule (BuildSRPMFromSCMTask).

    The specs at its top, or with ``rpm_layout`` and none there, those in SPECS/; of
    several, the one named after the directory (``name``, as checked out). It must
    resolve, symlinks followed, to a regular file inside ``sourcedir``: it is read here,
    on the host, and only ``sourcedir`` is handed on to the build.
    """
    sourcedir = Path(sourcedir)
    name = name or sourcedir.name
    specs = sorted(sourcedir.glob("*.spec"))
    if not specs and rpm_layout:
        specs = sorted(sourcedir.glob("SPECS/*.spec"))
    if len(specs) > 1:
        named = [spec for spec in specs if spec.name == f"{name}.spec"]
        if not named:
            raise BuildError(f"multiple spec files found in the checkout, none named {name}.spec: "
                             f"{', '.join(str(p.relative_to(sourcedir)) for p in specs)}",
                             hint=f"keep one .spec file in the directory the package is built from, or call "
                                  f"the one to build {name}.spec, after that directory")
        specs = named
    if not specs:
        raise BuildError(f"no spec file found in the checkout ({sourcedir.name})",
                         hint="the spec must be at the top of the repository (or in its SPECS/ directory), "
                              "or in the directory the URL's ?module names")
    _check_spec_file(specs[0], sourcedir)
    return specs[0]


def _check_spec_file(spec: Path, sourcedir: Path) -> None:
    """A spec linked to a host file (/etc/..., ../../..) must not be read, nor a directory named *.spec."""
    resolved, hint = spec.resolve(), "the spec must be a file of the repository, in the directory built from"
    if not resolved.is_relative_to(sourcedir.resolve()):
        raise BuildError(f"the spec file {spec.name} is a symbolic link that leads out of the checked-out directory",
                         hint=hint)
    if not resolved.is_file():
        raise BuildError(f"the spec file {spec.name} is not a regular file", hint=hint)


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
