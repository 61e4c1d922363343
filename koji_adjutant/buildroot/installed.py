"""The packages installed in a buildroot, in the form the hub's rpmlist takes.

Each package also says where it came from: "image" when it was already in
the base image, "repo" when the buildroot's repos installed it. Only the
second kind can be a Koji-built RPM; the hub must be told about the first
kind deliberately (see the daemon's rpmlist handling).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BuildrootError

ORIGIN_IMAGE = "image"
ORIGIN_REPO = "repo"


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    payloadhash: str
    size: int
    buildtime: int
    installtime: int
    origin: str

    @property
    def nevra(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.{self.arch}"

    def rpmlist_entry(self) -> dict:
        """The fields host.setBuildRootList takes for one package."""
        return {"name": self.name, "version": self.version, "release": self.release,
                "epoch": self.epoch, "arch": self.arch, "payloadhash": self.payloadhash,
                "size": self.size, "buildtime": self.buildtime}


def parse_rpm_list(text: str, image_nevras: frozenset[str] = frozenset()) -> list[InstalledPackage]:
    """Parse the tab-separated output of the init script's list-installed step."""
    packages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 9:
            raise BuildrootError(f"unexpected line in the installed package list: {line!r}")
        name, version, release, epoch, arch, sigmd5, size, buildtime, installtime = fields
        if name == "gpg-pubkey" or arch == "(none)":
            continue  # keys and other pseudo-packages are not packages
        try:
            package = InstalledPackage(
                name=name, version=version, release=release,
                epoch=None if epoch == "(none)" else int(epoch), arch=arch,
                payloadhash=sigmd5 if sigmd5 != "(none)" else "", size=int(size),
                buildtime=int(buildtime), installtime=int(installtime), origin=ORIGIN_REPO)
        except ValueError as exc:
            raise BuildrootError(f"unexpected line in the installed package list: {line!r}") from exc
        if package.nevra in image_nevras:
            package = InstalledPackage(**{**asdict(package), "origin": ORIGIN_IMAGE})
        packages.append(package)
    return sorted(packages, key=lambda p: p.nevra)


def write_installed(packages: list[InstalledPackage], logdir: Path) -> tuple[Path, Path]:
    """installed_pkgs.log for people (as mock writes it) and installed_pkgs.json for programs."""
    text_path = logdir / "installed_pkgs.log"
    text_path.write_text("".join(
        f"{p.nevra} {p.buildtime} {p.size} {p.payloadhash or '(none)'} {p.installtime} {p.origin}\n"
        for p in packages))
    json_path = logdir / "installed_pkgs.json"
    json_path.write_text(json.dumps([asdict(p) for p in packages], indent=1) + "\n")
    return text_path, json_path
