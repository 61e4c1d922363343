"""Task handlers, one module per family; ``HANDLERS`` is what the daemon registers."""

from .build import BuildTask
from .buildarch import BuildArchTask
from .chain import ChainBuildTask
from .notify import BuildNotificationTask, TagNotificationTask
from .repos import CreaterepoTask, NewRepoTask
from .srpm import BuildSRPMFromSCMTask, RebuildSRPMTask
from .tagging import TagBuildTask

HANDLERS = (BuildTask, BuildArchTask, ChainBuildTask, TagBuildTask, TagNotificationTask, BuildNotificationTask,
            RebuildSRPMTask, BuildSRPMFromSCMTask, NewRepoTask, CreaterepoTask)
