"""The desk channel: articles an agency writes in the portal's desk enter here, as that agency.

Moderation's desk calls these routes server-side with ingest's admin token, after it checked
who the signed-in account is and that it writes for its own agency and sections. Ingest then
runs the same intake as a partner's push (``Ingestor.submit``, channel ``desk``): the agency
must be active, the section granted to it, and revisions, idempotency, the archive of the
original and the status are the partner channels' own.

``/v1/desk-media/`` serves the uploaded images (content-addressed, public like the articles
they illustrate) to normalize, which fetches and stores them as it does any partner image.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from portal_contracts.articles import ArticleAction, ArticleContent, Channel
from portal_contracts.partner import PartnerArticleMessage
from portal_ingest.api import _INVALID, ExternalId, Problem, SourceCodePath
from portal_ingest.deps import Deps, DeskService
from portal_ingest.partner_api import RETRACT_RESPONSES, ArticleReceiptOut, receipt_answer
from portal_ingest.usecases import RefusalKind, Refused


class DeskArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: ArticleContent
    written_by: str = Field(
        min_length=1, max_length=64, description="The desk account that submitted it."
    )


class DeskImageOut(BaseModel):
    url: str = Field(description="The address articles cite (normalize fetches it).")
    name: str
    content_type: str
    width: int
    height: int
    bytes: int


MediaName = Annotated[str, Path(max_length=80, pattern=r"^[0-9a-f]{64}\.(png|jpg|gif|webp)$")]


router = APIRouter(
    prefix="/admin/v1/desk/sources/{code}",
    tags=["desk"],
    dependencies=[DeskService],
    responses={
        401: {"model": Problem, "description": "Admin token missing or wrong"},
        403: {"model": Problem, "description": "Source inactive or section not allowed"},
        **_INVALID,
    },
)


@router.put(
    "/articles/{external_id:path}",
    summary="Submit an article written in the desk for the agency (a new revision)",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ArticleReceiptOut,
    responses={
        200: {"model": ArticleReceiptOut, "description": "Same content already received"},
        409: {"model": Problem},
        413: {"model": Problem, "description": "The article is too large to pass on"},
        503: {"model": Problem, "description": "Storage unavailable; retry later"},
    },
)
async def put_article(
    deps: Deps,
    code: SourceCodePath,
    external_id: ExternalId,
    body: DeskArticleIn,
    request: Request,
) -> Response:
    raw = await request.body()  # archived as received, with who submitted it
    message = PartnerArticleMessage(
        external_id=external_id, action=ArticleAction.UPSERT, content=body.content
    )
    receipt = await deps.ingestor.submit(code, message, Channel.DESK, raw)
    return receipt_answer(receipt)


@router.delete(
    "/articles/{external_id:path}",
    summary="Retract an article written in the desk",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ArticleReceiptOut,
    responses=RETRACT_RESPONSES,
)
async def retract_article(
    deps: Deps,
    code: SourceCodePath,
    external_id: ExternalId,
    written_by: Annotated[str, Query(min_length=1, max_length=64)],
) -> Response:
    message = PartnerArticleMessage(external_id=external_id, action=ArticleAction.RETRACT)
    # No body: the archived record is the retraction as understood, and who asked.
    record = message.model_dump(mode="json", exclude_defaults=True)
    raw = json.dumps({**record, "written_by": written_by}, ensure_ascii=False).encode()
    receipt = await deps.ingestor.submit(code, message, Channel.DESK, raw)
    return receipt_answer(receipt)


@router.post(
    "/images",
    summary="Upload an image for the agency's articles (the request body is the file)",
    status_code=status.HTTP_201_CREATED,
    response_model=DeskImageOut,
    responses={
        413: {"model": Problem},
        415: {
            "model": Problem,
            "description": "Empty, not an image, broken or too many pixels",
        },
        503: {"model": Problem},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_image(deps: Deps, code: SourceCodePath, request: Request) -> DeskImageOut:
    limit = deps.settings.desk_image_max_bytes
    declared = request.headers.get("content-length", "")
    too_large = Refused(RefusalKind.TOO_LARGE, f"image larger than the limit of {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large
    image, url = await deps.desk_images.upload(code, bytes(data))
    return DeskImageOut(
        url=url,
        name=image.name,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        bytes=len(data),
    )


# Public, no token: normalize fetches the images as it does any partner's.
media_router = APIRouter(prefix="/v1/desk-media", tags=["desk"])


@media_router.get(
    "/{code}/{name}",
    summary="An image uploaded in the desk (what normalize fetches)",
    response_class=Response,
    responses={
        200: {
            "description": "The image",
            "content": {t: {} for t in ("image/png", "image/jpeg", "image/gif", "image/webp")},
        },
        404: {"model": Problem},
        503: {"model": Problem},
    },
)
async def media(deps: Deps, code: SourceCodePath, name: MediaName) -> Response:
    found = await deps.desk_images.read(code, name)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such image")
    data, content_type = found
    return Response(
        data,
        media_type=content_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
