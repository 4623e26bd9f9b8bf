"""The simulated configuration gateway over real HTTP."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from lrm.sim.gateway import ConfigGatewayServer
from lrm.sim.httpserver import HttpService, Request, Response
from lrm.sim.model import SimDataset, SimParams, generate
from lrm.sim.timeline import CONFIG_KEYS, iso_utc


class Clock:
    """A settable clock injected into the server."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def dataset() -> SimDataset:
    return generate(SimParams(tenants=2, agents_per_tenant=12, days=3, seed=4),
                    today=date(2026, 11, 25))


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))


@pytest.fixture
def gateway(dataset: SimDataset, clock: Clock) -> Iterator[ConfigGatewayServer]:
    with ConfigGatewayServer(dataset.timeline, clock=clock) as server:
        yield server


def test_gateway_serves_every_document(gateway: ConfigGatewayServer,
                                       dataset: SimDataset) -> None:
    """Each SPEC §4.2 key is a JSON array at {url}/<key>; /document has all keys in one object."""
    assert gateway.url.endswith("/cfg")
    final = dataset.config
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        for key in CONFIG_KEYS:
            response = client.get(f"/{key}")
            assert response.status_code == 200, key
            assert response.headers["content-type"] == "application/json"
            assert response.json() == final[key]
        document = client.get("/document").json()
    assert set(document) == set(CONFIG_KEYS)
    assert document == final


def test_as_of_shows_a_group_membership_change(gateway: ConfigGatewayServer,
                                               dataset: SimDataset) -> None:
    """`as_of` before the 15:00 move shows the agent in its old group, at and after it in the
    new one (offsets accepted)."""
    move = next(c for c in dataset.timeline.changes if "moved" in c.what)
    person = 1001
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        before = client.get("/agent-groups", params={"as_of": iso_utc(move.at - 1)}).json()
        at = client.get("/agent-groups", params={"as_of": iso_utc(move.at)}).json()
        offset = datetime.fromtimestamp(move.at + 60, UTC).astimezone().isoformat()
        after = client.get("/agent-groups", params={"as_of": offset}).json()
    groups_before = {g["DBID"]: g["members"] for g in before}
    assert person in groups_before[7001]
    assert person not in groups_before[7002]
    for state in (at, after):
        groups = {g["DBID"]: g["members"] for g in state}
        assert person not in groups[7001]
        assert person in groups[7002]


def test_without_as_of_the_injected_clock_decides(gateway: ConfigGatewayServer,
                                                  dataset: SimDataset, clock: Clock) -> None:
    """Without `as_of` the gateway answers as of its clock's now: an agent added during the
    period is absent before its creation and present after."""
    added = next(c for c in dataset.timeline.changes
                 if c.key == "persons" and c.what.endswith("created"))
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        clock.now = datetime.fromtimestamp(added.at - 600, UTC)
        early = {p["DBID"] for p in client.get("/persons").json()}
        clock.now = datetime.fromtimestamp(added.at, UTC)
        late = {p["DBID"] for p in client.get("/persons").json()}
    assert added.obj["DBID"] not in early
    assert added.obj["DBID"] in late
    assert late - early == {c.obj["DBID"] for c in dataset.timeline.changes
                            if c.key == "persons" and c.at == added.at}


def test_unknown_paths_and_bad_requests_get_json_errors(gateway: ConfigGatewayServer) -> None:
    """Unknown paths are 404, a bad `as_of` is 400 and writes are 405, all with a JSON error."""
    root = gateway.url.removesuffix("/cfg")
    with httpx.Client(timeout=5) as client:
        for path in ("/cfg/agents", "/nothing", "/cfg/persons/1001", "/_control/gvp"):
            response = client.get(root + path)
            assert response.status_code == 404, path
            assert "error" in response.json()
        bad = client.get(gateway.url + "/persons", params={"as_of": "yesterday"})
        assert bad.status_code == 400
        assert "as_of" in bad.json()["error"]
        assert client.post(gateway.url + "/persons").status_code == 405
        changes = client.get(gateway.url + "/changes").json()
        assert changes
        assert {"at", "key", "op", "object", "what"} == set(changes[0])


def test_unchanged_lists_are_confirmed_with_304_and_reused_by_the_client(
        gateway: ConfigGatewayServer, dataset: SimDataset) -> None:
    """Each list has an ETag that changes only with that list; `If-None-Match` with the current
    one gets a 304 without a body. lrm's gateway client sends it and returns the very list
    objects it kept, so an unchanged list is neither downloaded nor compared again."""
    from lrm.sources.config import HttpConfigSource

    move = next(c for c in dataset.timeline.changes if "moved" in c.what)
    before, after = iso_utc(move.at - 1), iso_utc(move.at)
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        first = client.get("/agent-groups", params={"as_of": before})
        etag = first.headers["etag"]
        same = client.get("/agent-groups", params={"as_of": before},
                          headers={"If-None-Match": etag})
        assert (same.status_code, same.content) == (304, b"")
        moved = client.get("/agent-groups", params={"as_of": after},
                           headers={"If-None-Match": etag})
        assert moved.status_code == 200 and moved.headers["etag"] != etag
        persons = client.get("/persons", params={"as_of": before}).headers["etag"]
        assert client.get("/persons", params={"as_of": after},
                          headers={"If-None-Match": persons}).status_code == 304

    source = HttpConfigSource(gateway.url)
    try:
        a = source.fetch(as_of=datetime.fromtimestamp(move.at - 1, UTC))
        b = source.fetch(as_of=datetime.fromtimestamp(move.at, UTC))
        c = source.fetch(as_of=datetime.fromtimestamp(move.at - 1, UTC))
    finally:
        source.close()
    assert b["persons"] is a["persons"]
    assert b["agent-groups"] is not a["agent-groups"] and b["agent-groups"] != a["agent-groups"]
    assert c == a
    assert b == dataset.timeline.document_at(move.at)


def test_a_sampler_source_keeps_only_etags(gateway: ConfigGatewayServer,
                                           dataset: SimDataset) -> None:
    """`keep_lists=False`: nothing changed → None; one list changed → the whole document (the
    unchanged lists read again), equal to the configuration in force."""
    from lrm.sources.config import HttpConfigSource

    move = next(c for c in dataset.timeline.changes if "moved" in c.what)
    before, at = (datetime.fromtimestamp(t, UTC) for t in (move.at - 1, move.at))
    source = HttpConfigSource(gateway.url, keep_lists=False)
    try:
        first = source.fetch_if_changed(before)
        assert first == dataset.timeline.document_at(move.at - 1)
        assert source.fetch_if_changed(before) is None
        assert source.fetch_if_changed(at) == dataset.timeline.document_at(move.at)
        source.forget()
        assert source.fetch_if_changed(at) == dataset.timeline.document_at(move.at)
    finally:
        source.close()


class _FlakyGateway:
    """A gateway (real HTTP) whose lists carry ETags and whose `fail` list answers 500."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fail: str | None = None

    def respond(self, request: Request) -> Response:
        key = request.path.removeprefix("/cfg/")
        if key == self.fail:
            return Response(500, b'{"error": "down"}')
        body = json.dumps(self.document[key]).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(304, b"", headers={"ETag": etag})
        return Response(200, body, headers={"ETag": etag})


def test_a_fetch_that_fails_halfway_forgets_every_etag(dataset: SimDataset) -> None:
    """Lists read before a failing one must not count as seen: after the failure, a fetch
    whose answers are all 304 would otherwise report "nothing changed" and the change read
    just before the failure would never be stored."""
    from lrm.domain.errors import SourceError
    from lrm.sources.config import HttpConfigSource

    app = _FlakyGateway(copy.deepcopy(dataset.config))
    service = HttpService(app).start()
    try:
        source = HttpConfigSource(service.url("/cfg"), keep_lists=False)
        try:
            assert source.fetch_if_changed() == app.document
            app.document["persons"] = app.document["persons"][1:]   # a change ...
            app.fail = "agent-groups"                                # ... and a failure
            with pytest.raises(SourceError, match="500"):
                source.fetch_if_changed()
            app.fail = None
            assert source.fetch_if_changed() == app.document        # not None: re-read
            assert source.fetch_if_changed() is None
        finally:
            source.close()
    finally:
        service.close()
