"""Fixtures of the integration tests: the simulated Reporting Server pair the GVP tests talk to
(a small dataset, basic auth)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from lrm.sim.gvp import GvpPair
from lrm.sim.model import SimDataset, SimParams, generate
from tests.integration.gvp_credentials import GVP_PASSWORD, GVP_USER


@pytest.fixture(scope="module")
def gvp_dataset() -> SimDataset:
    return generate(SimParams(tenants=3, agents_per_tenant=10, days=2, seed=9),
                    today=date(2026, 11, 25))


@pytest.fixture
def gvp_pair(gvp_dataset: SimDataset) -> Iterator[GvpPair]:
    with GvpPair(gvp_dataset.gvp, username=GVP_USER, password=GVP_PASSWORD) as servers:
        yield servers
