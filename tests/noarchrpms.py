"""A package built for several arches that makes a noarch subpackage on each, for the tests of
kojid's noarch_rpmdiff.json and kojihub's comparison of the noarch copies.

    spec = noarch_spec('twice', arch_dependent=False)   # the spec text
    copies = build_noarch_copies(tmp_path, 'twice', ['x86_64', 'i686'], arch_dependent=True)
    # {'x86_64': .../twice-data-1.0-1.noarch.rpm, 'i686': ...}

Both variants write the arch into the content of a noarch file, which the hub's
comparison ignores (it skips file sizes and digests). The arch-dependent
variant also names a noarch file after the arch, which the comparison sees.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path


def noarch_spec(name: str, arch_dependent: bool) -> str:
    named_after_arch = "touch %{buildroot}/usr/share/%{name}/built-on-%{_target_cpu}" if arch_dependent else ""
    return textwrap.dedent(f"""\
        Name: {name}
        Version: 1.0
        Release: 1
        Summary: an arch package with a noarch data subpackage
        License: MIT
        AutoReqProv: no

        %description
        Built for each arch; its data subpackage is noarch.

        %package data
        Summary: the noarch data of {name}
        BuildArch: noarch

        %description data
        The same on every arch{"" if not arch_dependent else ", but for one file named after the arch"}.

        %prep

        %build

        %install
        mkdir -p %{{buildroot}}/usr/lib/%{{name}} %{{buildroot}}/usr/share/%{{name}}
        echo %{{_target_cpu}} > %{{buildroot}}/usr/lib/%{{name}}/arch
        echo %{{_target_cpu}} > %{{buildroot}}/usr/share/%{{name}}/built-for
        {named_after_arch}

        %files
        /usr/lib/%{{name}}

        %files data
        /usr/share/%{{name}}
        """)


def write_spec(directory: Path, name: str, arch_dependent: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / f"{name}.spec"
    spec.write_text(noarch_spec(name, arch_dependent))
    return spec


def build_noarch_copies(base: Path, name: str, arches: list[str], arch_dependent: bool) -> dict[str, Path]:
    """The noarch subpackage as each arch's build of the package made it (host rpmbuild)."""
    spec = write_spec(base, name, arch_dependent)
    copies = {}
    for arch in arches:
        rpmdir = base / arch
        subprocess.run(["rpmbuild", "-bb", "--quiet", "--target", arch, "--define", f"_topdir {base / 'top'}",
                        "--define", f"_rpmdir {rpmdir}",
                        "--define", "_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", str(spec)],
                       check=True, capture_output=True, text=True)
        copies[arch] = rpmdir / f"{name}-data-1.0-1.noarch.rpm"
    return copies
