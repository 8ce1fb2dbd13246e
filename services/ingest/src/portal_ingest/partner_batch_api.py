"""The partner API's batch push: many articles in one request (an agency's backfill), each with
the single push's rules and its own answer."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import json
from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from portal_contracts.articles import ArticleAction, Channel
from portal_contracts.partner import PartnerArticleMessage
from portal_ingest.api import _ERRORS, BATCH_PATH, EXTERNAL_ID_PATTERN, REFUSAL_STATUS, Problem
from portal_ingest.deps import Deps, Partner
from portal_ingest.intake_usecases import Receipt, Submission
from portal_ingest.partner_api import ArticleReceiptOut, ArticleUpsert, receipt_out
from portal_ingest.settings import Settings
from portal_ingest.usecases import Refused
from portal_runtime.overload import bearer_token, rate_limited_body

# The most items a batch may hold; a deployment may set fewer (BATCH_MAX_ITEMS).
BATCH_ITEMS_BOUND = Settings.model_fields["batch_max_items"].default


class BatchItemIn(ArticleUpsert):
    """One article of a batch: the single push's body and its ``external_id``."""

    external_id: Annotated[
        str, Field(min_length=1, max_length=200, pattern=EXTERNAL_ID_PATTERN)
    ] = Field(description="Your id of the article, as in PUT /v1/articles/{external_id}.")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemIn] = Field(min_length=1, max_length=BATCH_ITEMS_BOUND)


class BatchItemOut(BaseModel):
    external_id: str
    status: int = Field(
        description="What PUT /v1/articles/{external_id} would have answered: 202 a new "
        "revision, 200 the same content again, 403, 409, 413 or 503 (then retry the item)."
    )
    receipt: ArticleReceiptOut | None = Field(default=None, description="With 200 and 202.")
    detail: str | None = Field(default=None, description="Why, when refused.")
    code: str | None = Field(default=None, description="The refusal's code (e.g. too_large).")


class BatchOut(BaseModel):
    items: list[BatchItemOut] = Field(description="One per item, in the request's order.")


router = APIRouter(tags=["partner"], responses=_ERRORS)


@router.post(
    BATCH_PATH,
    summary="Create or update many articles (a backfill)",
    description=(
        "Each item is decided as `PUT /v1/articles/{external_id}` decides it, in the batch's "
        "order (later items about one article see the earlier ones), and answered on its own "
        "in `items`: a refused item does not hold back the others. The whole request is "
        "refused only when it is malformed (422, naming the field), too large (413) or the "
        "database is unavailable (503; nothing stored, retry). Each item is archived as its "
        "own JSON text."
    ),
    response_model=BatchOut,
    responses={
        413: {"model": Problem, "description": "Body larger than BATCH_MAX_BYTES"},
        429: {
            "description": "The API key's rate limit, each item counting as one push: nothing "
            "stored, retry after Retry-After seconds"
        },
    },
)
async def push_batch(
    who: Partner, deps: Deps, body: BatchIn, request: Request
) -> BatchOut | JSONResponse:
    settings = deps.settings
    if len(body.items) > settings.batch_max_items:
        raise _invalid("items", f"at most {settings.batch_max_items} items per batch")
    # Each item counts as one push against the API key's rate limit (the request was one).
    refusal = deps.charge_api_key(bearer_token(request.headers.raw), len(body.items) - 1)
    if refusal is not None:
        return JSONResponse(
            rate_limited_body(refusal),
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(refusal.retry_after_s)},
        )
    # Each item's own text as received (the archive keeps what the partner sent, not what
    # validation made of it); a lone surrogate, were one to pass validation, stays an escape.
    raws = [
        json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "backslashreplace"
        )
        for item in json.loads(await request.body())["items"]
    ]
    answers: list[BatchItemOut | None] = [None] * len(raws)
    submissions: list[tuple[int, Submission]] = []
    for index, (item, raw) in enumerate(zip(body.items, raws, strict=True)):
        if len(raw) > settings.max_body_bytes:
            answers[index] = BatchItemOut(
                external_id=item.external_id,
                status=status.HTTP_413_CONTENT_TOO_LARGE,
                detail=f"the item exceeds the limit of {settings.max_body_bytes} bytes",
                code="too_large",
            )
            continue
        message = PartnerArticleMessage(
            external_id=item.external_id,
            action=ArticleAction.UPSERT,
            revision=item.revision,
            content=item.content,
            backfill=item.backfill,
        )
        submissions.append((index, Submission(who.source, message, Channel.REST, raw)))
    results = (
        await deps.ingestor.submit_group([sub for _, sub in submissions]) if submissions else []
    )
    for (index, sub), result in zip(submissions, results, strict=True):
        answers[index] = _item_answer(sub.message.external_id, result)
    return BatchOut(items=[answer for answer in answers if answer is not None])


def _item_answer(external_id: str, result: Receipt | Exception) -> BatchItemOut:
    if isinstance(result, Receipt):
        code = status.HTTP_200_OK if result.duplicate else status.HTTP_202_ACCEPTED
        return BatchItemOut(external_id=external_id, status=code, receipt=receipt_out(result))
    if isinstance(result, Refused):
        return BatchItemOut(
            external_id=external_id,
            status=REFUSAL_STATUS[result.kind],
            detail=result.reason,
            code=result.kind.value,
        )
    return BatchItemOut(  # the raw archive could not be written: nothing stored
        external_id=external_id,
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="the raw archive is unavailable; nothing was stored, retry the item",
    )


def _invalid(field: str, message: str) -> RequestValidationError:
    error: dict[str, Any] = {"type": "too_long", "loc": ("body", field), "msg": message}
    return RequestValidationError([error])
