"""The per-user store of cached buildroot environments (docs/adr/0006-cached-buildroots.md).

A cached environment is a podman image committed from a prepared buildroot,
named after a hash of everything that went into it (names.py). The store keeps
a typed record of each one (records.py) in an SQLite file of the worker's own
user whose schema is versioned and migrated (schema.py, database.py); a lock
per environment (locking.py) makes two tasks that need the same environment
build it once; cleanup.py chooses what to evict and removes it; settings.py
says where the store is.
"""

from __future__ import annotations

import logging

from .cleanup import select_evictions
from .errors import EnvironmentLockedError, EnvironmentStoreError
from .names import LABEL_ENVIRONMENT, LABEL_STORE, environment_name, image_ref
from .records import Environment
from .schema import SCHEMA_VERSION
from .settings import StoreSettings, store_settings
from .store import EnvironmentStore

log = logging.getLogger(__name__)

__all__ = ["LABEL_ENVIRONMENT", "LABEL_STORE", "SCHEMA_VERSION", "Environment", "EnvironmentLockedError",
           "EnvironmentStore", "EnvironmentStoreError", "StoreSettings", "environment_name", "image_ref",
           "select_evictions", "store_settings"]
