"""Task handlers, one module per family; ``HANDLERS`` is what the daemon registers."""

from .buildarch import BuildArchTask

HANDLERS = (BuildArchTask,)
