"""kojihub check_noarch_rpms and rpmdiff: the copies of a noarch RPM that several buildArch
tasks of one build made are compared before one of them is kept.

completeBuild (import_build) and moveBuildToScratch call it. A pair whose
hashes in the tasks' noarch_rpmdiff.json logs are equal is taken as equal;
any other pair is compared with koji.rpmdiff, ignoring file size, digest,
mtime and link count, and a difference fails the call with kojihub's
koji.BuildError.
"""

from __future__ import annotations

import os

import koji
import koji.rpmdiff

NOARCH_RPMDIFF = 'noarch_rpmdiff.json'


def check_noarch_rpms(workdir, rpms, logs=None):
    """``rpms`` (paths relative to workdir) with each noarch RPM kept once, its first copy."""
    result, copies = [], {}
    for relpath in rpms:
        name = os.path.basename(relpath)
        if name.endswith('.noarch.rpm'):
            if name in copies:
                copies[name].append(relpath)
                continue
            copies[name] = [relpath]
        result.append(relpath)
    hashes = task_hashes(workdir, logs)
    for paths in copies.values():
        compare_copies(workdir, paths, hashes)
    return result


def task_hashes(workdir, logs):
    """{task id (str): {rpm file name: hash}} from the noarch_rpmdiff.json files among ``logs``."""
    hashes = {}
    for relpaths in (logs or {}).values():
        for relpath in relpaths:
            if os.path.basename(relpath) == NOARCH_RPMDIFF:
                hashes.update(koji.load_json(os.path.join(workdir, relpath)))
    return hashes


def compare_copies(workdir, paths, hashes):
    """The first copy against each other one.

    kojihub takes the task id from the path's second part (tasks/<id % 10000>/<id>/...),
    which is the id itself below 10000; hubsim takes the task's own directory.
    """
    first = paths[0]
    first_hash = _hash(first, hashes)
    for other in paths[1:]:
        if first_hash and first_hash == _hash(other, hashes):
            continue
        diff = koji.rpmdiff.Rpmdiff(os.path.join(workdir, first), os.path.join(workdir, other), ignore='S5TN')
        if diff.differs():
            raise koji.BuildError(
                'The following noarch package built differently on different architectures: %s\n'
                'rpmdiff output was:\n%s' % (os.path.basename(first), diff.textdiff()))


def _hash(relpath, hashes):
    task_id = os.path.basename(os.path.dirname(relpath))
    return hashes.get(task_id, {}).get(os.path.basename(relpath))
