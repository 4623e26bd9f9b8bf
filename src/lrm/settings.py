"""lrm's settings: one validated object built from the TOML file and `LRM_<SECTION>__<KEY>`
environment overrides (SPEC §3).

Nothing reads the environment at import time: the CLI calls `load_settings()` once and passes the
result to whatever needs it. Every field carries a description; `docs/configuration.md` documents
each of them and a test checks that none is missing.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lrm.domain.errors import SettingsError

ENV_PREFIX = "LRM_"
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# Keys whose value may instead be read from a file named by `<key>_file` (secrets).
_SECRET_KEYS = {"database_url", "password", "url"}


def parse_hhmm(value: str) -> time:
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a time of day in HH:MM form (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LrmSection(_Section):
    instance_id: str = Field(
        default="lrm-a",
        description="Name of this instance in the HA pair; shown in /status, logs and job runs.",
        min_length=1, max_length=64)
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy/psycopg URL of the LRM database (PostgreSQL). When omitted, lrm "
                    "starts an embedded PostgreSQL server under `data_dir` (demo and tests).")
    data_dir: Path = Field(
        default=Path(".lrm"),
        description="Folder for local state: the embedded PostgreSQL data folder when "
                    "`database_url` is omitted. Relative paths are taken from the config file's "
                    "folder.")
    report_timezone: str = Field(
        default="UTC",
        description="IANA time zone; a business day is a calendar day here (23, 24 or 25 hours).")
    excluded_time: list[str] = Field(
        default_factory=list,
        description='Local time windows "HH:MM-HH:MM" whose minutes are ignored when taking '
                    "daily peaks (e.g. a shift-change overlap).")

    @field_validator("report_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known IANA time zone") from exc
        return value

    @field_validator("excluded_time")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        for window in value:
            match = _WINDOW.match(window)
            if not match:
                raise ValueError(f"{window!r} is not a window in HH:MM-HH:MM form")
            start = (int(match.group(1)), int(match.group(2)))
            end = (int(match.group(3)), int(match.group(4)))
            if end > (24, 0):
                raise ValueError(f"{window!r} ends after 24:00")
            if end <= start:
                raise ValueError(f"{window!r} ends before it starts")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.report_timezone)


class JobSection(_Section):
    nightly_job_time: str = Field(
        default="02:00", description="Local time (report_timezone) at which the primary runs "
                                     "the nightly job for the previous business day.")
    recompute_days: int = Field(
        default=2, ge=0, le=60,
        description="Also recompute the N business days before yesterday (late or updated rows).")
    catch_up_days: int = Field(
        default=7, ge=0, le=366,
        description="On promotion, run every missed business date up to this many days back.")
    retry_failed_after_s: float = Field(
        default=300, ge=1,
        description="A date whose run failed (a source down, the database restarting) is "
                    "tried again after this many seconds while the instance is primary.")
    minute_retention_days: int = Field(
        default=90, ge=1,
        description="Days of per-minute rows kept; daily rows are kept forever.")

    @field_validator("nightly_job_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value


class HttpSection(_Section):
    report_host: str = Field(default="127.0.0.1",
                             description="Address the report and admin listeners bind to.")
    report_port: int = Field(default=8080, ge=1, le=65535,
                             description="Report API and web UI port; open only while primary.")
    admin_port: int = Field(default=8081, ge=1, le=65535,
                            description="Admin port (/healthz, /status, /metrics); always open.")

    @model_validator(mode="after")
    def _distinct_ports(self) -> HttpSection:
        if self.report_port == self.admin_port:
            raise ValueError("report_port and admin_port must differ")
        return self


class HaSection(_Section):
    lease_ttl_s: float = Field(default=10, gt=0,
                               description="Lifetime of the primary lease on the database clock.")
    renew_interval_s: float = Field(default=2, gt=0,
                                    description="How often the primary renews its lease.")
    renew_deadline_s: float = Field(
        default=6, gt=0,
        description="If no renew succeeded for this long, the primary steps down (closes the "
                    "report port, abandons its job) before the lease can expire.")
    exit_on_lease_loss: bool = Field(
        default=False,
        description="Exit non-zero on losing the lease instead of returning to backup mode "
                    "(for supervisors that restart the process).")

    @model_validator(mode="after")
    def _ordered(self) -> HaSection:
        if not self.renew_interval_s < self.renew_deadline_s < self.lease_ttl_s:
            raise ValueError(
                "timings must satisfy renew_interval_s < renew_deadline_s < lease_ttl_s "
                f"(got {self.renew_interval_s} < {self.renew_deadline_s} < {self.lease_ttl_s})")
        return self


class IconSection(_Section):
    name: str = Field(description="Name of this ICON database, used in logs and job records.",
                      min_length=1)
    url: str = Field(description="SQLAlchemy URL of the IDB (read-only access is enough). "
                                 "May be given as `url_file`.")
    ha_pair: str | None = Field(
        default=None,
        description="IDBs with the same ha_pair hold copies of the same sessions and are "
                    "de-duplicated by LOGINSESSIONID.")
    read_timeout_s: float = Field(
        default=300, gt=0,
        description="A read that receives nothing from this IDB for this many seconds is "
                    "abandoned and the IDB counted as failed for the run (a server or network "
                    "that stopped answering would otherwise hold the job for hours). PostgreSQL "
                    "IDBs; for other databases use the driver's timeouts in the URL.")


class GvpSection(_Section):
    primary_url: str = Field(description="Base URL of the primary GVP Reporting Server "
                                         "(e.g. http://rs1:8080/ems-rs).")
    backup_url: str | None = Field(default=None,
                                   description="Base URL of the backup Reporting Server.")
    username: str | None = Field(default=None, description="HTTP basic auth user.")
    password: str | None = Field(default=None,
                                 description="HTTP basic auth password; prefer `password_file`.")
    timeout_s: float = Field(default=10, gt=0, description="Per-request timeout.")
    retries: int = Field(default=2, ge=0, le=10,
                         description="Extra attempts per server on connection errors, timeouts "
                                     "and 5xx before failing over / giving up.")
    rm_path: str = Field(default="/operations/peaks/RM",
                         description="Path of the RM (IVR ports) peak report under the base URL.")
    asr_path: str = Field(default="/operations/peaks/ASR",
                          description="Path of the ASR ports peak report.")
    tts_path: str = Field(default="/operations/peaks/TTS",
                          description="Path of the TTS ports peak report.")
    concurrency: int = Field(default=4, ge=1, le=32,
                             description="Reports requested at once (a night asks for one per "
                                         "component and tenant: 603 with 200 tenants).")

    @field_validator("primary_url", "backup_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{value!r} is not an http:// or https:// URL")
            if parts.username is not None:
                raise ValueError(f"{parts.hostname}: give the credentials as username and "
                                 "password (or password_file), not in the URL")
            _ = parts.port  # raises ValueError naming a port that is not one
        return value


class ConfigSourceSection(_Section):
    kind: Literal["http", "file"] = Field(
        default="file", description='"http" (configuration gateway) or "file" (JSON document).')
    url: str | None = Field(default=None, description="Gateway base URL for kind = \"http\".")
    path: Path | None = Field(default=None,
                              description="JSON document for kind = \"file\" (relative to the "
                                          "config file's folder).")
    timeout_s: float = Field(default=10, gt=0, description="Gateway request timeout.")

    @model_validator(mode="after")
    def _target(self) -> ConfigSourceSection:
        if self.kind == "http" and not self.url:
            raise ValueError('kind = "http" needs url')
        if self.kind == "file" and self.path is None:
            raise ValueError('kind = "file" needs path')
        return self


class SellableItemSection(_Section):
    id: int = Field(ge=1, le=9999, description="Item id (1–9999; bundles use ids ≥ 10000).")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Stable machine name.")
    name: str = Field(min_length=1, description="Display name in reports.")
    rule: dict[str, Any] = Field(
        default_factory=dict,
        description="Declarative predicate over session attributes (see docs/counting.md).")


class Settings(_Section):
    """Everything lrm needs to know, validated once at start-up."""

    lrm: LrmSection = Field(default_factory=LrmSection, description="Instance and database.")
    job: JobSection = Field(default_factory=JobSection, description="The nightly job.")
    http: HttpSection = Field(default_factory=HttpSection, description="Listeners.")
    ha: HaSection = Field(default_factory=HaSection, description="Lease timings.")
    icon: list[IconSection] = Field(default_factory=list, description="ICON databases (IDBs).")
    gvp: GvpSection | None = Field(default=None, description="GVP Reporting Server pair.")
    config_source: ConfigSourceSection | None = Field(
        default=None, description="Where configuration (tenants, agents, DNs…) comes from.")
    sellable_items: list[SellableItemSection] = Field(
        default_factory=list, description="Extra sellable items defined by rules.")

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        names = [i.name for i in self.icon]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"icon names must be unique (repeated: {', '.join(duplicates)})")
        ids = [i.id for i in self.sellable_items]
        if len(ids) != len(set(ids)):
            raise ValueError("sellable_items ids must be unique")
        return self


# --------------------------------------------------------------------------- loading
def load_settings(path: Path | None, environ: Mapping[str, str] | None = None,
                  *, instance_id: str | None = None) -> Settings:
    """Read `path` (TOML; None means defaults only), apply `LRM_<SECTION>__<KEY>` overrides from
    `environ` and validate. Raises SettingsError naming the key and the problem."""
    env = dict(os.environ if environ is None else environ)
    base_dir = path.parent.resolve() if path else Path.cwd()
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SettingsError(f"configuration file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    where = str(path or "environment")
    # Secrets named in the file first, so an environment value can override them; then the
    # ones the environment names.
    _read_secret_files(raw, base_dir, where=where)
    _apply_env(raw, env)
    if instance_id:
        raw.setdefault("lrm", {})["instance_id"] = instance_id
    _read_secret_files(raw, base_dir, where=where)
    _resolve_paths(raw, base_dir)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, str(path or "settings"))) from exc


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    """`LRM_HTTP__REPORT_PORT=9090` sets [http] report_port; `LRM_ICON__0__URL=…` sets the first
    [[icon]] entry's url. Values are parsed as TOML scalars when they look like one."""
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "LRM_CONFIG":
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        target: Any = raw
        for depth, part in enumerate(parts[:-1]):
            if isinstance(target, list):
                index = int(part) if part.isdigit() else -1
                if not 0 <= index < len(target):
                    section = parts[depth - 1]
                    raise SettingsError(f"{name}: there is no entry {part} in [[{section}]]")
                target = target[index]
            else:
                target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise SettingsError(f"{name}: cannot set a key inside a list")
        target[parts[-1]] = _env_value(value)


def _env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _read_secret_files(raw: dict[str, Any], base_dir: Path, *, where: str) -> None:
    def visit(table: dict[str, Any], label: str) -> None:
        for key in list(table):
            value = table[key]
            if isinstance(value, dict):
                visit(value, f"{label}{key}.")
            elif isinstance(value, list):
                for index, entry in enumerate(value):
                    if isinstance(entry, dict):
                        visit(entry, f"{label}{key}[{index}].")
            elif key.endswith("_file") and key[:-5] in _SECRET_KEYS:
                secret_path = Path(str(value))
                if not secret_path.is_absolute():
                    secret_path = base_dir / secret_path
                try:
                    table[key[:-5]] = secret_path.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise SettingsError(
                        f"{where}: {label}{key}: cannot read {secret_path}: {exc.strerror}"
                    ) from exc
                del table[key]
    visit(raw, "")


def _resolve_paths(raw: dict[str, Any], base_dir: Path) -> None:
    for section, key in (("lrm", "data_dir"), ("config_source", "path")):
        table = raw.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            candidate = Path(table[key])
            table[key] = str(candidate if candidate.is_absolute() else base_dir / candidate)
    table = raw.get("lrm")
    if not (isinstance(table, dict) and "data_dir" in table):
        raw.setdefault("lrm", {})["data_dir"] = str(base_dir / ".lrm")


def _describe(exc: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid configuration"]
    for error in exc.errors():
        key = ""
        for part in error["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against docs/configuration.md)"
        lines.append(f"  {key or '(top level)'}: {message}")
    return "\n".join(lines)
