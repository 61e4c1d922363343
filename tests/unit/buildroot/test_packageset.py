"""Package sets read as a stream: the digest the ElementTree code made, any chunking, clear failures within
bounds, and remembered only for repos that never change. HTTP through a real server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import createrepo_c as cr
import pytest
import zstandard

from koji_adjutant.buildroot import cachekey, packageset
from koji_adjutant.buildroot.packageset import _PkgidScanner, read_package_set, repo_package_set
from koji_adjutant.buildroot.spec import BuildrootSpec, RepoSource
from koji_adjutant.envstore.store import EnvironmentStore
from koji_adjutant.errors import BuildrootError
from tests import benchscripts

COMMON = "http://linux.duke.edu/metadata/common"
PKGIDS = [f"{i:064x}" for i in (3, 1, 2)]


def primary_xml(pkgids: list[str], quote: str = '"') -> bytes:
    packages = "".join(
        f'<package type="rpm">\n  <name>p{i}</name>\n'
        f'  <checksum type="sha256" pkgid={quote}YES{quote}>{pkgid}</checksum>\n</package>\n'
        for i, pkgid in enumerate(pkgids))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="{COMMON}" '
            f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(pkgids)}">\n{packages}</metadata>\n'
            ).encode()


def write_repomd(directory: Path, href: str, checksum: str | None, open_size: int | None = None) -> None:
    extra = f'<checksum type="sha256">{checksum}</checksum>' if checksum is not None else ""
    extra += f"<open-size>{open_size}</open-size>" if open_size is not None else ""
    (directory / "repodata").mkdir(parents=True, exist_ok=True)
    (directory / "repodata" / "repomd.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">'
        f'<data type="other"><location href="repodata/other.xml.gz"/></data>'
        f'<data type="primary">{extra}<location href="{href}"/></data></repomd>\n')


def write_repo(directory: Path, primary: bytes, name: str = "primary.xml.gz", open_size: int | None = None) -> Path:
    """A repo whose primary is ``primary`` as given (compressed or not), repomd's checksum right."""
    write_repomd(directory, f"repodata/{name}", hashlib.sha256(primary).hexdigest(), open_size)
    (directory / "repodata" / name).write_bytes(primary)
    return directory


def digest_of(pkgids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(pkgids)).encode()).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


class ShortBodyHandler(QuietHandler):
    """Promises more bytes of a .gz file than it sends, then closes the connection."""

    def do_GET(self) -> None:
        if not self.path.endswith(".gz"):
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])


def _serve(directory: Path, handler=QuietHandler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def serve():
    servers = []

    def start(directory: Path, handler=QuietHandler) -> str:
        server, url = _serve(directory, handler)
        servers.append(server)
        return url
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A synthetic repo of bench/make_repo_metadata.py, Fedora's shape (createrepo_c's writer)."""
    directory = tmp_path_factory.mktemp("generated")
    benchscripts.load("make_repo_metadata").write_repo(directory, packages=300, seed=2)
    return directory


# -- the digest ---------------------------------------------------------------------------

def test_the_package_set_is_sha256_of_the_sorted_pkgids_one_a_line(tmp_path):
    repo = write_repo(tmp_path, gzip.compress(primary_xml(PKGIDS)))
    assert read_package_set(RepoSource("r", str(repo))) == hashlib.sha256(
        f"{PKGIDS[1]}\n{PKGIDS[2]}\n{PKGIDS[0]}".encode()).hexdigest()


def test_a_generated_repo_gives_the_digest_of_the_elementtree_code_locally_and_over_http(generated, serve):
    location = serve(generated)
    before = benchscripts.load("repo_key").elementtree_package_set(location)
    assert read_package_set(RepoSource("r", str(generated))) == before
    assert read_package_set(RepoSource("r", location)) == before
    assert read_package_set(RepoSource("r", f"file://{generated}")) == before


def test_the_digest_is_of_the_pkgids_createrepo_c_reads(generated):
    pkgids: list[str] = []
    primary = next((generated / "repodata").glob("*-primary.xml.gz"))
    cr.xml_parse_primary(str(primary), pkgcb=lambda pkg: pkgids.append(pkg.pkgId), do_files=False)
    assert len(pkgids) == 300
    assert read_package_set(RepoSource("r", str(generated))) == digest_of(pkgids)


def test_an_uncompressed_primary_reads_the_same(tmp_path):
    repo = write_repo(tmp_path, primary_xml(PKGIDS, quote="'"), name="primary.xml")
    assert read_package_set(RepoSource("r", str(repo))) == digest_of(PKGIDS)


def test_a_gzip_of_several_members_is_one_stream(tmp_path):
    data = primary_xml(PKGIDS)
    repo = write_repo(tmp_path, gzip.compress(data[:100]) + gzip.compress(data[100:]))
    assert read_package_set(RepoSource("r", str(repo))) == digest_of(PKGIDS)


@pytest.mark.parametrize("chunk, step", [(1, 1), (7, 13), (64, 5), (4093, 100000)])
def test_any_read_and_decompression_sizes_give_the_same_digest(generated, mocker, chunk, step):
    expected = read_package_set(RepoSource("r", str(generated)))
    mocker.patch.object(packageset, "CHUNK_BYTES", chunk)
    mocker.patch.object(packageset, "STEP_BYTES", step)
    assert read_package_set(RepoSource("r", str(generated))) == expected


# -- the scanner --------------------------------------------------------------------------

DOCUMENT = (
    f'<metadata xmlns="{COMMON}">'
    '<package><checksum type="sha256" pkgid="YES">aa11</checksum></package>'
    "<package><checksum pkgid='YES' type='sha1'>bb22</checksum></package>"
    '<package><checksum\n  type="sha256"\tpkgid = "YES" >cc33</checksum></package>'
    '<package><checksum type="sha256" pkgid="NO">not-this</checksum></package>'
    '<package><checksum type="sha256">nor-this</checksum><summary>checksum pkgid="YES"</summary></package>'
    '<package><checksum type="sha256" pkgid="YES"/><checksum type="md5" pkgid="YES">dd44</checksum></package>'
    '<package><checksum type="sha256" pkgid="YES"></checksum></package>'
    '<package><checksumx pkgid="YES">nor-that</checksumx></package>'
    "</metadata>").encode()


def _elementtree_pkgids(document: bytes) -> list[bytes]:
    return [(c.text or "").encode() for c in ET.fromstring(document).iter(f"{{{COMMON}}}checksum")
            if c.get("pkgid") == "YES"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 16, 61, len(DOCUMENT)])
def test_the_scanner_finds_what_elementtree_finds_however_the_document_is_split(size):
    scanner = _PkgidScanner()
    for start in range(0, len(DOCUMENT), size):
        scanner.feed(DOCUMENT[start:start + size])
    assert scanner.pkgids == _elementtree_pkgids(DOCUMENT) == [b"aa11", b"bb22", b"cc33", b"", b"dd44", b""]


def test_the_scanner_keeps_only_a_short_tail_between_pieces():
    scanner = _PkgidScanner()
    scanner.feed(b"<description>" + b"x" * 100000)
    assert len(scanner._tail) == 0
    scanner.feed(b"</description><checksum pkgid='YES'>abc")
    scanner.feed(b"def</checksum>")
    assert scanner.pkgids == [b"abcdef"]


# -- failures -----------------------------------------------------------------------------

def _fails(repo: RepoSource, *words: str, limit: int | None = None) -> BuildrootError:
    with pytest.raises(BuildrootError) as raised:
        read_package_set(repo) if limit is None else read_package_set(repo, limit=limit)
    message = str(raised.value)
    assert f"cannot read the package list of repo {repo.location}" in message
    for word in words:
        assert word in message
    return raised.value


def test_a_corrupt_gzip_fails_clearly(tmp_path):
    data = bytearray(gzip.compress(primary_xml(PKGIDS * 50)))
    data[len(data) // 2:len(data) // 2 + 8] = b"\xff" * 8
    repo = write_repo(tmp_path, bytes(data))   # repomd's checksum is of the corrupt file: gzip's own check fails
    _fails(RepoSource("r", str(repo)), "repodata/primary.xml.gz is not valid gzip")


@pytest.mark.parametrize("local", [True, False])
def test_a_truncated_gzip_fails_clearly(tmp_path, serve, local):
    data = gzip.compress(primary_xml(PKGIDS * 50))
    repo = write_repo(tmp_path, data[:len(data) // 2])
    _fails(RepoSource("r", str(repo) if local else serve(repo)), "truncated")


def test_a_download_cut_short_is_not_taken_for_the_whole(tmp_path, serve):
    # http.client reads a body shorter than its Content-Length as a clean end: the checks catch it
    repo = write_repo(tmp_path, gzip.compress(primary_xml(PKGIDS * 50)))
    _fails(RepoSource("r", serve(repo, ShortBodyHandler)), "truncated")


def test_a_primary_that_is_not_the_one_repomd_describes_fails(tmp_path):
    repo = write_repo(tmp_path, gzip.compress(primary_xml(PKGIDS)))
    (repo / "repodata" / "primary.xml.gz").write_bytes(gzip.compress(primary_xml(PKGIDS[:2])))
    _fails(RepoSource("r", str(repo)), "does not match the sha256 checksum repomd.xml gives")


def test_without_a_checksum_in_repomd_the_primary_is_read_unchecked(tmp_path):
    write_repomd(tmp_path, "repodata/primary.xml.gz", checksum=None)
    (tmp_path / "repodata" / "primary.xml.gz").write_bytes(gzip.compress(primary_xml(PKGIDS)))
    assert read_package_set(RepoSource("r", str(tmp_path))) == digest_of(PKGIDS)


@pytest.mark.parametrize("local", [True, False])
def test_a_missing_primary_fails_naming_it(tmp_path, serve, local):
    write_repomd(tmp_path, "repodata/abc-primary.xml.gz", checksum="0" * 64)
    error = _fails(RepoSource("r", str(tmp_path) if local else serve(tmp_path)), "abc-primary.xml.gz")
    assert local or "404" in str(error)


def test_a_directory_that_is_no_repo_fails(tmp_path, serve):
    _fails(RepoSource("r", str(tmp_path)), "repomd.xml")
    _fails(RepoSource("r", serve(tmp_path)), "repodata/repomd.xml", "404")


def test_a_repomd_without_primary_fails(tmp_path):
    (tmp_path / "repodata").mkdir()
    (tmp_path / "repodata" / "repomd.xml").write_text('<repomd xmlns="http://linux.duke.edu/metadata/repo"/>')
    _fails(RepoSource("r", str(tmp_path)), "lists no primary metadata")


def test_zstd_metadata_as_createrepo_c_1_writes_it_by_default(tmp_path):
    gz = write_repo(tmp_path / "gz", gzip.compress(primary_xml(PKGIDS)))
    zst = write_repo(tmp_path / "zst", zstandard.ZstdCompressor().compress(primary_xml(PKGIDS)), name="primary.xml.zst")
    assert read_package_set(RepoSource("r", str(zst))) == read_package_set(RepoSource("r", str(gz)))


def test_zstd_that_is_not_fails_naming_it(tmp_path):
    repo = write_repo(tmp_path, b"(not zstd bytes)", name="primary.xml.zst")
    _fails(RepoSource("r", str(repo)), "primary.xml.zst is not valid zstd")


def test_a_zstd_bomb_is_read_in_bounded_steps_and_stops_at_the_cap(tmp_path, mocker):
    mocker.patch.object(packageset, "STEP_BYTES", 4096)
    bomb = zstandard.ZstdCompressor().compress(primary_xml(PKGIDS) + b" " * 10 ** 6)
    repo = write_repo(tmp_path, bomb, name="primary.xml.zst", open_size=10)
    _fails(RepoSource("r", str(repo)), "more than the 100000 bytes koji-adjutant reads, decompressed", limit=100_000)


def test_an_unreadable_compression_fails_naming_it(tmp_path):
    repo = write_repo(tmp_path, b"(xz bytes)", name="primary.xml.xz")
    _fails(RepoSource("r", str(repo)), "primary.xml.xz is compressed in a way koji-adjutant cannot read")


# -- the size cap -------------------------------------------------------------------------

def test_a_primary_declared_larger_than_the_cap_is_not_read_at_all(tmp_path):
    write_repomd(tmp_path, "repodata/never-fetched.xml.gz", checksum="0" * 64, open_size=10 ** 6)
    _fails(RepoSource("r", str(tmp_path)), "1000000 bytes decompressed", limit=1000)


def test_decompressing_stops_at_the_cap_whatever_repomd_declares(tmp_path, mocker):
    mocker.patch.object(packageset, "STEP_BYTES", 4096)
    bomb = gzip.compress(primary_xml(PKGIDS) + b" " * 10 ** 6)   # compresses 1000x
    repo = write_repo(tmp_path, bomb, open_size=10)
    _fails(RepoSource("r", str(repo)), "is more than the 100000 bytes koji-adjutant reads, decompressed",
           limit=100000)


def test_reading_stops_at_the_cap(tmp_path):
    repo = write_repo(tmp_path, primary_xml(PKGIDS * 100), name="primary.xml")
    _fails(RepoSource("r", str(repo)), "is larger than the 5000 bytes koji-adjutant reads", limit=5000)


# -- remembered for immutable repos only --------------------------------------------------

@pytest.fixture
def store(tmp_path) -> EnvironmentStore:
    return EnvironmentStore(tmp_path / "state" / "environments.sqlite")


def test_an_immutable_repos_package_set_is_read_once_then_remembered(tmp_path, serve, store):
    location = serve(write_repo(tmp_path / "repo", gzip.compress(primary_xml(PKGIDS))))
    repo = RepoSource("koji-7", location, immutable=True)
    assert repo_package_set(repo, store) == digest_of(PKGIDS)
    assert store.package_set(f"koji-7 {location}") == digest_of(PKGIDS)
    (tmp_path / "repo" / "repodata" / "primary.xml.gz").unlink()   # no longer readable: only the memo answers
    assert repo_package_set(repo, store) == digest_of(PKGIDS)


def test_the_same_id_at_another_location_is_another_repo(tmp_path, store):
    first = write_repo(tmp_path / "a", gzip.compress(primary_xml(PKGIDS)))
    second = write_repo(tmp_path / "b", gzip.compress(primary_xml(PKGIDS[:1])))
    assert repo_package_set(RepoSource("koji-7", str(first), immutable=True), store) == digest_of(PKGIDS)
    assert repo_package_set(RepoSource("koji-7", str(second), immutable=True), store) == digest_of(PKGIDS[:1])


def test_a_repo_that_may_change_is_read_every_time_and_never_remembered(tmp_path, store, mocker):
    repo_dir = write_repo(tmp_path / "repo", gzip.compress(primary_xml(PKGIDS)))
    repo = RepoSource("local", str(repo_dir))
    spy = mocker.patch.object(store, "remember_package_set", wraps=store.remember_package_set)
    lookup = mocker.patch.object(store, "package_set", wraps=store.package_set)
    assert repo_package_set(repo, store) == digest_of(PKGIDS)
    write_repo(repo_dir, gzip.compress(primary_xml(PKGIDS[:2])))   # createrepo_c run again in place
    assert repo_package_set(repo, store) == digest_of(PKGIDS[:2])
    assert not spy.called and not lookup.called


def test_without_a_memo_an_immutable_repo_is_read_every_time(tmp_path):
    repo_dir = write_repo(tmp_path, gzip.compress(primary_xml(PKGIDS)))
    repo = RepoSource("koji-7", str(repo_dir), immutable=True)
    assert repo_package_set(repo) == digest_of(PKGIDS)
    write_repo(repo_dir, gzip.compress(primary_xml(PKGIDS[:2])))
    assert repo_package_set(repo) == digest_of(PKGIDS[:2])


def test_the_group_inputs_take_the_memo_for_the_immutable_repos_only(tmp_path, mocker):
    local = write_repo(tmp_path, gzip.compress(primary_xml(PKGIDS)))
    memo = mocker.Mock(spec=["package_set", "remember_package_set"])
    memo.package_set.return_value = "remembered"
    spec = BuildrootSpec(image="img", image_digest="sha256:1", arch="x86_64",
                         repos=(RepoSource("koji-7", "https://hub.example/repos/f41/7/x86_64", immutable=True),
                                RepoSource("local", str(local))))
    assert cachekey.group_inputs(spec, memo)["repos"] == ["remembered", digest_of(PKGIDS)]
    memo.package_set.assert_called_once_with("koji-7 https://hub.example/repos/f41/7/x86_64")
    assert not memo.remember_package_set.called


def test_the_provisioner_keys_the_group_layer_with_the_caches_memo(mocker, tmp_path):
    from koji_adjutant.buildroot.provision import Provisioner
    group_inputs = mocker.patch("koji_adjutant.buildroot.provision.group_inputs", return_value={"layer": "group"})
    cache = mocker.Mock()
    spec = BuildrootSpec(image="img", image_digest="sha256:1", arch="x86_64", repos=(RepoSource("local", "/srv/r"),))
    Provisioner(mocker.Mock(), {}, mocker.Mock(), mocker.Mock(), cache).group(spec, tmp_path, mocker.Mock(),
                                                                              mocker.Mock())
    group_inputs.assert_called_once_with(spec, cache.store)


def test_without_a_cache_the_provisioner_keys_with_no_memo(mocker, tmp_path):
    from koji_adjutant.buildroot.provision import Provisioner
    group_inputs = mocker.patch("koji_adjutant.buildroot.provision.group_inputs", return_value={"layer": "group"})
    mocker.patch.object(Provisioner, "_make", return_value=([], mocker.Mock()))
    spec = BuildrootSpec(image="img", image_digest="sha256:1", arch="x86_64", repos=(RepoSource("local", "/srv/r"),))
    Provisioner(mocker.Mock(), {}, mocker.Mock(), mocker.Mock(), None).group(spec, tmp_path, mocker.Mock(),
                                                                             mocker.Mock())
    group_inputs.assert_called_once_with(spec, None)


@pytest.mark.parametrize("offline", [False, True])
def test_a_koji_repo_is_immutable_and_a_repo_is_not_by_default(offline):
    from koji_adjutant.tasks.buildroots import buildroot_spec
    options = SimpleNamespace(packager="Koji", vendor="Koji", distribution="Koji", mockhost="koji-linux-gnu",
                              topurl="https://hub.example/kojifiles", topdir="/mnt/koji", rpmbuild_timeout=3600,
                              adjutant=SimpleNamespace(offline=offline))
    spec = buildroot_spec(options, {"extra": {}}, {"id": 7, "tag_name": "f41-build"}, "x86_64", "x86_64",
                          SimpleNamespace(ref="img"), "sha256:1", "build")
    (repo,) = spec.repos
    assert repo.immutable and repo.repo_id == "koji-7"
    assert repo.location.startswith("/mnt/koji/repos/" if offline else "https://hub.example/kojifiles/repos/")
    assert not RepoSource("local", "/srv/repo").immutable
