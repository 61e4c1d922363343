"""The baseline both benchmarks compare against: rpmbuild -bb alone, in a provisioned container.

The container is provisioned once with plain dnf (the build group and the
spec's BuildRequires, dynamic ones included), so the time measured is the
package's own build and nothing of koji-adjutant's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from koji_adjutant.container.interface import ContainerSpec, Mount
from koji_adjutant.defaults import DEV_IMAGE


class BenchStepFailed(RuntimeError):
    pass


def run_step(manager, handle, script: str, user: str = "root") -> None:
    output: list[bytes] = []
    code = manager.exec(handle, ["bash", "-c", script], sink=lambda _s, data: output.append(data), user=user)
    if code != 0:
        raise BenchStepFailed(f"bench: step failed ({code}): {script}\n{b''.join(output).decode(errors='replace')}")


def bare_rpmbuild(manager, spec_file: Path, repo: Path, repeat: int, labels: dict[str, str]) -> float:
    """Median seconds of ``rpmbuild -bb`` of ``spec_file`` (sources beside it), BuildRequires from ``repo``."""
    spec = f"/src/{spec_file.name}"
    container = ContainerSpec(image=DEV_IMAGE, command=["sleep", "infinity"], labels=labels,
                              mounts=[Mount(repo, "/repo"), Mount(spec_file.parent, "/src")])
    handle = manager.create(container)
    try:
        manager.start(handle)
        dnf = "dnf -y -q --disablerepo='*' --enablerepo=r"
        run_step(manager, handle, "mkdir -p /etc/yum.repos.d && "
                 "printf '[r]\\nbaseurl=file:///repo\\ngpgcheck=0\\n' > /etc/yum.repos.d/r.repo && "
                 f"{dnf} install @build && {dnf} builddep {spec}")
        top = "--define '_topdir /tmp/top' --define '_sourcedir /src'"
        if "%generate_buildrequires" in spec_file.read_text():
            run_step(manager, handle, f"rpmbuild -br {top} {spec} || test $? = 11", user="mockbuild")
            run_step(manager, handle, f"{dnf} builddep /tmp/top/SRPMS/*.nosrc.rpm")
        times = []
        for _ in range(repeat):
            started = time.monotonic()
            run_step(manager, handle, f"rpmbuild -bb --nodeps --quiet {top} {spec}", user="mockbuild")
            times.append(time.monotonic() - started)
        return statistics.median(times)
    finally:
        manager.remove(handle)
