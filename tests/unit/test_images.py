"""Lint of the buildroot Containerfiles and dry runs of scripts/build-images.sh.

The production images cannot be built on machines without a registry, so
these tests keep them honest by reading them: the right base image, the
build tools layer packages, the build user, the labels the worker reads.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
SCRIPT = ROOT / "scripts" / "build-images.sh"

EXPECTED_BASE = {
    "el8": "quay.io/almalinux/almalinux:8",
    "el9": "quay.io/almalinux/almalinux:9",
    "el10": "quay.io/almalinux/almalinux:10",
    "fedora": "registry.fedoraproject.org/fedora:41",
}

# Every distro's image is made from this one file, with the build arguments scripts/build-images.sh passes.
CONTAINERFILE = IMAGES / "buildroot" / "Containerfile"
BUILD_ARGS = {
    "el8": {"BASE_IMAGE": "quay.io/almalinux/almalinux", "RELEASE": "8", "DISTRO": "el8"},
    "el9": {"BASE_IMAGE": "quay.io/almalinux/almalinux", "RELEASE": "9", "DISTRO": "el9"},
    "el10": {"BASE_IMAGE": "quay.io/almalinux/almalinux", "RELEASE": "10", "DISTRO": "el10"},
    "fedora": {"BASE_IMAGE": "registry.fedoraproject.org/fedora", "RELEASE": "41",
               "EXTRA_PACKAGES": "dnf5-plugins", "DISTRO": "fedora"},
}

REQUIRED_PACKAGES = {
    "rpm-build",
    "dnf-plugins-core",
    "shadow-utils",
    "createrepo_c",
    "util-linux",
    "tar",
    "gzip",
    "cpio",
    "findutils",
    "which",
}

# The toolchain comes from the @build group at run time, never from the image.
FORBIDDEN_PACKAGES = {"gcc", "gcc-c++", "make", "binutils", "glibc-devel", "redhat-rpm-config"}

SHELL_SEPARATORS = {"&&", "||", ";", "|", "&"}


@dataclass
class Instruction:
    keyword: str
    args: str


def parse_containerfile(path: Path) -> list[Instruction]:
    """Instructions of a Containerfile, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue  # comment, also allowed between continuation lines
        if not line and not current:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, args = current.strip().partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
        current = ""
    assert not current.strip(), f"{path}: dangling line continuation"
    return instructions


def substitute_args(text: str, values: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"build argument {name} has no default"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, text)


def arg_values(instructions: list[Instruction], build_args: dict[str, str], before_from: bool) -> dict[str, str]:
    """What each ARG is worth (a build argument wins over the default), as podman resolves it."""
    args: dict[str, str] = {}
    seen_from = False
    for ins in instructions:
        if ins.keyword == "FROM":
            seen_from = True
            if before_from:
                break
        elif ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            name = name.strip()
            if name in build_args:
                args[name] = build_args[name]
            elif default or not seen_from:
                args[name] = default.strip().strip("\"'")
    return args


def base_image(instructions: list[Instruction], build_args: dict[str, str] | None = None) -> str:
    """The FROM image, with the ARGs declared before it substituted."""
    froms = [ins.args for ins in instructions if ins.keyword == "FROM"]
    assert len(froms) == 1, f"expected exactly one FROM, got {froms}"
    image = [w for w in froms[0].split() if not w.startswith("--")][0]
    return substitute_args(image, arg_values(instructions, build_args or {}, before_from=True))


def run_commands(instructions: list[Instruction], build_args: dict[str, str] | None = None) -> list[list[str]]:
    """Each RUN instruction as a list of simple commands (lists of words), ARGs substituted."""
    values = arg_values(instructions, build_args or {}, before_from=False)
    runs = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        commands: list[list[str]] = [[]]
        lexer = shlex.shlex(substitute_args(ins.args, values), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for word in lexer:
            if word in SHELL_SEPARATORS:
                commands.append([])
            else:
                commands[-1].append(word)
        runs.append([c for c in commands if c])
    return runs


def dnf_install_run(instructions: list[Instruction], build_args: dict[str, str] | None = None
                    ) -> tuple[list[str], list[list[str]]]:
    """The `dnf install` command and all commands of the RUN it is in."""
    found = []
    for commands in run_commands(instructions, build_args):
        for cmd in commands:
            if cmd[:1] == ["dnf"] and "install" in cmd:
                found.append((cmd, commands))
    assert len(found) == 1, f"expected one dnf install, got {[f[0] for f in found]}"
    return found[0]


def option_value(cmd: list[str], short: str, long: str) -> str | None:
    for i, word in enumerate(cmd):
        if word in (short, long) and i + 1 < len(cmd):
            return cmd[i + 1]
        if word.startswith(long + "="):
            return word.split("=", 1)[1]
    return None


def labels(instructions: list[Instruction], build_args: dict[str, str] | None = None) -> dict[str, str]:
    """LABEL pairs, ARGs declared after FROM substituted (podman only passes those on)."""
    values = arg_values(instructions, build_args or {}, before_from=False)
    result = {}
    for ins in instructions:
        if ins.keyword == "LABEL":
            for pair in shlex.split(ins.args):
                key, sep, value = pair.partition("=")
                assert sep, f"LABEL without '=': {pair}"
                result[key] = substitute_args(value, values)
    return result


def test_one_containerfile_for_every_distro():
    assert sorted(IMAGES.glob("*/Containerfile")) == [CONTAINERFILE]
    assert set(BUILD_ARGS) == set(EXPECTED_BASE)


@pytest.fixture(params=sorted(BUILD_ARGS), ids=str)
def image(request) -> tuple[str, list[Instruction], dict[str, str]]:
    return request.param, parse_containerfile(CONTAINERFILE), BUILD_ARGS[request.param]


def test_base_image(image):
    distro, instructions, build_args = image
    assert base_image(instructions, build_args) == EXPECTED_BASE[distro]


def test_defaults_make_el9():
    instructions = parse_containerfile(CONTAINERFILE)
    assert base_image(instructions) == EXPECTED_BASE["el9"]
    assert labels(instructions)["io.koji-adjutant.distro"] == "el9"


def test_a_new_release_or_a_mirror_is_only_build_args():
    instructions = parse_containerfile(CONTAINERFILE)
    assert base_image(instructions, {"BASE_IMAGE": "mirror.example.com/fedora", "RELEASE": "42"}) \
        == "mirror.example.com/fedora:42"


def test_fedora_adds_dnf5_plugins_and_el_does_not():
    instructions = parse_containerfile(CONTAINERFILE)
    fedora, _ = dnf_install_run(instructions, BUILD_ARGS["fedora"])
    el, _ = dnf_install_run(instructions, BUILD_ARGS["el10"])
    assert "dnf5-plugins" in fedora and "dnf5-plugins" not in el


def test_required_packages_installed(image):
    distro, instructions, build_args = image
    install, _ = dnf_install_run(instructions, build_args)
    packages = {w for w in install[install.index("install") + 1:] if not w.startswith("-")}
    missing = REQUIRED_PACKAGES - packages
    assert not missing, f"{distro}: packages missing from dnf install: {sorted(missing)}"
    heavy = FORBIDDEN_PACKAGES & packages
    assert not heavy, f"{distro}: toolchain belongs to @build, not the image: {sorted(heavy)}"


def test_dnf_options_and_clean_in_same_layer(image):
    distro, instructions, build_args = image
    install, commands = dnf_install_run(instructions, build_args)
    assert "-y" in install or "--assumeyes" in install
    assert "--setopt=install_weak_deps=False" in install
    assert ["dnf", "clean", "all"] in commands, f"{distro}: dnf clean all missing from the install RUN"
    assert commands.index(["dnf", "clean", "all"]) > commands.index(install)


def test_build_user(image):
    distro, instructions, _ = image
    commands = [c for run in run_commands(instructions) for c in run]
    groupadds = [c for c in commands if c[:1] == ["groupadd"]]
    assert any(c[-1] == "mock" and option_value(c, "-g", "--gid") == "1000" for c in groupadds), groupadds
    useradds = [c for c in commands if c[:1] == ["useradd"] and c[-1] == "mockbuild"]
    assert len(useradds) == 1, f"{distro}: expected one useradd of mockbuild"
    useradd = useradds[0]
    assert option_value(useradd, "-u", "--uid") == "1000"
    assert option_value(useradd, "-g", "--gid") in ("mock", "1000")
    assert option_value(useradd, "-d", "--home-dir") == "/builddir"
    assert ["chmod", "755", "/builddir"] in commands


def test_workdir_and_user(image):
    distro, instructions, _ = image
    workdirs = [i.args for i in instructions if i.keyword == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/builddir"
    # The dependency phase needs root; the build phase passes --user itself.
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert not users or users[-1] in ("root", "0")


def test_labels(image):
    distro, instructions, build_args = image
    found = labels(instructions, build_args)
    assert found.get("io.koji-adjutant.distro") == distro
    assert found.get("org.opencontainers.image.title") == "koji-adjutant-buildroot"


def test_no_arch_specific_content(image):
    _, instructions, _ = image
    for ins in instructions:
        assert "TARGETARCH" not in ins.args


# --- scripts/build-images.sh --------------------------------------------------

def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LC_ALL="C")
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def dry_run_commands(*args: str) -> list[list[str]]:
    proc = run_script("--dry-run", *args)
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line) for line in proc.stdout.splitlines() if line.strip()]


def built_tags(commands: list[list[str]]) -> list[str]:
    return [option_value(c, "-t", "--tag") for c in commands if c[:2] == ["podman", "build"]]


def build_args_of(cmd: list[str]) -> dict[str, str]:
    return dict(cmd[i + 1].split("=", 1) for i, word in enumerate(cmd) if word == "--build-arg")


def test_fedora_release_from_the_environment():
    proc = subprocess.run([str(SCRIPT), "--dry-run", "--distro", "fedora", "--arch", "x86_64"], capture_output=True,
                          text=True, env=dict(os.environ, LC_ALL="C", FEDORA_RELEASE="42"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert build_args_of(shlex.split(proc.stdout.splitlines()[0]))["RELEASE"] == "42"


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


def test_dry_run_tags_and_platforms():
    commands = dry_run_commands("--distro", "el9,el10", "--arch", "x86_64,aarch64")
    assert all(c[0] == "podman" for c in commands)
    assert built_tags(commands) == [
        "koji-adjutant-buildroot:el9-x86_64",
        "koji-adjutant-buildroot:el9-aarch64",
        "koji-adjutant-buildroot:el10-x86_64",
        "koji-adjutant-buildroot:el10-aarch64",
    ]
    platforms = [option_value(c, "", "--platform") for c in commands]
    assert platforms == ["linux/amd64", "linux/arm64"] * 2
    for cmd in commands:
        distro = option_value(cmd, "-t", "--tag").split(":")[1].split("-")[0]
        assert Path(option_value(cmd, "-f", "--file")) == CONTAINERFILE
        assert Path(cmd[-1]) == CONTAINERFILE.parent
        assert build_args_of(cmd) == BUILD_ARGS[distro]
    assert not any(c[:2] == ["podman", "push"] for c in commands)


def test_dry_run_defaults_to_all_distros_and_host_arch():
    host = platform.machine()
    if host not in ("x86_64", "aarch64"):
        proc = run_script("--dry-run")
        assert proc.returncode == 2 and host in proc.stderr
        return
    commands = dry_run_commands()
    assert build_args_of(commands[-1]) == BUILD_ARGS["fedora"]
    tags = built_tags(commands)
    assert tags == [f"koji-adjutant-buildroot:{d}-{host}" for d in ("el8", "el9", "el10", "fedora")]


@pytest.mark.parametrize("prefix", ["registry.example.com/koji/", "registry.example.com/koji"])
def test_registry_prefix_and_push(prefix):
    commands = dry_run_commands("--distro", "el9", "--arch", "aarch64", "--registry", prefix, "--push")
    tag = "registry.example.com/koji/koji-adjutant-buildroot:el9-aarch64"
    assert built_tags(commands) == [tag]
    assert commands[-1] == ["podman", "push", tag]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--distro", "el7"], "el7"),
        (["--distro", "el9,bogus"], "bogus"),
        (["--arch", "ppc64le"], "ppc64le"),
        (["--arch", "x86_64,"], "arch"),
        (["--frobnicate"], "--frobnicate"),
        (["--push"], "--registry"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    proc = run_script("--dry-run", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr


def test_help():
    proc = run_script("--help")
    assert proc.returncode == 0
    assert "--distro" in proc.stdout and "--dry-run" in proc.stdout
