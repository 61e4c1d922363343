"""Unpacking a tar stream that came out of a container, which is untrusted.

A build phase sends its results as a tar stream on the container's stdout
(ADR 0003); the package's own code ran in that container and can write
anything there. So the stream is held to strict rules and refused whole when
it breaks one: an uncompressed tar of regular files and directories only,
every name inside the target, within size and count limits. Nothing is
skipped quietly: a result that is not what it claims to be fails the build.

The checks are our own. tarfile's extraction filters (``filter='data'``) exist
only from Python 3.11.4, and this project runs on 3.11.2 (Debian 12); besides,
they accept links and do not bound sizes. Files are written here rather than by
``extractall`` so the limits also hold while writing.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import ContainerError, ResultRefusedError, ResultTooLargeError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB

#: Magic numbers of compressed streams: the phase script sends plain tar, so one of these
#: means the stream did not come from it.
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}

#: Header types whose data tarfile reads into memory (long names, pax headers).
_METADATA_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                   tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
#: Largest such header accepted: a long name is at most PATH_MAX (4 KiB); GNU tar's pax headers
#: without xattrs are well under 1 KiB.
_MAX_METADATA_BYTES = 64 * 1024

#: Most bytes of tar framing per member: a 512-byte header, up to 511 bytes of padding, and a
#: long-name or pax header of up to PATH_MAX with its own header (5.6 KiB at most, rounded up).
_MEMBER_OVERHEAD = 8 * 1024
#: The end-of-archive blocks, the padding to tar's 10 KiB records, the phase's status line.
_STREAM_SLACK = MiB

_COPY_CHUNK = MiB

#: What each refused kind of member is called in messages.
_KINDS = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a character device",
          tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a fifo"}
_SPARSE = "is a sparse file"
_HINT_KINDS = ("results must be regular files and directories below the results directory; "
               "look at what the build leaves there")


@dataclass(frozen=True)
class ResultLimits:
    """How much one phase may send back.

    Generous for real packages, small enough that a hostile build cannot fill
    the worker's disk. The largest RPMs (debuginfo of browsers, LLVM) reach about
    4 GiB, so one file may be twice that; the largest builds return a few GiB in
    all (kernel with debuginfo, texlive), so 32 GiB leaves room to spare;
    texlive's ~6000 RPMs are the most files one build returns, so 20000 members
    is over three times that, and their headers take about 10 MiB of memory.
    """

    max_file_bytes: int = 8 * GiB
    max_total_bytes: int = 32 * GiB
    #: members of any kind, directories included
    max_files: int = 20_000

    @classmethod
    def from_mb(cls, max_file_mb: int, max_total_mb: int, max_files: int) -> ResultLimits:
        """The limits as kojid.conf gives them ([adjutant] result_max_*)."""
        return cls(max_file_bytes=max_file_mb * MiB, max_total_bytes=max_total_mb * MiB, max_files=max_files)

    @property
    def spool_bytes(self) -> int:
        """Most bytes a phase's stdout may hold: a tar stream within these limits with all its
        framing, and the status line. More than that cannot be a valid result."""
        return self.max_total_bytes + self.max_files * _MEMBER_OVERHEAD + _STREAM_SLACK


def _size(count: int) -> str:
    for unit, name in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB")):
        if count >= unit:
            return f"{count / unit:.1f} {name}"
    return f"{count} bytes"


def _too_large(what: str, limit: str, option: str) -> ResultTooLargeError:
    return ResultTooLargeError(
        f"{what}; the limit is {limit}",
        hint=f"if the package really makes that much, raise {option} in [adjutant] of kojid.conf")


def _metadata_too_large(size: int) -> str:
    return f"has a tar header of {_size(size)}; the limit is {_size(_MAX_METADATA_BYTES)}"


class _Tally:
    """Members and bytes of files held to the limits, counted alike on the stream as it arrives
    (_HeaderWatch) and while extracting (_plan), so both refuse in the same words."""

    def __init__(self, limits: ResultLimits, origin: str):
        self.limits = limits
        self.origin = origin
        self.members = 0
        self.total = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise _too_large(f"{self.origin} sent more than {self.limits.max_files} files and directories",
                             str(self.limits.max_files), "result_max_files")

    def file(self, name: str, size: int) -> None:
        if size > self.limits.max_file_bytes:
            raise _too_large(f"{name!r} from {self.origin} has {_size(size)}",
                             _size(self.limits.max_file_bytes), "result_max_file_mb")
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise _too_large(f"{self.origin} sent more than {_size(self.limits.max_total_bytes)} of files "
                             f"(at {name!r})", _size(self.limits.max_total_bytes), "result_max_total_mb")


def _padded(size: int) -> int:
    """The bytes ``size`` bytes of member data take in a tar stream: whole blocks."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """The records of a pax header's data ("LEN key=value\n" each, LEN counting the whole record);
    ValueError if it is not made of them."""
    records = {}
    pos = 0
    while pos < len(data) and data[pos]:
        space = data.index(b" ", pos)
        end = pos + int(data[pos:space]) - 1
        if not space < end < len(data) or data[end] != ord("\n"):
            raise ValueError("not a pax record")
        key, _, value = data[space + 1:end].partition(b"=")
        records[key] = value
        pos = end + 1
    return records


class _HeaderWatch:
    """Follows the tar framing of a phase's output as it arrives, to refuse at the first header over
    the limits rather than after the whole stream.

    extract_untrusted checks every header, but only once the stream is spooled: a
    1 TiB sparse file among the results, a few blocks on the build's disk, makes
    tar send 1 TiB of zeros, and the spool would take its whole bound of them
    first. Here each header is read as soon as its 512 bytes are in, by tarfile's
    own parser, so sizes (octal or base-256), names and framing are the ones
    extraction will see; member data is skipped by offset. Memory stays bounded:
    one header, or the data of one long-name or pax member up to
    _MAX_METADATA_BYTES. What makes no sense here (a bad checksum, a malformed pax
    record) ends the watch without refusing: extraction refuses it and says why.
    So does the end-of-archive block, after which come padding and the status line.
    """

    def __init__(self, limits: ResultLimits, origin: str):
        self.tally = _Tally(limits, origin)
        self.seen = 0                  # bytes fed so far
        self.start = 0                 # offset of the unit gathered: a header, or a metadata member's data
        self.want = tarfile.BLOCKSIZE  # its length
        self.unit = bytearray()
        self.metadata: tarfile.TarInfo | None = None  # the header of the metadata being gathered
        self.name: str | None = None   # the next member's name from a long-name or pax member
        self.size: int | None = None   # its size from a pax member
        self.ended = False

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream; ResultTooLargeError at a header over the limits."""
        seen, self.seen = self.seen, self.seen + len(data)
        while not self.ended:
            index = self.start + len(self.unit) - seen
            self.unit += data[index:index + self.want - len(self.unit)]
            if len(self.unit) < self.want:
                return
            unit, self.unit = bytes(self.unit), bytearray()
            try:
                self._take(unit)
            except (tarfile.HeaderError, ValueError):  # the end of the archive, or for extraction to judge
                self.ended = True

    def _take(self, unit: bytes) -> None:
        if self.metadata is not None:
            self._take_metadata(unit)
            return
        header = tarfile.TarInfo.frombuf(unit, "utf-8", "surrogateescape")
        if header.size < 0:
            raise ValueError("negative size")
        self.start += tarfile.BLOCKSIZE
        if header.type in _METADATA_TYPES:
            if header.size > _MAX_METADATA_BYTES:
                raise ResultTooLargeError(
                    f"{header.name!r} from {self.tally.origin} {_metadata_too_large(header.size)}",
                    hint="tar makes no long name or pax header that large; the build wrote to its output")
            self.metadata, self.want = header, header.size
            return
        self.tally.member()
        name = self.name or header.name
        size = header.size if self.size is None else self.size
        self.name = self.size = None
        if header.isreg() or header.type not in tarfile.SUPPORTED_TYPES:  # tarfile's rule for data following
            self.tally.file(name, size)
            self.start += _padded(size)

    def _take_metadata(self, data: bytes) -> None:
        header, self.metadata = self.metadata, None
        assert header is not None, "metadata data comes only after its header"
        self.start += _padded(len(data))
        self.want = tarfile.BLOCKSIZE
        if header.type == tarfile.GNUTYPE_LONGNAME:
            self.name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif header.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
            records = _pax_records(data)
            if b"path" in records:
                self.name = records[b"path"].decode("utf-8", "surrogateescape")
            if b"size" in records:
                self.size = int(records[b"size"])
                if self.size < 0:
                    raise ValueError("negative size")


class ResultSpool:
    """A temporary file a phase's stdout is written into, bounded by ``limits``.

    A container printing without end to stdout must not fill the worker's disk:
    the write that would pass ``limits.spool_bytes``, or that completes a tar
    header over ``limits`` (see _HeaderWatch), raises ResultTooLargeError and
    empties the file; later writes are dropped, and ``overflowed`` stays True so
    the caller, which should kill the container, can tell why the output ended.
    """

    def __init__(self, limits: ResultLimits, origin: str):
        self.limit = limits.spool_bytes
        self.origin = origin
        self.size = 0
        self.overflowed = False
        self.file: BinaryIO = tempfile.TemporaryFile(prefix="adjutant-results-")
        self._watch = _HeaderWatch(limits, origin)

    def write(self, data: bytes) -> None:
        if self.overflowed:
            return
        try:
            if self.size + len(data) > self.limit:
                raise ResultTooLargeError(
                    f"{self.origin} sent more than {_size(self.limit)} on its output, "
                    "more than results within the limits can take; the rest was dropped",
                    hint="if the build really returns that much, raise result_max_total_mb or result_max_files "
                         "in [adjutant] of kojid.conf; otherwise the build wrote to its output without end")
            self._watch.feed(data)
        except ResultTooLargeError:
            self.overflowed = True
            self.file.truncate(0)
            raise
        self.file.write(data)
        self.size += len(data)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ResultSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Unsafe(Exception):
    """A header refused inside tarfile's parsing, which does not know the origin; (name, what is wrong)."""


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses, before tarfile acts on them, the headers that make it read unbounded data into memory.

    tarfile reads a long-name or pax header's whole data at once, and a GNU sparse
    map block by block until its end; a forged size or count would make that the
    whole stream. ``_proc_member`` is tarfile's documented hook for subclasses; the
    sparse 1.0 map is read in ``_proc_gnusparse_10``, so that is refused there.
    """

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _METADATA_TYPES and self.size > _MAX_METADATA_BYTES:
            raise _Unsafe(self.name, _metadata_too_large(self.size))
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _Unsafe(self.name, _SPARSE)
        # tarfile's private hook is the one place a member is seen before its data is read
        return super()._proc_member(tar)  # type: ignore[misc]

    def _proc_gnusparse_10(self, next: tarfile.TarInfo, pax_headers: dict, tar: tarfile.TarFile) -> None:
        raise _Unsafe(pax_headers.get("GNU.sparse.name", next.name), _SPARSE)


def _refused(name: str, origin: str, what: str) -> ResultRefusedError:
    return ResultRefusedError(f"{name!r} from {origin} {what}", hint=_HINT_KINDS)


def _check_compression(archive: BinaryIO, origin: str) -> None:
    start = archive.tell()
    head = archive.read(6)
    archive.seek(start)
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            raise ResultRefusedError(f"what came out of {origin} is {kind}-compressed, not a plain tar stream",
                                     hint="the phase script sends plain tar: something else wrote to its output")


def _relative(member: tarfile.TarInfo, origin: str) -> PurePosixPath:
    """The member's path below the target, if it is a regular file or a directory there."""
    if member.issparse():
        raise _refused(member.name, origin, _SPARSE)
    if not (member.isreg() or member.isdir()):
        kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
        raise _refused(member.name, origin, f"is {kind}, not a regular file or directory")
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise _refused(member.name, origin, "points outside the target")
    return path


def _plan(tar: tarfile.TarFile, origin: str, limits: ResultLimits
          ) -> tuple[dict[PurePosixPath, tarfile.TarInfo], list[PurePosixPath]]:
    """Every header checked, before anything is written: the files to write, the directories to make
    (parents first).

    Headers are checked as they are read, so a stream of endless members or a
    forged size is refused at the first header past a limit.
    """
    files: dict[PurePosixPath, tarfile.TarInfo] = {}
    dirs = {PurePosixPath(".")}
    tally = _Tally(limits, origin)
    for member in tar:
        tally.member()
        path = _relative(member, origin)
        dirs.update(path.parents)
        if member.isdir():
            dirs.add(path)
            continue
        tally.file(member.name, member.size)
        if path in files:
            raise _refused(member.name, origin, "appears twice")
        files[path] = member
    both = dirs & files.keys()
    if both:
        raise _refused(str(min(both)), origin, "is both a file and a directory")
    dirs.discard(PurePosixPath("."))
    return files, sorted(dirs, key=lambda d: len(d.parts))


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, origin: str) -> None:
    """Copy one member, never more bytes than its header (which the plan held to the limits) says.

    tarfile yields exactly that size; counting here makes sure of it whatever
    tarfile does. The file gets the time it arrived, not the one the stream claims.
    """
    source = tar.extractfile(member)
    assert source is not None, "only regular files are copied"
    written = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "wb") as target:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > member.size:
                raise _refused(member.name, origin, f"holds more than the {_size(member.size)} its header says")
            target.write(chunk)
        os.fchmod(target.fileno(), 0o755 if member.mode & 0o111 else 0o644)


def extract_untrusted(archive: BinaryIO, target_dir: Path, origin: str,
                      limits: ResultLimits = ResultLimits()) -> None:
    """Unpack the plain tar stream ``archive`` into the empty ``target_dir``, or refuse it whole.

    Regular files and directories only, inside ``target_dir``, within ``limits``;
    anything else (compression, links, devices, fifos, sparse files, absolute or
    '..' names, a name twice) raises ResultRefusedError, a breached limit
    ResultTooLargeError, before anything is written. Files arrive owned by the
    worker, 0644, or 0755 when any execute bit was set; directories 0755; no
    set-id or sticky bits. ``origin`` names the source in messages. On an error
    ``target_dir`` may hold part of the results; the caller removes it.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    if any(target_dir.iterdir()):
        raise ValueError(f"{target_dir} must be empty: nothing but the results may be in it")
    _check_compression(archive, origin)
    try:
        with tarfile.open(fileobj=archive, mode="r:", tarinfo=_GuardedTarInfo) as tar:
            files, dirs = _plan(tar, origin, limits)
            for directory in dirs:
                (target_dir / directory).mkdir()
                (target_dir / directory).chmod(0o755)
            for path, member in files.items():
                _write_file(tar, member, target_dir / path, origin)
    except _Unsafe as exc:
        name, what = exc.args
        raise _refused(name, origin, what) from None
    except (tarfile.TarError, RecursionError) as exc:  # RecursionError: a chain of thousands of pax headers
        raise ContainerError(f"what came out of {origin} is not a readable tar archive: {exc}") from exc
    except OSError as exc:
        raise ContainerError(f"could not write what came out of {origin} into {target_dir}: {exc}") from exc
    log.debug("unpacked %d files and %d directories from %s", len(files), len(dirs), origin)
