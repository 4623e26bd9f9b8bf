"""Structured logs and metrics.

Logs: stable dotted event names (`lease.acquired`, `job.finished`, …) with `instance_id` and
`epoch` bound; JSON lines when stderr is not a terminal (for log shippers), readable key=value
lines on a terminal. Alarm-grade events carry `alarm=true` and level error.

Metrics: one Prometheus registry per instance (not the global one), so tests can run several
instances in one process."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Events that need an operator (the original product raised Message Server alarms for these).
ALARMS = frozenset({"job.failed", "job.fenced", "source.unreachable", "lease.lost",
                    "source.auth_failed"})


def configure_logging(*, json_output: bool | None = None, level: int = logging.INFO) -> None:
    """Set up structlog once per process."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: Any = (structlog.processors.JSONRenderer() if json_output
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _mark_alarms,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _mark_alarms(logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if event_dict.get("event") in ALARMS:
        event_dict["alarm"] = True
    return event_dict


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger("lrm").bind(**bound)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.is_primary = Gauge("lrm_is_primary", "1 while this instance is primary", registry=r)
        self.lease_epoch = Gauge("lrm_lease_epoch", "Epoch of the lease this instance holds "
                                 "(or last saw)", registry=r)
        self.lease_renew_failures = Counter("lrm_lease_renew_failures",
                                            "Lease renewals that failed", registry=r)
        self.mode_changes = Counter("lrm_mode_changes", "Changes between primary and backup",
                                    ["mode"], registry=r)
        self.job_duration = Histogram("lrm_job_duration_seconds", "Nightly job run duration",
                                      ["status"], registry=r,
                                      buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600))
        self.job_last_success = Gauge("lrm_job_last_success_timestamp_seconds",
                                      "When a job run last succeeded (Unix time)", registry=r)
        self.job_runs = Counter("lrm_job_runs", "Job runs by final status", ["status"],
                                registry=r)
        self.source_errors = Counter("lrm_source_errors", "Errors reading a source",
                                     ["source"], registry=r)
