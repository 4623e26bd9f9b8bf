"""Repeated report requests are answered before FastAPI parses them
(`lrm.api.repeated_reports`), with exactly the answer FastAPI gave: per token, per query and
`Accept`, only 200s, and never across a change of the data. Real server, real database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa

import lrm.api.routes
from lrm.api.cache import ReportCache
from lrm.api.deps import ApiContext
from lrm.api.plain_reports import plain_report_key
from lrm.api.repeated_reports import MAX_KEY_BYTES, RepeatedReports, _key
from lrm.api.routes import REPORT_KEY_STATE
from lrm.domain.items import build_catalogue
from lrm.settings import load_settings
from lrm.store import tokens
from lrm.store.embedded import EmbeddedPostgres
from lrm.store.schema import config_group, job_run
from tests.integration.api_server import Api, running_api
from tests.own_loop import run_in_own_loop

MONTH = {"tenant": 101, "from": "2026-11-01", "to": "2026-11-30", "granularity": "day"}


@pytest.fixture
def api(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[Api]:
    with running_api(pg_server, lrm_template) as server:
        yield server


@pytest.fixture
def handled(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The report requests answered from the report cache or a build — by FastAPI's handlers,
    or by the middleware's plain path — and not as remembered repeats, once the server has
    read the data version (an answer built before that is not kept: its version is not
    known)."""
    assert _get(api, api.provider, {**MONTH, "granularity": "week"}).status_code == 200
    calls: list[object] = []
    real_render = lrm.api.routes._render
    real_plain = RepeatedReports._answer_plain

    async def counted(request: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(request.url.query)
        return await real_render(request, *args, **kwargs)

    async def counted_plain(self: RepeatedReports, key: Any, *args: Any) -> bool:
        answered = await real_plain(self, key, *args)
        if answered:
            calls.append(key[2].decode())
        return answered

    monkeypatch.setattr(lrm.api.routes, "_render", counted)
    monkeypatch.setattr(RepeatedReports, "_answer_plain", counted_plain)
    return calls


def _get(api: Api, token: str, params: dict[str, object] = MONTH,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(api.url + "/api/v1/reports/tenant", params=params, timeout=10,
                     headers={"Authorization": f"Bearer {token}", **(headers or {})})


def test_a_repeat_is_answered_without_the_handler_with_the_same_answer(
        api: Api, handled: list[object]) -> None:
    first = _get(api, api.provider)
    again = _get(api, api.provider)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert again.headers["content-length"] == str(len(first.content))
    assert len(handled) == 1


def test_another_token_gets_its_own_answer(api: Api, handled: list[object]) -> None:
    assert _get(api, api.provider).status_code == 200
    refused = _get(api, api.tenant_b)  # the same URL, a token that may not see tenant 101
    assert refused.status_code == 403
    assert _get(api, api.tenant_a).status_code == 200
    assert len(handled) == 2  # the provider's and tenant A's (B is refused before the handler)


def test_csv_and_json_of_the_same_url_are_kept_apart(api: Api, handled: list[object]) -> None:
    as_json = _get(api, api.provider)
    as_csv = _get(api, api.provider, headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    assert _get(api, api.provider, headers={"Accept": "text/csv"}).content == as_csv.content
    assert _get(api, api.provider).content == as_json.content
    assert len(handled) == 2


def test_only_successful_answers_are_kept(api: Api, handled: list[object]) -> None:
    bad = {**MONTH, "tenant": 999}
    assert _get(api, api.provider, bad).status_code == 422
    assert _get(api, api.provider, bad).status_code == 422
    assert len(handled) == 2


def test_an_own_write_is_seen_by_the_next_repeat(api: Api, handled: list[object]) -> None:
    def first_row() -> dict[str, Any]:
        response = _get(api, api.provider)
        assert response.status_code == 200
        row: dict[str, Any] = response.json()["rows"][0]
        return row

    row = first_row()
    assert first_row() == row
    assert len(handled) == 1
    changed = httpx.put(api.url + "/api/v1/provisioned-counts", timeout=10,
                        headers={"Authorization": f"Bearer {api.provider}"},
                        json={"tenant_id": 101, "item_id": row["item_id"],
                              "effective_date": row["period_start"], "quantity": 977})
    assert changed.status_code == 201, changed.text
    assert first_row()["limit"] == 977
    assert len(handled) == 2


def test_a_long_query_is_answered_but_not_remembered(api: Api,
                                                     handled: list[object]) -> None:
    padded = {**MONTH, "padding": "x" * MAX_KEY_BYTES}  # an unknown parameter: ignored
    for _ in range(2):
        assert _get(api, api.provider, padded).status_code == 200
    assert len(handled) == 2


def test_a_group_moved_to_another_tenant_is_refused_to_the_old_tenant_s_token(
        api: Api, handled: list[object]) -> None:
    def group_report() -> int:
        return httpx.get(api.url + "/api/v1/reports/agent-group", timeout=10, params={
            "group": 7001, "from": "2026-11-01", "to": "2026-11-30"},
            headers={"Authorization": f"Bearer {api.tenant_a}"}).status_code

    assert [group_report() for _ in range(3)] == [200] * 3
    with api.engine.begin() as c:  # what a configuration sample of another process does
        c.execute(sa.update(config_group).where(config_group.c.id == 7001).values(
            tenant_id=102, updated_at=sa.func.clock_timestamp()))
    started = time.monotonic()
    while group_report() != 403:
        assert time.monotonic() - started < 1.5, "still answered after 1.5 s"
        time.sleep(0.05)


PLAIN_CASES = [  # (path, parameters, Accept header, token)
    ("tenant", MONTH, None, "provider"),
    ("tenant", {**MONTH, "granularity": "week", "week_start": "sunday", "item": 1}, None,
     "provider"),
    ("tenant", {**MONTH, "format": "csv"}, None, "provider"),
    ("tenant", MONTH, "text/csv", "provider"),
    ("tenant", {"from": "2026-11-01", "to": "2026-11-30"}, None, "tenant_a"),
    ("system", {"from": "2026-11-01", "to": "2026-11-15", "granularity": "month"}, None,
     "provider"),
]


@pytest.mark.parametrize(("kind", "params", "accept", "who"), PLAIN_CASES)
def test_a_plain_request_is_answered_without_fastapi_as_fastapi_answers_it(
        api: Api, monkeypatch: pytest.MonkeyPatch, kind: str, params: dict[str, object],
        accept: str | None, who: str) -> None:
    """The plain path makes the very cache key the handler makes, and answers with the same
    status, headers and body; the same request made not plain (an unknown parameter, which
    FastAPI ignores) goes to the handler."""
    handler_keys: list[object] = []
    plain_answers: list[bool] = []
    real_render = lrm.api.routes._render
    real_plain = RepeatedReports._answer_plain

    async def recording(request: Any, *args: Any, **kwargs: Any) -> Any:
        response = await real_render(request, *args, **kwargs)
        handler_keys.append(getattr(request.state, REPORT_KEY_STATE))
        return response

    async def watched(self: RepeatedReports, *args: Any) -> bool:
        answered = await real_plain(self, *args)
        plain_answers.append(answered)
        return answered

    monkeypatch.setattr(lrm.api.routes, "_render", recording)
    monkeypatch.setattr(RepeatedReports, "_answer_plain", watched)
    token = getattr(api, who)
    headers = {"Authorization": f"Bearer {token}", **({"Accept": accept} if accept else {})}
    path = f"/api/v1/reports/{kind}"

    def get(query: dict[str, object]) -> httpx.Response:
        return httpx.get(api.url + path, params=query, headers=headers, timeout=10)

    # The token is checked (by FastAPI: the query is not plain) and remembered.
    assert get({**params, "first": "1"}).status_code == 200
    plain_answers.clear()
    plain = get(params)
    assert plain_answers == [True]
    plain_answers.clear()
    handler_keys.clear()
    handled = get({**params, "unused": "1"})
    assert plain_answers == [False] and len(handler_keys) == 1
    with api.engine.connect() as c:
        principal = tokens.authenticate(c, token)
    assert principal is not None
    key = plain_report_key(path, urlencode(params).encode(), accept or "", principal)
    assert key == handler_keys[0]
    assert plain.status_code == handled.status_code == 200
    assert plain.content == handled.content
    assert ({k: v for k, v in plain.headers.items() if k not in ("date", "server")}
            == {k: v for k, v in handled.headers.items() if k not in ("date", "server")})


def test_a_plain_request_the_database_fails_is_answered_as_fastapi_answers_it(
        api: Api) -> None:
    """A real failure of the database while a plain request is built (here the reference of a
    new data version cannot be read: a table it reads is gone) is answered by FastAPI's
    handlers — a 503 with its JSON body and Retry-After, as for any request — not a 500."""
    nov = {"tenant": 101, "from": "2026-11-02", "to": "2026-11-29"}
    assert _get(api, api.provider, {**MONTH, "first": 1}).status_code == 200  # token checked
    with api.engine.begin() as c:
        c.execute(sa.text("ALTER TABLE entitlement_line RENAME TO entitlement_line_away"))
        c.execute(sa.insert(job_run).values(business_date=date(2026, 11, 13),
                                            instance_id="lrm-b", epoch=2, trigger="manual",
                                            status="succeeded"))
    try:
        time.sleep(1.2)  # the new data version is seen; its reference is not read yet
        through_fastapi = _get(api, api.provider, {**nov, "unused": 1})
        plain = _get(api, api.provider, nov)
    finally:
        with api.engine.begin() as c:
            c.execute(sa.text("ALTER TABLE entitlement_line_away RENAME TO entitlement_line"))
    assert plain.status_code == through_fastapi.status_code == 503
    assert plain.headers["retry-after"] == through_fastapi.headers["retry-after"]
    assert plain.json() == through_fastapi.json()
    assert _get(api, api.provider, nov).status_code == 200  # and it recovers


def _scope(headers: list[tuple[bytes, bytes]], *, method: str = "GET",
           path: str = "/api/v1/reports/system") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "query_string": b"from=x",
            "headers": headers}


def test_the_key_is_what_the_answer_depends_on() -> None:
    bearer = (b"authorization", b"Bearer abc ")
    assert _key(_scope([bearer])) == ("abc", "/api/v1/reports/system", b"from=x", ())
    assert _key(_scope([(b"authorization", b"bearer abc"), (b"accept", b"text/csv"),
                        (b"accept", b"*/*")])) == (
        "abc", "/api/v1/reports/system", b"from=x", (b"text/csv", b"*/*"))
    assert _key(_scope([])) is None  # no token: FastAPI answers 401
    assert _key(_scope([(b"authorization", b"Basic abc")])) is None
    assert _key(_scope([(b"authorization", b"Bearer ")])) is None
    assert _key(_scope([bearer, bearer])) is None  # ambiguous: left to FastAPI
    assert _key(_scope([bearer], method="POST")) is None
    assert _key(_scope([bearer], path="/api/v1/tenants")) is None


@pytest.mark.parametrize("built_under", ["the current version", "an older version",
                                         "the current version, then rebuilt"])
def test_an_answer_is_remembered_only_if_built_under_the_version_current_when_it_came(
        lrm_db_url: str, lrm_engine: sa.Engine, built_under: str) -> None:
    """The handler may answer from a version older than the one current when the request came
    (it joined a reference read begun before another process committed): such an answer must
    not be repeated under the newer version."""
    settings = load_settings(None, environ={"LRM_LRM__DATABASE_URL": lrm_db_url})
    context = ApiContext(settings=settings, engine=lrm_engine, catalogue=build_catalogue(),
                         instance_id="lrm-a", reports=ReportCache(lrm_engine))
    with lrm_engine.begin() as c:
        _, token = tokens.create_token(c, "provider", [], "test")
    assert context.principal(token) is not None  # checked: remembered
    older = context.reports.refresh_version()
    with lrm_engine.begin() as c:  # another process's job commits
        c.execute(sa.insert(job_run).values(business_date=date(2026, 11, 2), instance_id="lrm-b",
                                            epoch=2, trigger="manual", status="succeeded"))
    current = context.reports.refresh_version()
    assert current != older
    handled: list[int] = []

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        handled.append(1)
        body = f"built {len(handled)}".encode()
        if built_under.startswith("the current version"):
            context.reports.put("report", (body, "application/json", {}), current)
        else:  # and another request built it under the current version meanwhile
            context.reports.put("report", (body, "application/json", {}), older)
            context.reports.put("report", (b"built by another request", "application/json",
                                           {}), current)
        scope.setdefault("state", {})[REPORT_KEY_STATE] = "report"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    middleware = RepeatedReports(handler, context)

    async def get() -> bytes:
        scope = {"type": "http", "method": "GET", "path": "/api/v1/reports/system",
                 "query_string": b"from=2026-11-01&to=2026-11-30",
                 "headers": [(b"authorization", f"Bearer {token}".encode())]}
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        await middleware(scope, None, send)  # type: ignore[arg-type]
        assert sent[0]["status"] == 200
        body = bytes(sent[1]["body"])
        lengths = [value for name, value in sent[0]["headers"] if name == b"content-length"]
        assert lengths in ([], [b"%d" % len(body)])  # the handler's carry none
        return body

    async def twice() -> list[bytes]:
        first = await get()
        if built_under.endswith("rebuilt"):  # evicted and built again: another length
            context.reports.put("report", (b"built again, longer", "application/json", {}),
                                current)
        return [first, await get()]

    first, again = run_in_own_loop(twice())
    if built_under == "the current version":
        assert (first, again, len(handled)) == (b"built 1", b"built 1", 1)
    elif built_under.endswith("rebuilt"):
        assert (first, again, len(handled)) == (b"built 1", b"built again, longer", 1)
    else:
        assert (first, again, len(handled)) == (b"built 1", b"built 2", 2)
