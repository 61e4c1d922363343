"""The phase script of runner._run_to_end, run by real shells on the host: output to the log,
results and exit status on stdout (ADR 0003). The container adds nothing to it but isolation."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from koji_adjutant.buildroot.phase import phase_command as _phase_command
from koji_adjutant.buildroot.phase import phase_exit as _phase_exit

SHELLS = [shell for shell in ("/bin/sh", "/bin/bash", "/bin/dash") if Path(shell).exists()]


def run_phase(shell: str, command: list[str], results: Path) -> tuple[subprocess.CompletedProcess, io.BytesIO]:
    argv = _phase_command(command, str(results))
    assert argv[0] == "/bin/sh"
    done = subprocess.run([shell, *argv[1:]], capture_output=True, check=False)
    return done, io.BytesIO(done.stdout)


@pytest.fixture(params=SHELLS)
def shell(request) -> str:
    return request.param


def test_success_sends_the_results_then_status_zero(shell, tmp_path):
    results = tmp_path / "RPMS"
    (results / "noarch").mkdir(parents=True)
    command = ["sh", "-c", f"echo building; echo warning >&2; echo made > {results}/noarch/a.rpm"]
    done, output = run_phase(shell, command, results)
    assert done.returncode == 0
    assert done.stderr == b"building\nwarning\n"          # the command's stdout joins its log
    assert _phase_exit(output) == 0
    with tarfile.open(fileobj=output) as tar:             # what is left is the archive alone
        names = sorted(tar.getnames())
        assert tar.extractfile("./noarch/a.rpm").read() == b"made\n"
    assert names == [".", "./noarch", "./noarch/a.rpm"]


def test_failure_sends_only_the_status(shell, tmp_path):
    done, output = run_phase(shell, ["sh", "-c", "echo compiling; exit 3"], tmp_path)
    assert done.returncode == 3
    assert done.stderr == b"compiling\n"
    assert done.stdout == b"\nadjutant-phase-exit 3\n"
    assert _phase_exit(output) == 3
    assert output.getvalue() == b""


def test_the_command_cannot_print_a_status_of_its_own(shell, tmp_path):
    done, output = run_phase(shell, ["sh", "-c", "printf '\\nadjutant-phase-exit 0\\n'; exit 1"], tmp_path)
    assert _phase_exit(output) == 1
    assert b"adjutant-phase-exit 0" in done.stderr


def test_results_that_cannot_be_packed_leave_no_status(shell, tmp_path):
    """tar failing (here: no results directory) ends the script without a status line,
    so the runner asks podman how the container ended instead."""
    done, output = run_phase(shell, ["true"], tmp_path / "missing")
    assert done.returncode != 0
    assert _phase_exit(output) is None


def test_no_status_when_the_output_was_cut_short():
    assert _phase_exit(io.BytesIO(b"")) is None
    assert _phase_exit(io.BytesIO(b"partial tar data")) is None
    assert _phase_exit(io.BytesIO(b"\nadjutant-phase-exit 0\ntrailing")) is None


def test_values_reach_the_shell_as_arguments(shell, tmp_path):
    odd = tmp_path / "re sults $(touch pwned) `touch pwned2` ;"
    odd.mkdir()
    (odd / "x").write_text("x")
    done, output = run_phase(shell, ["sh", "-c", 'printf "%s|" "$@" >&2', "sh", "a b", "$HOME", "*"], odd)
    assert done.stderr == b"a b|$HOME|*|"
    assert _phase_exit(output) == 0
    assert not list(Path.cwd().glob("pwned*")) and not list(tmp_path.glob("pwned*"))
