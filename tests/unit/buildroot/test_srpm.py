"""check_srpm: refusing what is not a source RPM, by its lead, before any container is made."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from koji_adjutant.buildroot.srpm import check_srpm, check_srpm_name, expected_srpm_name
from koji_adjutant.errors import BuildError

MAGIC = bytes.fromhex("edabeedb")


def lead(rpm_type: bytes, size: int = 96, magic: bytes = MAGIC) -> bytes:
    """An RPM lead: magic, major/minor version 3.0, type (0 binary, 1 source), then zeros and a name."""
    data = magic + b"\x03\x00" + rpm_type + b"\x00\x01" + b"tiny-1.0-1".ljust(66, b"\x00")
    return data.ljust(size, b"\x00")[:size] if size <= 96 else data.ljust(96, b"\x00") + b"\x8e" * (size - 96)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_lead_helper_is_96_bytes():
    assert len(lead(b"\x00\x01")) == 96
    assert lead(b"\x00\x01")[:8] == bytes.fromhex("edabeedb03000001")


def test_missing_path(tmp_path):
    with pytest.raises(BuildError) as caught:
        check_srpm(tmp_path / "nope.src.rpm")
    assert caught.value.message == f"{tmp_path / 'nope.src.rpm'} does not exist or is not a file"
    assert "SRPM" in caught.value.hint


def test_directory(tmp_path):
    with pytest.raises(BuildError, match="does not exist or is not a file"):
        check_srpm(tmp_path)


def test_accepts_a_string_path(tmp_path):
    check_srpm(str(write(tmp_path, "a.src.rpm", lead(b"\x00\x01"))))


@pytest.mark.parametrize("data", [
    b"",
    b"Name: foo\nVersion: 1\n" * 10,
    MAGIC,  # a lead cut short
    lead(b"\x00\x01", size=95),
    lead(b"\x00\x01", magic=b"\xed\xab\xee\xdc"),
    b"\x00" + lead(b"\x00\x01")[:95],
    b"\x1f\x8b\x08\x00" + b"\x00" * 200,  # a tarball
], ids=["empty", "text", "magic-only", "short-lead", "bad-magic", "shifted", "gzip"])
def test_not_an_rpm(tmp_path, data):
    path = write(tmp_path, "x.src.rpm", data)
    with pytest.raises(BuildError) as caught:
        check_srpm(path)
    assert caught.value.message == f"{path} is not an RPM file"
    assert "*.src.rpm" in caught.value.hint


def test_binary_rpm_lead(tmp_path):
    path = write(tmp_path, "tiny-1.0-1.noarch.rpm", lead(b"\x00\x00"))
    with pytest.raises(BuildError) as caught:
        check_srpm(path)
    assert caught.value.message == f"{path} is a binary RPM, not a source RPM"
    assert ".src.rpm" in caught.value.hint


@pytest.mark.parametrize("rpm_type", [b"\x00\x02", b"\x01\x00", b"\xff\xff"])
def test_unknown_type_is_not_a_source_rpm(tmp_path, rpm_type):
    with pytest.raises(BuildError, match="binary RPM"):
        check_srpm(write(tmp_path, "x.rpm", lead(rpm_type)))


def test_source_rpm_lead(tmp_path):
    check_srpm(write(tmp_path, "tiny-1.0-1.src.rpm", lead(b"\x00\x01")))


def test_source_rpm_lead_with_payload(tmp_path):
    check_srpm(write(tmp_path, "tiny-1.0-1.src.rpm", lead(b"\x00\x01", size=4096)))


def test_the_file_name_does_not_matter(tmp_path):
    check_srpm(write(tmp_path, "whatever.bin", lead(b"\x00\x01")))
    with pytest.raises(BuildError, match="binary RPM"):
        check_srpm(write(tmp_path, "fake.src.rpm", lead(b"\x00\x00")))


# -- real RPMs made by rpmbuild ---------------------------------------------------------

TINY_SPEC = """\
Name: tiny
Version: 1.0
Release: 1
Summary: a tiny test package
License: MIT
BuildArch: noarch
AutoReqProv: no

%description
A tiny test package.

%files
"""

RPMBUILD = shutil.which("rpmbuild")
needs_rpmbuild = pytest.mark.skipif(RPMBUILD is None, reason="rpmbuild is not on PATH: real SRPM/RPM checks skipped")


def rpmbuild(tmp_path: Path, mode: str) -> Path:
    spec = tmp_path / "tiny.spec"
    spec.write_text(TINY_SPEC)
    topdir = tmp_path / "top"
    result = subprocess.run([RPMBUILD, mode, "--define", f"_topdir {topdir}", str(spec)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    made = sorted((topdir / ("SRPMS" if mode == "-bs" else "RPMS")).rglob("*.rpm"))
    assert len(made) == 1, made
    return made[0]


@needs_rpmbuild
def test_real_srpm_passes(tmp_path):
    srpm = rpmbuild(tmp_path, "-bs")
    assert srpm.name.endswith(".src.rpm")
    check_srpm(srpm)


@needs_rpmbuild
def test_real_binary_rpm_fails(tmp_path):
    rpm = rpmbuild(tmp_path, "-bb")
    assert rpm.name == "tiny-1.0-1.noarch.rpm"
    with pytest.raises(BuildError, match="binary RPM"):
        check_srpm(rpm)


def _real_srpm(tmp_path: Path, release: str) -> Path:
    spec = tmp_path / "named.spec"
    spec.write_text(f"Name: named\nVersion: 2.0\nRelease: {release}\nSummary: s\nLicense: MIT\n"
                    "BuildArch: noarch\n%description\nd\n%files\n")
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {tmp_path / 'top'}", str(spec)],
                   check=True, capture_output=True)
    (srpm,) = (tmp_path / "top" / "SRPMS").glob("*.src.rpm")
    return srpm


def test_srpm_named_after_its_header_passes(tmp_path):
    srpm = _real_srpm(tmp_path, "3.dist")
    assert expected_srpm_name(srpm) == srpm.name == "named-2.0-3.dist.src.rpm"
    check_srpm_name(srpm)


def test_srpm_named_otherwise_is_refused(tmp_path):
    srpm = _real_srpm(tmp_path, "3")
    renamed = srpm.rename(srpm.with_name("named-2.0-4.src.rpm"))
    with pytest.raises(BuildError) as caught:
        check_srpm_name(renamed)
    assert caught.value.message == ("srpm name mismatch: named-2.0-4.src.rpm != named-2.0-3.src.rpm "
                                    "(from its header)")
