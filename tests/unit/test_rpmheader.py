"""rpmheader: headers of real RPMs made by rpmbuild, and of files damaged or forged to look like one."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from koji_adjutant import rpmheader
from koji_adjutant.errors import BuildError
from koji_adjutant.rpmheader import RpmHeader, RpmHeaderError, read_header, read_srpm_header

pytestmark = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not on PATH")


def build(tmp_path: Path, mode: str, extra: str = "") -> Path:
    spec = tmp_path / "hdr.spec"
    spec.write_text(textwrap.dedent("""\
        Name: hdr
        Version: 1.2
        Release: 3
        Summary: a header test package
        License: MIT
        AutoReqProv: no
        {extra}

        %description
        x

        %files
        """).format(extra=extra))
    topdir = tmp_path / "top"
    subprocess.run(["rpmbuild", mode, "--quiet", "--define", f"_topdir {topdir}", str(spec)],
                   check=True, capture_output=True, timeout=120)
    (made,) = (topdir / ("SRPMS" if mode == "-bs" else "RPMS")).rglob("*.rpm")
    return made


def test_srpm_values(tmp_path):
    extra = "Epoch: 2\nPackager: P <p@example.org>\nVendor: V\nDistribution: D\nExclusiveArch: x86_64 aarch64\n" \
            "ExcludeArch: s390x"
    header = read_srpm_header(build(tmp_path, "-bs", extra))
    assert header == RpmHeader(name="hdr", version="1.2", release="3", epoch=2, arch=header.arch, is_source=True,
                               packager="P <p@example.org>", vendor="V", distribution="D",
                               exclusivearch=("x86_64", "aarch64"), excludearch=("s390x",))
    assert header.nvr == "hdr-1.2-3"
    assert header.srpm_name == "hdr-1.2-3.src.rpm"


def test_unset_values_are_empty(tmp_path):
    header = read_header(build(tmp_path, "-bs", "BuildArch: noarch"))
    assert (header.epoch, header.packager, header.vendor, header.distribution) == (None, "", "", "")
    assert header.buildarchs == ("noarch",)


def test_binary_rpm_is_read_but_refused_as_an_srpm(tmp_path):
    rpm_path = build(tmp_path, "-bb", "BuildArch: noarch")
    header = read_header(rpm_path)
    assert (header.arch, header.is_source) == ("noarch", False)
    with pytest.raises(RpmHeaderError, match="binary RPM, not a source RPM"):
        read_srpm_header(rpm_path)


@pytest.mark.parametrize("keep", [100, 200, 1000, -1])
def test_truncated_srpm_is_corrupt(tmp_path, keep):
    srpm = build(tmp_path, "-bs")
    data = srpm.read_bytes()
    cut = tmp_path / "cut.src.rpm"
    cut.write_bytes(data[:keep])
    with pytest.raises(RpmHeaderError, match="corrupt or not an SRPM") as caught:
        read_srpm_header(cut)
    assert isinstance(caught.value, BuildError)
    assert caught.value.hint


def test_damaged_header_is_refused(tmp_path):
    srpm = build(tmp_path, "-bs")
    data = bytearray(srpm.read_bytes())
    data[-300] ^= 0xFF  # inside the payload or the main header: either is detected or the file is read
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.src.rpm"
    damaged.write_bytes(bytes(data))
    try:
        read_srpm_header(damaged)
    except RpmHeaderError as error:
        assert "corrupt or not an SRPM" in error.message


def test_a_header_claiming_a_huge_size_is_refused_before_rpm_reads_it(tmp_path):
    srpm = build(tmp_path, "-bs")
    data = bytearray(srpm.read_bytes())
    data[96 + 12:96 + 16] = (1 << 31).to_bytes(4, "big")  # the signature header's data size
    forged = tmp_path / "forged.src.rpm"
    forged.write_bytes(bytes(data))
    with pytest.raises(RpmHeaderError, match="over the limit"):
        read_header(forged)


def test_not_an_rpm(tmp_path):
    junk = tmp_path / "junk.src.rpm"
    junk.write_bytes(b"not an rpm" * 50)
    with pytest.raises(RpmHeaderError, match="is not an RPM file"):
        read_header(junk)
    with pytest.raises(RpmHeaderError, match="does not exist"):
        read_header(tmp_path / "missing.src.rpm")


def test_lead_check_refuses_a_binary_rpm(tmp_path):
    with pytest.raises(RpmHeaderError, match="binary RPM"):
        rpmheader.check_srpm_lead(build(tmp_path, "-bb", "BuildArch: noarch"))


@pytest.mark.skipif(shutil.which("rpmsign") is None or shutil.which("gpg") is None, reason="needs rpmsign and gpg")
def test_a_signed_srpm_is_read_without_a_keyring(tmp_path):
    from signedrpms import RpmSigner

    srpm = build(tmp_path, "-bs")
    with RpmSigner(tmp_path / "gnupg") as signer:
        signed = signer.sign(srpm, tmp_path / "signed")
    assert signed.read_bytes() != srpm.read_bytes()  # rpmsign fills the space rpmbuild reserved
    assert read_srpm_header(signed) == read_srpm_header(srpm)
