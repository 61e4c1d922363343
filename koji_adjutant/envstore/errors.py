"""Errors of the environment store, so callers can tell a store problem from a build failure."""

from __future__ import annotations

import logging

from ..errors import AdjutantError

log = logging.getLogger(__name__)


#: What to do about a file that is not a usable store: it is never rewritten in place.
FOREIGN_FILE_HINT = "move the file away (koji-adjutant then starts a new store), or use another --store"


class EnvironmentStoreError(AdjutantError):
    """The environment store cannot be used (wrong file, newer schema, broken), or an
    environment's lock could not be taken."""


class EnvironmentLockedError(EnvironmentStoreError):
    """Another process held an environment's lock for longer than the caller would wait."""

    hint = "another task is building or cleaning it; try again later"
