"""What the HTTP APIs share: path parameters, problem answers and the error handlers.

The routes are in ``partner_api`` (the partner push API, /v1, API keys), ``admin_api`` (the
operators' admin API, /admin/v1) and ``desk_api`` (the desk channel); what they get through
FastAPI's dependencies is in ``deps``. Thin routers: they authenticate, validate, call a use
case and shape the answer. Every refusal is a 4xx whose ``detail`` says what is wrong and names the field.
"""

from typing import Annotated, Any

from fastapi import FastAPI, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from portal_ingest.kafka_admin import ProvisioningError
from portal_ingest.settings import Settings
from portal_ingest.usecases import RefusalKind, Refused, StorageUnavailable
from portal_runtime.kafka import is_transient
from portal_runtime.logs import get_logger
from portal_runtime.problems import FieldError, ValidationShape, http_problem

log = get_logger(__name__)


EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._:/-]+$"

# The batch push (partner_batch_api), which has a body limit of its own.
BATCH_PATH = "/v1/articles/batch"


SOURCE_CODE_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


ExternalId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=EXTERNAL_ID_PATTERN,
        description="The partner's own id of the article (letters, digits and . _ : / -).",
    ),
]


SourceCodePath = Annotated[
    str,
    Path(
        min_length=2,
        max_length=64,
        pattern=SOURCE_CODE_PATTERN,
        description="Code of the partner agency, e.g. 'tp-ha-noi'.",
    ),
]


class Problem(BaseModel):
    detail: str


class FieldProblem(BaseModel):
    field: str = Field(description="The field at fault, e.g. 'content.title' or 'external_id'.")
    message: str
    type: str | None = None


class ValidationProblem(BaseModel):
    detail: str = Field(description="Every problem in one line: '<field>: <message>; ...'.")
    errors: list[FieldProblem]


def _validation_problem(errors: list[FieldError]) -> dict[str, Any]:
    # Name each field; never echo the input back (it can be megabytes).
    problems = [
        FieldProblem(field=_field(e.loc), message=e.msg, type=e.type).model_dump() for e in errors
    ]
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10])
    return {"detail": summary, "errors": problems}


# The partner API's 422 shape, on every 422 of this service (portal_runtime.problems).
VALIDATION = ValidationShape(ValidationProblem, _validation_problem)


_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationProblem, "description": "A field is invalid (named in the answer)"},
}


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API key missing, invalid or revoked"},
    403: {"model": Problem, "description": "Source inactive, section not allowed, or not yours"},
    **_INVALID,
}


# -- errors -----------------------------------------------------------------------------------

REFUSAL_STATUS = {
    RefusalKind.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    RefusalKind.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    RefusalKind.STALE: status.HTTP_409_CONFLICT,
    RefusalKind.CONFLICT: status.HTTP_409_CONFLICT,
    RefusalKind.TOO_LARGE: status.HTTP_413_CONTENT_TOO_LARGE,
    RefusalKind.UNSUPPORTED_MEDIA: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "content", "title") -> "content.title"; ("path", "external_id") -> "external_id"
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.reason, "code": exc.kind.value}, REFUSAL_STATUS[exc.kind]
        )

    @app.exception_handler(StorageUnavailable)
    async def storage_down(request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": "the raw archive is unavailable; nothing was stored, retry later"},
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ProvisioningError)
    async def kafka_down(request: Request, exc: ProvisioningError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"}
        )

    @app.exception_handler(DBAPIError)
    async def database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_transient(exc):
            return JSONResponse(
                {"detail": "the database is unavailable; retry later"},
                status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
        log.exception("database_error", exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == status.HTTP_413_CONTENT_TOO_LARGE:
            # The body limiter says only "Content Too Large": name the limit.
            limit = (
                settings.batch_max_bytes
                if request.url.path == BATCH_PATH
                else settings.max_body_bytes
            )
            detail = f"request body exceeds the limit of {limit} bytes"
            return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)
        # 422s (raised or from FastAPI) in VALIDATION's shape, like every other refusal here.
        return await http_problem(request, exc, VALIDATION)
