"""The HTTP contract that needs no infrastructure: validation and the admin guard.

The app is built but its lifespan is not run, so nothing connects anywhere: these requests are
answered before any call to OpenSearch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from portal_search.app import create_app
from portal_search.settings import Settings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        admin_token="unit-secret",
        opensearch_url="http://127.0.0.1:9",
        kafka_bootstrap_servers="127.0.0.1:9",
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://search"
    ) as c:
        yield c


def _fields(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 422, resp.text
    return {str(d["loc"][-1]) for d in resp.json()["detail"]}


async def test_size_sort_and_query_length_are_limited(client: httpx.AsyncClient) -> None:
    assert _fields(await client.get("/v1/search", params={"size": 51})) == {"size"}
    assert _fields(await client.get("/v1/search", params={"sort": "popular"})) == {"sort"}
    assert _fields(await client.get("/v1/search", params={"q": "a" * 201})) == {"q"}
    assert _fields(await client.get("/v1/search", params={"page": 0})) == {"page"}


async def test_domain_problems_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/search", params={"from": "2024-03-28", "to": "2024-03-01"})
    assert _fields(resp) == {"to"}
    assert "before" in resp.json()["detail"][0]["msg"]
    resp = await client.get("/v1/search", params={"from": "yesterday", "section": "Bad Code"})
    assert _fields(resp) == {"from", "section"}
    assert _fields(await client.get("/v1/search", params={"page": 500, "size": 50})) == {"page"}


async def test_admin_api_needs_the_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/admin/v1/reindex")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.get("/admin/v1/index", headers=wrong)).status_code == 401


async def test_openapi_documents_the_search_parameters(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    params = {p["name"] for p in spec["paths"]["/v1/search"]["get"]["parameters"]}
    assert params == {"q", "section", "source", "from", "to", "sort", "page", "size"}
    assert "/admin/v1/reindex" in spec["paths"]
