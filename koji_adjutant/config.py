"""kojid.conf read into one typed, frozen Config.

The file is kojid's own: its ``[kojid]`` section takes exactly the options
kojid's ``get_options()`` takes (koji 1.35/1.36), with kojid's defaults and
types, so an existing kojid.conf loads unchanged. Like kojid, an unknown key
in ``[kojid]`` is refused rather than silently ignored. Options that only make
sense for mock (mockdir, mockuser, mock_bootstrap_image) or for task types
koji-adjutant does not handle are accepted and kept, but nothing reads them;
their field metadata says so.

Our own options live in an optional ``[adjutant]`` section (unknown keys are
refused there too). Note that real kojid refuses any section other than
``[kojid]``, so a file with ``[adjutant]`` is for koji-adjutant only.

Parsing is raw, as kojid's (``%`` is not interpolated, so
``host_principal_format = compile/%s@REALM`` works). Every problem is a
ConfigError on one line naming the file, the key and the value.
"""

from __future__ import annotations

import configparser
import dataclasses
import enum
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import configvalues as parsers
from .container.interface import ContainerRoot, Network, PullPolicy
from .container.limits import DEFAULT_PIDS_LIMIT, default_memory_limit_mb
from .defaults import DEV_IMAGE
from .errors import ConfigError

log = logging.getLogger(__name__)

#: Where kojid reads its configuration unless told otherwise.
DEFAULT_CONFIG_PATH = Path("/etc/kojid/kojid.conf")

#: kojid uses these files for cert/serverca when the options are unset and the file exists.
CERT_DEFAULTS = {"cert": "/etc/kojid/client.crt", "serverca": "/etc/kojid/serverca.crt"}

KOJID_SECTION = "kojid"
ADJUTANT_SECTION = "adjutant"

#: Shown instead of a secret's value.
MASK = "***"
#: Shown for an option that has no value.
UNSET = "(unset)"


# -- option declarations --------------------------------------------------------

def _option(default: Any = dataclasses.MISSING, *, parse: Callable[[str], Any],
            factory: Callable[[], Any] | None = None, secret: bool = False,
            ignored: str = "", doc: str = "") -> Any:
    """A field that is read from the file. ``ignored`` says why koji-adjutant never reads it."""
    metadata = {"parse": parse, "secret": secret, "ignored": ignored, "doc": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _derived(factory: Callable[[], Any]) -> Any:
    """A field computed by the loader, not a key of the file."""
    return field(default_factory=factory, metadata={"parse": None})


_MOCK_ONLY = "mock only: koji-adjutant builds in podman containers, not mock chroots"
_NOT_HANDLED = "used by task types koji-adjutant does not handle (image/maven builds)"
_CONTAINERS_GO = ("a build's containers go when it ends; a failed build's stays for failed_buildroot_lifetime "
                  "(see 'koji-adjutant enter')")


@dataclass(frozen=True)
class KojidOptions:
    """The [kojid] section: every option kojid's get_options() accepts, kojid's defaults."""

    # hub and login
    server: str | None = _option(None, parse=parsers.text, doc="hub XML-RPC URL (required)")
    topurl: str | None = _option(None, parse=parsers.text, doc="file URL of the hub (required); first of topurls")
    topurls: tuple[str, ...] = _derived(tuple)
    cert: str | None = _option(None, parse=parsers.text, doc=f"SSL client cert; {CERT_DEFAULTS['cert']} if it exists")
    serverca: str | None = _option(None, parse=parsers.text,
                                   doc=f"CA of the hub; {CERT_DEFAULTS['serverca']} if it exists")
    user: str | None = _option(None, parse=parsers.text)
    password: str | None = _option(None, parse=parsers.text, secret=True)
    krb_principal: str | None = _option(None, parse=parsers.text)
    host_principal_format: str = _option("compile/%s@EXAMPLE.COM", parse=parsers.principal_format,
                                         doc="Kerberos principal; %s is this host's fully qualified name")
    keytab: str = _option("/etc/kojid/kojid.keytab", parse=parsers.text)
    ccache: str = _option("/var/tmp/kojid.ccache", parse=parsers.text)
    retry_interval: int = _option(60, parse=parsers.integer)
    max_retries: int = _option(120, parse=parsers.integer)
    offline_retry: bool = _option(True, parse=parsers.boolean)
    offline_retry_interval: int = _option(120, parse=parsers.integer)
    timeout: int | None = _option(None, parse=parsers.integer)
    no_ssl_verify: bool = _option(False, parse=parsers.boolean)
    allow_noverifyssl: bool = _option(False, parse=parsers.boolean, ignored=_NOT_HANDLED)
    use_fast_upload: bool = _option(True, parse=parsers.boolean)

    # main loop
    sleeptime: int = _option(15, parse=parsers.integer)
    maxjobs: int = _option(10, parse=parsers.integer)
    minspace: int = _option(8192, parse=parsers.integer, doc="MB of free space needed")
    task_avail_delay: int = _option(300, parse=parsers.integer,
                                    ignored="kojid itself no longer reads it (koji 1.36 kojid, koji/daemon.py)")
    methods: str | None = _option(None, parse=parsers.text,
                                  ignored="koji 1.36's kojid has no such option; the methods handled are "
                                          "fixed (check-config lists them)")
    literal_task_arches: str = _option("", parse=parsers.text)

    # directories and plugins
    topdir: str = _option("/mnt/koji", parse=parsers.text)
    workdir: str = _option("/var/tmp/koji", parse=parsers.text)
    chroot_tmpdir: str = _option("/chroot_tmpdir", parse=parsers.text, ignored=_MOCK_ONLY)
    pluginpath: str = _option("/usr/lib/koji-builder-plugins", parse=parsers.text,
                              ignored="koji-adjutant loads no kojid plugins")
    plugin: tuple[str, ...] = _option((), parse=parsers.words, doc="read from 'plugin' or 'plugins'")

    # buildroots and builds
    packager: str = _option("Koji", parse=parsers.text)
    vendor: str = _option("Koji", parse=parsers.text)
    distribution: str = _option("Koji", parse=parsers.text)
    mockhost: str = _option("koji-linux-gnu", parse=parsers.text)
    rpmbuild_timeout: int = _option(86400, parse=parsers.integer)
    yum_proxy: str | None = _option(None, parse=parsers.text)
    support_rpm_source_layout: bool = _option(True, parse=parsers.boolean)
    build_arch_can_fail: bool = _option(False, parse=parsers.boolean)
    failed_buildroot_lifetime: int = _option(14400, parse=parsers.integer,
                                             doc="seconds the container of a failed rpmbuild is kept for "
                                                 "'koji-adjutant enter'; 0 (or less) keeps none")
    buildroot_basic_cleanup_delay: int = _option(120, parse=parsers.integer, ignored=_CONTAINERS_GO)
    buildroot_final_cleanup_delay: int = _option(86400, parse=parsers.integer, ignored=_CONTAINERS_GO)

    # SCM checkouts
    allowed_scms: str = _option("", parse=parsers.text)
    allowed_scms_use_config: bool = _option(True, parse=parsers.boolean)
    allowed_scms_use_policy: bool = _option(False, parse=parsers.boolean)
    allow_password_in_scm_url: bool = _option(False, parse=parsers.boolean)
    scm_credentials_dir: str | None = _option(None, parse=parsers.text,
                                              doc="refused: credentials never enter a container")

    # repositories
    use_createrepo_c: bool = _option(True, parse=parsers.boolean,
                                     ignored="koji-adjutant always uses createrepo_c")
    createrepo_skip_stat: bool = _option(True, parse=parsers.boolean)
    createrepo_update: bool = _option(True, parse=parsers.boolean)
    distrepo_skip_stat: bool = _option(False, parse=parsers.boolean)
    copy_old_repodata: bool = _option(False, parse=parsers.boolean,
                                      ignored="newRepo always runs createrepo_c for every arch (with --update "
                                              "from the previous repo when createrepo_update is on)")

    # mail and logging
    smtphost: str = _option("example.com", parse=parsers.text)
    smtp_user: str | None = _option(None, parse=parsers.text)
    smtp_pass: str | None = _option(None, parse=parsers.text, secret=True)
    from_addr: str = _option("Koji Build System <buildsys@example.com>", parse=parsers.text)
    admin_emails: str | None = _option(None, parse=parsers.text,
                                       doc="the worker's errors are mailed there, as kojid does (via localhost)")
    log_level: str | None = _option(None, parse=parsers.log_level)
    log_timestamps: bool = _option(False, parse=parsers.boolean,
                                   ignored="buildroot logs are uploaded as written; state.log carries the times")

    # accepted so an existing kojid.conf loads, never read by koji-adjutant
    mockdir: str = _option("/var/lib/mock", parse=parsers.text, ignored=_MOCK_ONLY)
    mockuser: str = _option("kojibuilder", parse=parsers.text, ignored=_MOCK_ONLY)
    mock_bootstrap_image: bool = _option(False, parse=parsers.boolean, ignored=_MOCK_ONLY)
    oz_install_timeout: int = _option(0, parse=parsers.integer, ignored=_NOT_HANDLED)
    maven_repo_ignore: str = _option(
        "*.md5 *.sha1 maven-metadata*.xml _maven.repositories _remote.repositories "
        "resolver-status.properties *.lastUpdated", parse=parsers.text, ignored=_NOT_HANDLED)
    xz_options: str = _option("-z6T0", parse=parsers.text, ignored=_NOT_HANDLED)
    pkgurl: str | None = _option(None, parse=parsers.text, ignored="obsolete, kojid ignores it too")

    #: RLIMIT_* keys (any case), as kojid's koji.util.setup_rlimits takes them: SOFT [HARD].
    rlimits: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}),
                                                   hash=False, metadata={"parse": None})

    def as_namespace(self) -> SimpleNamespace:
        """The options as the attribute bag kojid passes around (TaskManager, handlers)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "rlimits"}
        values["plugin"] = list(self.plugin)
        values["topurls"] = list(self.topurls)
        values.update({name: " ".join(map(str, limits)) for name, limits in self.rlimits.items()})
        return SimpleNamespace(**values)


def default_state_dir() -> Path:
    """state_dir when kojid.conf sets none: per user, so the worker needs no root."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "koji-adjutant"


@dataclass(frozen=True)
class AdjutantOptions:
    """The [adjutant] section: koji-adjutant's own options."""

    default_image: str = _option(DEV_IMAGE, parse=parsers.nonempty,
                                 doc="buildroot image when neither hub policy nor tag extra names one")
    image_pull_policy: PullPolicy = _option(PullPolicy.IF_NOT_PRESENT, parse=parsers.enum_member(PullPolicy))
    podman_socket: str | None = _option(None, parse=parsers.socket,
                                        doc="podman API socket; unset: the user's own, or a private service")
    image_policy: str | None = _option("buildroot_image", parse=parsers.optional_name,
                                       doc="hub policy asked with host.evalPolicy; empty: never ask (a hub "
                                           "too old to have it)")
    image_packages_repo: str | None = _option(None, parse=parsers.optional_name,
                                              doc="hub external repo the packages that came with the image are "
                                                  "listed under in each buildroot; unset: installed_pkgs.log only")
    worker_id: str = _option(parse=parsers.worker_id, factory=socket.gethostname,
                             doc="label on every container; default: this host's name on the hub")
    offline: bool = _option(False, parse=parsers.boolean,
                            doc="repos are local directories under topdir; no phase gets network")
    deps_network: Network = _option(Network.HOST, parse=parsers.enum_member(Network, (Network.HOST, Network.PRIVATE)),
                                    doc="network of the dependency phase (the build phase never has one)")
    memory_limit_mb: int | None = _option(parse=parsers.limit(int, "integer"), factory=default_memory_limit_mb,
                                          doc="per build container; default: half the host's memory")
    pids_limit: int | None = _option(DEFAULT_PIDS_LIMIT, parse=parsers.limit(int, "integer"),
                                     doc="processes per build container")
    cpus: float | None = _option(None, parse=parsers.limit(float, "number"))
    cache_max_size_gb: float = _option(20.0, parse=parsers.positive(float, "number"))
    cache_max_age_days: int = _option(14, parse=parsers.positive(int, "integer"))
    cache_registry: str | None = _option(None, parse=parsers.registry_namespace,
                                         doc="host[:port]/namespace of a registry every builder shares "
                                             "cached buildroots through; unset: this builder's own only")
    cache_registry_credentials: Path | None = _option(None, parse=parsers.optional_path,
                                                      doc="file of username:password for cache_registry "
                                                          "(mode 0600); unset: no credentials")
    insecure_registries: tuple[str, ...] = _option((), parse=parsers.registry_hosts,
                                                   doc="registry hosts (host:port) reached without TLS "
                                                       "verification: plain http, or a self-signed certificate")
    result_max_file_mb: int = _option(8192, parse=parsers.positive(int, "integer"),
                                      doc="largest file (MiB) a build may return; debuginfo RPMs reach 4 GiB")
    result_max_total_mb: int = _option(32768, parse=parsers.positive(int, "integer"),
                                       doc="most MiB of files one build phase may return")
    result_max_files: int = _option(20000, parse=parsers.positive(int, "integer"),
                                    doc="most files and directories one build phase may return")
    log_max_mb: int = _option(1024, parse=parsers.positive(int, "integer"),
                              doc="cap (MiB) of each log file; further output is dropped, the build goes on")
    state_dir: Path = _option(parse=parsers.directory, factory=default_state_dir)
    container_root: ContainerRoot = _option(ContainerRoot.SUBORDINATE, parse=parsers.enum_member(ContainerRoot),
                                            doc="host user of root in containers: 'subordinate' (an id of "
                                                "/etc/subuid) or 'worker' (this user)")
    source_network: Network = _option(Network.PRIVATE,
                                      parse=parsers.enum_member(Network, (Network.PRIVATE, Network.HOST)),
                                      doc="network of an SCM source command: 'private' reaches other hosts "
                                          "but not this one's services")


def _display(value: Any) -> str:
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def _hide_url_password(text: str) -> str:
    """http://user:secret@proxy/ -> http://user:***@proxy/; anything else unchanged."""
    try:
        parts = urlsplit(text)
        if parts.password is None:
            return text
    except ValueError:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Config:
    kojid: KojidOptions
    adjutant: AdjutantOptions = field(default_factory=AdjutantOptions)
    #: The file it was read from.
    path: Path | None = None
    #: What the file sets that koji-adjutant does not use, one note each (logged as warnings).
    ignored: tuple[str, ...] = ()

    def effective_items(self) -> list[tuple[str, str]]:
        """(section.key, display value) for every option, secrets shown as ***."""
        items: list[tuple[str, str]] = []
        for section, options in ((KOJID_SECTION, self.kojid), (ADJUTANT_SECTION, self.adjutant)):
            for f in dataclasses.fields(options):
                if f.metadata.get("parse") is None:
                    continue
                value = getattr(options, f.name)
                if f.name == "topurl" and section == KOJID_SECTION and self.kojid.topurls:
                    value = self.kojid.topurls
                if f.metadata.get("secret") and value:
                    shown = MASK
                else:
                    shown = _display(value)
                    if isinstance(value, str):
                        shown = " ".join(_hide_url_password(word) for word in shown.split(" "))
                items.append((f"{section}.{f.name}", shown))
            if section == KOJID_SECTION:
                for name, limits in sorted(self.kojid.rlimits.items()):
                    items.append((f"{KOJID_SECTION}.{name}", _display(limits)))
        return items


# -- loading ----------------------------------------------------------------------

def _fields(kind: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(kind) if f.metadata.get("parse") is not None}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _bad_value(path: Path, section: str, key: str, value: str, why: str) -> ConfigError:
    return ConfigError(f"{path}: [{section}] {key} = {value!r} {why}")


def _read(path: Path) -> configparser.ConfigParser:
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist",
                          hint="give the right file with -c/--config")
    if not path.is_file():
        raise ConfigError(f"configuration file {path} is not a regular file")
    parser = configparser.ConfigParser(interpolation=None, default_section="\0no default section")
    try:
        with open(path, encoding="utf-8") as stream:
            parser.read_file(stream)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text: {exc}") from None
    except configparser.Error as exc:
        raise ConfigError(f"configuration file {path} cannot be parsed: {_one_line(str(exc))}") from None
    for section in parser.sections():
        if section not in (KOJID_SECTION, ADJUTANT_SECTION):
            raise ConfigError(f"{path}: unknown section [{section}]",
                              hint=f"only [{KOJID_SECTION}] and [{ADJUTANT_SECTION}] are read")
    return parser


def _parse_kojid(path: Path, items: list[tuple[str, str]]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The [kojid] values, and a note for each option that is set but not used."""
    known = _fields(KojidOptions)
    values: dict[str, Any] = {}
    ignored: list[str] = []
    rlimits: dict[str, tuple[int, ...]] = {}
    for key, raw in items:
        if key in ("plugin", "plugins"):
            name = "plugin"
        elif key.upper().startswith("RLIMIT_"):
            if key[len("RLIMIT_"):].lower() not in parsers.RLIMIT_NAMES:
                raise ConfigError(f"{path}: [{KOJID_SECTION}] {key.upper()} is not a resource limit",
                                  hint="known: " + ", ".join(f"RLIMIT_{name.upper()}" for name in parsers.RLIMIT_NAMES))
            try:
                rlimits[key.upper()] = parsers.rlimit(raw)
            except ValueError as exc:
                raise _bad_value(path, KOJID_SECTION, key.upper(), raw, str(exc)) from None
            continue
        elif key in known:
            name = key
        else:
            raise ConfigError(f"{path}: unknown option {key!r} in [{KOJID_SECTION}]",
                              hint=f"kojid refuses it too; koji-adjutant's own options go in [{ADJUTANT_SECTION}]")
        try:
            values[name] = known[name].metadata["parse"](raw)
        except ValueError as exc:
            raise _bad_value(path, KOJID_SECTION, key, raw, str(exc)) from None
        if known[name].metadata["ignored"]:
            ignored.append(f"[{KOJID_SECTION}] {key} is accepted but not used: {known[name].metadata['ignored']}")
    if values.get("plugin"):
        raise ConfigError(f"{path}: [{KOJID_SECTION}] plugins = {' '.join(values['plugin'])}: koji-adjutant loads "
                          "no kojid plugins",
                          hint="kojid's plugins hook into kojid's and mock's own code; remove the option "
                               "(docs/switching-from-kojid.md)")
    if values.get("scm_credentials_dir"):
        raise ConfigError(f"{path}: [{KOJID_SECTION}] scm_credentials_dir = {values['scm_credentials_dir']}: "
                          "koji-adjutant never lets credentials into a buildroot",
                          hint="kojid mounts that directory where the repository's own source command runs; "
                               "give the worker user the credentials (ssh keys, netrc) the checkout needs, "
                               "which stay on the host, and remove the option (docs/switching-from-kojid.md)")
    for name in ("server", "topurl"):
        if not (values.get(name) or "").strip():
            raise ConfigError(f"{path}: [{KOJID_SECTION}] {name} is required",
                              hint="kojid needs it too; see examples/kojid.conf")
    topurls = tuple(values["topurl"].split())
    values["topurl"], values["topurls"] = topurls[0], topurls
    for name, default_file in CERT_DEFAULTS.items():
        if values.get(name) is None and os.path.exists(default_file):
            values[name] = default_file
    values["rlimits"] = MappingProxyType(rlimits)
    return values, tuple(ignored)


def _parse_adjutant(path: Path, items: list[tuple[str, str]]) -> dict[str, Any]:
    known = _fields(AdjutantOptions)
    values: dict[str, Any] = {}
    for key, raw in items:
        if key not in known:
            raise ConfigError(f"{path}: unknown option {key!r} in [{ADJUTANT_SECTION}]",
                              hint="known options: " + ", ".join(known))
        try:
            values[key] = known[key].metadata["parse"](raw)
        except ValueError as exc:
            raise _bad_value(path, ADJUTANT_SECTION, key, raw, str(exc)) from None
    return values


def kerberos_principal(kojid) -> str:
    """The principal kojid logs in with (builder/kojid main): krb_principal, else
    host_principal_format filled with this host's fully qualified name."""
    return kojid.krb_principal or kojid.host_principal_format % socket.getfqdn()


def host_name(kojid: KojidOptions) -> str:
    """This builder's name on the hub, as far as the configuration tells it.

    The user option when set; else, when there is no client certificate, the
    host part of the Kerberos principal kojid would log in with; else the
    local host name.
    """
    if kojid.user:
        return kojid.user
    if not kojid.cert:
        name = kerberos_principal(kojid).split("@", 1)[0].split("/", 1)[-1]
        if name:
            return name
    return socket.gethostname()


def load_config(path: Path | str | None = None) -> Config:
    """Read and check kojid.conf (default /etc/kojid/kojid.conf)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    parser = _read(path)
    kojid_items = parser.items(KOJID_SECTION) if parser.has_section(KOJID_SECTION) else []
    adjutant_items = parser.items(ADJUTANT_SECTION) if parser.has_section(ADJUTANT_SECTION) else []
    kojid_values, ignored = _parse_kojid(path, kojid_items)
    kojid = KojidOptions(**kojid_values)
    adjutant_values = _parse_adjutant(path, adjutant_items)
    adjutant_values.setdefault("worker_id", host_name(kojid))
    adjutant = AdjutantOptions(**adjutant_values)
    return Config(kojid=kojid, adjutant=adjutant, path=path, ignored=ignored)
