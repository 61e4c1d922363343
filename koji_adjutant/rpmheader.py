"""The one reader of RPM headers, on rpm's own Python bindings.

Every RPM or SRPM this reads came from a user or out of a build container, so
it is untrusted: the lead and the header sizes are checked here before rpm
sees the file (so a hostile file cannot make it read a huge header), the
signatures are not verified (no keyring is trusted here; the hub checks
signatures where it matters), and the header's own digests still are, so a
damaged header is refused rather than half-read.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import rpm

from .errors import BuildError

log = logging.getLogger(__name__)

_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_LEAD_SIZE = 96
_LEAD_TYPE_SOURCE = 1
_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
_HEADER_INTRO = 16
_INDEX_ENTRY = 16

#: Far above any real package's signature or main header (rpm itself allows up to 256 MiB),
#: low enough that reading one is harmless.
MAX_HEADER_BYTES = 32 * 1024 * 1024


class RpmHeaderError(BuildError):
    """An RPM's header could not be read, or says the file is not what it should be."""

    hint = "rebuild the package with rpmbuild and upload it again"


@dataclass(frozen=True)
class RpmHeader:
    """The header values koji-adjutant's callers act on; unset strings are ''."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    is_source: bool
    packager: str
    vendor: str
    distribution: str
    buildarchs: tuple[str, ...] = ()
    exclusivearch: tuple[str, ...] = ()
    excludearch: tuple[str, ...] = ()

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    @property
    def srpm_name(self) -> str:
        """N-V-R.src.rpm: the only name the hub files a source RPM under."""
        return f"{self.nvr}.src.rpm"


@dataclass(frozen=True)
class _Layout:
    is_source: bool
    signature_end: int  # offset of the main header: lead + padded signature header


def _lead_is_source(path: Path, handle) -> bool:
    lead = handle.read(_LEAD_SIZE)
    if len(lead) < _LEAD_SIZE or not lead.startswith(_LEAD_MAGIC):
        raise RpmHeaderError(f"{path} is not an RPM file", hint="give the path of an SRPM (*.src.rpm) or a spec")
    (lead_type,) = struct.unpack(">H", lead[6:8])
    return lead_type == _LEAD_TYPE_SOURCE


def _check_is_file(path: Path) -> None:
    if not path.is_file():
        raise RpmHeaderError(f"{path} does not exist or is not a file", hint="give the path of an SRPM or a spec")


def check_srpm_lead(path: Path) -> None:
    """Refuse what does not start like a source RPM, reading only its 96-byte lead.

    This is the cheap check made before any container exists; a corrupt
    payload is caught by rpm's digest check when the SRPM is unpacked.
    """
    path = Path(path)
    _check_is_file(path)
    with open(path, "rb") as handle:
        if not _lead_is_source(path, handle):
            raise RpmHeaderError(f"{path} is a binary RPM, not a source RPM",
                                 hint="give the .src.rpm the package was built from")


def _read_layout(path: Path, handle) -> _Layout:
    """The lead and signature header sizes, checked before rpm reads anything."""
    is_source = _lead_is_source(path, handle)
    signature_size = _header_size(path, handle.read(_HEADER_INTRO), "signature header")
    padded = signature_size + (-signature_size % 8)
    handle.seek(_LEAD_SIZE + padded)
    _header_size(path, handle.read(_HEADER_INTRO), "header")
    return _Layout(is_source=is_source, signature_end=_LEAD_SIZE + padded)


def _header_size(path: Path, intro: bytes, what: str) -> int:
    if len(intro) < _HEADER_INTRO or not intro.startswith(_HEADER_MAGIC):
        raise RpmHeaderError(f"{path.name}: the {what} is missing or damaged: the file is corrupt or not an SRPM",
                             hint="the file may be truncated; upload it again or rebuild it")
    entries, data = struct.unpack(">II", intro[8:16])
    size = _HEADER_INTRO + entries * _INDEX_ENTRY + data
    if size > MAX_HEADER_BYTES:
        raise RpmHeaderError(f"{path.name}: its {what} claims {size} bytes, over the limit of {MAX_HEADER_BYTES}",
                             hint="no real package has such a header; the file is corrupt or hostile")
    return size


def _text(header, tag) -> str:
    value = header[tag]
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _words(header, tag) -> tuple[str, ...]:
    return tuple(str(v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for v in header[tag] or ())


def read_header(path: Path) -> RpmHeader:
    """The header of the RPM at ``path``; RpmHeaderError says what is wrong with it otherwise."""
    path = Path(path)
    _check_is_file(path)
    with open(path, "rb") as handle:
        layout = _read_layout(path, handle)
        handle.seek(0)
        transaction = rpm.TransactionSet()
        # Untrusted input: no keyring to check signatures against, but the header digests are checked.
        transaction.setVSFlags(rpm._RPMVSF_NOSIGNATURES)
        try:
            header = transaction.hdrFromFdno(handle.fileno())
        except rpm.error as error:
            raise RpmHeaderError(f"could not read the header of {path.name} ({error}): "
                                 f"the file is corrupt or not an SRPM",
                                 hint="the file may be truncated; upload it again or rebuild it") from None
    # SIGSIZE is what the signature says follows it (main header and payload): fewer bytes is truncation.
    expected = layout.signature_end + (header[rpm.RPMTAG_LONGSIGSIZE] or header[rpm.RPMTAG_SIGSIZE] or 0)
    actual = os.stat(path).st_size
    if actual < expected:
        raise RpmHeaderError(f"{path.name} is {actual} bytes but its header says {expected}: "
                             "the file is truncated, corrupt or not an SRPM",
                             hint="upload it again or rebuild it")
    epoch = header[rpm.RPMTAG_EPOCH]
    return RpmHeader(
        name=_text(header, rpm.RPMTAG_NAME), version=_text(header, rpm.RPMTAG_VERSION),
        release=_text(header, rpm.RPMTAG_RELEASE), epoch=None if epoch is None else int(epoch),
        arch=_text(header, rpm.RPMTAG_ARCH), is_source=layout.is_source and header.isSource(),
        packager=_text(header, rpm.RPMTAG_PACKAGER), vendor=_text(header, rpm.RPMTAG_VENDOR),
        distribution=_text(header, rpm.RPMTAG_DISTRIBUTION),
        buildarchs=_words(header, rpm.RPMTAG_BUILDARCHS), exclusivearch=_words(header, rpm.RPMTAG_EXCLUSIVEARCH),
        excludearch=_words(header, rpm.RPMTAG_EXCLUDEARCH))


def read_srpm_header(path: Path) -> RpmHeader:
    """The header of a source RPM; a binary RPM is refused, as kojid refuses it as build input."""
    header = read_header(path)
    if not header.is_source:
        raise RpmHeaderError(f"{path} is a binary RPM, not a source RPM",
                             hint="give the .src.rpm the package was built from")
    return header
