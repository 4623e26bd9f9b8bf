"""The simulated GVP Reporting Server pair over real HTTP: auth, XML, values, failure switches."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import httpx
import pytest

from lrm.sim.gateway import ConfigGatewayServer
from lrm.sim.gvp import GvpPair
from lrm.sim.httpserver import port_is_open
from lrm.sim.model import SimDataset
from tests.integration.gvp_credentials import GVP_PASSWORD, GVP_USER

USER, PASSWORD = GVP_USER, GVP_PASSWORD
AUTH = (USER, PASSWORD)


DAY = {"granularity": "FIVE_MINUTES", "from": "2026-11-23T00:00:00.000Z",
       "to": "2026-11-24T00:00:00.000Z"}


def _peaks(body: str) -> list[tuple[str, int]]:
    root = ET.fromstring(body)
    return [(p.attrib["time"], int(p.attrib["count"])) for p in root.iter("peak")]


def test_basic_auth_is_required(gvp_pair: GvpPair, gvp_dataset: SimDataset) -> None:
    """No or wrong credentials get 401 with a Basic challenge; the right ones get 200."""
    url = gvp_pair.primary_url + "/operations/peaks/RM"
    with httpx.Client(timeout=5) as client:
        missing = client.get(url, params=DAY)
        wrong = client.get(url, params=DAY, auth=(USER, "nope"))
        other_user = client.get(url, params=DAY, auth=("root", PASSWORD))
        ok = client.get(url, params=DAY, auth=AUTH)
    for response in (missing, wrong, other_user):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="ems-rs"'
    assert ok.status_code == 200


def test_peak_report_xml_shape_and_normalized_params(gvp_pair: GvpPair) -> None:
    """The response is the SPEC §4.3 XML; from/to are snapped outwards to bin boundaries and
    echoed in normalized-params; one peak per 5-minute bin."""
    with httpx.Client(timeout=5, auth=AUTH) as client:
        response = client.get(gvp_pair.primary_url + "/operations/peaks/ASR", params={
            "granularity": "FIVE_MINUTES", "from": "2026-11-23T10:02:30Z",
            "to": "2026-11-23T10:58:00+00:00", "tenant-id": "101"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    root = ET.fromstring(response.text)
    assert root.tag == "peak-report"
    assert [c.tag for c in root] == ["manifest", "peaks"]
    manifest = root.find("manifest")
    assert manifest is not None
    assert [c.tag for c in manifest] == ["request-uri", "normalized-params", "meta"]
    uri = manifest.findtext("request-uri")
    assert uri is not None
    assert uri.startswith("/ems-rs/operations/peaks/ASR?")
    assert "tenant-id=101" in uri
    params = manifest.find("normalized-params")
    assert params is not None
    assert params.attrib == {"from": "2026-11-23T10:00:00.000Z",
                             "to": "2026-11-23T11:00:00.000Z", "granularity": "FIVE_MINUTES"}
    meta = manifest.find("meta")
    assert meta is not None
    assert meta.attrib["timezone_offset"] == "0"
    peaks = root.find("peaks")
    assert peaks is not None
    assert peaks.attrib == {"granularity": "FIVE_MINUTES"}
    times = [t for t, _ in _peaks(response.text)]
    assert times == [f"2026-11-23T10:{m:02d}:00.000Z" for m in range(0, 60, 5)]


def test_system_values_are_the_sum_of_tenant_values(gvp_pair: GvpPair,
                                                    gvp_dataset: SimDataset) -> None:
    """Without tenant-id the counts are per-bin sums over all tenants; repeated tenant-ids sum
    those tenants; values match the generated data."""
    url = gvp_pair.primary_url + "/operations/peaks/RM"
    with httpx.Client(timeout=5, auth=AUTH) as client:
        system = _peaks(client.get(url, params=DAY).text)
        tenants = {t: _peaks(client.get(url, params={**DAY, "tenant-id": str(t)}).text)
                   for t in (101, 102, 103)}
        two = _peaks(client.get(url, params=[*DAY.items(), ("tenant-id", "101"),
                                             ("tenant-id", "102")]).text)
    assert len(system) == 288
    assert max(c for _, c in system) > 0
    for i, (when, count) in enumerate(system):
        assert count == sum(tenants[t][i][1] for t in tenants)
        assert two[i] == (when, tenants[101][i][1] + tenants[102][i][1])
    start = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp())
    first_bin = (start - gvp_dataset.gvp.start_ts) // 300
    expected = gvp_dataset.gvp.counts[0, 0, first_bin:first_bin + 288].tolist()
    assert [c for _, c in tenants[101]] == expected


def test_bad_parameters_get_400_with_a_message(gvp_pair: GvpPair) -> None:
    """Missing or malformed parameters are refused with 400 and a message naming them; unknown
    reports are 404."""
    url = gvp_pair.primary_url + "/operations/peaks/RM"
    cases = {
        "granularity": {"from": "2026-11-23T00:00:00Z"},
        "from": {"granularity": "FIVE_MINUTES"},
        "not an ISO 8601": {"granularity": "FIVE_MINUTES", "from": "monday"},
        "before": {"granularity": "HOUR", "from": "2026-11-23T00:00:00Z",
                   "to": "2026-11-22T00:00:00Z"},
        "tenant-id": {"granularity": "HOUR", "from": "2026-11-23T00:00:00Z", "tenant-id": "x"},
        "unknown parameter": {"granularity": "HOUR", "from": "2026-11-23T00:00:00Z",
                              "tenant": "101"},
    }
    with httpx.Client(timeout=5, auth=AUTH) as client:
        for fragment, params in cases.items():
            response = client.get(url, params=params)
            assert response.status_code == 400, fragment
            assert fragment in response.text, fragment
        assert client.get(gvp_pair.primary_url + "/operations/peaks/MCP").status_code == 404


def test_refuse_closes_the_socket_and_ok_reopens_it(gvp_pair: GvpPair,
                                                    gvp_dataset: SimDataset) -> None:
    """`refuse` makes the primary refuse TCP connections; the backup still answers; `ok`
    serves again on the same port."""
    port = gvp_pair.ports[0]
    url = gvp_pair.primary_url + "/operations/peaks/TTS"
    gvp_pair.set_mode("primary", "refuse")
    assert not port_is_open("127.0.0.1", port)
    with httpx.Client(timeout=2, auth=AUTH) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(url, params=DAY)
        backup = client.get(gvp_pair.backup_url + "/operations/peaks/TTS", params=DAY)
        assert backup.status_code == 200
        gvp_pair.set_mode("primary", "ok")
        assert gvp_pair.ports[0] == port
        assert client.get(url, params=DAY).status_code == 200


def test_unavailable_answers_503(gvp_pair: GvpPair, gvp_dataset: SimDataset) -> None:
    """`unavailable` answers 503 (even before authentication) until switched back."""
    gvp_pair.set_mode("primary", "unavailable")
    with httpx.Client(timeout=5, auth=AUTH) as client:
        assert client.get(gvp_pair.primary_url + "/operations/peaks/RM",
                          params=DAY).status_code == 503
        assert client.get(gvp_pair.backup_url + "/operations/peaks/RM",
                          params=DAY).status_code == 200
        gvp_pair.set_mode("primary", "ok")
        assert client.get(gvp_pair.primary_url + "/operations/peaks/RM",
                          params=DAY).status_code == 200


def test_slow_delays_beyond_a_client_timeout(gvp_pair: GvpPair, gvp_dataset: SimDataset) -> None:
    """`slow` holds responses for delay_s seconds, so a client with a shorter timeout times
    out; switching back to ok releases it."""
    gvp_pair.set_mode("primary", "slow", delay_s=3)
    url = gvp_pair.primary_url + "/operations/peaks/RM"
    with httpx.Client(timeout=0.3, auth=AUTH) as client:
        began = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(url, params=DAY)
        assert time.monotonic() - began < 2
    gvp_pair.set_mode("primary", "ok")
    with httpx.Client(timeout=2, auth=AUTH) as client:
        assert client.get(url, params=DAY).status_code == 200


def test_failure_switches_over_http(gvp_pair: GvpPair, gvp_dataset: SimDataset) -> None:
    """POST /_control/gvp on the gateway sets a server's mode; GET shows the modes; a bad mode
    is 400."""
    with ConfigGatewayServer(gvp_dataset.timeline, control=gvp_pair) as gateway, \
            httpx.Client(timeout=5, auth=AUTH) as client:
        control = gateway.control_url
        response = client.post(control, params={"target": "backup", "mode": "unavailable"})
        assert response.status_code == 200
        assert response.json()["backup"]["mode"] == "unavailable"
        assert client.get(gvp_pair.backup_url + "/operations/peaks/RM",
                          params=DAY).status_code == 503
        response = client.post(control, params={"target": "both", "mode": "refuse"})
        assert response.json()["primary"]["listening"] is False
        with pytest.raises(httpx.ConnectError):
            client.get(gvp_pair.primary_url + "/operations/peaks/RM", params=DAY)
        assert client.post(control, params={"target": "primary", "mode": "down"}
                           ).status_code == 400
        assert client.post(control, params={"target": "third", "mode": "ok"}).status_code == 400
        client.post(control, params={"target": "both", "mode": "ok"})
        modes = client.get(control).json()
        assert {t: m["mode"] for t, m in modes.items()} == {"primary": "ok", "backup": "ok"}
        assert client.get(gvp_pair.primary_url + "/operations/peaks/RM",
                          params=DAY).status_code == 200
