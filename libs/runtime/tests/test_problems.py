"""Every 422 of a service in one documented shape, whichever code path refused the request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Query
from pydantic import Field

from portal_runtime.problems import (
    FieldError,
    NulFree,
    ValidationShape,
    document_body_limit,
    install_problem_handlers,
)


class Topic(NulFree):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


def _app(shape: ValidationShape | None = None) -> FastAPI:
    app = FastAPI()
    if shape is None:
        install_problem_handlers(app)
    else:
        install_problem_handlers(app, shape)
    document_body_limit(app, 1024)

    @app.get("/items")
    async def items(cursor: str | None = None, size: int = Query(default=10, le=100)) -> Any:
        if cursor is not None:
            raise HTTPException(422, "cursor: not a cursor this API returned")
        return []

    @app.put("/topics/{code}")
    async def put_topic(code: str, body: Topic) -> Any:
        if code == "prose":
            raise HTTPException(422, "nothing to change")
        return body.model_dump()

    @app.get("/missing")
    async def missing() -> Any:
        raise HTTPException(404, "no such thing")

    return app


async def _call(app: FastAPI, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.request(method, url, **kwargs)


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "loc", "kind"),
    [
        ("GET", "/items?size=1000", {}, ["query", "size"], "less_than_equal"),
        ("GET", "/items?cursor=x", {}, ["cursor"], "value_error"),
        ("PUT", "/topics/prose", {"json": {"name": "a"}}, [], "value_error"),
        ("PUT", "/topics/a", {"json": {"name": "a\x00"}}, ["body", "name"], "value_error"),
        ("PUT", "/topics/a", {"json": {"name": "a", "labels": {"\x00": "b"}}}, None, "value_error"),
        (
            "PUT",
            "/topics/a",
            {"content": b'{"name": "\xff"}', "headers": {"content-type": "application/json"}},
            ["body"],
            "json_invalid",
        ),
    ],
)
async def test_a_refusal_is_a_422_in_fastapis_shape(
    method: str, url: str, kwargs: dict[str, Any], loc: list[Any] | None, kind: str
) -> None:
    resp = await _call(_app(), method, url, **kwargs)
    assert resp.status_code == 422, resp.text
    [problem] = resp.json()["detail"]
    assert set(problem) == {"loc", "msg", "type"}  # never the input back
    assert problem["type"] == kind and problem["msg"]
    assert problem["loc"] == (loc if loc is not None else ["body", "labels"])


async def test_other_errors_keep_their_status_and_detail() -> None:
    resp = await _call(_app(), "GET", "/missing")
    assert resp.status_code == 404 and resp.json() == {"detail": "no such thing"}


async def test_the_openapi_document_names_the_shape_on_every_422() -> None:
    spec = (await _call(_app(), "GET", "/openapi.json")).json()
    put, get = spec["paths"]["/topics/{code}"]["put"], spec["paths"]["/items"]["get"]
    for op in (put, get):
        assert op["responses"]["422"]["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/ValidationFailed"}}
        }
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert {"FieldError", "ValidationFailed"} <= set(spec["components"]["schemas"])
    assert "413" in put["responses"] and "413" not in get["responses"]  # only with a body


async def test_a_service_can_bring_its_own_shape() -> None:
    class Problem(NulFree):
        summary: str
        fields: list[str]

    def render(errors: list[FieldError]) -> dict[str, Any]:
        return {"summary": "; ".join(e.msg for e in errors), "fields": [e.loc[-1] for e in errors]}

    app = _app(ValidationShape(Problem, render))
    resp = await _call(app, "GET", "/items?cursor=x")
    assert resp.status_code == 422
    assert resp.json() == {"summary": "not a cursor this API returned", "fields": ["cursor"]}
    spec = (await _call(app, "GET", "/openapi.json")).json()
    ref = spec["paths"]["/items"]["get"]["responses"]["422"]["content"]["application/json"]
    assert ref == {"schema": {"$ref": "#/components/schemas/Problem"}}
