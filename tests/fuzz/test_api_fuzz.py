"""Every HTTP API fuzzed from its own OpenAPI document (schemathesis).

Valid and invalid requests (wrong types, missing and extra fields, boundary values, odd
characters) are generated per operation. A response must never be a 5xx, and must conform to
what the operation documents: the status code, the content type and the body's schema.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import APIOperation

from tests.fuzz.conftest import FUZZ_MAX_EXAMPLES, FUZZ_SEED, REQUESTS, RESPONSES, FuzzPortal

FuzzCase = Case[APIOperation[Any, Any, Any, Any]]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Operations left out, and why.
EXCLUDED = {
    # A server-sent event stream: answers once the dialogue ends, never within one request.
    "/v1/dialogues/{code}/live",
}


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": FUZZ_SEED,
            "generation": {
                "mode": "all",  # valid and invalid data
                "max-examples": FUZZ_MAX_EXAMPLES,
                "database": "none",  # no example replay between runs: the seed decides
            },
            # Boundary and typed-error cases (coverage), then random fuzzing; no stateful links.
            "phases": {"stateful": {"enabled": False}},
            "request-timeout": 30,
        }
    )


def _load(portal: FuzzPortal, service: str) -> schemathesis.schemas.BaseSchema:
    schema = schemathesis.openapi.from_url(portal.url(service, "/openapi.json"), config=_config())
    return schema.exclude(path=sorted(EXCLUDED))


def _call(case: FuzzCase, portal: FuzzPortal, service: str) -> None:
    # Generated credentials-free headers win over nothing; ours reach past authentication.
    headers = portal.auth_headers(service, case.operation.path)
    REQUESTS[service] += 1
    response = case.call(base_url=portal.url(service), headers=headers)
    RESPONSES.setdefault(service, Counter())[response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)


@pytest.fixture(scope="module")
def ingest_api(fuzz_portal: FuzzPortal) -> schemathesis.schemas.BaseSchema:
    return _load(fuzz_portal, "ingest")


@pytest.fixture(scope="module")
def normalize_api(fuzz_portal: FuzzPortal) -> schemathesis.schemas.BaseSchema:
    return _load(fuzz_portal, "normalize")


@pytest.fixture(scope="module")
def moderation_api(fuzz_portal: FuzzPortal) -> schemathesis.schemas.BaseSchema:
    return _load(fuzz_portal, "moderation")


@pytest.fixture(scope="module")
def publishing_api(fuzz_portal: FuzzPortal) -> schemathesis.schemas.BaseSchema:
    return _load(fuzz_portal, "publishing")


@pytest.fixture(scope="module")
def engagement_api(fuzz_portal: FuzzPortal) -> schemathesis.schemas.BaseSchema:
    return _load(fuzz_portal, "engagement")


@pytest.fixture(scope="module")
def search_api(fuzz_portal: FuzzPortal) -> schemathesis.schemas.BaseSchema:
    return _load(fuzz_portal, "search")


ingest = schemathesis.pytest.from_fixture("ingest_api")
normalize = schemathesis.pytest.from_fixture("normalize_api")
moderation = schemathesis.pytest.from_fixture("moderation_api")
publishing = schemathesis.pytest.from_fixture("publishing_api")
engagement = schemathesis.pytest.from_fixture("engagement_api")
search = schemathesis.pytest.from_fixture("search_api")


@ingest.parametrize()
def test_ingest_api(case: FuzzCase, fuzz_portal: FuzzPortal) -> None:
    _call(case, fuzz_portal, "ingest")


@normalize.parametrize()
def test_normalize_api(case: FuzzCase, fuzz_portal: FuzzPortal) -> None:
    _call(case, fuzz_portal, "normalize")


@moderation.parametrize()
def test_moderation_api(case: FuzzCase, fuzz_portal: FuzzPortal) -> None:
    _call(case, fuzz_portal, "moderation")


@publishing.parametrize()
def test_publishing_api(case: FuzzCase, fuzz_portal: FuzzPortal) -> None:
    _call(case, fuzz_portal, "publishing")


@engagement.parametrize()
def test_engagement_api(case: FuzzCase, fuzz_portal: FuzzPortal) -> None:
    _call(case, fuzz_portal, "engagement")


@search.parametrize()
def test_search_api(case: FuzzCase, fuzz_portal: FuzzPortal) -> None:
    _call(case, fuzz_portal, "search")
