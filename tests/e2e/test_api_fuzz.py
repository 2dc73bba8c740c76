"""schemathesis against the live ingress-api: no 5xx, no answer outside the published schema."""

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from ingress_api import main  # noqa: F401 - importing it declares every endpoint
from ingress_api.openapi import document
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

DOCUMENT = document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops]


CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]
_KEYS: dict[str, str] = {}


def tenant_key(gateway: Gateway) -> str:
    if "tenant" not in _KEYS:
        _, _KEYS["tenant"] = asyncio.run(gateway.tenant())
    return _KEYS["tenant"]


async def test_the_served_document_is_the_one_fuzzed(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http, http.get(gateway.api + "/openapi.json") as answer:
        served = await answer.read()
    assert json.loads(json.dumps(DOCUMENT)) == json.loads(served)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_endpoint_answers_within_its_schema(gateway: Gateway, path: str, method: str) -> None:
    operation = SCHEMA[path][method]
    key = gateway.admin_key if path.startswith("/admin") else tenant_key(gateway)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def fuzz(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=gateway.api, headers={"apikey": key}, checks=CHECKS)

    fuzz()
