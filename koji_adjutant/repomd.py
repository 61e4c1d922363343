"""Reading repomd.xml, the index of a repo's metadata files, as written by createrepo_c."""

from __future__ import annotations

import xml.etree.ElementTree as ET

#: The namespace of repomd.xml's elements.
REPO_NS = "{http://linux.duke.edu/metadata/repo}"


def location_href(data: ET.Element) -> str:
    """The file a ``<data>`` entry of repomd.xml points at, relative to the repo.

    Raises ET.ParseError when it names none: the file is not createrepo's output.
    """
    location = data.find(f"{REPO_NS}location")
    href = location.get("href") if location is not None else None
    if not href:
        raise ET.ParseError(f"repomd.xml entry {data.get('type')!r} has no location")
    return href
