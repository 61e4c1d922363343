"""The pure parts of newRepo/createrepo: repoInit's files read back, kojid's command lines,
merge modes, the legacy newRepo arguments, and the refusal without shared storage."""

from __future__ import annotations

from pathlib import Path

import koji
import pytest
from koji.tasks import RefuseTask

from koji_adjutant.errors import RepoError
from koji_adjutant.repodata import (
    CREATEREPO,
    MERGEREPO,
    ArchInputs,
    ExternalRepo,
    createrepo_command,
    merge_mode,
    mergerepo_command,
    run,
)
from koji_adjutant.tasks.repos import legacy_opts, shared_pathinfo


def repo_dir(base: Path, pkglist: str = "toplink/packages/a/1/1/noarch/a-1-1.noarch.rpm\n",
             comps: bool = True, blocklist: bool = True) -> Path:
    (base / "x86_64").mkdir(parents=True)
    (base / "x86_64" / "pkglist").write_text(pkglist)
    if blocklist:
        (base / "x86_64" / "blocklist").write_text("gone\n")
    if comps:
        (base / "groups").mkdir()
        (base / "groups" / "comps.xml").write_text("<comps/>")
    return base


def test_arch_inputs_read_what_repo_init_wrote(tmp_path):
    inputs = ArchInputs.read(repo_dir(tmp_path), "x86_64")
    assert inputs == ArchInputs(archdir=tmp_path / "x86_64", pkglist=tmp_path / "x86_64" / "pkglist",
                                groupfile=tmp_path / "groups" / "comps.xml",
                                blocklist=tmp_path / "x86_64" / "blocklist")


def test_arch_inputs_empty_pkglist_and_no_groups(tmp_path):
    inputs = ArchInputs.read(repo_dir(tmp_path, pkglist="", comps=False, blocklist=False), "x86_64")
    assert (inputs.pkglist, inputs.groupfile, inputs.blocklist) == (None, None, None)


def test_arch_inputs_missing_pkglist_is_a_repo_error(tmp_path):
    repo_dir(tmp_path)
    with pytest.raises(RepoError, match="aarch64 has no pkglist"):
        ArchInputs.read(tmp_path, "aarch64")


def test_createrepo_command_over_the_arch_dir(tmp_path):
    inputs = ArchInputs.read(repo_dir(tmp_path), "x86_64")
    out = tmp_path / "out"
    assert createrepo_command(inputs, out, update=False, skip_stat=True) == [
        CREATEREPO, "--error-exit-val", "-vd", "-o", str(out), "-i", str(inputs.pkglist),
        "-g", str(inputs.groupfile), str(inputs.archdir)]
    assert createrepo_command(inputs, out, update=True, skip_stat=True)[-3:] == [
        "--update", "--skip-stat", str(inputs.archdir)]
    assert createrepo_command(inputs, out, update=True, skip_stat=False)[-2:] == ["--update", str(inputs.archdir)]


def test_createrepo_command_of_an_empty_tag_makes_an_empty_repo(tmp_path):
    inputs = ArchInputs.read(repo_dir(tmp_path, pkglist="", comps=False), "x86_64")
    out = tmp_path / "out"
    # nothing to update from, nothing to read: the output directory itself is the input
    assert createrepo_command(inputs, out, update=True, skip_stat=True) == [
        CREATEREPO, "--error-exit-val", "-vd", "-o", str(out), str(out)]


@pytest.mark.parametrize("mode, options, blocked", [
    ("koji", ["--koji"], True),
    ("simple", ["--koji", "--simple"], True),
    ("bare", ["--pkgorigins", "--all"], False),
])
def test_mergerepo_command_per_merge_mode(tmp_path, mode, options, blocked):
    inputs = ArchInputs.read(repo_dir(tmp_path), "x86_64")
    command = mergerepo_command(mode, "x86_64", tmp_path / "out", ["file:///w/repo_7_premerge/", "http://ext/x86_64/"],
                                inputs)
    expected = [MERGEREPO, *options, "-a", "x86_64", "-o", str(tmp_path / "out"), "-g", str(inputs.groupfile)]
    if blocked:
        expected += ["-b", str(inputs.blocklist)]
    assert command == expected + ["-r", "file:///w/repo_7_premerge/", "-r", "http://ext/x86_64/"]


def test_external_repos_from_the_hub():
    entry = {"external_repo_name": "fedora", "url": "http://mirror/$arch/os/", "merge_mode": "simple",
             "arches": "x86_64 aarch64", "priority": 5}
    repo = ExternalRepo.from_hub(entry)
    assert repo == ExternalRepo("fedora", "http://mirror/$arch/os/", "simple", ("x86_64", "aarch64"))
    assert repo.url_for("aarch64") == "http://mirror/aarch64/os/"
    assert repo.url_for("ppc64le") is None
    anywhere = ExternalRepo.from_hub(dict(entry, arches=None, merge_mode=None))
    assert (anywhere.merge_mode, anywhere.url_for("s390x")) == ("koji", "http://mirror/s390x/os/")


def test_merge_mode_must_be_one_known_mode():
    assert merge_mode([ExternalRepo("a", "u", "bare"), ExternalRepo("b", "u", "bare")]) == "bare"
    with pytest.raises(RepoError, match="different merge modes: bare, koji"):
        merge_mode([ExternalRepo("a", "u", "koji"), ExternalRepo("b", "u", "bare")])
    with pytest.raises(RepoError, match="unknown merge mode 'fancy'"):
        merge_mode([ExternalRepo("a", "u", "fancy")])


def test_run_failure_names_the_log(tmp_path):
    log = tmp_path / "createrepo.log"
    with pytest.raises(RepoError) as failed:
        run(["sh", "-c", "echo broken metadata; exit 3"], log)
    assert str(failed.value).startswith("sh failed with exit status 3; see createrepo.log")
    assert log.read_text().splitlines() == ["$ sh -c echo broken metadata; exit 3", "broken metadata"]
    with pytest.raises(RepoError, match="no-such-createrepo is not installed"):
        run(["no-such-createrepo"], log)


def test_legacy_new_repo_arguments_become_opts():
    assert legacy_opts(None) is None
    assert legacy_opts({"src": True}, src=None, debuginfo=None) == {"src": True}
    assert legacy_opts(None, src=1, debuginfo=None, separate_src=False) == {"src": True, "separate_src": False}
    with pytest.raises(koji.ParameterError, match="cannot be combined"):
        legacy_opts({"src": True}, debuginfo=True)


def test_no_shared_storage_refuses_the_task(tmp_path):
    with pytest.raises(RefuseTask, match=f"no access to {tmp_path / 'repos'}"):
        shared_pathinfo(str(tmp_path))
    (tmp_path / "repos").mkdir()
    assert shared_pathinfo(str(tmp_path)).repo(3, "f40-build") == f"{tmp_path}/repos/f40-build/3"
