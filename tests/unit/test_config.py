"""kojid.conf loading: kojid's own options and defaults, the [adjutant] section, errors, check-config."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from koji_adjutant import cli
from koji_adjutant import config as config_module
from koji_adjutant.buildroot.logs import DEFAULT_LOG_MAX_BYTES
from koji_adjutant.config import AdjutantOptions, Config, KojidOptions, load_config
from koji_adjutant.container.archive import ResultLimits
from koji_adjutant.container.interface import ContainerRoot, Network, PullPolicy
from koji_adjutant.container.limits import default_memory_limit_mb
from koji_adjutant.defaults import DEV_IMAGE
from koji_adjutant.errors import AdjutantError, ConfigError

MINIMAL = """
[kojid]
server = https://hub.example.com/kojihub
topurl = https://hub.example.com/kojifiles
"""

#: kojid's get_options() defaults (koji 1.35/1.36), the reference the loader must match.
KOJID_DEFAULTS = {
    "sleeptime": 15, "maxjobs": 10, "minspace": 8192,
    "buildroot_basic_cleanup_delay": 120, "buildroot_final_cleanup_delay": 86400,
    "literal_task_arches": "", "admin_emails": None, "log_level": None,
    "topdir": "/mnt/koji", "workdir": "/var/tmp/koji", "chroot_tmpdir": "/chroot_tmpdir",
    "pluginpath": "/usr/lib/koji-builder-plugins", "mockdir": "/var/lib/mock", "mockuser": "kojibuilder",
    "packager": "Koji", "vendor": "Koji", "distribution": "Koji", "mockhost": "koji-linux-gnu",
    "smtphost": "example.com", "smtp_user": None, "smtp_pass": None,
    "from_addr": "Koji Build System <buildsys@example.com>",
    "krb_principal": None, "host_principal_format": "compile/%s@EXAMPLE.COM",
    "keytab": "/etc/kojid/kojid.keytab", "ccache": "/var/tmp/kojid.ccache",
    "user": None, "password": None, "retry_interval": 60, "max_retries": 120,
    "offline_retry": True, "offline_retry_interval": 120, "log_timestamps": False, "timeout": None,
    "no_ssl_verify": False, "use_fast_upload": True, "use_createrepo_c": True,
    "createrepo_skip_stat": True, "createrepo_update": True, "distrepo_skip_stat": False,
    "copy_old_repodata": False, "mock_bootstrap_image": False, "pkgurl": None,
    "allowed_scms": "", "allowed_scms_use_config": True, "allowed_scms_use_policy": False,
    "scm_credentials_dir": None, "support_rpm_source_layout": True, "yum_proxy": None,
    "maven_repo_ignore": "*.md5 *.sha1 maven-metadata*.xml _maven.repositories "
                         "_remote.repositories resolver-status.properties *.lastUpdated",
    "failed_buildroot_lifetime": 14400, "rpmbuild_timeout": 86400, "oz_install_timeout": 0,
    "xz_options": "-z6T0", "task_avail_delay": 300, "cert": None, "serverca": None,
    "allow_noverifyssl": False, "allow_password_in_scm_url": False, "methods": None,
    "build_arch_can_fail": False, "plugin": (),
}


@pytest.fixture(autouse=True)
def no_host_files(monkeypatch, tmp_path):
    """Keep the machine's own /etc/kojid and XDG dirs out of every test."""
    monkeypatch.setattr(config_module, "CERT_DEFAULTS",
                        {"cert": str(tmp_path / "no-client.crt"), "serverca": str(tmp_path / "no-ca.crt")})
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "etc-kojid.conf")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "kojid.conf") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def load(write, text: str) -> Config:
    return load_config(write(text))


# -- defaults ----------------------------------------------------------------------

def test_minimal_file_gets_every_kojid_default(write):
    kojid = load(write, MINIMAL).kojid
    assert kojid.server == "https://hub.example.com/kojihub"
    assert kojid.topurl == "https://hub.example.com/kojifiles"
    for name, expected in KOJID_DEFAULTS.items():
        assert getattr(kojid, name) == expected, name
    assert dict(kojid.rlimits) == {}


def test_every_kojid_option_is_covered_by_the_reference():
    options = {f.name for f in dataclasses.fields(KojidOptions)} - {"server", "topurl", "topurls", "rlimits"}
    assert options == set(KOJID_DEFAULTS)


def test_adjutant_defaults(write, tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "builder7")
    adjutant = load(write, MINIMAL + "cert = /etc/pki/koji.pem\n").adjutant
    assert adjutant == AdjutantOptions(
        default_image=DEV_IMAGE, image_pull_policy=PullPolicy.IF_NOT_PRESENT, podman_socket=None,
        image_policy="buildroot_image", worker_id="builder7", offline=False, deps_network=Network.HOST,
        memory_limit_mb=default_memory_limit_mb(), pids_limit=4000, cpus=None, cache_max_size_gb=20,
        cache_max_age_days=14, result_max_file_mb=8192, result_max_total_mb=32768, result_max_files=20000,
        log_max_mb=1024, state_dir=tmp_path / "xdg" / "koji-adjutant", container_root=ContainerRoot.SUBORDINATE,
        source_network=Network.PRIVATE)


def test_result_and_log_defaults_are_those_of_the_code_that_applies_them():
    options = AdjutantOptions()
    assert ResultLimits.from_mb(options.result_max_file_mb, options.result_max_total_mb,
                                options.result_max_files) == ResultLimits()
    assert options.log_max_mb * 1024 * 1024 == DEFAULT_LOG_MAX_BYTES


def test_state_dir_falls_back_to_local_share(write, tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load(write, MINIMAL).adjutant.state_dir == tmp_path / "home" / ".local" / "share" / "koji-adjutant"


def test_config_is_frozen(write):
    config = load(write, MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.kojid.maxjobs = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.adjutant = AdjutantOptions()
    assert config.path.name == "kojid.conf"


def test_cert_defaults_used_when_the_files_exist(write, tmp_path, monkeypatch):
    cert = tmp_path / "client.crt"
    cert.write_text("cert")
    monkeypatch.setattr(config_module, "CERT_DEFAULTS", {"cert": str(cert), "serverca": str(tmp_path / "absent")})
    kojid = load(write, MINIMAL).kojid
    assert kojid.cert == str(cert)
    assert kojid.serverca is None


# -- type conversions --------------------------------------------------------------

def test_integers_booleans_and_strings(write):
    kojid = load(write, MINIMAL + """
maxjobs = 4
minspace = 1024
sleeptime = 5
timeout = 600
rpmbuild_timeout = 7200
offline_retry = no
use_fast_upload = off
no_ssl_verify = 1
allowed_scms_use_policy = yes
createrepo_update = False
log_timestamps = on
allowed_scms = scm.example.com:/rpms/*:no !scm.example.com:/secret/*
packager = Example <build@example.com>
""").kojid
    assert (kojid.maxjobs, kojid.minspace, kojid.sleeptime, kojid.timeout, kojid.rpmbuild_timeout) == \
        (4, 1024, 5, 600, 7200)
    assert (kojid.offline_retry, kojid.use_fast_upload, kojid.no_ssl_verify,
            kojid.allowed_scms_use_policy, kojid.createrepo_update, kojid.log_timestamps) == \
        (False, False, True, True, False, True)
    assert kojid.allowed_scms == "scm.example.com:/rpms/*:no !scm.example.com:/secret/*"
    assert kojid.packager == "Example <build@example.com>"


@pytest.mark.parametrize("key", ["plugin", "plugins"])
def test_plugins_under_either_name_are_refused(write, key):
    """kojid's plugins hook into kojid's and mock's own classes: none can work here."""
    with pytest.raises(ConfigError) as caught:
        load(write, MINIMAL + f"{key} = runroot save_failed_tree\n")
    assert "plugins = runroot save_failed_tree: koji-adjutant loads no kojid plugins" in caught.value.message
    assert "remove the option" in caught.value.hint


def test_an_empty_plugins_line_is_fine(write):
    assert load(write, MINIMAL + "plugins =\n").kojid.plugin == ()


def test_percent_is_not_interpolated(write):
    kojid = load(write, MINIMAL + "host_principal_format = compile/%s@EXAMPLE.ORG\n").kojid
    assert kojid.host_principal_format == "compile/%s@EXAMPLE.ORG"


def test_several_topurls(write):
    kojid = load(write, """
[kojid]
server = https://hub/kojihub
topurl = https://a/kojifiles https://b/kojifiles
""").kojid
    assert kojid.topurl == "https://a/kojifiles"
    assert kojid.topurls == ("https://a/kojifiles", "https://b/kojifiles")


def test_keys_are_case_insensitive_and_rlimits_kept(write):
    kojid = load(write, MINIMAL + "MaxJobs = 2\nRLIMIT_NOFILE = 4096 8192\nrlimit_as = 1000000\n").kojid
    assert kojid.maxjobs == 2
    assert dict(kojid.rlimits) == {"RLIMIT_NOFILE": (4096, 8192), "RLIMIT_AS": (1000000,)}


def test_adjutant_conversions(write, tmp_path):
    adjutant = load(write, MINIMAL + f"""
[adjutant]
default_image = registry.example.com/el9-buildroot:1
image_pull_policy = Always
podman_socket = /run/user/1000/podman/podman.sock
image_policy = my_images
worker_id = builder-3
offline = true
deps_network = private
memory_limit_mb = 4096
pids_limit = 2048
cpus = 1.5
cache_max_size_gb = 7.5
cache_max_age_days = 3
result_max_file_mb = 4096
result_max_total_mb = 10000
result_max_files = 500
log_max_mb = 64
state_dir = {tmp_path}/state
""").adjutant
    assert adjutant.default_image == "registry.example.com/el9-buildroot:1"
    assert adjutant.image_pull_policy is PullPolicy.ALWAYS
    assert adjutant.podman_socket == "/run/user/1000/podman/podman.sock"
    assert adjutant.image_policy == "my_images"
    assert adjutant.worker_id == "builder-3"
    assert adjutant.offline is True
    assert adjutant.deps_network is Network.PRIVATE
    assert (adjutant.memory_limit_mb, adjutant.pids_limit, adjutant.cpus) == (4096, 2048, 1.5)
    assert (adjutant.cache_max_size_gb, adjutant.cache_max_age_days) == (7.5, 3)
    assert (adjutant.result_max_file_mb, adjutant.result_max_total_mb, adjutant.result_max_files,
            adjutant.log_max_mb) == (4096, 10000, 500, 64)
    assert adjutant.state_dir == tmp_path / "state"


@pytest.mark.parametrize("text", ["", "none", "Unlimited"])
def test_limits_can_be_unlimited(write, text):
    adjutant = load(write, MINIMAL + f"[adjutant]\nmemory_limit_mb = {text}\ncpus = {text}\n").adjutant
    assert adjutant.memory_limit_mb is None and adjutant.cpus is None


def test_empty_image_policy_means_do_not_ask_the_hub(write):
    assert load(write, MINIMAL + "[adjutant]\nimage_policy =\n").adjutant.image_policy is None


def test_state_dir_expands_home(write, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load(write, MINIMAL + "[adjutant]\nstate_dir = ~/adj\n").adjutant.state_dir == tmp_path / "home" / "adj"


def test_socket_may_be_a_unix_uri(write):
    text = MINIMAL + "[adjutant]\npodman_socket = unix:///run/podman.sock\n"
    assert load(write, text).adjutant.podman_socket == "unix:///run/podman.sock"


# -- worker id ---------------------------------------------------------------------

def test_worker_id_is_the_hub_user(write):
    assert load(write, MINIMAL + "user = builder1.example.com\n").adjutant.worker_id == "builder1.example.com"


def test_worker_id_from_the_kerberos_principal(write):
    text = MINIMAL + "krb_principal = compile/builder2.example.com@EXAMPLE.COM\n"
    assert load(write, text).adjutant.worker_id == "builder2.example.com"


def test_worker_id_from_host_principal_format(write, monkeypatch):
    monkeypatch.setattr(socket, "getfqdn", lambda: "builder4.example.com")
    assert load(write, MINIMAL).adjutant.worker_id == "builder4.example.com"


def test_worker_id_with_a_certificate_is_the_host_name(write, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "builder5")
    assert load(write, MINIMAL + "cert = /etc/kojid/me.pem\n").adjutant.worker_id == "builder5"


def test_worker_id_given_wins(write):
    assert load(write, MINIMAL + "user = u\n[adjutant]\nworker_id = w1\n").adjutant.worker_id == "w1"


# -- mock-only options -------------------------------------------------------------

def test_mock_only_and_obsolete_options_are_accepted(write):
    config = load(write, MINIMAL + """
mockdir = /srv/mock
mockuser = mockbuilder
mock_bootstrap_image = true
pkgurl = https://old/packages
oz_install_timeout = 3600
maven_repo_ignore = *.md5
xz_options = -z9
use_createrepo_c = true
distrepo_skip_stat = true
task_avail_delay = 60
chroot_tmpdir = /ctmp
buildroot_basic_cleanup_delay = 1
buildroot_final_cleanup_delay = 2
copy_old_repodata = true
log_timestamps = true
allow_noverifyssl = true
""")
    kojid = config.kojid
    assert (kojid.mockdir, kojid.mockuser, kojid.mock_bootstrap_image) == ("/srv/mock", "mockbuilder", True)
    assert kojid.oz_install_timeout == 3600
    # said when the daemon starts, as warnings, and by check-config
    assert len(config.ignored) == 15
    assert any(note.startswith("[kojid] mockdir is accepted but not used: mock only") for note in config.ignored)


def test_scm_credentials_dir_is_refused(write):
    """kojid mounts it where the repository's own source command runs: package code would read it."""
    with pytest.raises(ConfigError) as caught:
        load(write, MINIMAL + "scm_credentials_dir = /etc/kojid/scm-creds\n")
    assert "scm_credentials_dir = /etc/kojid/scm-creds: koji-adjutant never lets credentials into a buildroot" \
        in caught.value.message
    assert "remove the option" in caught.value.hint


def test_options_honoured_here_are_not_called_ignored(write):
    config = load(write, MINIMAL + "allow_password_in_scm_url = true\nadmin_emails = ops@example.com\n"
                                   "support_rpm_source_layout = false\n")
    assert config.ignored == ()
    assert (config.kojid.allow_password_in_scm_url, config.kojid.admin_emails,
            config.kojid.support_rpm_source_layout) == (True, "ops@example.com", False)


@pytest.mark.parametrize("text, value", [("", None), ("adjutant-image-packages", "adjutant-image-packages")])
def test_image_packages_repo(write, text, value):
    config = load(write, MINIMAL + f"[adjutant]\nimage_packages_repo = {text}\n")
    assert config.adjutant.image_packages_repo == value


def test_ignored_options_say_why():
    fields = {f.name: f for f in dataclasses.fields(KojidOptions)}
    for name in ("mockdir", "mockuser", "mock_bootstrap_image"):
        assert "mock" in fields[name].metadata["ignored"]
    assert not fields["maxjobs"].metadata["ignored"]


def test_namespace_for_kojid_code(write):
    options = load(write, MINIMAL + "RLIMIT_NOFILE = 10 20\n").kojid.as_namespace()
    assert options.maxjobs == 10
    assert options.topurls == ["https://hub.example.com/kojifiles"]
    assert options.plugin == []
    assert options.RLIMIT_NOFILE == "10 20"


# -- errors ------------------------------------------------------------------------

def error_of(write, text: str) -> str:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_kojid_key_is_refused(write):
    message = error_of(write, MINIMAL + "mockrpmbuild = yes\n")
    assert "'mockrpmbuild'" in message and "[kojid]" in message and "kojid.conf" in message


def test_unknown_adjutant_key_is_refused(write):
    message = error_of(write, MINIMAL + "[adjutant]\nimage = x\n")
    assert "'image'" in message and "[adjutant]" in message and "kojid.conf" in message


@pytest.mark.parametrize("section", ["mock", "DEFAULT"])
def test_unknown_section_is_refused(write, section):
    assert f"[{section}]" in error_of(write, MINIMAL + f"[{section}]\nx = 1\n")


@pytest.mark.parametrize("missing", ["server", "topurl"])
def test_required_options(write, missing):
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(missing))
    message = error_of(write, text)
    assert f"{missing} is required" in message


def test_no_kojid_section_at_all(write):
    assert "server is required" in error_of(write, "[adjutant]\noffline = true\n")


@pytest.mark.parametrize("line, key, value", [
    ("maxjobs = lots", "maxjobs", "lots"),
    ("timeout = ", "timeout", ""),
    ("rpmbuild_timeout = 1.5", "rpmbuild_timeout", "1.5"),
    ("offline_retry = maybe", "offline_retry", "maybe"),
    ("log_level = LOUD", "log_level", "LOUD"),
    ("RLIMIT_NOFILE = many", "RLIMIT_NOFILE", "many"),
    ("RLIMIT_NOFILE = 1 2 3", "RLIMIT_NOFILE", "1 2 3"),
])
def test_bad_kojid_values_name_key_and_value(write, line, key, value):
    message = error_of(write, MINIMAL + line + "\n")
    assert f"{key} = {value!r}" in message


@pytest.mark.parametrize("line, key, value", [
    ("image_pull_policy = sometimes", "image_pull_policy", "sometimes"),
    ("deps_network = none", "deps_network", "none"),
    ("offline = perhaps", "offline", "perhaps"),
    ("memory_limit_mb = -5", "memory_limit_mb", "-5"),
    ("pids_limit = 1.5", "pids_limit", "1.5"),
    ("cpus = fast", "cpus", "fast"),
    ("cache_max_size_gb = 0", "cache_max_size_gb", "0"),
    ("cache_max_age_days = soon", "cache_max_age_days", "soon"),
    ("result_max_file_mb = 0", "result_max_file_mb", "0"),
    ("result_max_total_mb = 1.5", "result_max_total_mb", "1.5"),
    ("result_max_files = -1", "result_max_files", "-1"),
    ("result_max_files = unlimited", "result_max_files", "unlimited"),
    ("log_max_mb = big", "log_max_mb", "big"),
    ("default_image = ", "default_image", ""),
    ("worker_id = two words", "worker_id", "two words"),
    ("podman_socket = relative.sock", "podman_socket", "relative.sock"),
    ("state_dir = relative/dir", "state_dir", "relative/dir"),
])
def test_bad_adjutant_values_name_key_and_value(write, line, key, value):
    message = error_of(write, MINIMAL + "[adjutant]\n" + line + "\n")
    assert f"[adjutant] {key} = {value!r}" in message


def test_bad_pull_policy_lists_the_choices(write):
    message = error_of(write, MINIMAL + "[adjutant]\nimage_pull_policy = sometimes\n")
    assert "'always'" in message and "'if-not-present'" in message and "'never'" in message


def test_missing_explicit_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nothere.conf does not exist"):
        load_config(tmp_path / "nothere.conf")


def test_missing_default_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="etc-kojid.conf does not exist"):
        load_config(None)


def test_unparseable_file_is_one_line_error(write):
    assert "cannot be parsed" in error_of(write, "server = https://hub\n")


def test_duplicate_key_is_an_error(write):
    assert "cannot be parsed" in error_of(write, MINIMAL + "maxjobs = 1\nmaxjobs = 2\n")


def test_config_errors_are_adjutant_errors(write):
    with pytest.raises(AdjutantError):
        load(write, MINIMAL + "maxjobs = lots\n")


# -- check-config --------------------------------------------------------------------

def test_check_config_warns_of_what_is_not_used(write, capsys):
    assert cli.main(["check-config", "-c", str(write(MINIMAL + "mockdir = /srv/mock\n"))]) == 0
    assert "warning: [kojid] mockdir is accepted but not used: mock only" in capsys.readouterr().out


def test_check_config_prints_effective_configuration(write, capsys):
    path = write(MINIMAL + """
password = hunter2
smtp_pass = s3cret
maxjobs = 3
yum_proxy = http://proxy-user:proxy-pass@proxy.example.com:3128/
[adjutant]
worker_id = b1
cpus = 2
""")
    assert cli.main(["check-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    *lines, methods = out.splitlines()
    assert methods == ("methods handled: build buildArch buildNotification buildSRPMFromSCM chainbuild "
                       "createdistrepo createrepo dependantTask distRepo newRepo rebuildSRPM restart restartHosts "
                       "restartVerify shutdown tagBuild tagNotification waitrepo")
    assert all(" = " in line and line.split(" = ", 1)[0].count(".") == 1 for line in lines)
    assert "kojid.password = ***" in lines
    assert "kojid.smtp_pass = ***" in lines
    assert "hunter2" not in out and "s3cret" not in out and "proxy-pass" not in out
    assert "kojid.yum_proxy = http://proxy-user:***@proxy.example.com:3128/" in lines
    assert "kojid.maxjobs = 3" in lines
    assert "kojid.user = (unset)" in lines
    assert "kojid.offline_retry = true" in lines
    assert "adjutant.worker_id = b1" in lines
    assert "adjutant.cpus = 2.0" in lines
    assert "adjutant.image_pull_policy = if-not-present" in lines
    assert "adjutant.deps_network = host" in lines
    assert f"adjutant.default_image = {DEV_IMAGE}" in lines
    keys = [line.split(" = ", 1)[0] for line in lines]
    assert len(keys) == len(set(keys))
    assert "kojid.topurls" not in keys and "kojid.rlimits" not in keys


def test_check_config_unset_password_is_not_masked(write, capsys):
    assert cli.main(["check-config", "-c", str(write(MINIMAL))]) == 0
    assert "kojid.password = (unset)" in capsys.readouterr().out.splitlines()


def test_check_config_shows_all_topurls_and_rlimits(write, capsys):
    path = write("[kojid]\nserver = https://h/kojihub\ntopurl = https://a/f https://b/f\nRLIMIT_CORE = 0\n")
    assert cli.main(["check-config", "-c", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "kojid.topurl = https://a/f https://b/f" in lines
    assert "kojid.RLIMIT_CORE = 0" in lines


def test_check_config_bad_file_exits_1_with_one_line(write, capsys):
    path = write(MINIMAL + "maxjobs = lots\n")
    assert cli.main(["check-config", "-c", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    error_lines = captured.err.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("koji-adjutant check-config: error:")
    assert "maxjobs = 'lots'" in error_lines[0]


def test_check_config_missing_file(tmp_path, capsys):
    assert cli.main(["check-config", "-c", str(tmp_path / "absent.conf")]) == 1
    assert "absent.conf does not exist" in capsys.readouterr().err


def test_example_config_loads(capsys):
    example = Path(__file__).resolve().parents[2] / "examples" / "kojid.conf"
    config = load_config(example)
    assert config.kojid.server and config.kojid.topurl
    assert cli.main(["check-config", "-c", str(example)]) == 0


def test_an_unknown_rlimit_is_refused(write):
    with pytest.raises(ConfigError) as caught:
        load(write, MINIMAL + "RLIMIT_WIDGETS = 10\n")
    assert "RLIMIT_WIDGETS is not a resource limit" in caught.value.message
    assert "RLIMIT_NOFILE" in caught.value.hint


def test_rlimits_become_container_ulimits(write):
    from koji_adjutant.tasks.buildroots import resource_limits

    config = load(write, MINIMAL + "RLIMIT_NOFILE = 1024 2048\nrlimit_core = 0\n")
    limits = resource_limits(config.adjutant, config.kojid.rlimits)
    assert limits.rlimits == (("core", 0, 0), ("nofile", 1024, 2048))


def test_the_switching_guide_gives_every_kojid_option_a_status():
    """docs/switching-from-kojid.md: an operator looks every kojid.conf option up there."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "switching-from-kojid.md").read_text()
    rows = {line.split("|")[1].strip() for line in guide.splitlines() if line.startswith("| `")}
    documented = {name.strip("` ") for row in rows for name in row.split(",")}
    options = {f.name for f in dataclasses.fields(KojidOptions)} - {"topurls", "rlimits"}
    assert options - documented == set()
    assert "RLIMIT_*" in documented and "plugins" in documented
