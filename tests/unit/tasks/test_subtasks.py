"""Reading the SRPM header a build needs (NVR, arch fields) with rpm's Python bindings."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from koji_adjutant.errors import BuildError
from koji_adjutant.tasks.arches import ArchHeader, arch_fields
from koji_adjutant.tasks.subtasks import read_srpm_header


class LocalTopdir:
    """A task whose localPath is a local topdir (kojid's behaviour without topurl)."""

    def __init__(self, topdir: Path):
        self.topdir = topdir

    def localPath(self, relpath: str) -> str:
        return str(self.topdir / relpath)


def make_srpm(topdir: Path, arch_lines: str, epoch: str = "") -> Path:
    """An SRPM at <topdir>/work/, where a build task finds its input."""
    base = topdir / "work"
    base.mkdir()
    spec = base / "archy.spec"
    spec.write_text(textwrap.dedent("""\
        Name: archy
        Version: 2.1
        Release: 3
        {epoch}
        Summary: arch fields
        License: MIT
        {arch_lines}

        %description
        x

        %files
        """).format(epoch=epoch, arch_lines=arch_lines))
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {base}", "--define", f"_srcrpmdir {base}",
                    str(spec)], check=True, capture_output=True)
    (srpm,) = base.glob("archy-*.src.rpm")
    return srpm


def test_header_fields_and_arch_lists(tmp_path):
    srpm = make_srpm(tmp_path, "ExclusiveArch: x86_64 aarch64\nExcludeArch: ppc64le s390x", epoch="Epoch: 4")
    header = read_srpm_header(LocalTopdir(tmp_path), srpm.name)
    assert (header.name, header.version, header.release, header.epoch) == ("archy", "2.1", "3", 4)
    assert header.nvr == "archy-2.1-3"
    assert arch_fields(header) == ArchHeader(exclusivearch=("x86_64", "aarch64"), excludearch=("ppc64le", "s390x"))


def test_noarch_srpm_without_epoch(tmp_path):
    srpm = make_srpm(tmp_path, "BuildArch: noarch")
    header = read_srpm_header(LocalTopdir(tmp_path), srpm.name)
    assert header.epoch is None
    assert arch_fields(header) == ArchHeader(buildarchs=("noarch",))


def test_a_file_that_is_not_an_rpm_is_refused(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "x.src.rpm").write_bytes(b"not an rpm at all" * 10)
    with pytest.raises(BuildError, match="is not an RPM file"):
        read_srpm_header(LocalTopdir(tmp_path), "x.src.rpm")

