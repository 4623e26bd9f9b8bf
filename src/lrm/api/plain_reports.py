"""Plain tenant and system report requests read without FastAPI.

A report that is not cached costs the server about a millisecond to build, and FastAPI adds
~0.3 ms before the handler runs: it resolves the dependencies and validates the seven query
parameters again for every request (`lrm.api.repeated_reports` says more). A just-started
server, or one whose data just changed, gets mostly such requests, so that is a fifth of its
work then. `plain_report_key` reads the common, valid request directly, into the very report
request the handler would make (the same functions make it); `RepeatedReports` builds and
answers it.

"Plain" is strict on purpose: each parameter the endpoint knows at most once (the repeatable
ones any number of times), ids as plain decimal numbers in range, choices spelled as the
OpenAPI document lists them, nothing percent-encoded, nothing unknown. Anything else — and every
request FastAPI would refuse — gives None and goes through FastAPI, which answers it (errors
included) exactly as before."""

from __future__ import annotations

from typing import get_args

from lrm.api.deps import HttpError
from lrm.api.routes import (
    MAX_DBID,
    Format,
    GranularityQ,
    WeekStart,
    report_request,
    tenant_request,
    wants_csv,
)
from lrm.domain.errors import InputError
from lrm.reporting import ReportRequest
from lrm.store.tokens import Principal


def _choices(annotated: object) -> frozenset[str]:
    """The values of a `Literal` query parameter (`Annotated[Literal[...] | None, Query]`)."""
    literal = get_args(annotated)[0]
    values = [v for part in (get_args(literal) or (literal,)) for v in get_args(part) or (part,)]
    return frozenset(v for v in values if isinstance(v, str))


_SINGLE = {"from": None, "to": None, "granularity": _choices(GranularityQ),
           "week_start": _choices(WeekStart), "format": _choices(Format)}
_REPEATABLE = {"/api/v1/reports/tenant": ("tenant", "item"), "/api/v1/reports/system": ("item",)}
_DIGITS = frozenset("0123456789")


def plain_report_key(path: str, query_string: bytes, accept: str,
                     principal: Principal) -> tuple[ReportRequest, bool] | None:
    """The report cache key (request, CSV or not) the report handler of `path` would make for
    this query and caller — None unless the request is plain and allowed (FastAPI answers it)."""
    repeatable = _REPEATABLE.get(path)
    parsed = None if repeatable is None else _plain_query(query_string, repeatable)
    if parsed is None:
        return None
    single, lists = parsed
    start, end = single["from"], single["to"]
    granularity = single.get("granularity", "day")
    week_start = single.get("week_start", "monday")
    items = lists["item"] or None
    try:
        if path != "/api/v1/reports/system":
            request = tenant_request(principal, lists["tenant"] or None, start, end,
                                     granularity, week_start, items)
        elif principal.is_provider:
            request = report_request("system", start, end, granularity, week_start, items)
        else:
            return None
    except (HttpError, InputError):
        return None
    return request, wants_csv(single.get("format"), accept)


def _plain_query(query_string: bytes,
                 repeatable: tuple[str, ...]) -> tuple[dict[str, str], dict[str, list[int]]] | None:
    """(single parameters, repeatable ones as ids) of a plain query string, else None."""
    query = query_string.decode("latin-1")
    if "%" in query or "+" in query:
        return None  # encoded values: left to FastAPI's decoding
    single: dict[str, str] = {}
    lists: dict[str, list[int]] = {name: [] for name in repeatable}
    for part in query.split("&") if query else ():
        name, equals, value = part.partition("=")
        if name in lists:
            number = _dbid(value)
            if number is None:
                return None
            lists[name].append(number)
            continue
        if not equals or not value or name not in _SINGLE or name in single:
            return None
        choices = _SINGLE[name]
        if choices is not None and value not in choices:
            return None
        single[name] = value
    return (single, lists) if "from" in single and "to" in single else None


def _dbid(text: str) -> int | None:
    """A DBID written plainly (no sign, no leading zero, no spaces, in range), else None."""
    if not text or len(text) > 10 or text[0] == "0" or not _DIGITS.issuperset(text):
        return None
    number = int(text)
    return number if number <= MAX_DBID else None
