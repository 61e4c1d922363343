"""Parsers of kojid.conf values: text from the file to a typed value.

Each raises ValueError saying what was expected; config.py turns it into a
ConfigError naming the file, the key and the value.
"""

from __future__ import annotations

import configparser
import enum
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


def text(value: str) -> str:
    return value


def integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("must be an integer") from None


def boolean(value: str) -> bool:
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[value.strip().lower()]
    except KeyError:
        raise ValueError("must be a boolean (true/false, yes/no, on/off, 1/0)") from None


def words(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def log_level(value: str) -> str:
    # kojid looks the name up with getattr(logging, name) and quits when that fails
    if not isinstance(getattr(logging, value, None), int):
        raise ValueError("must be a logging level name such as DEBUG, INFO, WARNING or ERROR")
    return value


def nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def positive(convert: Callable[[str], Any], unit: str) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            number = convert(value)
        except ValueError:
            raise ValueError(f"must be a positive {unit}") from None
        if number <= 0:
            raise ValueError(f"must be a positive {unit}")
        return number
    return parse


def limit(convert: Callable[[str], Any], unit: str) -> Callable[[str], Any]:
    """A resource limit: a positive number, or empty/none/unlimited for no limit."""
    number = positive(convert, unit)

    def parse(value: str) -> Any:
        if value.strip().lower() in ("", "none", "unlimited"):
            return None
        try:
            return number(value)
        except ValueError:
            raise ValueError(f"must be a positive {unit}, or 'unlimited'") from None
    return parse


def enum_member(kind: type[enum.Enum], allowed: tuple[enum.Enum, ...] | None = None) -> Callable[[str], Any]:
    choices = allowed or tuple(kind)

    def parse(value: str) -> Any:
        for choice in choices:
            if value.strip().lower() == choice.value:
                return choice
        raise ValueError("must be one of " + ", ".join(repr(c.value) for c in choices))
    return parse


def optional_name(value: str) -> str | None:
    """A name on the hub, or empty for none."""
    if any(ch.isspace() for ch in value.strip()):
        raise ValueError("must be one name, without white space")
    return value.strip() or None


def socket(value: str) -> str | None:
    if not value.strip():
        return None
    path = value.strip().removeprefix("unix://")
    if not path.startswith("/"):
        raise ValueError("must be an absolute socket path, or unix:///absolute/path")
    return value.strip()


def directory(value: str) -> Path:
    path = Path(os.path.expandvars(value.strip())).expanduser()
    if not path.is_absolute():
        raise ValueError("must be an absolute path (~ and $VARIABLES are expanded)")
    return path


_REGISTRY_HOST = re.compile(r"(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|[A-Za-z0-9.-]+:[0-9]+)")
_REPOSITORY_PART = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*")


def registry_namespace(value: str) -> str | None:
    """host[:port]/namespace: where the shared buildroot cache lives; empty: none."""
    value = value.strip().rstrip("/")
    if not value:
        return None
    host, _, namespace = value.partition("/")
    if not _REGISTRY_HOST.fullmatch(host) or not namespace or \
            not all(_REPOSITORY_PART.fullmatch(part) for part in namespace.split("/")):
        raise ValueError("must be host[:port]/namespace, e.g. registry.example.com:5000/koji-cache "
                         "(a lower-case namespace of letters, digits and ._-)")
    return value


def registry_hosts(value: str) -> tuple[str, ...]:
    hosts = tuple(value.replace(",", " ").split())
    for host in hosts:
        if not _REGISTRY_HOST.fullmatch(host):
            raise ValueError(f"{host!r} is not a registry host (host, host.domain or host:port)")
    return hosts


def optional_path(value: str) -> Path | None:
    if not value.strip():
        return None
    path = Path(value.strip())
    if not path.is_absolute():
        raise ValueError("must be an absolute path")
    return path


def worker_id(value: str) -> str:
    value = nonempty(value)
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain white space")
    return value


def principal_format(value: str) -> str:
    try:
        filled = value % "host.example.com"
    except (TypeError, ValueError):
        raise ValueError("must hold %s exactly once, where the host's name goes (e.g. compile/%s@EXAMPLE.COM)") \
            from None
    if filled == value:
        raise ValueError("must hold %s, where the host's name goes (e.g. compile/%s@EXAMPLE.COM)")
    return value


#: The RLIMIT_* names kojid.conf may set, as podman's --ulimit takes them (lower case, no prefix).
RLIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")


def rlimit(value: str) -> tuple[int, ...]:
    try:
        limits = tuple(int(x) for x in value.split())
    except ValueError:
        limits = ()
    if len(limits) not in (1, 2):
        raise ValueError("must be one or two integers: SOFT [HARD]")
    return limits
