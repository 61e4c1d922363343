"""Each attack of a hostile package fails, and leaves nothing behind (docs/security.md).

The SCM attacks (revision option injection, module path traversal) are in
tests/unit/test_scm.py and tests/e2e/test_srpm_tasks.py, where URLs are handled.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from koji_adjutant.errors import ResultRefusedError, ResultTooLargeError

pytestmark = pytest.mark.podman


def rpm_query(rpm: Path, fmt: str) -> str:
    return subprocess.run(["rpm", "-qp", "--qf", fmt, str(rpm)], capture_output=True, text=True, check=True).stdout


def test_planted_macros_and_files_never_reach_the_next_build(corpus):
    """A scratch build plants %dist and files while parsed and built; an unrelated build with the
    same BuildRequires, on the very buildroot layer the first one used, sees none of it."""
    attacker = corpus.build(corpus.spec_file("plant"))
    assert attacker.error is None, attacker.error
    victim = corpus.build(corpus.spec_file("victim"))
    assert victim.error is None, f"{victim.error}\n{victim.log('build')[-2000:]}"
    assert victim.purposes == ["srpm", "evaluate", "build"], "the victim must reuse the attacker's layers"
    assert "PLANTED" not in victim.log("build")
    (rpm,) = victim.result.rpms
    assert rpm.name == "victim-1-1.noarch.rpm"
    assert rpm_query(rpm, "%{RELEASE}") == "1"
    assert "nothing planted; dist is ''" in victim.log("build")


def test_package_code_reaches_no_network(corpus, listener):
    """Not while parsed, not in %generate_buildrequires, not in %build: no network at all, and the
    podman API socket is not there to be reached."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
    sockets = f"{runtime}/podman/podman.sock /run/podman/podman.sock"
    built = corpus.build(corpus.spec_file("network", port=str(listener.port), sockets=sockets))
    assert built.error is None, built.error
    assert listener.connections == 0
    assert "REACHED" not in built.logs and "SEES" not in built.logs
    assert built.logs.count(f"refused /dev/tcp/127.0.0.1/{listener.port}") >= 2  # generator, build
    (rpm,) = built.result.rpms
    summary = rpm_query(rpm, "%{SUMMARY}")
    assert f"refused /dev/tcp/127.0.0.1/{listener.port}" in summary and "REACHED" not in summary


def test_package_code_cannot_read_secrets_write_outside_or_gain_privileges(corpus, tmp_path, monkeypatch):
    secret = tmp_path / "kojid-client.pem"
    secret.write_text("-----BEGIN PRIVATE KEY----- the worker's hub credential\n")
    secret.chmod(0o644)  # readable by anyone on the host: only the container boundary keeps it
    monkeypatch.setenv("ADJUTANT_TEST_SECRET", "s3cr3t-in-the-workers-environment")
    paths = f"{secret} {Path.home()}/.config/containers/storage.conf /etc/kojid/kojid.conf /proc/1/root/etc/shadow"
    built = corpus.build(corpus.spec_file("escape", secrets=paths))
    assert built.error is None, built.error
    log = built.log("build")
    assert "READ " not in log and "the worker's hub credential" not in log
    assert "s3cr3t-in-the-workers-environment" not in log
    assert "WROTE" not in log
    for directory in ("/var/lib/adjutant/setup", "/var/lib/adjutant/input", "/usr", "/etc"):
        assert f"cannot write {directory}" in log
    for capabilities in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert f"{capabilities}:\t0000000000000000" in log
    assert "NoNewPrivs:\t1" in log
    assert "uid_map:          0          1      65536" in log, "root inside must not be the worker"
    assert "cannot become root" in log and "BECAME ROOT" not in log
    assert not list(corpus.repo.rglob("adj-escaped"))


def test_a_sparse_terabyte_result_is_refused_at_its_header(corpus):
    built = corpus.build(corpus.spec_file("sparse"))
    assert isinstance(built.error, ResultTooLargeError), built.error
    assert "huge.bin" in built.error.message
    assert "1.0 TiB" in built.error.message or "1099511627776" in built.error.message


def test_a_forged_result_stream_is_refused(corpus, tmp_path):
    """The build cannot reach the stream the worker reads (the container's stdout is its pid 1's);
    what it leaves among its results, a link to /etc/passwd and a fifo, refuses them whole, and
    nothing lands outside the results."""
    built = corpus.build(corpus.spec_file("forged", fail="0"))
    assert "cannot reach /proc/1/fd/1" in built.log("build")
    assert isinstance(built.error, ResultRefusedError), built.error
    assert "evil.rpm" in built.error.message or "fifo.rpm" in built.error.message
    assert not list(built.resultdir.glob("*.rpm"))
    assert not list(corpus.workdir.rglob("escaped")), "a forged member was written"


def test_a_forged_success_line_does_not_make_a_failed_build_pass(corpus):
    built = corpus.build(corpus.spec_file("forged", fail="1"))
    assert built.error is not None
    assert "rpmbuild failed (exit 1)" in built.error.message
    assert not list(built.resultdir.glob("*.rpm"))


def test_a_fork_bomb_does_not_starve_a_build_beside_it(corpus, podman_manager):
    """The bomb runs into its pids limit and is killed; the other build, started while it forks,
    has its own process count (a user namespace per container) and finishes."""
    from koji_adjutant.container.podman import PodmanManager

    bomb_spec = corpus.spec_file("forkbomb")
    victim_spec = corpus.spec_file("victim")
    results: dict[str, object] = {}

    def build_bomb() -> None:
        with PodmanManager() as manager:
            results["bomb"] = corpus.build(bomb_spec, manager=manager, rpmbuild_timeout=300)

    bomb = threading.Thread(target=build_bomb)
    bomb.start()
    results["victim"] = corpus.build(victim_spec)
    bomb.join(timeout=900)
    assert not bomb.is_alive(), "the fork bomb build did not end"
    victim, bombed = results["victim"], results["bomb"]
    assert victim.error is None, f"{victim.error}\n{victim.log('build')[-2000:]}"
    assert bombed.error is not None
    assert "over its limit" in bombed.error.message or "out of memory" in str(bombed.error), bombed.error
