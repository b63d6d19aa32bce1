"""A bounded Schemathesis run over the service's OpenAPI document: no generated request, valid or
not, gets a 5xx. The model is the tiny served one (with new items in its catalog).

Schemathesis' own pytest plugin does not run under pytest 9, so its Hypothesis strategies (one per
operation of the schema, in both generation modes) drive a plain Hypothesis test here."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from metarec.serve.app import create_app


@pytest.fixture(scope="module")
def operations(served):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(served[0]))
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in ops} >= {"POST /recommend", "POST /score",
                                                               "POST /recommend/batch", "GET /health"}
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_is_a_server_error(operations, mode):
    strategy = st.one_of([op.as_strategy(generation_mode=mode) for op in operations])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=strategy)
    def run(case):
        response = case.call()
        assert response.status_code < 500, (case.as_curl_command(), response.status_code, response.text[:500])

    run()
