"""Settings: TOML + LRM_<SECTION>__<KEY> overrides + *_file secrets, with errors that name the
key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrm.domain.errors import SettingsError
from lrm.settings import load_settings

FULL = """
[lrm]
instance_id = "lrm-b"
database_url = "postgresql://lrm@db.example:5432/lrm"
report_timezone = "Europe/Berlin"
excluded_time = ["06:55-07:05"]

[job]
nightly_job_time = "03:30"
recompute_days = 3

[http]
report_port = 9080
admin_port = 9081

[ha]
lease_ttl_s = 15
renew_interval_s = 3
renew_deadline_s = 9

[[icon]]
name = "icon-1a"
url = "postgresql://icon@127.0.0.1/idb_1a"
ha_pair = "site-1"

[[icon]]
name = "icon-1b"
url = "postgresql://icon@127.0.0.1/idb_1b"
ha_pair = "site-1"

[gvp]
primary_url = "http://127.0.0.1:9101/ems-rs"
username = "lrm"
password_file = "gvp.pw"

[config_source]
kind = "http"
url = "http://127.0.0.1:9200/cfg"

[[sellable_items]]
id = 500
code = "sip_chat_seat"
name = "SIP voice seat with chat"
rule = { channel = "voice", switch_type = "CFGSIPSwitch" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lrm.toml"
    path.write_text(text)
    return path


def test_full_file_loads(tmp_path: Path) -> None:
    """Every section of SPEC §3 is read, and a *_file secret is read from its file."""
    (tmp_path / "gvp.pw").write_text("s3cret\n")
    settings = load_settings(write(tmp_path, FULL), environ={})
    assert settings.lrm.instance_id == "lrm-b"
    assert settings.lrm.report_timezone == "Europe/Berlin"
    assert settings.job.nightly_job_time == "03:30"
    assert [i.name for i in settings.icon] == ["icon-1a", "icon-1b"]
    assert settings.gvp is not None
    assert settings.gvp.password == "s3cret"
    assert settings.gvp.concurrency == 4
    assert settings.config_source is not None
    assert settings.config_source.kind == "http"
    assert settings.sellable_items[0].rule == {"channel": "voice", "switch_type": "CFGSIPSwitch"}


def test_defaults_without_a_file(tmp_path: Path) -> None:
    """With no file every option has its documented default."""
    settings = load_settings(None, environ={})
    assert settings.http.report_port == 8080
    assert settings.http.admin_port == 8081
    assert (settings.ha.lease_ttl_s, settings.ha.renew_interval_s,
            settings.ha.renew_deadline_s) == (10, 2, 6)
    assert settings.job.catch_up_days == 7
    assert settings.lrm.database_url is None


def test_environment_overrides_file(tmp_path: Path) -> None:
    """LRM_<SECTION>__<KEY> overrides the file, typed; list entries are addressed by index."""
    (tmp_path / "gvp.pw").write_text("x")
    env = {"LRM_HTTP__REPORT_PORT": "9090", "LRM_HA__EXIT_ON_LEASE_LOSS": "true",
           "LRM_ICON__1__URL": "postgresql://other/idb", "LRM_LRM__INSTANCE_ID": "lrm-z",
           "UNRELATED": "1"}
    settings = load_settings(write(tmp_path, FULL), environ=env)
    assert settings.http.report_port == 9090
    assert settings.ha.exit_on_lease_loss is True
    assert settings.icon[1].url == "postgresql://other/idb"
    assert settings.lrm.instance_id == "lrm-z"


def test_instance_id_argument_wins(tmp_path: Path) -> None:
    """--instance-id on the command line beats the file and the environment."""
    settings = load_settings(None, environ={"LRM_LRM__INSTANCE_ID": "env"}, instance_id="cli")
    assert settings.lrm.instance_id == "cli"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ha]\nlease_ttl_s = 5\nrenew_deadline_s = 6\n",
         "ha: timings must satisfy renew_interval_s < renew_deadline_s < lease_ttl_s"),
        ("[http]\nreport_port = 70000\n", "http.report_port: Input should be less than"),
        ("[http]\nreport_port = 8081\n", "http: report_port and admin_port must differ"),
        ("[lrm]\nreport_timezone = \"Mars/Olympus\"\n",
         "lrm.report_timezone: 'Mars/Olympus' is not a known IANA time zone"),
        ("[lrm]\nexcluded_time = [\"7:00-8:00\"]\n",
         "lrm.excluded_time: '7:00-8:00' is not a window in HH:MM-HH:MM form"),
        ("[lrm]\nexcluded_time = [\"08:00-07:00\"]\n", "'08:00-07:00' ends before it starts"),
        ("[job]\nnightly_job_time = \"25:00\"\n", "job.nightly_job_time: '25:00' is not a time"),
        ("[job]\nrecompute_dayz = 1\n", "job.recompute_dayz: unknown key"),
        ("[[icon]]\nname = \"a\"\n", "icon[0].url: Field required"),
        ("[[icon]]\nname = \"a\"\nurl = \"x\"\n[[icon]]\nname = \"a\"\nurl = \"y\"\n",
         "icon names must be unique (repeated: a)"),
        ("[config_source]\nkind = \"http\"\n", 'config_source: kind = "http" needs url'),
        ("[gvp]\nprimary_url = \"rs1:8080/ems-rs\"\n",
         "gvp.primary_url: 'rs1:8080/ems-rs' is not an http:// or https:// URL"),
        ("[gvp]\nprimary_url = \"http://rs1/\"\nconcurrency = 0\n",
         "gvp.concurrency: Input should be greater than or equal to 1"),
        ("[gvp]\nprimary_url = \"http://rs1:80x/ems-rs\"\n",
         "gvp.primary_url: Port could not be cast to integer value as '80x'"),
        ("[gvp]\nprimary_url = \"http://rs1/\"\nbackup_url = \"http://lrm:pw@rs2/\"\n",
         "gvp.backup_url: rs2: give the credentials as username and password"),
        ("[config_source]\nkind = \"ldap\"\n", "config_source.kind: Input should be 'http' or"),
        ("[[sellable_items]]\nid = 20000\ncode = \"x\"\nname = \"X\"\n",
         "sellable_items[0].id: Input should be less than or equal to 9999"),
    ],
)
def test_invalid_file_names_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    """An invalid file fails with a message naming the key and the problem."""
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert expected in str(caught.value)
    assert str(tmp_path / "lrm.toml") in str(caught.value)


def test_bad_environment_value_names_the_key(tmp_path: Path) -> None:
    """A bad override is reported under the key it sets."""
    with pytest.raises(SettingsError, match=r"http\.admin_port: Input should be a valid integer"):
        load_settings(None, environ={"LRM_HTTP__ADMIN_PORT": "eighty"})


def test_override_of_missing_list_entry_is_refused(tmp_path: Path) -> None:
    """LRM_ICON__5__URL with only two [[icon]] entries is an error, not silently ignored."""
    (tmp_path / "gvp.pw").write_text("x")
    with pytest.raises(SettingsError, match="LRM_ICON__5__URL: there is no entry 5"):
        load_settings(write(tmp_path, FULL), environ={"LRM_ICON__5__URL": "x"})


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    """A *_file that cannot be read is reported with its key and path."""
    text = "[gvp]\nprimary_url = \"http://x\"\npassword_file = \"nope.pw\"\n"
    with pytest.raises(SettingsError, match=r"gvp\.password_file: cannot read .*nope\.pw"):
        load_settings(write(tmp_path, text), environ={})


def test_not_toml_is_reported(tmp_path: Path) -> None:
    """A file that is not TOML at all says so, with the parser's position."""
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "[lrm\n"), environ={})


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """--config pointing nowhere fails clearly."""
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    """data_dir and config_source.path are relative to the config file, not the cwd."""
    text = "[lrm]\ndata_dir = \"state\"\n[config_source]\nkind = \"file\"\npath = \"cfg.json\"\n"
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.lrm.data_dir == tmp_path.resolve() / "state"
    assert settings.config_source is not None
    assert settings.config_source.path == tmp_path.resolve() / "cfg.json"


def test_environment_password_beats_password_file(tmp_path: Path) -> None:
    """LRM_GVP__PASSWORD overrides a password_file given in the file."""
    (tmp_path / "gvp.pw").write_text("from-file")
    text = "[gvp]\nprimary_url = \"http://x\"\npassword_file = \"gvp.pw\"\n"
    settings = load_settings(write(tmp_path, text), environ={"LRM_GVP__PASSWORD": "from-env"})
    assert settings.gvp is not None
    assert settings.gvp.password == "from-env"
