"""Repos of the simulated hub: repoInit/repoDone, the repo.* request API, newRepo.

A mixin of HubState (state.py): methods named rpc_<name>/host_<name> are
exported as in state.py, and share its tables and lock.
"""


class ReposMixin:
    pass
