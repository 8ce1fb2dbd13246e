"""Public media: the images normalize stored in object storage, served under /media/.

Keys are content hashes (normalize stores each image and rendition once under its hash), so a
response never changes: it is cached for a year and marked immutable.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Request, Response
from minio.error import S3Error

from portal_runtime.storage import ObjectStore

# Only the shapes normalize writes: letters, digits, '-', '_', '.', '/' (no '..', no leading '/').
_KEY = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]{0,300}$")
_TYPES = {
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
}


def media_router(store: ObjectStore) -> APIRouter:
    router = APIRouter(tags=["media"])

    @router.get(
        "/media/{key:path}",
        summary="An image or rendition stored by normalize",
        responses={404: {"description": "No such media"}},
    )
    async def media(key: str, request: Request) -> Response:
        if not _KEY.match(key):
            raise HTTPException(404, "no such media")
        etag = f'"{key}"'
        cache = "public, max-age=31536000, immutable"
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
        try:
            data = await store.get(key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise HTTPException(404, "no such media") from exc
            raise
        ext = key.rsplit(".", 1)[-1].lower() if "." in key else ""
        return Response(
            content=data,
            media_type=_TYPES.get(ext, "application/octet-stream"),
            headers={
                "ETag": etag,
                "Cache-Control": cache,
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
            },
        )

    return router
