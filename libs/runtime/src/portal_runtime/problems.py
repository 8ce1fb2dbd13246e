"""One documented shape for every 422 of a service, whichever code path refused the request.

A request can be refused as invalid in three ways: FastAPI's own validation of parameters and
body (``RequestValidationError``), a handler's ``HTTPException(422, "field: message")``, and a
body that is not even decodable (FastAPI answers that with a bare 400). All three leave here in
the service's one validation shape, and its OpenAPI document names that shape on every 422, so
clients (and the fuzzer) can rely on it.

The shape is FastAPI's (``{"detail": [{"loc", "msg", "type"}]}``) unless a service brings its
own (ingest's partner API names fields in ``errors``). The input is never echoed back: it can be
megabytes, or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

# fastapi.routing raises this 400 when a body cannot be read at all (e.g. JSON that is not
# UTF-8); a JSON syntax error is a 422 there, so both become the same 422 here.
_UNPARSABLE_BODY = "There was an error parsing the body"
# "content.title: too long" -> ("content.title", "too long"); a prose message has no field.
_FIELD_MESSAGE = re.compile(r"^(?P<field>[A-Za-z_][\w.\[\]-]*)\s*:\s*(?P<message>.+)$", re.DOTALL)


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="Where the problem is, e.g. ['body', 'email'] or ['query', 'page']."
    )
    msg: str
    type: str = Field(description="A machine-readable kind, e.g. 'missing' or 'value_error'.")


class ValidationFailed(BaseModel):
    """A request refused as invalid (422): every problem, each naming its field."""

    detail: list[FieldError]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in value)
    return False


class NulFree(BaseModel):
    """A request body whose text fields refuse NUL: PostgreSQL text cannot hold it, so it is a
    422 naming the field here instead of a 500 at the INSERT."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("must not contain the NUL character")
        return value


@dataclass(frozen=True)
class ValidationShape:
    """How a service words its 422 answers: the documented model and the rendering."""

    model: type[BaseModel]
    render: Callable[[list[FieldError]], dict[str, Any]]


def _standard(errors: list[FieldError]) -> dict[str, Any]:
    return {"detail": [e.model_dump() for e in errors]}


STANDARD = ValidationShape(ValidationFailed, _standard)


def errors_of_validation(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(
            loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "value_error")),
        )
        for e in exc.errors()
    ]


def errors_of_detail(detail: Any) -> list[FieldError]:
    """The problems an ``HTTPException(422, detail)`` names, whatever form the detail has."""
    if isinstance(detail, list):
        errors: list[FieldError] = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = item.get("loc") or []
                errors.append(
                    FieldError(
                        loc=[p if isinstance(p, int) else str(p) for p in loc],
                        msg=str(item["msg"]),
                        type=str(item.get("type") or "value_error"),
                    )
                )
            else:
                errors.extend(errors_of_detail(item))
        return errors
    if isinstance(detail, dict):
        message = detail.get("reason") or detail.get("detail") or detail.get("msg") or detail
        return errors_of_detail(str(message))
    text = str(detail)
    match = _FIELD_MESSAGE.match(text)
    if match is None:
        return [FieldError(loc=[], msg=text, type="value_error")]
    return [
        FieldError(
            loc=[str(p) for p in match["field"].split(".")],
            msg=match["message"].strip(),
            type="value_error",
        )
    ]


async def http_problem(
    request: Request, exc: StarletteHTTPException, shape: ValidationShape = STANDARD
) -> Response:
    """The answer to an ``HTTPException``: a 422 (or unreadable body) in the service's shape."""
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == _UNPARSABLE_BODY:
        errors = [FieldError(loc=["body"], msg="not valid JSON (UTF-8)", type="json_invalid")]
        return JSONResponse(shape.render(errors), status.HTTP_422_UNPROCESSABLE_CONTENT)
    if exc.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        return JSONResponse(
            shape.render(errors_of_detail(exc.detail)),
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            headers=exc.headers,
        )
    return await http_exception_handler(request, exc)


def install_problem_handlers(app: FastAPI, shape: ValidationShape = STANDARD) -> None:
    async def validation_failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = errors_of_validation(exc)
        return JSONResponse(shape.render(errors), status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return await http_problem(request, exc, shape)

    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    document_validation(app, shape.model)


def document_validation(app: FastAPI, model: type[BaseModel]) -> None:
    """Name ``model`` as the body of every 422 the OpenAPI document lists."""

    def rewrite(schema: dict[str, Any]) -> None:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        for operation in _operations(schema):
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["content"] = {"application/json": {"schema": ref}}
        if "HTTPValidationError" not in str(schema.get("paths")):  # FastAPI's, now unused
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)

    amend_openapi(app, rewrite)


def amend_openapi(app: FastAPI, amend: Callable[[dict[str, Any]], None]) -> None:
    """Change the generated OpenAPI document once, when it is first built."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        amend(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in schema.get("paths", {}).values()
        for operation in path_item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]


def document_body_limit(app: FastAPI, max_bytes: int) -> None:
    """List the 413 of a body cap (``bodylimit.BodyLimit``) on every operation that takes one."""

    def add(schema: dict[str, Any]) -> None:
        for operation in _operations(schema):
            if "requestBody" in operation:
                operation["responses"].setdefault(
                    "413", {"description": f"Body larger than {max_bytes} bytes"}
                )

    amend_openapi(app, add)
