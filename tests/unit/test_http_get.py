"""Which hosts `no_proxy` sends around the proxy (as urllib and httpx read it)."""

from __future__ import annotations

import pytest

from lrm.sources.http_get import _bypassed


@pytest.mark.parametrize(("host", "port", "no_proxy", "bypassed"), [
    ("rs1.dc.example", 8080, "", False),
    ("rs1.dc.example", 8080, "*", True),
    ("rs1.dc.example", 8080, "rs1.dc.example", True),
    ("RS1.dc.example", 8080, "rs1.DC.example", True),
    ("rs1.dc.example", 8080, "dc.example", True),
    ("rs1.dc.example", 8080, ".dc.example", True),
    ("rs1.dc.example", 8080, "c.example", False),  # a suffix of labels, not of characters
    ("rs1.dc.example", 8080, "other.example, dc.example", True),
    ("rs1.dc.example", 8080, "rs1.dc.example:8080", True),
    ("rs1.dc.example", 8080, "rs1.dc.example:9090", False),
    ("10.0.0.7", 80, "10.0.0.7", True),
    ("10.0.0.7", 80, " , ,", False),
])
def test_no_proxy_names_hosts_domains_and_ports(host: str, port: int, no_proxy: str,
                                                bypassed: bool) -> None:
    assert _bypassed(host, port, no_proxy) is bypassed
