"""buildArch: build one SRPM for one arch and hand the results to the hub."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import koji

from ..errors import BuildError, ConfigError
from ..rpmheader import read_header
from .buildbase import BuildrootTask
from .buildroots import TaskBuildroot

log = logging.getLogger(__name__)

#: kojid adds 0.75 to a buildArch's weight for every hour a build of the package takes on
#: average, at most 18 (24 hours), so hosts are not over-committed with heavy packages.
_SECONDS_PER_WEIGHT = 4800.0
_MAX_EXTRA_WEIGHT = 18.0

#: kojid's name for the rpmdiff hashes of a buildArch's noarch RPMs ({task id: {file name: hash}}).
NOARCH_RPMDIFF = "noarch_rpmdiff.json"
#: What the hub's comparison of noarch copies ignores (kojihub rpmdiff): file size, digest,
#: mtime and link count, which may legitimately differ between builds of the same files.
_RPMDIFF_IGNORE = "S5TN"


def weight_for(average_seconds: float | None, base: float) -> float | None:
    """The task weight kojid's BuildArchTask.updateWeight sets; None to leave it."""
    if not average_seconds or average_seconds < 0:
        return None
    return base + min(_MAX_EXTRA_WEIGHT, average_seconds / _SECONDS_PER_WEIGHT)


def noarch_rpmdiff(rpms: Iterable[Path]) -> dict[str, str]:
    """koji.rpmdiff's kojihash of each noarch RPM, by file name, as kojid's BuildArchTask computes it.

    A package built for several arches may make the same noarch subpackage on each. The hub
    keeps one copy, after checking that the copies do not differ (kojihub check_noarch_rpms,
    in completeBuild and moveBuildToScratch); equal hashes let it skip comparing the files.
    """
    noarch = [rpm for rpm in rpms if rpm.name.endswith(".noarch.rpm")]
    if not noarch:
        return {}
    rpmdiff = _rpmdiff()
    hashes = {}
    for rpm in noarch:
        try:
            hashes[rpm.name] = rpmdiff.Rpmdiff(str(rpm), str(rpm), ignore=_RPMDIFF_IGNORE).kojihash()
        except rpmdiff.rpm.error as exc:   # the build's own code made the file
            raise BuildError(f"{rpm.name} is not a readable RPM: {exc}") from None
    return hashes


def _rpmdiff():
    """koji.rpmdiff, which needs rpm's Python bindings; imported when first needed, so that a
    host without them says what to install instead of failing to start."""
    try:
        import koji.rpmdiff
    except ImportError as exc:
        raise ConfigError(f"hashing noarch RPMs needs rpm's Python bindings, which cannot be imported: {exc}",
                          hint="install python3-rpm, and in a virtualenv the PyPI package rpm "
                               "(scripts/setup-host.sh installs both)") from None
    return koji.rpmdiff


class BuildArchTask(BuildrootTask):
    Methods = ["buildArch"]
    _taskWeight = 1.5

    def update_weight(self, name: str) -> None:
        """As kojid: the hub's average build time of the package (last 6 months) sets the weight."""
        try:
            average = self.session.getAverageBuildDuration(name, age=6)
        except koji.ParameterError:  # a hub before 1.23 takes no age
            average = self.session.getAverageBuildDuration(name)
        if average is not None and average < 0:
            log.warning("negative average build duration for %s: %s", name, average)
        weight = weight_for(average, self._taskWeight)
        if weight is not None:
            self.session.host.setTaskWeight(self.id, weight)

    def handler(self, pkg, root, arch, keep_srpm, opts=None):
        repo_id = self.required_repo(opts)
        srpm = self.input_srpm(pkg)
        self.update_weight(read_header(srpm).name)
        done = TaskBuildroot(self, root, arch, repo_id).build(srpm, self.resultdir)

        uploaddir = self.getUploadDir()
        logs = list(done.log_paths)
        hashes = noarch_rpmdiff(done.build.rpms)
        if hashes:
            logs.append(self._upload_noarch_rpmdiff(hashes))
        for rpm in done.build.rpms:
            self.uploadFile(str(rpm))
        srpms = [self.upload_srpm(done.build.srpm)] if keep_srpm else []
        return {
            "rpms": [f"{uploaddir}/{rpm.name}" for rpm in done.build.rpms],
            "srpms": srpms,
            "logs": logs,
            "brootid": done.brootid,
        }

    def _upload_noarch_rpmdiff(self, hashes: dict[str, str]) -> str:
        """noarch_rpmdiff.json uploaded beside the logs, as kojid does; its upload path."""
        path = Path(self.workdir) / NOARCH_RPMDIFF
        path.write_text(json.dumps({str(self.id): hashes}, indent=2, sort_keys=True))
        self.uploadFile(str(path))
        return f"{self.getUploadDir()}/{NOARCH_RPMDIFF}"
