"""Where the environment store is and how large it may grow, from the configuration.

This is the only place that turns the [adjutant] section into a store path and
cache limits, so the daemon, its tasks, ``build-local --cache`` and
``koji-adjutant env`` always agree on which store they mean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import AdjutantOptions
from .store import STORE_FILENAME, EnvironmentStore

log = logging.getLogger(__name__)

GIB = 1 << 30


@dataclass(frozen=True)
class StoreSettings:
    path: Path
    max_total_bytes: int
    max_age_days: float

    def open(self) -> EnvironmentStore:
        return EnvironmentStore(self.path)


def store_settings(adjutant: AdjutantOptions) -> StoreSettings:
    """The store of the worker configured by ``adjutant`` (a Config's [adjutant] section)."""
    return StoreSettings(path=Path(adjutant.state_dir) / STORE_FILENAME,
                         max_total_bytes=int(adjutant.cache_max_size_gb * GIB),
                         max_age_days=adjutant.cache_max_age_days)
