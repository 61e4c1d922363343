"""Task handlers, one module per family; ``HANDLERS`` is what the daemon registers."""

import koji.tasks

from .build import BuildTask
from .buildarch import BuildArchTask
from .chain import ChainBuildTask
from .distrepo import CreateDistRepoTask, DistRepoTask
from .notify import BuildNotificationTask, TagNotificationTask
from .repos import CreaterepoTask, NewRepoTask
from .srpm import BuildSRPMFromSCMTask, RebuildSRPMTask
from .tagging import TagBuildTask

#: Ours, and koji's own handlers kojid registers too (waiting, restarts, shutdown).
HANDLERS = (BuildTask, BuildArchTask, ChainBuildTask, TagBuildTask, TagNotificationTask, BuildNotificationTask,
            RebuildSRPMTask, BuildSRPMFromSCMTask, NewRepoTask, CreaterepoTask, DistRepoTask, CreateDistRepoTask,
            koji.tasks.WaitrepoTask, koji.tasks.DependantTask, koji.tasks.RestartTask,
            koji.tasks.RestartVerifyTask, koji.tasks.RestartHostsTask, koji.tasks.ShutdownTask)


def handled_methods() -> list[str]:
    """The task methods this worker takes; the hub is told so, and refuses it the others."""
    return sorted(method for handler in HANDLERS for method in handler.Methods)
