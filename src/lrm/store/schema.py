"""The LRM database schema (SQLAlchemy Core). Alembic migrations under `migrations/` create it;
a test checks that the migrations and this model agree.

Layout choices, and why:
- Per-minute values are stored as one `integer[]` per (business date, level, subject, item):
  a day is 1380, 1440 or 1500 minutes long, and a row per minute would be ~9 M rows a day at
  provider scale. Detailed reports unnest the array for the requested range.
- Usage rows share one shape for every level. `level` is 'tenant', 'system', 'agent_group' or
  'place_group'; `subject_id` is the tenant or group DBID (0 for the system). Bundles are items
  with ids >= 10000 in the same tables.
- Every result row carries the `run_id` of the job run that wrote it, so an operator can trace a
  figure to the run (instance, epoch, sources) that produced it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

LEVELS = ("tenant", "system", "agent_group", "place_group")
RUN_STATUSES = ("running", "succeeded", "failed", "fenced")
ROLES = ("provider", "tenant")

_now = text("now()")

# ----------------------------------------------------------------------- configuration
config_document = Table(
    "config_document", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("content_hash", String(64), nullable=False, unique=True,
           comment="sha256 of the values and list hashes (canonical JSON): identical "
                   "samples share one document"),
    Column("body", LargeBinary, nullable=False,
           comment="the stored JSON, zlib-compressed: a full document, or {\"$delta\": …} "
                   "for an edit of base_id (bytes: a provider's document outgrows jsonb's "
                   "256 MB)"),
    Column("base_id", BigInteger, ForeignKey("config_document.id"), nullable=True,
           comment="for an edit: the document it edits"),
    Column("compiled", LargeBinary, nullable=True,
           comment="a full document's attributes the counting core reads, as arrays "
                   "(lrm.store.compiled_config); NULL for an edit of another document"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    comment="Distinct configuration documents (tenants, persons, places, DNs, switches, groups).",
)

config_sample = Table(
    "config_sample", metadata,
    Column("taken_at", DateTime(timezone=True), primary_key=True,
           comment="the :00/:10/…/:50 mark the sample stands for"),
    Column("document_id", BigInteger, ForeignKey("config_document.id"), nullable=False),
    Column("instance_id", String(64), nullable=False),
    Column("enabled_agents", Integer, nullable=False,
           comment="persons with isAgent=2 and state=1 in this sample"),
    comment="A sample is stored only when the configuration changed since the previous one; "
            "the document in force at time t is that of the latest sample at or before t.",
)

tenant = Table(
    "tenant", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="CfgTenant DBID"),
    Column("name", String(255), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
)

config_group = Table(
    "config_group", metadata,
    Column("kind", String(16), primary_key=True),
    Column("id", Integer, primary_key=True, autoincrement=False, comment="CfgGroup DBID"),
    Column("tenant_id", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("kind IN ('agent_group', 'place_group')", name="kind"),
)

# ----------------------------------------------------------------------- catalogue
sellable_item = Table(
    "sellable_item", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rule", JSONB, nullable=True, comment="declarative session predicate (seat items)"),
    Column("builtin", Boolean, nullable=False, server_default=text("false")),
    CheckConstraint("id BETWEEN 1 AND 9999", name="id_range"),
    CheckConstraint("kind IN ('concurrent_seat', 'enabled_seat', 'port_peak')", name="kind"),
)

bundle_set = Table(
    "bundle_set", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("issue_date", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=False),
    Column("source_xml", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("id >= 10000", name="id_range"),
    CheckConstraint("valid_from <= valid_to", name="validity"),
)

bundle = Table(
    "bundle", metadata,
    Column("set_id", BigInteger, ForeignKey("bundle_set.id", ondelete="CASCADE"),
           primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("include_items", ARRAY(Integer), nullable=False),
    Column("exclude_items", ARRAY(Integer), nullable=False, server_default="{}"),
    CheckConstraint("id >= 10000", name="id_range"),
)

entitlement = Table(
    "entitlement", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), nullable=False),
    Column("customer_name", String(255), nullable=False),
    Column("site_id", String(64), nullable=False, server_default=""),
    Column("site_address", Text, nullable=False, server_default=""),
    Column("site_type", String(32), nullable=False, server_default=""),
    Column("issue_date", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=False),
    Column("expires", Date, nullable=True),
    Column("source_xml", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("valid_from <= valid_to", name="validity"),
)

entitlement_line = Table(
    "entitlement_line", metadata,
    Column("entitlement_id", BigInteger, ForeignKey("entitlement.id", ondelete="CASCADE"),
           primary_key=True),
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("quantity", Integer, nullable=False),
    Column("burst_limit", Integer, nullable=True),
    Column("license_type", String(32), nullable=False),
    Column("order_number", String(64), nullable=False, server_default=""),
    Column("sap_item", String(64), nullable=False, server_default=""),
    Column("sap_description", Text, nullable=False, server_default=""),
    CheckConstraint("quantity >= 0", name="quantity"),
)

provisioned_count = Table(
    "provisioned_count", metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("effective_date", Date, primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("quantity >= 0", name="quantity"),
    comment="History of tenant limits: the value for a day is the row with the latest "
            "effective_date on or before it.",
)

# ----------------------------------------------------------------------- job and HA
job_run = Table(
    "job_run", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("business_date", Date, nullable=False),
    Column("instance_id", String(64), nullable=False),
    Column("epoch", BigInteger, nullable=False, comment="lease epoch the run was started under"),
    Column("trigger", String(16), nullable=False, comment="schedule, catch_up or manual"),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("sessions_read", BigInteger, nullable=False, server_default="0"),
    Column("sessions_deduplicated", BigInteger, nullable=False, server_default="0"),
    Column("sessions_set_aside", JSONB, nullable=False, server_default="{}",
           comment="count per kind of bad row"),
    Column("source_outcome", JSONB, nullable=False, server_default="{}",
           comment="per source: ok / degraded / failed, with the message"),
    Column("timings", JSONB, nullable=False, server_default="{}"),
    Column("error", Text, nullable=True),
    CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
    Index("ix_job_run_business_date_started", "business_date", "started_at"),
)

job_lock = Table(
    "job_lock", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64), nullable=True),
    Column("epoch", BigInteger, nullable=False, server_default="0"),
    Column("run_id", BigInteger, nullable=True),
    Column("acquired_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    comment="One row per lock; a holder whose heartbeat lapsed may be replaced.",
)

ha_lease = Table(
    "ha_lease", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64), nullable=True),
    Column("epoch", BigInteger, nullable=False, server_default="0"),
    Column("acquired_at", DateTime(timezone=True), nullable=True),
    Column("renewed_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("released_by", String(64), nullable=True,
           comment="instance that released it gracefully; it waits one TTL before competing"),
    Column("released_at", DateTime(timezone=True), nullable=True),
)

api_token = Table(
    "api_token", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True,
           comment="sha256 of the secret; the secret itself is never stored"),
    Column("prefix", String(16), nullable=False, comment="first characters, to recognise it"),
    Column("role", String(16), nullable=False),
    Column("tenant_ids", ARRAY(Integer), nullable=False, server_default="{}"),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(f"role IN {ROLES!r}", name="role"),
)

# ----------------------------------------------------------------------- results
usage_daily = Table(
    "usage_daily", metadata,
    Column("level", String(16), nullable=False),
    Column("subject_id", BigInteger, nullable=False, autoincrement=False,
           comment="tenant or group DBID; 0 for the system"),
    Column("item_id", Integer, nullable=False, autoincrement=False),
    Column("business_date", Date, nullable=False),
    Column("peak_value", Integer, nullable=False),
    Column("peak_time", DateTime(timezone=True), nullable=True,
           comment="start of the latest minute at the peak; NULL when no value (e.g. GVP down)"),
    Column("run_id", BigInteger, nullable=False),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    # Report reads: a subject's rows of a date range are one range of the key, which carries
    # every column a report reads (an index-only scan). With the key in (…, item, date) order a
    # month of a tenant's 30 items was 30 ranges and a heap visit per row: 1.3 ms of
    # PostgreSQL's CPU a report against 0.5 ms (bench/RESULTS.md, report API).
    PrimaryKeyConstraint("level", "subject_id", "business_date", "item_id",
                         postgresql_include=["peak_value", "peak_time"]),
    Index("ix_usage_daily_business_date", "business_date"),
    # Inserts alone (a nightly job's ~30,000 rows) start an autovacuum, so that the new rows'
    # pages are marked all-visible and the index-only scan needs no heap visit for them; by
    # default an insert-only table waits until it grew by a fifth.
    postgresql_with={"autovacuum_vacuum_insert_scale_factor": "0",
                     "autovacuum_vacuum_insert_threshold": "10000"},
)

def _minute_columns(*, keyed: bool) -> list[Column[Any]]:
    """usage_minute's columns, with its primary key when `keyed`; its staging table has the
    same ones without the key (a staged row is moved as it is)."""
    return [
        Column("business_date", Date, primary_key=keyed, nullable=False),
        Column("level", String(16), primary_key=keyed, nullable=False),
        Column("subject_id", BigInteger, primary_key=keyed, nullable=False,
               autoincrement=False),
        Column("item_id", Integer, primary_key=keyed, nullable=False, autoincrement=False),
        Column("day_start", DateTime(timezone=True), nullable=False,
               comment="UTC instant of the business day's first minute"),
        Column("peaks", ARRAY(Integer), nullable=False,
               comment="per-minute peaks, one per minute of the business day (1380/1440/1500)"),
        Column("run_id", BigInteger, nullable=False),
    ]


usage_minute = Table(
    "usage_minute", metadata,
    *_minute_columns(keyed=True),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    # Purge deletes by business_date: the leading primary-key column serves it.
)

# Per-minute rows on their way into usage_minute. Several connections COPY a run's rows in
# here while the count goes on (parsing and compressing the arrays is most of a write, and one
# connection does it on one core); the run's transaction then moves them into usage_minute
# batch by batch, the values still compressed, and empties this table before it commits. So
# the results are still replaced in one transaction, and a failed run's rows here are never
# read (the next run's commit removes them). Unlogged and never vacuumed: nothing in it
# outlives a run or needs to survive a crash.
usage_minute_staged = Table(
    "usage_minute_staged", metadata,
    *_minute_columns(keyed=False),
    Column("batch", Integer, nullable=False, comment="the run's write batch"),
    prefixes=["UNLOGGED"],
    postgresql_with={"autovacuum_enabled": "false", "toast.autovacuum_enabled": "false"},
)

__all__ = [
    "LEVELS", "ROLES", "RUN_STATUSES", "api_token", "bundle", "bundle_set", "config_document",
    "config_group", "config_sample", "entitlement", "entitlement_line", "ha_lease", "job_lock",
    "job_run", "metadata", "provisioned_count", "sellable_item", "tenant", "usage_daily",
    "usage_minute", "usage_minute_staged",
]
