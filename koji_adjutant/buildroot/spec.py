"""BuildrootSpec: every input that shapes a buildroot, in one hashable value.

Two buildroots made from equal specs are interchangeable, which is what lets
the cache key its layers on ``inputs()`` (cachekey.py). Anything that changes
what lands in the buildroot must therefore be a field here, and nothing else
may be.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlparse

from .. import __version__
from ..errors import ConfigError


def templates_digest(directory=None) -> str:
    """A digest of the templates (as shipped, unless ``directory`` is given): any change to
    them changes every cache key, with no version to remember to bump."""
    directory = directory or resources.files("koji_adjutant.buildroot").joinpath("templates")
    digest = hashlib.sha256()
    for template in sorted(directory.iterdir(), key=lambda entry: entry.name):
        if template.name.endswith(".j2"):
            digest.update(template.name.encode() + b"\0" + template.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


TEMPLATE_VERSION = templates_digest()

_MACRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REPO_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ARCH = re.compile(r"^[A-Za-z0-9_]+$")
#: Koji tag names; never whitespace or control characters (they reach rendered files).
_TAG = re.compile(r"^[A-Za-z0-9_.+/@-]+$")
#: comps group ids; package names or provides reach dnf quoted, but never as an option.
_GROUP = re.compile(r"^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*$")


PACKAGE_MANAGERS = ("dnf", "dnf5", "yum")
MODULE_ACTIONS = ("enable", "disable", "reset", "install", "remove", "switch-to")


class InstallGroup(str, enum.Enum):
    """The comps groups kojid's buildroots start from."""

    BUILD = "build"
    SRPM_BUILD = "srpm-build"


@dataclass(frozen=True)
class RepoSource:
    """A package repository: a URL, or a local directory (offline mode)."""

    repo_id: str
    location: str
    #: its content never changes under this id and location (a Koji repo), so what is read of it
    #: may be remembered (packageset.py); a directory of build-local's can change under its path.
    #: Not an input of the buildroot: it says nothing of what the repo holds.
    immutable: bool = False

    def __post_init__(self) -> None:
        if not _REPO_ID.fullmatch(self.repo_id):
            raise ConfigError(f"repo id {self.repo_id!r} may only hold letters, digits and _.:-")
        if not self.location or any(ch.isspace() or not ch.isprintable() for ch in self.location):
            raise ConfigError(f"repo location {self.location!r} is empty or holds white space")

    @property
    def is_local(self) -> bool:
        return urlparse(self.location).scheme in ("", "file")

    @property
    def local_path(self) -> Path:
        return Path(urlparse(self.location).path if self.location.startswith("file:") else self.location)

    def check(self) -> None:
        """Fail early, and clearly, on a local repo that is not one."""
        if not self.is_local:
            if urlparse(self.location).scheme not in ("http", "https"):
                raise ConfigError(f"repo {self.location!r} is neither a directory nor an http(s) URL")
            return
        path = self.local_path
        if not path.is_absolute():
            raise ConfigError(f"repo directory {path} must be an absolute path")
        if not path.is_dir():
            raise ConfigError(f"repo directory {path} does not exist",
                              hint="create it with createrepo_c, or pass the right --repo")
        if not (path / "repodata" / "repomd.xml").is_file():
            raise ConfigError(f"{path} is not a package repository (no repodata/repomd.xml)",
                              hint=f"run 'createrepo_c {path}' first")


def kojid_macros(arch: str, packager: str = "Koji", vendor: str = "Koji",
                 distribution: str = "Koji", mockhost: str = "koji-linux-gnu") -> dict[str, str]:
    """The macros kojid sets in every buildroot, before tag rpm.macro.* overrides."""
    return {
        "_topdir": "/builddir/build",
        # %% so rpm expands the tags per (sub)package, not once when the file is read.
        "_rpmfilename": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        "vendor": vendor,
        "packager": packager,
        "distribution": distribution,
        "_host_cpu": arch,
        "_host": f"{arch}-{mockhost}",
    }


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted((mapping or {}).items())))


@dataclass(frozen=True)
class PackageManagerOptions:
    releasever: str | None = None
    module_hotfixes: bool = False
    best: bool = True
    install_weak_deps: bool = False
    #: the image's package manager: dnf, dnf5, or yum (dnf 4 under that name, EL 8 and later)
    command: str = "dnf"
    #: ``dnf module`` commands run before anything is installed (tag extra mock.module_setup_commands)
    module_setup: tuple[tuple[str, ...], ...] = ()
    #: every package of the image that the repos also carry taken to the repos' version
    #: (tag extra adjutant.sync_image_packages), so the tag governs the toolchain as under mock
    sync_image: bool = False

    def __post_init__(self) -> None:
        if self.command not in PACKAGE_MANAGERS:
            raise ConfigError(f"package manager {self.command!r} is not supported",
                              hint=f"use one of {', '.join(PACKAGE_MANAGERS)}")
        object.__setattr__(self, "module_setup", tuple(tuple(c) for c in self.module_setup))
        for command in self.module_setup:
            if not command or command[0] not in MODULE_ACTIONS or any(
                    not isinstance(word, str) or not word or "\n" in word for word in command):
                raise ConfigError(f"module setup command {list(command)!r} is not one",
                                  hint=f"give [action, module...] with an action of {', '.join(MODULE_ACTIONS)}")


@dataclass(frozen=True)
class Timeouts:
    """Seconds; the rpmbuild one is kojid's rpmbuild_timeout."""

    dependencies: int = 3600
    rpmbuild: int = 86400


@dataclass(frozen=True)
class BuildrootSpec:
    image: str
    image_digest: str
    arch: str
    repos: tuple[RepoSource, ...]
    #: the comps group installed first (an InstallGroup, or any group id); None installs none
    group: str | None = InstallGroup.BUILD.value
    #: installed with the group (build-local --install), as mock's chroot_setup_cmd can
    extra_packages: tuple[str, ...] = ()
    macros: Mapping[str, str] = field(default_factory=dict)
    #: environment variables of every step (tag extras rpm.env.*)
    env_vars: Mapping[str, str] = field(default_factory=dict)
    package_manager: PackageManagerOptions = field(default_factory=PackageManagerOptions)
    timeouts: Timeouts = field(default_factory=Timeouts)
    tag: str = "local"
    #: rpmbuild --target; defaults to ``arch`` (differs for noarch builds).
    target_arch: str | None = None
    #: The unprivileged user of the image that runs rpmbuild.
    build_user: str = "mockbuild"

    def __post_init__(self) -> None:
        object.__setattr__(self, "macros", _frozen(self.macros))
        object.__setattr__(self, "env_vars", _frozen(self.env_vars))
        object.__setattr__(self, "repos", tuple(self.repos))
        object.__setattr__(self, "extra_packages", tuple(self.extra_packages))
        object.__setattr__(self, "group", self.group.value if isinstance(self.group, InstallGroup) else self.group)
        if self.group is not None and not _GROUP.fullmatch(self.group):
            raise ConfigError(f"group {self.group!r} is not a comps group id",
                              hint="give a group id such as build or buildsys-build")
        for package in self.extra_packages:
            if not package.strip() or package.startswith("-") or not package.isprintable():
                raise ConfigError(f"package {package!r} is not a package name or provide")
        if not self.repos:
            raise ConfigError("a buildroot needs at least one repo", hint="pass --repo DIR or URL")
        for name, value in self.macros.items():
            if not _MACRO_NAME.fullmatch(name):
                raise ConfigError(f"macro name {name!r} is not a valid rpm macro name")
            if "\n" in value or not value.strip() or value.endswith("\\"):
                raise ConfigError(f"macro %{name} value {value!r} cannot be one rpm macro line",
                                  hint="give a non-empty, single-line value that does not end in a backslash")
        for field_name, pattern, value in (("arch", _ARCH, self.arch), ("target arch", _ARCH, self.rpmbuild_target),
                                           ("tag", _TAG, self.tag)):
            if not pattern.fullmatch(value):
                raise ConfigError(f"{field_name} {value!r} is not valid")
        for name in self.env_vars:
            if not _ENV_NAME.fullmatch(name):
                raise ConfigError(f"environment variable name {name!r} is not valid")
        if len({r.repo_id for r in self.repos}) != len(self.repos):
            raise ConfigError("two repos share one repo id")

    @property
    def rpmbuild_target(self) -> str:
        return self.target_arch or self.arch

    @property
    def first_install(self) -> str | None:
        """What the buildroot's first installation brings, for logs; None when it brings nothing."""
        parts = [f"the @{self.group} group"] if self.group else []
        if self.extra_packages:
            parts.append(", ".join(self.extra_packages))
        return " and ".join(parts) or None

    @property
    def offline(self) -> bool:
        """No repo needs the network, so no phase gets any."""
        return all(repo.is_local for repo in self.repos)

    def inputs(self) -> dict:
        """The spec as plain data, with the versions that shape the result.

        The timeouts are left out: how long we wait changes nothing in the buildroot.
        """
        return {
            "image": self.image, "image_digest": self.image_digest, "arch": self.arch,
            "repos": [[repo.repo_id, repo.location] for repo in self.repos],
            "group": self.group, "extra_packages": list(self.extra_packages),
            "macros": dict(self.macros), "env_vars": dict(self.env_vars),
            "package_manager": asdict(self.package_manager), "tag": self.tag, "build_user": self.build_user,
            "target_arch": self.rpmbuild_target,
            "template_version": TEMPLATE_VERSION, "adjutant_version": __version__,
        }
