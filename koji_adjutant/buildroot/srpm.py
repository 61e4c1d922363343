"""kojid's checks of an SRPM given to a build, made on its header before and after the build."""

from __future__ import annotations

from pathlib import Path

from ..errors import BuildError
from ..rpmheader import check_srpm_lead, read_header


def check_srpm(path: Path) -> None:
    """Raise BuildError unless ``path`` starts like a source RPM (only the lead is read)."""
    check_srpm_lead(path)


def check_build_system_tags(path: Path) -> None:
    """kojid's SRPM sanity check: the build system must have set these."""
    header = read_header(path)
    for tag in ("packager", "vendor", "distribution"):
        if not getattr(header, tag):
            raise BuildError(f"the build system failed to set the {tag} tag of {Path(path).name}")


def expected_srpm_name(path: Path) -> str:
    """N-V-R.src.rpm from the SRPM's own header: the only name the hub accepts for it."""
    return read_header(path).srpm_name


def check_srpm_name(path: Path) -> None:
    """kojid's check: a file named otherwise would be filed under the wrong build."""
    expected = expected_srpm_name(path)
    if Path(path).name != expected:
        raise BuildError(f"srpm name mismatch: {Path(path).name} != {expected} (from its header)",
                         hint="the file name must be N-V-R.src.rpm of the package; check %_srcrpmfilename "
                              "or macros that rename the SRPM")
