"""Errors of the environment store, so callers can tell a store problem from a build failure."""

from __future__ import annotations

import logging

from ..errors import AdjutantError

log = logging.getLogger(__name__)


class EnvironmentStoreError(AdjutantError):
    """The environment store cannot be used (wrong file, newer schema, broken), or an
    environment's lock could not be taken."""


class EnvironmentLockedError(EnvironmentStoreError):
    """Another process held an environment's lock for longer than the caller would wait."""

    hint = "another task is building or cleaning it; try again later"
