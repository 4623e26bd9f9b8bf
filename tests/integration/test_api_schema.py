"""schemathesis against the OpenAPI document of a running report API: generated requests (valid
and invalid) never get a 5xx, and every response matches the documented schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.generation import GenerationMode

from lrm.store.embedded import EmbeddedPostgres
from tests.integration.api_server import Api, running_api


@pytest.fixture(scope="module")
def api(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[Api]:
    with running_api(pg_server, lrm_template) as server:
        yield server


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(api: Api, mode: GenerationMode) -> None:
    """For every operation, generated requests (valid, then invalid) with a provider token get
    no 5xx, and every response matches the schema. (schemathesis' pytest plugin does not load
    under this pytest, so its strategies are driven by Hypothesis directly.)"""
    schema = schemathesis.openapi.from_url(api.url + "/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    headers = {"Authorization": f"Bearer {api.provider}"}
    for operation in operations:
        @given(operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=api.url, headers=headers)
            case.validate_response(response,
                                   checks=[not_a_server_error, response_schema_conformance])
        try:
            check()
        except Unsatisfiable:
            # Only in negative mode, for operations without parameters or body (e.g. health,
            # tenants): no invalid request can be built for them.
            assert mode is GenerationMode.NEGATIVE, operation.label
