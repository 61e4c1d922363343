"""What every koji-adjutant task handler shares.

Handlers subclass koji.tasks.BaseTaskHandler, as kojid's do, so koji's
TaskManager runs them unchanged. Our errors are turned into the koji faults
the hub expects (BuildError 1005, BuildrootError 1012) carrying our message,
so the hub shows "what failed, which log, what to do" instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import koji
from koji.tasks import BaseTaskHandler

from ..container.interface import LABEL_TASK, LABEL_WORKER
from ..errors import AdjutantError, BuildError, BuildrootError, ConfigError, ContainerError
from ..hub import LogUploader
from ..resources import Resources


def as_koji_fault(exc: AdjutantError) -> koji.GenericError:
    if isinstance(exc, BuildError):
        return koji.BuildError(str(exc))
    if isinstance(exc, (BuildrootError, ContainerError)):
        return koji.BuildrootError(str(exc))
    if isinstance(exc, ConfigError):
        return koji.ConfigError(str(exc))
    return koji.GenericError(str(exc))


class AdjutantTask(BaseTaskHandler):
    def run(self):
        try:
            return super().run()
        except AdjutantError as exc:
            if exc.log_path:
                # A path on this builder means nothing to the hub's users: name the task's own
                # uploaded log, which koji watch-logs and taskinfo show.
                exc.log_path = f"{Path(exc.log_path).name} of task {self.id} (koji watch-logs {self.id})"
            raise as_koji_fault(exc) from exc

    @property
    def adjutant(self):
        return self.options.adjutant

    def container_labels(self) -> dict[str, str]:
        return {LABEL_WORKER: self.adjutant.worker_id, LABEL_TASK: str(self.id)}

    @contextmanager
    def live_logs(self) -> Iterator[Path]:
        """A fresh logs directory in the task's workdir whose files reach the hub while the task
        writes them, as kojid uploads its tools' logs; the last of them once the block ends."""
        logdir = Path(self.workdir) / "logs"
        logdir.mkdir()
        with Resources() as resources:
            uploader = LogUploader(self.session, logdir, self.getUploadDir())
            uploader.start()
            resources.release("upload the last of the logs", uploader.finish)
            yield logdir
