"""Schema-driven fuzzing: schemathesis generates requests from the service's own OpenAPI
document (``/openapi.json``) for every operation, valid ones and, in its negative mode,
ones that break the schema.

Every answer must pass ``assert_sane`` (2xx, or a 4xx JSON error with a message; never a
500); in negative mode also schemathesis's ``negative_data_rejection`` (a request the
schema forbids is a 4xx). Cases are drawn with the operations' hypothesis strategies
(schemathesis's pytest plugin does not run under this pytest).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection

from tests.router.api.checks import assert_sane
from tests.router.api.conftest import LiveService

pytestmark = pytest.mark.usefixtures("replay_data_dir")

OPERATIONS = [
    ("POST", "/route-and-run"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/feedback"),
    ("GET", "/requests/{request_id}"),
    ("GET", "/v1/models"),
    ("GET", "/policies"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/dashboard/api/access"),
    ("GET", "/dashboard/api/overview"),
    ("GET", "/dashboard/api/traffic"),
    ("GET", "/dashboard/api/policies"),
    ("GET", "/dashboard/api/requests"),
    ("GET", "/dashboard/api/requests/{request_id}"),
    ("GET", "/dashboard/api/spend"),
    ("GET", "/dashboard/api/health"),
    ("GET", "/dashboard/api/offline"),
]


@pytest.fixture(scope="module")
def api_schema(live: LiveService) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def test_the_spec_lists_the_operations_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    served = {(op.method.upper(), op.path) for op in operations}
    assert served == set(OPERATIONS)


BREAKABLE = [op for op in OPERATIONS if op[0] == "POST"] + [
    ("GET", "/policies"),
    ("GET", "/dashboard/api/traffic"),
    ("GET", "/dashboard/api/policies"),
    ("GET", "/dashboard/api/requests"),
]
"""The operations with something to break (a body, a constrained parameter): a path
parameter that is any string, or no parameter at all, has no invalid value."""

CASES = [(*op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (*op, GenerationMode.NEGATIVE) for op in BREAKABLE
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_operation_answers_sanely(
    api_schema: schemathesis.BaseSchema,
    live: LiveService,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    operation = api_schema[path][method]
    examples = 25 if method == "POST" else 8

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        response = case.call(base_url=live.url, timeout=60)
        headers = [(k, v) for k, values in response.headers.items() for v in values]
        assert_sane(httpx.Response(response.status_code, headers=headers, content=response.content))
        if mode is GenerationMode.NEGATIVE:
            case.validate_response(response, checks=[negative_data_rejection])

    check()
