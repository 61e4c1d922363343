"""The layers a buildroot image is made of, as values.

A buildroot image is a chain: the group layer (the base image with the repo
file, the macros and the install group), then one layer per round of
BuildRequires. Each is made by the package manager alone (provision.py)
and keyed on everything it depends on (cachekey.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .cachekey import key_of
from .installed import InstalledPackage


@dataclass(frozen=True)
class BuildrootImage:
    """An image a build can start from."""

    ref: str
    key: str
    installed: tuple[InstalledPackage, ...]
    #: every BuildRequires the layers up to this one installed
    requirements: frozenset[str] = frozenset()
    #: its cached environment's name; "" for an image made for one build only
    name: str = ""
    #: found in the cache rather than made for this build
    reused: bool = False
    #: the shared cache it was pulled from for this build; "" if it was not
    pulled_from: str = ""


@dataclass(frozen=True)
class Layer:
    """A layer to obtain: what it is keyed on, and what it installs."""

    tag: str
    arch: str
    inputs: dict = field(hash=False)
    requirements: frozenset[str] = frozenset()
    parent: BuildrootImage | None = None

    @cached_property
    def key(self) -> str:
        return key_of(self.inputs)
