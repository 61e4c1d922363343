"""RPMs for dist repo tests: one package built for several arches, and signed copies of it.

    srpm, rpms = build_package(tmp_path / 'rpmbuild', 'foo', ['x86_64', 'aarch64'])
    # foo-1.0-1.src.rpm; foo and foo-debuginfo of each arch

Signed copies come from a throwaway gpg key in a directory of the test's own, and rpmsign:

    with RpmSigner(tmp_path / 'gnupg') as signer:
        signed = signer.sign(rpm, tmp_path / 'signed')   # a signed copy; rpm stays unsigned
        signer.sigkey       # the key id koji records for it: 8 lowercase hex digits
        koji.rip_rpm_sighdr(str(signed))                # the header `koji import-sig` sends

On exit the gpg-agent that rpmsign started is stopped and its socket directory
removed; the key's directory is the caller's (a pytest tmp_path) to remove.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SPEC = """\
Name: %{pkg}
Version: 1.0
Release: %{rel}
Summary: a dist repo test package
License: MIT
AutoReqProv: no
%global debug_package %{nil}

%description
A dist repo test package, with a debuginfo subpackage.

%package debuginfo
Summary: its debuginfo

%description debuginfo
The debuginfo of the dist repo test package.

%install
mkdir -p %{buildroot}/usr/share/%{name}
echo %{_target_cpu} > %{buildroot}/usr/share/%{name}/arch

%files
/usr/share/%{name}

%files debuginfo
"""
KEY_PARAMS = """\
%no-protection
Key-Type: RSA
Key-Length: 2048
Key-Usage: sign
Name-Real: koji-adjutant test signer
Name-Email: signer@adjutant.test
Expire-Date: 0
%commit
"""


def build_package(topdir: Path, name: str, arches: list[str], release: str = "1") -> tuple[Path, list[Path]]:
    """The SRPM and the binary RPMs (name and name-debuginfo per arch) of one build, made with the
    host's rpmbuild; arches need no compiler, the package has no compiled code."""
    topdir.mkdir(parents=True, exist_ok=True)
    spec = topdir / f"{name}.spec"
    spec.write_text(SPEC)
    defines = ["--define", f"_topdir {topdir}", "--define", f"pkg {name}", "--define", f"rel {release}",
               "--define", "_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"]
    subprocess.run(["rpmbuild", "-bs", "--quiet", *defines, str(spec)], check=True, capture_output=True)
    for arch in arches:
        subprocess.run(["rpmbuild", "-bb", "--quiet", "--target", arch, *defines, str(spec)], check=True,
                       capture_output=True)
    (srpm,) = (topdir / "SRPMS").glob(f"{name}-1.0-{release}.src.rpm")
    return srpm, sorted((topdir / "RPMS").glob(f"{name}-*1.0-{release}.*.rpm"))


class RpmSigner:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.keyid = ""

    @property
    def sigkey(self) -> str:
        """What kojihub stores as the sigkey of this key's signatures (get_sigpacket_key_id)."""
        return self.keyid[-8:].lower()

    def _gpg(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--batch", "--homedir", str(self.home), *args], check=True,
                              capture_output=True, text=True, **kwargs)

    def __enter__(self) -> RpmSigner:
        self.home.mkdir(mode=0o700, parents=True)
        self._gpg("--gen-key", input=KEY_PARAMS)
        colons = self._gpg("--list-secret-keys", "--with-colons").stdout
        self.keyid = next(line.split(":")[4] for line in colons.splitlines() if line.startswith("sec:"))
        return self

    def sign(self, rpm: Path, destdir: Path) -> Path:
        """A copy of rpm in destdir, signed with this key."""
        destdir.mkdir(parents=True, exist_ok=True)
        signed = Path(shutil.copy(rpm, destdir))
        subprocess.run(["rpmsign", "--define", f"_gpg_name {self.keyid}", "--define", f"_gpg_path {self.home}",
                        "--define", "__gpg /usr/bin/gpg", "--addsign", str(signed)],
                       check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env={**os.environ, "GNUPGHOME": str(self.home)})
        return signed

    def __exit__(self, *exc) -> None:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)
        subprocess.run(["gpgconf", "--remove-socketdir"], env=env, capture_output=True, check=False)
