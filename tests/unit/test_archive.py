"""Unpacking what comes out of a container: archives built here, as a hostile build could make them."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from koji_adjutant.container.archive import extract_untrusted
from koji_adjutant.errors import ContainerError


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **fields) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, mode
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def test_files_and_directories_arrive(tmp_path):
    extract_untrusted(archive((member(".", tarfile.DIRTYPE, 0o755), None),
                              (member("./noarch", tarfile.DIRTYPE, 0o755), None),
                              (member("./noarch/a.rpm"), b"rpm bytes"),
                              (member("./x.src.rpm"), b"srpm")), tmp_path / "out", "test")
    assert (tmp_path / "out" / "noarch" / "a.rpm").read_bytes() == b"rpm bytes"
    assert (tmp_path / "out" / "x.src.rpm").read_bytes() == b"srpm"


def test_set_id_bits_and_foreign_owners_are_dropped(tmp_path):
    extract_untrusted(archive((member("tool", mode=0o6777, uid=0, gid=0, uname="root", gname="root"), b"#!")),
                      tmp_path, "test")
    mode = (tmp_path / "tool").stat()
    assert stat.S_IMODE(mode.st_mode) == 0o755
    assert mode.st_uid == Path(tmp_path).stat().st_uid


@pytest.mark.parametrize("kind, fields", [(tarfile.SYMTYPE, {"linkname": "/etc/passwd"}),
                                          (tarfile.LNKTYPE, {"linkname": "elsewhere"}),
                                          (tarfile.FIFOTYPE, {}),
                                          (tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3})])
def test_links_and_special_files_are_left_out(tmp_path, kind, fields, caplog):
    extract_untrusted(archive((member("odd", kind, **fields), None), (member("plain"), b"ok")), tmp_path, "test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
    assert "not copying odd out of test" in caplog.text


@pytest.mark.parametrize("name", ["/etc/cron.d/evil", "../evil", "sub/../../evil"])
def test_a_member_pointing_outside_fails_the_whole_copy(tmp_path, name):
    target = tmp_path / "out"
    with pytest.raises(ContainerError, match="points outside the target"):
        extract_untrusted(archive((member("fine"), b"x"), (member(name), b"evil")), target, "build-1:/results")
    assert not (tmp_path / "evil").exists()
    assert not (target / "fine").exists()  # nothing is unpacked before every member was checked


def test_something_that_is_not_an_archive(tmp_path):
    with pytest.raises(ContainerError, match="build-1:/results is not a readable tar archive"):
        extract_untrusted(io.BytesIO(b"this is no tar archive, just text" * 40), tmp_path, "build-1:/results")
