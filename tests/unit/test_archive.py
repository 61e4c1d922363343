"""Unpacking what comes out of a container: archives built here, as a hostile build could make them."""

from __future__ import annotations

import dataclasses
import io
import random
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from koji_adjutant.container.archive import ResultLimits, ResultSpool, extract_untrusted
from koji_adjutant.errors import ContainerError, ResultRefusedError, ResultTooLargeError

MiB = 1024 * 1024
GiB = 1024 * MiB


def archive(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.GNU_FORMAT,
            mode: str = "w") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=fmt) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **fields) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, mode
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def header_only(info: tarfile.TarInfo, fmt: int = tarfile.GNU_FORMAT) -> io.BytesIO:
    """A stream of one header and nothing after it: its size is whatever the header claims."""
    return io.BytesIO(info.tobuf(fmt, "utf-8", "surrogateescape"))


def refused(target: Path, stream: io.BytesIO, error: type[Exception] = ResultRefusedError,
            limits: ResultLimits = ResultLimits()) -> ContainerError:
    with pytest.raises(error) as caught:
        extract_untrusted(stream, target, "build-1:/results", limits)
    assert "build-1:/results" in str(caught.value)
    assert caught.value.hint
    assert not any(target.iterdir()), "nothing is written before every header was checked"
    return caught.value


# -- what passes ----------------------------------------------------------------------

def test_files_and_directories_arrive(tmp_path):
    extract_untrusted(archive((member(".", tarfile.DIRTYPE, 0o755), None),
                              (member("./noarch", tarfile.DIRTYPE, 0o755), None),
                              (member("./noarch/a.rpm"), b"rpm bytes"),
                              (member("./x.src.rpm"), b"srpm"),
                              (member("./empty"), b"")), tmp_path / "out", "test")
    assert (tmp_path / "out" / "noarch" / "a.rpm").read_bytes() == b"rpm bytes"
    assert (tmp_path / "out" / "x.src.rpm").read_bytes() == b"srpm"
    assert (tmp_path / "out" / "empty").read_bytes() == b""


def test_parents_a_stream_does_not_list_are_made(tmp_path):
    extract_untrusted(archive((member("a/b/c.rpm"), b"c"), (member("a", tarfile.DIRTYPE, 0o700), None)),
                      tmp_path, "test")
    assert (tmp_path / "a" / "b" / "c.rpm").read_bytes() == b"c"
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_tar_format(tmp_path, fmt):
    name = "/".join(["d" * 48] * 3) + "/" + "f" * 90 + ".rpm"  # ustar: a 146-byte prefix, a 94-byte name
    extract_untrusted(archive((member(name), b"long"), fmt=fmt), tmp_path, "test")
    assert (tmp_path / name).read_bytes() == b"long"


@pytest.mark.parametrize("kind, given, expected", [
    (tarfile.REGTYPE, 0o6777, 0o755), (tarfile.REGTYPE, 0o4755, 0o755), (tarfile.REGTYPE, 0o2644, 0o644),
    (tarfile.REGTYPE, 0o600, 0o644), (tarfile.REGTYPE, 0o700, 0o755), (tarfile.REGTYPE, 0o010, 0o755),
    (tarfile.REGTYPE, 0o000, 0o644), (tarfile.DIRTYPE, 0o1777, 0o755), (tarfile.DIRTYPE, 0o2700, 0o755),
])
def test_modes_are_normalised_and_owners_dropped(tmp_path, kind, given, expected):
    data = b"#!" if kind == tarfile.REGTYPE else None
    extract_untrusted(archive((member("thing", kind, mode=given, uid=0, gid=0, uname="root", gname="root"),
                               data)), tmp_path, "test")
    status = (tmp_path / "thing").stat()
    assert stat.S_IMODE(status.st_mode) == expected
    assert (status.st_uid, status.st_gid) == (tmp_path.stat().st_uid, tmp_path.stat().st_gid)


def test_data_past_the_size_a_header_claims_is_never_written(tmp_path):
    """tarfile reads exactly the size in the header; what follows is no member at all."""
    info = member("short")
    info.size = 10
    stream = io.BytesIO(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + b"A" * 4096)
    extract_untrusted(stream, tmp_path, "test")
    assert (tmp_path / "short").read_bytes() == b"A" * 10


def test_the_count_while_writing_holds_whatever_tarfile_yields(tmp_path, monkeypatch):
    """Belt and braces: were tarfile to yield more than the header says, writing stops."""
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, info: io.BytesIO(b"x" * (info.size + 1)))
    with pytest.raises(ResultRefusedError, match="'big' from test holds more than the 5 bytes its header says"):
        extract_untrusted(archive((member("big"), b"12345")), tmp_path, "test")


def test_the_target_must_be_empty(tmp_path):
    (tmp_path / "left-over").write_text("x")
    with pytest.raises(ValueError, match="must be empty"):
        extract_untrusted(archive((member("a"), b"a")), tmp_path, "test")


# -- kinds, names, form ----------------------------------------------------------------

@pytest.mark.parametrize("kind, fields, what", [
    (tarfile.SYMTYPE, {"linkname": "/etc/passwd"}, "a symbolic link"),
    (tarfile.SYMTYPE, {"linkname": "plain"}, "a symbolic link"),
    (tarfile.LNKTYPE, {"linkname": "plain"}, "a hard link"),
    (tarfile.FIFOTYPE, {}, "a fifo"),
    (tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3}, "a character device"),
    (tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0}, "a block device"),
    (b"V", {}, "of tar type b'V'"),
])
def test_links_and_special_files_refuse_the_whole_stream(tmp_path, kind, fields, what):
    error = refused(tmp_path, archive((member("plain"), b"ok"), (member("odd", kind, **fields), None)))
    assert f"'odd' from build-1:/results is {what}, not a regular file or directory" in str(error)


@pytest.mark.parametrize("name", ["/etc/cron.d/evil", "../evil", "sub/../../evil", "sub/.."])
def test_a_member_pointing_outside_refuses_the_whole_stream(tmp_path, name):
    target = tmp_path / "out"
    error = refused(target, archive((member("fine"), b"x"), (member(name), b"evil")))
    assert "points outside the target" in str(error)
    assert not (tmp_path / "evil").exists()


def test_a_name_twice_is_refused(tmp_path):
    error = refused(tmp_path, archive((member("./a.rpm"), b"first"), (member("a.rpm"), b"second")))
    assert "'a.rpm' from build-1:/results appears twice" in str(error)


@pytest.mark.parametrize("members", [
    [(member("a"), b"file"), (member("a/b"), b"inside")],
    [(member("a", tarfile.DIRTYPE), None), (member("a"), b"file")],
    [(member("."), b"the target itself")],
])
def test_a_name_both_file_and_directory_is_refused(tmp_path, members):
    assert "is both a file and a directory" in str(refused(tmp_path, archive(*members)))


@pytest.mark.parametrize("mode, kind", [("w:gz", "gzip"), ("w:bz2", "bzip2"), ("w:xz", "xz")])
def test_compressed_streams_are_refused(tmp_path, mode, kind):
    error = refused(tmp_path, archive((member("a.rpm"), b"x"), mode=mode))
    assert f"is {kind}-compressed, not a plain tar stream" in str(error)


def test_zstd_stream_is_refused(tmp_path):
    assert "zstd-compressed" in str(refused(tmp_path, io.BytesIO(b"\x28\xb5\x2f\xfd" + bytes(2048))))


def test_something_that_is_not_an_archive(tmp_path):
    with pytest.raises(ContainerError, match="build-1:/results is not a readable tar archive"):
        extract_untrusted(io.BytesIO(b"this is no tar archive, just text" * 40), tmp_path, "build-1:/results")


def test_an_empty_stream_is_not_an_archive(tmp_path):
    with pytest.raises(ContainerError, match="not a readable tar archive"):
        extract_untrusted(io.BytesIO(b""), tmp_path, "test")


def test_a_chain_of_pax_headers_is_not_an_archive(tmp_path):
    record = b"13 comment=x\n"
    pax = member("pax", tarfile.XHDTYPE, size=len(record)).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    chain = (pax + record.ljust(512, b"\0")) * 5000
    with pytest.raises(ContainerError, match="not a readable tar archive"):
        extract_untrusted(io.BytesIO(chain), tmp_path, "test")


# -- sparse members ---------------------------------------------------------------------

def _sparse_old_gnu() -> io.BytesIO:
    return archive((member("holes", tarfile.GNUTYPE_SPARSE), b"x" * 100))


def _sparse_pax(headers: dict[str, str], data: bytes) -> io.BytesIO:
    return archive((member("GNUSparseFile.0/holes", pax_headers=headers), data), fmt=tarfile.PAX_FORMAT)


SPARSE_STREAMS = {
    "old GNU": _sparse_old_gnu,
    "pax 0.0": lambda: _sparse_pax({"GNU.sparse.size": "5", "GNU.sparse.numblocks": "1",
                                    "GNU.sparse.offset": "0", "GNU.sparse.numbytes": "5"}, b"abcde"),
    "pax 0.1": lambda: _sparse_pax({"GNU.sparse.size": "5", "GNU.sparse.numblocks": "1",
                                    "GNU.sparse.map": "0,5"}, b"abcde"),
    "pax 1.0": lambda: _sparse_pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                    "GNU.sparse.name": "holes", "GNU.sparse.realsize": "5"},
                                   b"1\n0\n5\n".ljust(512, b"\0") + b"abcde"),
    # a map that claims more entries than the stream holds: tarfile would read on to its end
    "pax 1.0, endless map": lambda: _sparse_pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                                 "GNU.sparse.name": "holes"}, b"999999999999\n" + b"1\n" * 4000),
}


@pytest.mark.parametrize("make", SPARSE_STREAMS.values(), ids=SPARSE_STREAMS.keys())
def test_sparse_members_are_refused(tmp_path, make):
    assert "holes' from build-1:/results is a sparse file" in str(refused(tmp_path, make()))


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("tar_format", ["gnu", "posix"])
def test_sparse_files_from_real_gnu_tar_are_refused(tmp_path, tar_format):
    tree = tmp_path / "tree"
    tree.mkdir()
    with open(tree / "holes", "wb") as holes:
        holes.truncate(8 * MiB)
        holes.seek(4 * MiB)
        holes.write(b"data")
    made = subprocess.run(["tar", "-C", str(tree), "--sparse", f"--format={tar_format}", "-cf", "-", "."],
                          capture_output=True, check=True)
    target = tmp_path / "out"
    target.mkdir()
    assert "is a sparse file" in str(refused(target, io.BytesIO(made.stdout)))


# -- limits -------------------------------------------------------------------------------

SMALL = ResultLimits(max_file_bytes=1000, max_total_bytes=1500, max_files=4)


def test_within_small_limits(tmp_path):
    stream = archive((member(".", tarfile.DIRTYPE), None), (member("a"), b"a" * 1000), (member("b"), b"b" * 500))
    extract_untrusted(stream, tmp_path, "test", SMALL)
    assert (tmp_path / "a").stat().st_size == 1000


def test_a_file_over_the_per_file_limit(tmp_path):
    error = refused(tmp_path, archive((member("big.rpm"), b"x" * 1001)), ResultTooLargeError, SMALL)
    assert "'big.rpm' from build-1:/results has 1001 bytes; the limit is 1000 bytes" in str(error)
    assert "result_max_file_mb" in error.hint


def test_files_over_the_total_limit(tmp_path):
    error = refused(tmp_path, archive((member("a"), b"a" * 900), (member("b"), b"b" * 700)),
                    ResultTooLargeError, SMALL)
    assert "build-1:/results sent more than 1500 bytes of files (at 'b'); the limit is 1500 bytes" in str(error)
    assert "result_max_total_mb" in error.hint


def test_too_many_members(tmp_path):
    members = [(member(f"f{i}"), b"") for i in range(5)]
    error = refused(tmp_path, archive(*members), ResultTooLargeError, SMALL)
    assert "build-1:/results sent more than 4 files and directories; the limit is 4" in str(error)
    assert "result_max_files" in error.hint


def test_directories_count_as_members(tmp_path):
    members = [(member(f"d{i}", tarfile.DIRTYPE), None) for i in range(5)]
    refused(tmp_path, archive(*members), ResultTooLargeError, SMALL)


def test_a_header_claiming_a_huge_size_is_refused_before_reading_on(tmp_path):
    """100 GiB claimed, nothing behind it: refused at the header, not read or skipped."""
    info = member("huge.rpm")
    info.size = 100 * GiB
    error = refused(tmp_path, header_only(info), ResultTooLargeError)
    assert "'huge.rpm' from build-1:/results has 100.0 GiB; the limit is 8.0 GiB" in str(error)


def test_a_pax_size_over_the_limit_is_refused(tmp_path):
    info = member("lie.rpm", pax_headers={"size": str(50 * GiB)})
    info.size = 3
    stream = io.BytesIO(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + b"abc".ljust(512, b"\0"))
    assert "'lie.rpm' from build-1:/results has 50.0 GiB" in str(refused(tmp_path, stream, ResultTooLargeError))


def test_a_size_within_limits_but_data_cut_short(tmp_path):
    info = member("cut.rpm")
    info.size = 10 * MiB
    with pytest.raises(ContainerError, match="not a readable tar archive"):
        extract_untrusted(io.BytesIO(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + b"x" * 512),
                          tmp_path, "test")


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE, tarfile.XGLTYPE])
def test_an_oversized_metadata_header_is_refused_before_tarfile_reads_it(tmp_path, kind):
    """tarfile would read a long-name or pax header's whole claimed size into memory."""
    info = member("././@LongLink", kind)
    info.size = 4 * GiB
    error = refused(tmp_path, header_only(info))
    assert "has a tar header of 4.0 GiB; the limit is 65536 bytes" in str(error)


def test_limits_from_kojid_conf_units():
    assert ResultLimits.from_mb(8192, 32768, 20000) == ResultLimits()
    assert ResultLimits.from_mb(1, 2, 3) == ResultLimits(max_file_bytes=MiB, max_total_bytes=2 * MiB, max_files=3)


# -- the spool of a phase's stdout ------------------------------------------------------------

#: Sizes a container's output may arrive in; "mixed" draws each from the others.
CHUNKS = [1, 7, 511, 512, 513, 4096, MiB, "mixed"]


def pieces(stream: bytes, chunk: int | str) -> Iterator[bytes]:
    draw = random.Random(len(stream))
    start = 0
    while start < len(stream):
        size = draw.choice(CHUNKS[:-1]) if chunk == "mixed" else chunk
        yield stream[start:start + size]
        start += size


def spooled(stream: bytes, chunk: int | str, limits: ResultLimits) -> bytes:
    """What the spool holds of ``stream`` written in pieces of ``chunk`` bytes."""
    with ResultSpool(limits, "build-1") as spool:
        for piece in pieces(stream, chunk):
            spool.write(piece)
        spool.file.seek(0)
        return spool.file.read()


def refused_while_spooling(stream: bytes, chunk: int | str, limits: ResultLimits = ResultLimits()
                           ) -> tuple[ResultTooLargeError, int]:
    """The error the spool raised on ``stream`` written in pieces, and how many bytes it took before."""
    taken = 0
    with ResultSpool(limits, "build-1") as spool:
        with pytest.raises(ResultTooLargeError) as caught:
            for piece in pieces(stream, chunk):
                spool.write(piece)
                taken += len(piece)
        assert spool.overflowed
        assert spool.file.seek(0, io.SEEK_END) == 0          # the disk space is given back at once
        spool.write(b"more and more")                        # dropped, while the caller kills the container
        assert spool.file.seek(0, io.SEEK_END) == 0 and spool.overflowed
    assert caught.value.hint
    return caught.value, taken


def test_spool_keeps_what_fits(tmp_path):
    with ResultSpool(ResultLimits(), "build-1") as spool:
        spool.write(b"12345")
        spool.write(b"67890")
        assert (spool.size, spool.overflowed) == (10, False)
        spool.file.seek(0)
        assert spool.file.read() == b"1234567890"


def test_spool_refuses_to_grow_past_its_limit():
    limits = ResultLimits(max_file_bytes=0, max_total_bytes=0, max_files=0)
    error, taken = refused_while_spooling(b"y" * (MiB + 1), 4096, limits)
    assert taken == MiB == limits.spool_bytes
    assert "build-1 sent more than 1.0 MiB on its output" in str(error)
    assert "result_max_total_mb" in error.hint


def test_spool_of_endless_output_stays_bounded():
    limits = ResultLimits(max_file_bytes=MiB, max_total_bytes=MiB, max_files=10)
    with ResultSpool(limits, "build-1") as spool:
        with pytest.raises(ResultTooLargeError):
            for _ in range(10_000):
                spool.write(b"y\n" * 32768)
        assert spool.size <= limits.spool_bytes


def test_spool_size_of_the_defaults():
    assert ResultLimits().spool_bytes == 32 * GiB + 20_000 * 8192 + MiB


def _real_tar(tree: Path, tar_format: str) -> bytes:
    return subprocess.run(["tar", "-C", str(tree), f"--format={tar_format}", "-cf", "-", "."],
                          capture_output=True, check=True).stdout


def _tree_at_the_limits(tree: Path) -> ResultLimits:
    """40 members with names over 100 characters, files of 3000 bytes, and the limits they just fit."""
    deep = tree / ("d" * 200) / ("e" * 200) / ("f" * 200)
    deep.mkdir(parents=True)
    for i in range(36):                                          # 36 files + 3 dirs + "." = 40 members
        (deep / f"{i:02d}{'n' * 240}").write_bytes(b"r" * (3000 if i < 30 else 0))
    return ResultLimits(max_file_bytes=3000, max_total_bytes=30 * 3000, max_files=40)


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("tar_format", ["gnu", "posix"])
def test_a_real_stream_at_the_limits_passes_its_spool_untouched(tmp_path, tar_format, chunk):
    """What the phase script sends for results at every limit, long names ('L' or pax headers) and
    all, is neither cut off nor refused, however its output is split."""
    limits = _tree_at_the_limits(tmp_path / "tree")
    made = _real_tar(tmp_path / "tree", tar_format)
    output = made + b"\nadjutant-phase-exit 0\n"
    assert spooled(output, chunk, limits) == output
    extract_untrusted(io.BytesIO(made), tmp_path / "out", "build-1", limits)
    assert len(list((tmp_path / "out").rglob("*"))) == 39


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("tar_format", ["gnu", "posix"])
@pytest.mark.parametrize("over, words", [
    ({"max_files": 39}, "build-1 sent more than 39 files and directories; the limit is 39"),
    ({"max_file_bytes": 2999}, "has 3000 bytes; the limit is 2999 bytes"),
    ({"max_total_bytes": 30 * 3000 - 1}, "build-1 sent more than 89999 bytes of files (at './"),
])
def test_a_real_stream_one_over_a_limit_is_refused_in_the_same_words_by_spool_and_extraction(
        tmp_path, tar_format, over, words):
    limits = dataclasses.replace(_tree_at_the_limits(tmp_path / "tree"), **over)
    made = _real_tar(tmp_path / "tree", tar_format)
    error, _ = refused_while_spooling(made, 513, limits)
    assert words in str(error)
    with pytest.raises(ResultTooLargeError) as caught:
        extract_untrusted(io.BytesIO(made), tmp_path / "out", "build-1", limits)
    assert str(caught.value) == str(error)


def test_a_stream_of_every_header_kind_passes_its_spool_untouched(tmp_path):
    """GNU long names, a global and per-file pax headers, a directory, an empty file: all counted as
    extraction counts them, so limits they just fit let them through."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in ((member("d", tarfile.DIRTYPE), b""), (member("d/" + "l" * 150 + ".rpm"), b"long" * 300),
                           (member("empty"), b"")):
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        end = tar.offset
    buffer.seek(end)                                          # the pax members go on in the same archive
    buffer.truncate()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "g"}) as tar:
        for name, data in (("p" * 120 + ".rpm", b"pax" * 700), ("small.rpm", b"s")):
            tar.addfile(member(name, pax_headers={"comment": "per file"}, size=len(data)), io.BytesIO(data))
    stream = buffer.getvalue()
    assert {tarfile.GNUTYPE_LONGNAME, tarfile.XGLTYPE, tarfile.XHDTYPE} <= {
        stream[at + 156:at + 157] for at in range(0, len(stream), 512)}
    limits = ResultLimits(max_file_bytes=2100, max_total_bytes=1200 + 2100 + 1, max_files=5)
    for chunk in CHUNKS:
        assert spooled(stream, chunk, limits) == stream
    extract_untrusted(io.BytesIO(stream), tmp_path, "test", limits)
    assert (tmp_path / ("p" * 120 + ".rpm")).read_bytes() == b"pax" * 700


@pytest.mark.parametrize("chunk", CHUNKS)
def test_spool_refuses_a_header_declaring_too_much_at_that_header(chunk):
    info = member("huge.rpm", size=100 * GiB)                       # base-256: too large for octal
    stream = archive((member("small"), b"x" * 1000)).getvalue()[:1536] + header_only(info).getvalue()
    error, taken = refused_while_spooling(stream + bytes(4 * MiB), chunk)
    assert "'huge.rpm' from build-1 has 100.0 GiB; the limit is 8.0 GiB" in str(error)
    assert "result_max_file_mb" in error.hint
    assert taken < len(stream)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_spool_refuses_a_pax_size_over_the_limit(chunk):
    info = member("lie.rpm", pax_headers={"size": str(50 * GiB)}, size=3)
    stream = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + bytes(4 * MiB)
    error, taken = refused_while_spooling(stream, chunk)
    assert "'lie.rpm' from build-1 has 50.0 GiB; the limit is 8.0 GiB" in str(error)
    assert taken < 2048


@pytest.mark.parametrize("chunk", CHUNKS)
def test_spool_refuses_files_over_the_total_and_too_many_members(chunk):
    total, _ = refused_while_spooling(archive((member("a"), b"a" * 900), (member("b"), b"b" * 700)).getvalue(),
                                      chunk, SMALL)
    assert "build-1 sent more than 1500 bytes of files (at 'b'); the limit is 1500 bytes" in str(total)
    many, _ = refused_while_spooling(archive(*[(member(f"f{i}"), b"") for i in range(5)]).getvalue(), chunk, SMALL)
    assert "build-1 sent more than 4 files and directories; the limit is 4" in str(many)


def test_spool_refuses_an_oversized_metadata_header():
    info = member("././@LongLink", tarfile.GNUTYPE_LONGNAME, size=4 * GiB)
    error, _ = refused_while_spooling(header_only(info).getvalue() + bytes(MiB), 4096)
    assert "'././@LongLink' from build-1 has a tar header of 4.0 GiB; the limit is 65536 bytes" in str(error)


def test_what_the_spool_cannot_read_is_left_to_extraction(tmp_path):
    """A header with a bad checksum ends the checks on the way in: extraction refuses it."""
    forged = bytearray(header_only(member("huge.rpm", size=100 * GiB)).getvalue())
    forged[148:156] = b"0000000\0"
    stream = bytes(forged) + bytes(MiB)
    assert spooled(stream, 4096, ResultLimits()) == stream
    with pytest.raises(ContainerError, match="not a readable tar archive"):
        extract_untrusted(io.BytesIO(stream), tmp_path, "test")


@pytest.fixture(scope="module", params=["gnu", "posix"])
def sparse_terabyte(request, tmp_path_factory) -> bytes:
    """The first 4 MiB GNU tar sends of results holding a 1 TiB sparse file; then it is killed."""
    if shutil.which("tar") is None:
        pytest.skip("needs GNU tar")
    tree = tmp_path_factory.mktemp("sparse")
    (tree / "noarch").mkdir()
    (tree / "noarch" / "hello-1-1.noarch.rpm").write_bytes(b"h" * 3000)   # sorted first: its data is skipped
    subprocess.run(["truncate", "-s", "1T", str(tree / "noarch" / "sparse-1-1.noarch.rpm")], check=True)
    tar = subprocess.Popen(["tar", "--sort=name", f"--format={request.param}", "-cf", "-", "-C", str(tree), "."],
                           stdout=subprocess.PIPE)
    try:
        head = tar.stdout.read(4 * MiB)
    finally:
        tar.kill()
        tar.wait()
        tar.stdout.close()
    assert len(head) == 4 * MiB
    return head


@pytest.mark.parametrize("chunk", CHUNKS)
def test_spool_refuses_a_sparse_terabyte_from_real_gnu_tar_at_its_header(sparse_terabyte, chunk):
    error, taken = refused_while_spooling(sparse_terabyte, chunk)
    assert "'./noarch/sparse-1-1.noarch.rpm' from build-1 has 1.0 TiB; the limit is 8.0 GiB" in str(error)
    assert "result_max_file_mb" in error.hint
    assert taken <= 12 * 1024                                  # the headers and hello's data before it
