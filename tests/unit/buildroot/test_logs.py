"""BuildLogs: live log files, the state.log taken from Start:/Finish: lines, and the state listener;
the cap of each log and of a line in memory; HeadTailBuffer."""

from __future__ import annotations

import re
import threading

import pytest

from koji_adjutant.buildroot import logs as logs_module
from koji_adjutant.buildroot.installed import parse_rpm_list
from koji_adjutant.buildroot.logs import BuildLogs, HeadTailBuffer
from koji_adjutant.container.interface import Stream
from koji_adjutant.errors import BuildrootError

STAMP = "2024-05-06 07:08:09"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - (.*)$")


class FakeTime:
    """Stands in for the time module inside logs.py only."""

    @staticmethod
    def gmtime():
        return None

    @staticmethod
    def strftime(fmt, _t=None):
        assert fmt == "%Y-%m-%d %H:%M:%S"
        return STAMP


@pytest.fixture
def fixed_time(monkeypatch):
    monkeypatch.setattr(logs_module, "time", FakeTime)


@pytest.fixture
def heard():
    return []


@pytest.fixture
def logs(tmp_path, heard):
    build_logs = BuildLogs(tmp_path / "logs", listener=lambda source, text: heard.append((source, text)))
    yield build_logs
    build_logs.close()


def read(logs: BuildLogs, name: str) -> str:
    return (logs.logdir / name).read_text()


def test_logdir_is_made_and_state_log_exists_at_once(tmp_path):
    logs = BuildLogs(tmp_path / "a" / "b")
    try:
        assert (tmp_path / "a" / "b" / "state.log").read_bytes() == b""
    finally:
        logs.close()


def test_chunks_are_visible_before_close(logs):
    logs.write("root", b"Installing: ")
    assert read(logs, "root.log") == "Installing: "
    logs.write("root", b"bash\n")
    assert read(logs, "root.log") == "Installing: bash\n"
    logs.write("build", b"+ make\n")
    assert read(logs, "build.log") == "+ make\n"
    assert logs.path("build") == logs.logdir / "build.log"


def test_bytes_are_written_as_they_come(logs):
    data = b"\xff\xfe not utf-8 \x00\r\n"
    logs.write("root", data)
    assert (logs.logdir / "root.log").read_bytes() == data


def test_sink_writes_both_streams_interleaved(logs):
    sink = logs.sink("build")
    sink(Stream.STDOUT, b"out 1\n")
    sink(Stream.STDERR, b"err 1\n")
    sink(Stream.STDOUT, b"out 2\n")
    assert read(logs, "build.log") == "out 1\nerr 1\nout 2\n"


def test_state_lines_go_to_state_log_with_a_timestamp(logs, heard, fixed_time):
    logs.write("root", b"noise\nStart: buildroot setup\nmore noise\nFinish: buildroot setup\n")
    assert read(logs, "state.log") == f"{STAMP} - Start: buildroot setup\n{STAMP} - Finish: buildroot setup\n"
    assert heard == [("root", "Start: buildroot setup"), ("root", "Finish: buildroot setup")]
    assert read(logs, "root.log") == "noise\nStart: buildroot setup\nmore noise\nFinish: buildroot setup\n"


def test_real_timestamp_format(logs):
    logs.write("root", b"Start: x\n")
    (line,) = read(logs, "state.log").splitlines()
    assert STAMPED.match(line).group(1) == "Start: x"


@pytest.mark.parametrize("chunks", [
    [b"out\nSta", b"rt: installing group @build\nmore"],
    [b"Start: installing", b" group @build", b"\n"],
    [b"S", b"t", b"a", b"r", b"t", b":", b" ", b"installing group @build", b"\n"],
    [b"x\n", b"", b"Start: installing group @build\n"],
])
def test_state_line_split_across_chunks_reaches_state_log_once(logs, heard, fixed_time, chunks):
    for chunk in chunks:
        logs.write("root", chunk)
    assert read(logs, "state.log") == f"{STAMP} - Start: installing group @build\n"
    assert heard == [("root", "Start: installing group @build")]
    assert read(logs, "root.log") == b"".join(chunks).decode()


def test_partial_lines_are_kept_per_log(logs, heard):
    logs.write("root", b"Sta")
    logs.write("build", b"Fin")
    logs.write("root", b"rt: a\n")
    logs.write("build", b"ish: b\n")
    assert heard == [("root", "Start: a"), ("build", "Finish: b")]
    assert [STAMPED.match(line).group(1) for line in read(logs, "state.log").splitlines()] == ["Start: a", "Finish: b"]


@pytest.mark.parametrize("line", [b"echo Start: x\n", b" Start: x\n", b"Started: x\n", b"Start:x\n",
                                  b"start: x\n", b"Finished: x\n", b"[koji-adjutant] Start: x\n"])
def test_only_state_lines_count(logs, heard, line):
    logs.write("root", line)
    assert heard == []
    assert read(logs, "state.log") == ""


def test_a_state_line_without_its_newline_is_not_reported_yet(logs, heard):
    logs.write("root", b"Finish: build")
    assert heard == []
    logs.write("root", b"\n")
    assert heard == [("root", "Finish: build")]


def test_state_called_directly(logs, heard, fixed_time):
    logs.state("Start: dependency phase")
    assert heard == [("adjutant", "Start: dependency phase")]
    assert read(logs, "state.log") == f"{STAMP} - Start: dependency phase\n"
    logs.state("Finish: x", source="cli")
    assert heard[-1] == ("cli", "Finish: x")


def test_no_listener(tmp_path):
    logs = BuildLogs(tmp_path)
    try:
        logs.write("root", b"Start: x\n")
        assert "Start: x" in (tmp_path / "state.log").read_text()
    finally:
        logs.close()


def test_note_is_marked(logs, heard):
    logs.note("root", "image localhost/x digest sha256:1")
    logs.write("root", b"dnf output\n")
    assert read(logs, "root.log") == "[koji-adjutant] image localhost/x digest sha256:1\ndnf output\n"
    assert heard == []


def test_a_note_is_never_a_state_line(logs, heard):
    logs.note("root", "Start: not a state line")
    assert heard == []


def test_files_lists_the_log_files(logs):
    logs.write("root", b"r\n")
    logs.write("build", b"b\n")
    (logs.logdir / "installed_pkgs.json").write_text("[]\n")
    (logs.logdir / "dir.log").mkdir()
    assert logs.files() == [logs.logdir / "build.log", logs.logdir / "root.log", logs.logdir / "state.log"]
    (logs.logdir / "installed_pkgs.log").write_text("")
    assert logs.logdir / "installed_pkgs.log" in logs.files()


def test_second_buildlogs_starts_afresh(tmp_path):
    first = BuildLogs(tmp_path)
    first.write("root", b"old root\nStart: old\n")
    first.close()
    assert "Start: old" in (tmp_path / "state.log").read_text()

    second = BuildLogs(tmp_path)
    try:
        assert (tmp_path / "state.log").read_text() == ""
        second.write("root", b"new\n")
        assert (tmp_path / "root.log").read_text() == "new\n"
        second.state("Start: new")
        assert [STAMPED.match(line).group(1) for line in (tmp_path / "state.log").read_text().splitlines()] == [
            "Start: new"]
    finally:
        second.close()


def test_second_buildlogs_does_not_list_an_earlier_builds_logs(tmp_path):
    first = BuildLogs(tmp_path)
    first.write("root", b"old root\n")
    first.write("build", b"old build\n")
    first.close()

    second = BuildLogs(tmp_path)
    try:
        second.write("root", b"dependency phase failed\n")
        stale = tmp_path / "build.log"
        assert stale not in second.files() or stale.read_text() == ""
    finally:
        second.close()


def test_close_is_idempotent_and_closes_the_files(tmp_path):
    logs = BuildLogs(tmp_path)
    logs.write("root", b"x")
    handles = list(logs._files.values())
    logs.close()
    logs.close()
    assert all(handle.closed for handle in handles)


def test_concurrent_writers_keep_whole_lines(logs, heard):
    def writer(name: str) -> None:
        for i in range(200):
            logs.write(name, f"Start: {name} {i}\n".encode())

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("root", "build")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(heard) == 400
    lines = read(logs, "state.log").splitlines()
    assert len(lines) == 400 and all(STAMPED.match(line) for line in lines)
    assert read(logs, "root.log") == "".join(f"Start: root {i}\n" for i in range(200))


# -- what a build prints is bounded ---------------------------------------------------------

CAP = 64 * 1024
TRUNCATED = b"[koji-adjutant] log truncated at 0.0625 MiB; further output dropped\n"


@pytest.fixture
def capped(tmp_path, heard):
    build_logs = BuildLogs(tmp_path / "logs", listener=lambda source, text: heard.append((source, text)),
                           max_bytes=CAP)
    yield build_logs
    build_logs.close()


def test_default_cap_is_one_gib():
    assert logs_module.DEFAULT_LOG_MAX_BYTES == 1024 * 1024 * 1024


def test_a_log_past_its_cap_ends_with_one_line_and_drops_the_rest(capped, caplog):
    line = b"x" * 99 + b"\n"
    for _ in range(1000):                                   # 100 000 bytes, past the 65 536 of the cap
        capped.write("build", line)
    data = (capped.logdir / "build.log").read_bytes()
    assert data == (line * 1000)[:CAP] + b"\n" + TRUNCATED    # cut mid-line: the note starts a line of its own
    assert caplog.text.count("build.log reached its cap of 0.0625 MiB") == 1
    capped.note("build", "rpmbuild failed")
    assert (capped.logdir / "build.log").read_bytes() == data
    capped.write("root", b"other logs go on\n")
    assert read(capped, "root.log") == "other logs go on\n"


def test_a_cap_reached_at_a_line_end_adds_no_empty_line(capped):
    capped.write("build", b"y" * (CAP - 1) + b"\n")
    capped.write("build", b"dropped\n")
    assert (capped.logdir / "build.log").read_bytes() == b"y" * (CAP - 1) + b"\n" + TRUNCATED


def test_state_lines_past_the_cap_are_not_read(capped, heard):
    capped.write("root", b"Start: before\n" + b"z" * CAP + b"\nStart: after\n")
    capped.write("root", b"Finish: later\n")
    assert heard == [("root", "Start: before")]


def test_state_log_is_capped_too(capped, heard):
    for i in range(2000):
        capped.state(f"Start: step {i}")
    data = (capped.logdir / "state.log").read_bytes()
    assert len(data) == CAP + len(b"\n") + len(TRUNCATED) and data.endswith(TRUNCATED)
    assert len(heard) == 2000                                # progress still hears every step


def test_an_endless_line_without_newline_keeps_memory_bounded(logs, heard):
    chunk = b"Start: " + b"n" * 65529                          # 64 KiB chunks, 16 MiB in all, no newline
    for _ in range(256):
        logs.write("build", chunk)
    assert len(logs._partial["build"]) <= 4096
    assert (logs.logdir / "build.log").stat().st_size == 256 * len(chunk)
    logs.write("build", b" Finish: inside the line\nFinish: next\n")
    assert heard == [("build", "Start: " + "n" * 4089), ("build", "Finish: next")]


def test_a_start_inside_an_endless_line_is_no_state_line(logs, heard):
    logs.write("root", b"x" * 10000)
    logs.write("root", b"Start: looks like a state line\n")
    assert heard == []


def test_head_tail_buffer_keeps_short_output_whole():
    buffer = HeadTailBuffer(head=16, tail=16)
    buffer.append(b"No match for ")
    buffer.append(b"argument: foo\n")
    assert buffer.dropped == 0
    assert buffer.getvalue() == b"No match for argument: foo\n"
    assert buffer.text() == "No match for argument: foo\n"


def test_head_tail_buffer_keeps_the_start_and_the_end():
    buffer = HeadTailBuffer(head=10, tail=10)
    for chunk in (b"0123", b"456789ab", b"cdefghij", b"klmnopqrst"):
        buffer.append(chunk)
    assert buffer.dropped == 10
    assert buffer.getvalue() == b"0123456789\n[koji-adjutant] 10 bytes of output left out here\nklmnopqrst"


def test_head_tail_buffer_of_endless_output_is_bounded():
    buffer = HeadTailBuffer(head=1024, tail=1024)
    for i in range(10_000):
        buffer.append(f"line {i}\n".encode() * 100)
    value = buffer.getvalue()
    assert len(value) < 2048 + 100
    assert value.startswith(b"line 0\n") and value.endswith(b"line 9999\n")
    assert buffer.dropped == sum(len(f"line {i}\n") * 100 for i in range(10_000)) - 2048


def test_a_cut_package_list_fails_to_parse_rather_than_passing_short():
    """The marker line is no package line: a list with its middle left out cannot pass for a whole one."""
    line = "bash\t5.2\t1.fc40\t(none)\tx86_64\tabc\t100\t1\t2\n"
    buffer = HeadTailBuffer(head=len(line) * 3, tail=len(line) * 3)
    for _ in range(100):
        buffer.append(line.encode())
    with pytest.raises(BuildrootError, match="left out here"):
        parse_rpm_list(buffer.text())
