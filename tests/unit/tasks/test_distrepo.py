"""The pure parts of distRepo/createdistrepo: task options, arches, the choice of a signed copy
per RPM, the reports of what is missing, the layout of one arch, createrepo_c's command line,
and the refusal without the hub's storage."""

from __future__ import annotations

import json
from pathlib import Path

import koji
import pytest
from koji.tasks import RefuseTask

from koji_adjutant.distrepodata import (
    DistRepoOptions,
    RpmCopy,
    choose_keys,
    createrepo_command,
    locate,
    missing_files_report,
    missing_signatures_report,
    repo_arches,
    repo_files,
    rpm_arches,
    write_layout,
    zck_dict_dir,
)
from koji_adjutant.errors import RepoError
from koji_adjutant.repodata import CREATEREPO
from koji_adjutant.tasks.distrepo import dist_pathinfo

#: task_opts as `koji dist-repo` sends them, with the event kojihub's distRepo adds
CLI_OPTS = {'arch': ['x86_64'], 'comps': None, 'delta': [], 'event': 1234, 'volume': None, 'inherit': True,
            'latest': True, 'multilib': None, 'split_debuginfo': False, 'skip_missing_signatures': False,
            'allow_missing_signatures': False, 'zck': False, 'zck_dict_dir': None, 'write_signed_rpms': False}


def row(rpm_id, name, sigkey, arch="x86_64", build_id=7):
    """A listTaggedRPMS(rpmsigs=True) row."""
    return {"id": rpm_id, "name": name, "version": "1.0", "release": "1", "arch": arch, "epoch": None,
            "build_id": build_id, "payloadhash": "ab" * 16, "size": 10, "sigkey": sigkey}


def test_options_read_what_the_cli_sends():
    opts = DistRepoOptions.from_task(dict(CLI_OPTS, arch=["x86_64", "aarch64"], delta=[3], createrepo_skip_stat=True))
    assert (opts.arches, opts.event, opts.inherit, opts.latest, opts.delta, opts.createrepo_skip_stat) == \
        (("x86_64", "aarch64"), 1234, True, True, (3,), True)
    assert DistRepoOptions.from_task({"arch": []}) == DistRepoOptions()
    assert DistRepoOptions.from_task(CLI_OPTS).createrepo_skip_stat is None


def test_multilib_is_refused_naming_why():
    with pytest.raises(RepoError) as caught:
        DistRepoOptions.from_task(dict(CLI_OPTS, multilib="work/cli-dist-repo/multilib.conf"))
    assert "multilib" in caught.value.message and "dnf" in caught.value.message
    assert "without --multilib" in caught.value.hint


def test_zck_dict_dir_needs_zck_and_a_directory(tmp_path):
    with pytest.raises(RepoError, match="makes no sense without --zck"):
        DistRepoOptions.from_task(dict(CLI_OPTS, zck_dict_dir="/srv/zck"))
    assert zck_dict_dir(None) is None
    assert zck_dict_dir(f"{tmp_path}/") == tmp_path
    (tmp_path / "file").write_text("")
    with pytest.raises(RepoError, match="zchunk dir path is file"):
        zck_dict_dir(str(tmp_path / "file"))
    with pytest.raises(RepoError, match="zchunk dir path doesn't exist"):
        zck_dict_dir(str(tmp_path / "nowhere"))


def test_repo_arches_are_canonical_and_each_once():
    assert repo_arches(["x86_64", "i686", "i386", "src", "athlon"]) == ["i386", "src", "x86_64"]
    with pytest.raises(RepoError, match="no arches given"):
        repo_arches([])


def test_rpm_arches_of_a_repo_arch_include_noarch_but_not_for_sources():
    assert rpm_arches("x86_64") == ("amd64", "ia32e", "x86_64", "noarch")
    assert rpm_arches("src") == ("src",)
    with pytest.raises(RepoError, match="no RPM arches are known for the repo arch mips"):
        rpm_arches("mips")


def test_the_earliest_requested_key_an_rpm_has_is_chosen():
    rows = [row(1, "a", ""), row(1, "a", "aaaa1111"), row(1, "a", "BBBB2222"),
            row(2, "b", ""), row(2, "b", "aaaa1111"),
            row(3, "c", ""),
            row(4, "d", None)]                         # no rpmsigs row at all
    choice = choose_keys(rows, ["bbbb2222", "AAAA1111"])
    assert {rpm_id: info["sigkey"] for rpm_id, info in choice.rows.items()} == \
        {1: "bbbb2222", 2: "aaaa1111", 3: None, 4: None}
    assert choice.available == {1: ["", "aaaa1111", "bbbb2222"], 2: ["", "aaaa1111"], 3: [""], 4: []}
    assert [info["id"] for info in choice.unsigned] == [3, 4]
    assert all(r["sigkey"] in ("", None, "aaaa1111", "BBBB2222") for r in rows)     # rows left as they were


def test_locate_takes_signed_copies_and_primary_copies_of_unsigned_rpms(tmp_path):
    builddir = tmp_path / "packages/a/1.0/1"
    choice = choose_keys([row(1, "a", "aaaa1111"), row(2, "b", ""), row(3, "c", "aaaa1111")], ["aaaa1111"])
    signed_a = builddir / "data/signed/aaaa1111/x86_64/a-1.0-1.x86_64.rpm"
    primary_b = builddir / "x86_64/b-1.0-1.x86_64.rpm"
    for path in (signed_a, primary_b):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("rpm")
    copies, missing = locate(choice, {7: str(builddir)}, skip_unsigned=False)
    assert [(c.filename, c.path, c.info["sigkey"]) for c in copies] == \
        [("a-1.0-1.x86_64.rpm", signed_a, "aaaa1111"), ("b-1.0-1.x86_64.rpm", primary_b, None)]
    assert missing == [builddir / "data/signed/aaaa1111/x86_64/c-1.0-1.x86_64.rpm"]
    copies, _ = locate(choice, {7: str(builddir)}, skip_unsigned=True)
    assert [c.filename for c in copies] == ["a-1.0-1.x86_64.rpm"]


def test_reports_name_what_is_missing():
    assert missing_files_report([Path("/k/b.rpm"), Path("/k/a.rpm")]).endswith("Missing files:\n/k/a.rpm\n/k/b.rpm\n")
    choice = choose_keys([row(1, "a", ""), row(2, "b", "cccc3333"), row(3, "c", "aaaa1111")], ["AAAA1111"])
    report = missing_signatures_report(choice, ["AAAA1111"], skipped=True)
    assert "Requested keys: ['aaaa1111']" in report and "were excluded" in report
    assert report.endswith("# RPM name: available keys\na-1.0-1.x86_64: ['']\nb-1.0-1.x86_64: ['cccc3333']\n")
    assert "excluded" not in missing_signatures_report(choice, ["AAAA1111"], skipped=False)


def copy(tmp_path, name, sigkey="aaaa1111"):
    path = tmp_path / "hub" / f"{name}-1.0-1.x86_64.rpm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(name)
    return RpmCopy(info=row(1, name, sigkey), path=path)


def test_layout_lists_links_and_describes_each_rpm(tmp_path):
    copies = [copy(tmp_path, "Foo"), copy(tmp_path, "foo-debuginfo", None), copy(tmp_path, "bar")]
    repodir = tmp_path / "repo"
    assert write_layout(repodir, copies, split_debuginfo=False) == [repodir]
    assert (repodir / "pkglist").read_text() == ("Packages/f/Foo-1.0-1.x86_64.rpm\n"
                                                 "Packages/f/foo-debuginfo-1.0-1.x86_64.rpm\n"
                                                 "Packages/b/bar-1.0-1.x86_64.rpm\n")
    assert (repodir / "Packages/f/Foo-1.0-1.x86_64.rpm").readlink() == copies[0].path
    kojipkgs = json.loads((repodir / "kojipkgs").read_text())
    assert kojipkgs["bar-1.0-1.x86_64.rpm"] == dict(copies[2].info, _pkgpath=str(copies[2].path))
    assert repo_files(repodir) == ["kojipkgs", "pkglist"]


def test_layout_with_split_debuginfo_has_a_debug_subrepo(tmp_path):
    copies = [copy(tmp_path, "foo"), copy(tmp_path, "foo-debuginfo"), copy(tmp_path, "foo-debugsource")]
    repodir = tmp_path / "repo"
    assert write_layout(repodir, copies, split_debuginfo=True) == [repodir, repodir / "debug"]
    assert (repodir / "pkglist").read_text() == "Packages/f/foo-1.0-1.x86_64.rpm\n"
    assert (repodir / "debug/pkglist").read_text() == ("../Packages/f/foo-debuginfo-1.0-1.x86_64.rpm\n"
                                                       "../Packages/f/foo-debugsource-1.0-1.x86_64.rpm\n")
    kojipkgs = json.loads((repodir / "kojipkgs").read_text())
    assert kojipkgs["foo-debuginfo-1.0-1.x86_64.rpm"]["_subrepo"] == "debug"
    assert "_subrepo" not in kojipkgs["foo-1.0-1.x86_64.rpm"]
    assert repo_files(repodir) == ["debug/pkglist", "kojipkgs", "pkglist"]


def test_layout_of_an_empty_arch(tmp_path):
    assert write_layout(tmp_path / "repo", [], split_debuginfo=True) == [tmp_path / "repo"]
    assert (tmp_path / "repo/pkglist").read_text() == ""
    assert json.loads((tmp_path / "repo/kojipkgs").read_text()) == {}


def test_createrepo_command_is_kojids(tmp_path):
    repo = tmp_path / "repo"
    comps = tmp_path / "comps.xml"
    assert createrepo_command(repo, comps, update=False, skip_stat=True) == [
        CREATEREPO, "--error-exit-val", "-vd", "-i", f"{repo}/pkglist", "-g", str(comps), str(repo)]
    assert createrepo_command(repo, None, update=True, skip_stat=True, oldpackagedirs=[Path("/k/d/1"), Path("/k/d/2")],
                              zck=True, zck_dict=Path("/srv/zck")) == [
        CREATEREPO, "--error-exit-val", "-vd", "-i", f"{repo}/pkglist", "--update", "--skip-stat",
        "--deltas", "--oldpackagedirs", "/k/d/1", "--oldpackagedirs", "/k/d/2", "--zck", "--zck-dict-dir", "/srv/zck",
        str(repo)]
    assert "--skip-stat" not in createrepo_command(repo, None, update=True, skip_stat=False)


def test_dist_pathinfo_refuses_without_the_hubs_storage(tmp_path):
    rinfo = {"id": 5, "tag_name": "dist-tag"}
    with pytest.raises(RefuseTask, match=f"no access to {tmp_path}/repos-dist"):
        dist_pathinfo(str(tmp_path), rinfo)
    (tmp_path / "repos-dist").mkdir()
    with pytest.raises(RepoError, match=f"dist repo directory {tmp_path}/repos-dist/dist-tag/5 is missing"):
        dist_pathinfo(str(tmp_path), rinfo)
    (tmp_path / "repos-dist/dist-tag/5").mkdir(parents=True)
    pathinfo, repodir = dist_pathinfo(str(tmp_path), rinfo)
    assert repodir == tmp_path / "repos-dist/dist-tag/5"
    assert isinstance(pathinfo, koji.PathInfo) and pathinfo.topdir == str(tmp_path)
