"""Builds, packages, tagging and notifications of the simulated hub.

A mixin of HubState (state.py): methods named rpc_<name>/host_<name> are
exported as in state.py, and share its tables and lock.
"""


class BuildsMixin:
    pass
