"""Repeated report requests answered before FastAPI parses them, and plain ones built without it.

A cached report costs the server about 0.47 ms, and less than a third of that is the report:
FastAPI spends ~0.25 ms resolving the dependencies and validating the seven query parameters of
every request, again for a request it answered a moment ago. Clients of a billing API repeat
the same requests (the same months, tenants and token, run after run), so this middleware
remembers, for each 200 answer of a report endpoint, what determined it — the token, the path,
the raw query string and the `Accept` headers — and which cached report it was
(`ReportCache`), and answers a repeat with that report's cached body without going through
FastAPI, while everything the answer depended on is unchanged:

- the token's last successful check is recent and gave the same principal (`ApiContext`,
  `TOKEN_CACHE_S`, refreshed in the background while it is used): a revoked token stops
  being answered from here as soon as it stops being answered at all;
- the data version and this process's writes (`ReportCache.current_tag`) are those under
  which FastAPI answered, checked when the answer was sent: the handler may have answered
  from an older version than the one current when the request came (a reference read
  already under way), and such an answer is not remembered. Any change of the data — a job
  run, an upload, a changed limit, a group moved to another tenant — makes every remembered
  answer stale, so group reports are authorised again against the new data;
- `ReportCache` still holds the report for the current version (the body is taken from it:
  this keeps no body of its own).

A request that is not a repeat, but a plain tenant or system report request from a token
checked recently (`lrm.api.plain_reports`), is built here the way the handler builds it (the
same request, cache and build), answered with the same response, and remembered the same way;
FastAPI then costs it nothing. Should the build refuse it (an unknown tenant or item) or fail,
FastAPI handles the request from the start, and answers as it always did.

Anything else (another method or path, no token or one not checked recently, an answer that is
not a 200 in one piece, an unusually long query, a request that is not plain) goes through
FastAPI as before."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lrm.api.cache import MAX_ENTRIES
from lrm.api.deps import ApiContext, bearer_token
from lrm.api.plain_reports import plain_report_key
from lrm.api.routes import REPORT_KEY_STATE, Rendered, build_on_loop
from lrm.store.tokens import Principal

REPORT_PATHS = frozenset({"/api/v1/reports/tenant", "/api/v1/reports/system",
                          "/api/v1/reports/agent-group", "/api/v1/reports/place-group"})
# Queries and Accept headers longer than this are not remembered (they are keys held here).
MAX_KEY_BYTES = 2048
_Key = tuple[str, str, bytes, tuple[bytes, ...]]  # token, path, query string, Accept values


class _Answer:
    __slots__ = ("headers", "principal", "report_key", "tag")

    def __init__(self, headers: list[tuple[bytes, bytes]], report_key: Hashable,
                 tag: tuple[Any, ...], principal: Principal) -> None:
        self.headers = headers
        self.report_key = report_key
        self.tag = tag
        self.principal = principal


class RepeatedReports:
    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context
        self._answers: OrderedDict[_Key, _Answer] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        reports = self.context.reports
        tag = reports.current_tag()
        answer = self._answers.get(key)
        if answer is not None and answer.tag != tag:
            del self._answers[key]  # built under other data
            answer = None
        if answer is not None:
            body = reports.remembered(answer.report_key)
            if body is not None and self.context.remembered_principal(key[0]) == answer.principal:
                self._answers.move_to_end(key)
                # The length is the body's: the cache may hold a rebuild of the same report.
                await send({"type": "http.response.start", "status": 200, "headers": [
                    *answer.headers, (b"content-length", b"%d" % len(body[0]))]})
                await send({"type": "http.response.body", "body": body[0]})
                return
        if tag is None or len(scope["query_string"]) + sum(map(len, key[3])) > MAX_KEY_BYTES:
            await self.app(scope, receive, send)
            return
        if await self._answer_plain(key, tag, scope, receive, send):
            return
        await self._answer_and_remember(key, tag, scope, receive, send)

    async def _answer_plain(self, key: _Key, tag: tuple[Any, ...], scope: Scope,
                            receive: Receive, send: Send) -> bool:
        """Answer a plain report request as its handler would (True), or nothing (False)."""
        principal = self.context.remembered_principal(key[0])
        if principal is None:
            return False
        report_key = plain_report_key(scope["path"], scope["query_string"],
                                      key[3][0].decode("latin-1") if key[3] else "", principal)
        if report_key is None:
            return False
        rendered: Rendered | None = self.context.reports.remembered(report_key)
        if rendered is None:
            try:
                rendered = await build_on_loop(self.context, report_key)
            except Exception:
                # Any refusal or failure (a 422; a database error, raised by the driver or as
                # DatabaseError): FastAPI handles the request from the start, and its handlers
                # answer it as they always did.
                return False
            if rendered is None:  # to be built in a thread: the handler does that
                return False
        content, media_type, headers = rendered
        response = Response(content, media_type=media_type, headers=headers)
        await response(scope, receive, send)
        self._remember(key, tag, [header for header in response.raw_headers
                                  if header[0] != b"content-length"], report_key, content)
        return True

    async def _answer_and_remember(self, key: _Key, tag: tuple[Any, ...], scope: Scope,
                                   receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] | None = None
        sent_body: bytes | None = None
        in_parts = False

        async def watching(message: Message) -> None:
            nonlocal headers, sent_body, in_parts
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name.lower() != b"content-length"]
            elif message["type"] == "http.response.body":
                in_parts = in_parts or bool(message.get("more_body", False))
                sent_body = message.get("body", b"")
            await send(message)

        await self.app(scope, receive, watching)
        report_key = scope.get("state", {}).get(REPORT_KEY_STATE)
        if headers is None or in_parts or report_key is None or sent_body is None:
            return
        self._remember(key, tag, headers, report_key, sent_body)

    def _remember(self, key: _Key, tag: tuple[Any, ...], headers: list[tuple[bytes, bytes]],
                  report_key: Hashable, sent_body: bytes) -> None:
        reports = self.context.reports
        principal = self.context.remembered_principal(key[0])
        # Remembered only if the body sent is the report cached under the tag read before the
        # request, and that tag is still the current one.
        cached = reports.get(report_key, tag[0])
        if (principal is None or cached is None or cached[0] is not sent_body
                or reports.current_tag() != tag):
            return
        self._answers[key] = _Answer(headers, report_key, tag, principal)
        while len(self._answers) > MAX_ENTRIES:
            self._answers.popitem(last=False)


def _key(scope: Scope) -> _Key | None:
    """What a report answer depends on besides the data; None: not a report request."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in REPORT_PATHS:
        return None
    token = None
    accepts: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            if token is not None:
                return None  # two: left to FastAPI
            token = bearer_token(value.decode("latin-1"))
            if token is None:
                return None
        elif name == b"accept":
            accepts.append(value)
    if token is None:
        return None
    return token, scope["path"], scope["query_string"], tuple(accepts)
