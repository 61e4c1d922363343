"""build: the parent task of one package build, as kojid runs it.

It builds nothing itself. From the target it finds the build and destination
tags, passes the hub's policies, waits for a repo, gets an SRPM made by a
subtask, tells the hub about the build (initBuild), runs one buildArch per
arch, hands the results to the hub (completeBuild, or moveBuildToScratch),
and tags the build with a tagBuild subtask.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import koji
from koji.daemon import SCM
from koji.tasks import ServerExit

from ..errors import BuildError
from ..rpmheader import RpmHeader
from .arches import arch_fields, build_arches, task_arch
from .base import AdjutantTask
from .subtasks import read_srpm_header, run_subtask, start_subtask, wait_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where a build is built (build tag) and where it goes (destination tag), as tag ids."""

    build_tag: int
    dest_tag: int
    dest_tag_name: str
    target_name: str | None
    skip_tag: bool


@dataclass(frozen=True)
class ArchBuilds:
    """The buildArch results merged into completeBuild's arguments."""

    srpm: str
    rpms: list[str] = field(default_factory=list)
    brmap: dict[str, int] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)


def merge_arch_results(results: dict[str, dict]) -> ArchBuilds:
    """One SRPM (from the one buildArch that kept it), all RPMs with their buildroots, logs per arch."""
    srpm = None
    rpms: list[str] = []
    brmap: dict[str, int] = {}
    logs: dict[str, list[str]] = {}
    for arch, result in results.items():
        for path in result["rpms"]:
            rpms.append(path)
            brmap[path] = result["brootid"]
        logs.setdefault(arch, []).extend(result["logs"])
        if result["srpms"]:
            if srpm is not None:
                raise BuildError(f"more than one buildArch returned an SRPM ({srpm}, {result['srpms'][0]})")
            srpm = result["srpms"][0]
            brmap[srpm] = result["brootid"]
    if srpm is None:
        raise BuildError("no buildArch subtask returned the SRPM")
    return ArchBuilds(srpm=srpm, rpms=rpms, brmap=brmap, logs=logs)


def initbuild_data(header: RpmHeader, task_id: int, source: dict | None, opts: dict) -> dict:
    """What host.initBuild records, as kojid's BuildTask.handler gives it: the NVR, the task,
    where the source came from, the user's custom metadata, and whether it is a draft."""
    data: dict[str, Any] = {"name": header.name, "version": header.version, "release": header.release,
            "epoch": header.epoch, "task_id": task_id}
    if source:
        data["source"] = source["source"]
        data["extra"] = {"source": {"original_url": source["url"]}}
    if opts.get("custom_user_metadata"):
        data.setdefault("extra", {})["custom_user_metadata"] = opts["custom_user_metadata"]
    if opts.get("draft"):
        data["draft"] = opts["draft"]
    return data


def check_custom_user_metadata(opts: dict) -> None:
    """kojid's check: a JSON object, or the build fails before anything is made."""
    metadata = opts.get("custom_user_metadata")
    if not metadata:
        return
    if not isinstance(metadata, dict):
        raise BuildError("custom_user_metadata must be serializable to a JSON object")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError):
        raise BuildError("custom_user_metadata is not JSON serializable") from None


def policy_data(owner: int, src: str, task_id: int, where: Destination, opts: dict) -> dict:
    """What kojid's BuildTask.handler (builder/kojid) gives the hub's build policies.

    The same keys and values: scratch, draft and repo_id as the build's options
    have them (None when absent), the target by name and only when there is one,
    the destination tag only when the build is to be tagged.
    """
    data = {"user_id": owner, "source": src, "task_id": task_id, "build_tag": where.build_tag,
            "skip_tag": where.skip_tag, "scratch": opts.get("scratch"), "draft": opts.get("draft"),
            "from_scm": SCM.is_scm_url(src), "repo_id": opts.get("repo_id")}
    if where.target_name is not None:
        data["target"] = where.target_name
    if not where.skip_tag:
        data["tag"] = where.dest_tag
    return data


def build_policies(src: str, opts: dict) -> list[str]:
    """The policies kojid's BuildTask.handler asserts, in its order.

    build_from_srpm for a build that is neither from SCM nor scratch,
    build_from_repo_id when the build names its repo, build_rpm always. The
    hub's defaults (kojihub/kojixmlrpc.py _default_policies) let only admins
    pass the first two and everybody the last.
    """
    names = []
    if not SCM.is_scm_url(src) and not opts.get("scratch"):
        names.append("build_from_srpm")
    if opts.get("repo_id") is not None:
        names.append("build_from_repo_id")
    names.append("build_rpm")
    return names


class BuildTask(AdjutantTask):
    Methods = ["build"]
    _taskWeight = 0.2

    def handler(self, src, target, opts=None):
        self.opts = opts = dict(opts or {})
        scratch = bool(opts.get("scratch"))
        if opts.get("arch_override") and not scratch:
            raise BuildError("arch_override is only allowed for scratch builds")
        if not isinstance(src, str):
            raise BuildError(f"invalid source specification: {src!r}", hint="give an SCM URL or an uploaded SRPM path")
        check_custom_user_metadata(opts)
        repo_info = self._requested_repo(opts.get("repo_id"))
        event = repo_info["create_event"] if repo_info else None
        where = self._destination(target, repo_info, event)
        self._assert_policies(src, where)
        if repo_info is None:
            repo_info = self.getRepo(where.build_tag, builds=opts.get("wait_builds"), wait=opts.get("wait_repo"))
            # As kojid: the package list and arches as they are now, not as when the repo was made,
            # so a package added since is found.
            event = self.session.getLastEvent()["id"]
        build_config = self.session.getBuildConfig(where.build_tag, event=event)
        srpm, source = self._srpm(src, where.build_tag, repo_info["id"], build_config)
        header = read_srpm_header(self, srpm)
        extra_arches = self._check_package(header.name, where, scratch, event)
        arches = build_arches(build_config["arches"], arch_fields(header), extra_arches,
                              opts.get("arch_override") if scratch else None)
        log.info("task %s: building %s for %s", self.id, header.nvr, " ".join(arches))
        build_id = None if scratch else self.session.host.initBuild(initbuild_data(header, self.id, source, opts))
        try:
            built = self._build_arches(srpm, where.build_tag, arches, repo_info["id"], build_config, header)
            if scratch:
                self.session.host.moveBuildToScratch(self.id, built.srpm, built.rpms, logs=built.logs)
            else:
                self.session.host.completeBuild(self.id, build_id, built.srpm, built.rpms, built.brmap,
                                                logs=built.logs)
        except ServerExit:
            raise
        except Exception:
            if build_id is not None:
                self.session.host.failBuild(self.id, build_id)
            raise
        if not where.skip_tag and not scratch:
            run_subtask(self, "tagBuild", [where.dest_tag, build_id, False, None, True], label="tag", arch="noarch")

    def _requested_repo(self, repo_id) -> dict | None:
        if repo_id is None:
            return None
        repo_info = self.session.repoInfo(repo_id)
        if not repo_info:
            raise BuildError(f"no such repo: {repo_id}")
        state = koji.REPO_STATES[repo_info["state"]]
        if state not in ("READY", "EXPIRED"):
            raise BuildError(f"repo {repo_id} is {state}, not usable for a build",
                             hint="wait until it is READY or give another repo_id")
        return repo_info

    def _destination(self, target, repo_info: dict | None, event) -> Destination:
        """From the target; without one, a given repo names the build tag and ``target`` the destination tag."""
        skip_tag = bool(self.opts.get("skip_tag"))
        target_info = self.session.getBuildTarget(target, event=event) if target else None
        if target_info:
            if repo_info is not None and repo_info["tag_id"] != target_info["build_tag"]:
                raise BuildError(f"repo {repo_info['id']} is of tag {repo_info['tag_name']}, "
                                 f"not of the target's build tag {target_info['build_tag_name']}")
            return Destination(target_info["build_tag"], target_info["dest_tag"], target_info["dest_tag_name"],
                               target_info["name"], skip_tag)
        if repo_info is None:
            raise BuildError(f"unknown build target: {target}", hint="koji list-targets shows the known ones")
        if target is None:
            return Destination(repo_info["tag_id"], repo_info["tag_id"], repo_info["tag_name"], None, True)
        tag = self.session.getTag(target, event=event)
        if not tag:
            raise BuildError(f"{target} is neither a build target nor a tag")
        return Destination(repo_info["tag_id"], tag["id"], tag["name"], None, skip_tag)

    def _assert_policies(self, src: str, where: Destination) -> None:
        """Let the hub refuse the build before anything waits or builds, as kojid does.

        Upstream kojid (builder/kojid BuildTask.handler) still asserts
        build_from_srpm and build_from_repo_id before build_rpm, and the hub
        still has all three (kojihub/kojixmlrpc.py _default_policies); the first
        refusal (koji.ActionNotAllowed) fails the task.
        """
        data = policy_data(self.taskinfo["owner"], src, self.id, where, self.opts)
        for name in build_policies(src, self.opts):
            log.debug("task %s: asking the hub's %s policy", self.id, name)
            self.session.host.assertPolicy(name, data)

    def _srpm(self, src: str, build_tag: int, repo_id: int, build_config: dict) -> tuple[str, dict | None]:
        """The SRPM to build (a path under work/) and where its source came from.

        An uploaded SRPM is rebuilt in the build tag's buildroot (so %dist and the
        build system headers are the tag's) unless the tag extra rebuild_srpm is false;
        a scratch build may choose with its own rebuild_srpm option, as under kojid.
        """
        opts = {"repo_id": repo_id, "scratch": bool(self.opts.get("scratch"))}
        if SCM.is_scm_url(src):
            result = run_subtask(self, "buildSRPMFromSCM", [src, build_tag, opts], label="srpm")
            return result["srpm"], result.get("source") or {"source": src, "url": src}
        rebuild = (build_config.get("extra") or {}).get("rebuild_srpm", True)
        if self.opts.get("scratch") and self.opts.get("rebuild_srpm") is not None:
            rebuild = self.opts["rebuild_srpm"]
        if not rebuild:
            return src, None
        result = run_subtask(self, "rebuildSRPM", [src, build_tag, opts], label="srpm")
        return result["srpm"], result.get("source")

    def _check_package(self, name: str, where: Destination, scratch: bool, event) -> str | None:
        """The package must be listed, and not blocked, in the destination tag; its extra arches."""
        config = self.session.getPackageConfig(where.dest_tag, name, event=event)
        if not where.skip_tag and not scratch:
            if config is None:
                raise BuildError(f"package {name} is not in the package list of tag {where.dest_tag_name}",
                                 hint=f"add it: koji add-pkg {where.dest_tag_name} {name} --owner USER")
            if config["blocked"]:
                raise BuildError(f"package {name} is blocked in tag {where.dest_tag_name}")
        return config.get("extra_arches") if config else None

    def _build_arches(self, srpm: str, build_tag: int, arches: list[str], repo_id: int, build_config: dict,
                      header: RpmHeader) -> ArchBuilds:
        """One buildArch per arch; the first keeps the SRPM. A failure cancels the others unless
        build_arch_can_fail is set (and the build did not ask for fail_fast)."""
        noarch_arches = (build_config.get("extra") or {}).get("noarch_arches")
        subtasks = {}
        for index, arch in enumerate(arches):
            route = task_arch(arch, build_config["arches"], arch_fields(header), noarch_arches,
                              self.options.literal_task_arches)
            subtasks[arch] = start_subtask(self, "buildArch", [srpm, build_tag, arch, index == 0, {"repo_id": repo_id}],
                                           label=arch, arch=route)
        failany = bool(self.opts.get("fail_fast")) or not self.options.build_arch_can_fail
        results = wait_all(self, list(subtasks.values()), failany=failany)
        return merge_arch_results({arch: results[task_id] for arch, task_id in subtasks.items()})
