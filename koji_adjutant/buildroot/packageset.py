"""The package set of a repo, read as a stream, and remembered for repos that never change.

The group layer's key (cachekey.py) takes each repo's package set: a digest of
the pkgids (the ``<checksum pkgid="YES">`` values) of its primary metadata,
sorted, so it does not change with the repo's id, URL or timestamps. A Fedora
repo has some 70,000 packages: its primary.xml.gz is 15-20 MB, well over 100
MB decompressed. Read whole and parsed with ElementTree, as it once was, that
took 12 s or more and 1.4 GB of memory on each build. Here it is decompressed chunk by
chunk as it is read (from the hub over http(s), or from a directory) and
scanned for the checksum elements, so memory stays near the pkgids themselves
and the time near that of decompressing alone (docs/performance.md, "Repo
metadata at Fedora scale"). The digest is the one the ElementTree code made,
so keys computed before stay valid.

Why not createrepo_c's own parser (``xml_parse_primary``, PyPI createrepo-c):
it is a whole SAX parse that builds every package. On the synthetic
70,000-package repo of bench/make_repo_metadata.py, served over HTTP, it took
3.5-6.1× the time of a pass that only downloads and decompresses the file,
and 2.1-4.5× even when its newpkgcb skipped every package (and so gave no
pkgid), where the goal is 2×; this scanner took 1.1-1.7× (bench/repo_key.py,
docs/performance.md). It also reads only files, so a download would first go
to disk. The scanner reads what createrepo writes, ``<checksum type=...
pkgid="YES">`` with either quote style, wherever the chunks happen to split it.

Primary metadata may be gzip (createrepo_c before 1.0, Debian's), zstd (the
default of createrepo_c 1.0 and later, so of a hub or builder on current
Fedora) or uncompressed; each is decompressed in bounded steps.

What is read must be what repomd.xml describes: the file's checksum is checked
when repomd.xml gives one (a Koji repo's package set is remembered for good, so
a corrupt download must not become its key), and no more than
MAX_METADATA_BYTES are read or decompressed, so a wrong or hostile repo fails
clearly instead of filling the memory or reading on without end.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import zstandard

from ..errors import BuildrootError
from ..repomd import REPO_NS, location_href
from .spec import RepoSource

log = logging.getLogger(__name__)

#: The most bytes of primary metadata read, compressed and decompressed alike.
MAX_METADATA_BYTES = 2 * 1024 ** 3
#: The most bytes of repomd.xml read (a real one is a few KB).
MAX_REPOMD_BYTES = 16 * 1024 ** 2
#: Read at a time.
CHUNK_BYTES = 1024 ** 2
#: Decompressed at a time, however well the data compresses (a gzip bomb stays in bounds).
STEP_BYTES = 8 * 1024 ** 2
#: Seconds to wait on the network.
TIMEOUT = 120

#: gzip, and only gzip (not a raw or zlib stream), for zlib.decompressobj.
_GZIP = 16 + zlib.MAX_WBITS
#: A checksum element's start tag and its text, up to the next tag.
_CHECKSUM = re.compile(rb"<checksum\s([^>]*)>([^<]*)(?=<)")
_PKGID = re.compile(rb"""\bpkgid\s*=\s*(["'])YES\1""")
#: A checksum element is some 120 bytes; an unfinished tag further back than this is no checksum.
_LONGEST_ELEMENT = 4096
#: repomd.xml's names of checksum types, where hashlib's differ.
_HASHLIB_NAMES = {"sha": "sha1"}


class PackageSetMemo(Protocol):
    """Where the package sets of repos that never change are remembered (the environment store)."""

    def package_set(self, repo: str) -> str | None: ...

    def remember_package_set(self, repo: str, package_set: str) -> None: ...


def repo_package_set(repo: RepoSource, memo: PackageSetMemo | None = None) -> str:
    """The repo's package set; read from ``memo`` and remembered there when the repo is immutable."""
    if memo is None or not repo.immutable:
        return read_package_set(repo)
    # Repo ids are per hub: the location (the hub's topurl, the tag, the arch) is part of the name.
    name = f"{repo.repo_id} {repo.location}"
    found = memo.package_set(name)
    if found is None:
        found = read_package_set(repo)
        memo.remember_package_set(name, found)
        log.info("remembered the package set of repo %s (%s)", repo.repo_id, repo.location)
    return found


def read_package_set(repo: RepoSource, limit: int = MAX_METADATA_BYTES) -> str:
    """A digest of the packages a repo offers: sha256 of its pkgids, sorted, one a line."""
    try:
        primary = _primary(repo, limit)
        with _opened(repo, primary.href) as stream:
            pkgids = _scan(stream, primary, limit)
    except (OSError, http.client.HTTPException, ValueError, ET.ParseError) as exc:
        raise BuildrootError(f"cannot read the package list of repo {repo.location}: {exc}",
                             hint="check that the repo's repodata is complete and reachable from this host") from exc
    return hashlib.sha256(b"\n".join(sorted(pkgids))).hexdigest()


@dataclass(frozen=True)
class _Primary:
    """The primary metadata's entry of repomd.xml."""

    href: str
    checksum_type: str | None
    checksum: str | None
    open_size: int | None


@contextmanager
def _opened(repo: RepoSource, relative: str) -> Iterator[BinaryIO]:
    if repo.is_local:
        with open(repo.local_path / relative, "rb") as stream:
            yield stream
    else:
        try:
            response = urllib.request.urlopen(f"{repo.location.rstrip('/')}/{relative}", timeout=TIMEOUT)
        except urllib.error.URLError as exc:
            raise OSError(f"{relative}: {exc}") from exc
        with response:
            yield response


def _primary(repo: RepoSource, limit: int) -> _Primary:
    with _opened(repo, "repodata/repomd.xml") as stream:
        data = stream.read(MAX_REPOMD_BYTES + 1)
    if len(data) > MAX_REPOMD_BYTES:
        raise ValueError(f"repodata/repomd.xml is larger than {MAX_REPOMD_BYTES} bytes")
    entry = next((d for d in ET.fromstring(data).findall(f"{REPO_NS}data") if d.get("type") == "primary"), None)
    if entry is None:
        raise ValueError("repodata/repomd.xml lists no primary metadata")
    checksum = entry.find(f"{REPO_NS}checksum")
    open_size = entry.findtext(f"{REPO_NS}open-size")
    primary = _Primary(href=location_href(entry),
                       checksum_type=checksum.get("type") if checksum is not None else None,
                       checksum=(checksum.text or "").strip().lower() if checksum is not None else None,
                       open_size=int(open_size) if open_size else None)
    if primary.open_size is not None and primary.open_size > limit:
        raise ValueError(f"its primary metadata is {primary.open_size} bytes decompressed, "
                         f"more than the {limit} koji-adjutant reads")
    return primary


def _scan(stream: BinaryIO, primary: _Primary, limit: int) -> list[bytes]:
    """The pkgids of the primary metadata in ``stream``, checked against repomd.xml's checksum."""
    digest = None
    if primary.checksum_type is not None:
        try:
            digest = hashlib.new(_HASHLIB_NAMES.get(primary.checksum_type, primary.checksum_type))
        except ValueError:
            raise ValueError(f"repomd.xml's checksum type {primary.checksum_type!r} is unknown") from None
    counted = _Counted(stream, primary.href, limit, digest)
    scanner = _PkgidScanner()
    decompressed = 0
    for data in _decompressed(counted, primary.href):
        decompressed += len(data)
        if decompressed > limit:
            raise ValueError(f"{primary.href} is more than the {limit} bytes koji-adjutant reads, decompressed")
        scanner.feed(data)
    if digest is not None and digest.hexdigest() != primary.checksum:
        raise ValueError(f"{primary.href} does not match the {primary.checksum_type} checksum repomd.xml gives "
                         "(changed while being read, or damaged)")
    return scanner.pkgids


class _Counted:
    """The file as read: at most ``limit`` bytes, each also fed to repomd.xml's checksum."""

    def __init__(self, stream: BinaryIO, name: str, limit: int, digest) -> None:
        self._stream, self._name, self._limit, self._digest = stream, name, limit, digest
        self._read = 0

    def read(self, size: int = CHUNK_BYTES) -> bytes:
        chunk = self._stream.read(size)
        self._read += len(chunk)
        if self._read > self._limit:
            raise ValueError(f"{self._name} is larger than the {self._limit} bytes koji-adjutant reads")
        if self._digest is not None:
            self._digest.update(chunk)
        return chunk


def _decompressed(counted: _Counted, name: str) -> Iterator[bytes]:
    """The file's content in pieces of at most STEP_BYTES: gzip (createrepo_c before 1.0),
    zstd (its default since) or none."""
    if name.endswith(".gz"):
        inflate = _Inflater(name)
        while chunk := counted.read(CHUNK_BYTES):
            yield from inflate.feed(chunk)
        if not inflate.complete:
            raise ValueError(f"{name} is truncated (its gzip stream does not end)")
    elif name.endswith(".zst"):
        reader = zstandard.ZstdDecompressor().stream_reader(counted,  # type: ignore[arg-type]  # read() is enough
                                                            read_size=CHUNK_BYTES, read_across_frames=True)
        try:
            while piece := reader.read(STEP_BYTES):
                yield piece
        except zstandard.ZstdError as exc:
            raise ValueError(f"{name} is not valid zstd: {exc}") from None
    elif name.endswith(".xml"):
        while chunk := counted.read(CHUNK_BYTES):
            yield chunk
    else:
        raise ValueError(f"{name} is compressed in a way koji-adjutant cannot read "
                         "(it reads gzip, zstd or uncompressed primary metadata)")


class _Inflater:
    """gzip decompressed piece by piece, no piece larger than STEP_BYTES; several members in a
    row are one stream, as gzip has them."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._decompressor = zlib.decompressobj(_GZIP)

    @property
    def complete(self) -> bool:
        return self._decompressor.eof

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._decompressor.eof:
                self._decompressor = zlib.decompressobj(_GZIP)
            try:
                piece = self._decompressor.decompress(data, STEP_BYTES)
            except zlib.error as exc:
                raise ValueError(f"{self._name} is not valid gzip: {exc}") from None
            yield piece
            if self._decompressor.eof:
                data = self._decompressor.unused_data
                if not data:
                    return
            else:
                # What zlib holds back when a step is full comes out with the next input; the
                # stream's end cannot be passed before it (gzip's trailer follows the data).
                data = self._decompressor.unconsumed_tail
                if not data:
                    return


class _PkgidScanner:
    """The values of ``<checksum ... pkgid="YES">`` elements in XML fed in pieces split anywhere."""

    def __init__(self) -> None:
        self.pkgids: list[bytes] = []
        self._tail = b""   # an element begun at the end of the last piece

    def feed(self, data: bytes) -> None:
        buffer = self._tail + data
        end = 0
        for match in _CHECKSUM.finditer(buffer):
            attributes, text = match.groups()
            if _PKGID.search(attributes):
                self.pkgids.append(b"" if attributes.endswith(b"/") else text)
            end = match.end()
        start = buffer.rfind(b"<", max(end, len(buffer) - _LONGEST_ELEMENT))
        self._tail = buffer[start:] if start >= 0 else b""
