"""A report port that has just opened: every client's first request comes at once, with a
token the server has not checked yet. The token is checked once for all of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import lrm.api.deps
from lrm.store import tokens
from lrm.store.embedded import EmbeddedPostgres
from tests.integration.api_server import Api, running_api
from tests.own_loop import run_in_own_loop

CLIENTS = 20


@pytest.fixture
def api(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[Api]:
    with running_api(pg_server, lrm_template) as server:
        yield server


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens the server checks against the database (each check takes 50 ms longer, so
    that the clients' requests overlap on this machine)."""
    checked: list[str] = []
    real_authenticate = lrm.api.deps.authenticate

    def counted(connection: Any, token: str) -> Any:
        checked.append(token)
        time.sleep(0.05)
        return real_authenticate(connection, token)

    monkeypatch.setattr(lrm.api.deps, "authenticate", counted)
    return checked


def _at_once(api: Api, token: str) -> list[int]:
    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            answers = await asyncio.gather(*(
                client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {token}"})
                for _ in range(CLIENTS)))
        return [answer.status_code for answer in answers]

    return run_in_own_loop(main())


def test_a_new_token_is_checked_once_for_the_requests_that_bring_it_at_once(
        api: Api, checks: list[str]) -> None:
    with api.engine.begin() as connection:
        _, token = tokens.create_token(connection, "provider", [], "cold start")
    assert _at_once(api, token) == [200] * CLIENTS
    assert checks == [token]


def test_an_unknown_token_is_refused_to_every_request_after_one_check(
        api: Api, checks: list[str]) -> None:
    assert _at_once(api, "lrm_not-a-token") == [401] * CLIENTS
    assert checks == ["lrm_not-a-token"]
    assert _at_once(api, "lrm_not-a-token") == [401] * CLIENTS  # not remembered: checked again
    assert checks == ["lrm_not-a-token"] * 2
