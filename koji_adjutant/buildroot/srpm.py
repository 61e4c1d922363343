"""Checking that an input really is an SRPM, before any container is made."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from ..errors import BuildError

_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_LEAD_SIZE = 96
_TYPE_SOURCE = 1


def check_srpm(path: Path) -> None:
    """Raise BuildError unless ``path`` starts like a source RPM.

    Only the lead is read here; a corrupt payload is caught by rpm's digest
    check when the SRPM is unpacked in the buildroot.
    """
    path = Path(path)
    if not path.is_file():
        raise BuildError(f"{path} does not exist or is not a file", hint="give the path of an SRPM or a spec")
    with open(path, "rb") as handle:
        lead = handle.read(_LEAD_SIZE)
    if len(lead) < _LEAD_SIZE or not lead.startswith(_LEAD_MAGIC):
        raise BuildError(f"{path} is not an RPM file", hint="give the path of an SRPM (*.src.rpm) or a spec")
    (rpm_type,) = struct.unpack(">H", lead[6:8])
    if rpm_type != _TYPE_SOURCE:
        raise BuildError(f"{path} is a binary RPM, not a source RPM",
                         hint="give the .src.rpm the package was built from")


def srpm_headers(path: Path, tags: tuple[str, ...]) -> dict[str, str]:
    """Header values of an RPM, read with the host's rpm (empty string when unset)."""
    query = "".join(f"%|{tag}?{{%{{{tag}}}}}:{{}}|\\n" for tag in tags)
    result = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", query, str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"could not read the header of {Path(path).name}: {result.stderr.strip()}")
    return dict(zip(tags, result.stdout.split("\n")))


def check_build_system_tags(path: Path) -> None:
    """kojid's SRPM sanity check: the build system must have set these."""
    values = srpm_headers(path, ("PACKAGER", "VENDOR", "DISTRIBUTION"))
    for tag, value in values.items():
        if not value:
            raise BuildError(f"the build system failed to set the {tag.lower()} tag of {Path(path).name}")


def srpm_requires(path: Path) -> list[str]:
    """The SRPM's BuildRequires as its header lists them, sorted."""
    result = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--requires", str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"could not read the BuildRequires of {Path(path).name}: {result.stderr.strip()}")
    return sorted({line.strip() for line in result.stdout.splitlines() if line.strip()})


def expected_srpm_name(path: Path) -> str:
    """N-V-R.src.rpm from the SRPM's own header: the only name the hub accepts for it."""
    values = srpm_headers(path, ("NAME", "VERSION", "RELEASE"))
    return "{NAME}-{VERSION}-{RELEASE}.src.rpm".format(**values)


def check_srpm_name(path: Path) -> None:
    """kojid's check: a file named otherwise would be filed under the wrong build."""
    expected = expected_srpm_name(path)
    if Path(path).name != expected:
        raise BuildError(f"srpm name mismatch: {Path(path).name} != {expected} (from its header)",
                         hint="the file name must be N-V-R.src.rpm of the package; check %_srcrpmfilename "
                              "or macros that rename the SRPM")
