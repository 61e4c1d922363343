"""Workspaces: private, readable where containers mount them, and swept when nobody holds them."""

from __future__ import annotations

import subprocess
import sys

from koji_adjutant.buildroot.spec import BuildrootSpec, RepoSource
from koji_adjutant.buildroot.workspace import Workspace, sweep


def make_spec() -> BuildrootSpec:
    return BuildrootSpec(image="localhost/x:1", image_digest="sha256:" + "0" * 64, arch="x86_64",
                         repos=(RepoSource("local", "/srv/repo"),))


def srpm(tmp_path):
    path = tmp_path / "hello-1-1.src.rpm"
    path.write_bytes(b"not really an rpm")
    path.chmod(0o600)
    return path


def test_the_work_root_is_private_and_the_mounted_parts_are_readable(tmp_path):
    root = tmp_path / "work"
    with Workspace(root, make_spec(), srpm(tmp_path)) as workspace:
        assert root.stat().st_mode & 0o777 == 0o700
        assert workspace.root.parent == root and workspace.root.stat().st_mode & 0o777 == 0o700
        for directory in (workspace.setup, workspace.input):
            assert directory.stat().st_mode & 0o777 == 0o755
        assert workspace.srpm.stat().st_mode & 0o777 == 0o644
        assert (workspace.setup / "buildroot-init.sh").stat().st_mode & 0o777 == 0o755
    assert not workspace.root.exists()


def test_a_work_root_made_by_someone_else_is_made_private(tmp_path):
    root = tmp_path / "work"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    with Workspace(root, make_spec(), srpm(tmp_path)):
        assert root.stat().st_mode & 0o777 == 0o700


def test_sweep_removes_what_no_process_holds_and_keeps_what_one_does(tmp_path):
    root = tmp_path / "work"
    held = Workspace(root, make_spec(), srpm(tmp_path))
    # A workspace of a worker that was killed: made by a process that is gone, lock and all.
    code = ("import sys; from pathlib import Path; from koji_adjutant.buildroot.workspace import Workspace;"
            "from koji_adjutant.buildroot.spec import BuildrootSpec, RepoSource;"
            "spec = BuildrootSpec(image='x', image_digest='d', arch='x86_64', repos=(RepoSource('l', '/srv'),));"
            "print(Workspace(Path(sys.argv[1]), spec, Path(sys.argv[2])).root)")
    orphan = subprocess.run([sys.executable, "-c", code, str(root), str(srpm(tmp_path))], capture_output=True,
                            text=True, check=True).stdout.strip()
    unlocked = root / "build-never-locked"
    unlocked.mkdir()
    other = root / "not-a-workspace"
    other.mkdir()
    try:
        removed = sweep(root)
        assert sorted(map(str, removed)) == sorted([orphan, str(unlocked)])
        assert held.root.exists() and other.exists()
    finally:
        held.remove()


def test_sweep_of_a_missing_root_is_nothing(tmp_path):
    assert sweep(tmp_path / "none") == []
