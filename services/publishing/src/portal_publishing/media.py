"""Public media: the images normalize stored in object storage, served under /media/.

Keys are content hashes (normalize stores each image and rendition once under its hash), so a
response never changes: it is cached for a year and marked immutable. Normalize makes an
image's WebP renditions when they are first asked for: a rendition not yet in object storage is
asked of normalize (``NORMALIZE_URL``), which makes, stores and returns it.
"""

from __future__ import annotations

import re

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from minio.error import S3Error

from portal_runtime.storage import ObjectStore

# Only the shapes normalize writes: letters, digits, '-', '_', '.', '/' (no '..', no leading '/').
_KEY = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]{0,300}$")
_RENDITION = re.compile(r"^images/[0-9a-f]{2}/[0-9a-f]{64}/w[1-9][0-9]{0,3}\.webp$")
_TYPES = {
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
}


class Renditions:
    """Normalize's rendition maker: the bytes of a rendition, made now if need be."""

    def __init__(self, normalize_url: str, timeout_s: float = 30.0) -> None:
        self.http = httpx.AsyncClient(base_url=normalize_url.rstrip("/"), timeout=timeout_s)

    async def get(self, key: str) -> bytes | None:
        """None: no stored image has this rendition. Raises ``RenditionUnavailable``."""
        try:
            resp = await self.http.get(f"/v1/renditions/{key}")
        except httpx.HTTPError as exc:
            raise RenditionUnavailable(f"normalize: {exc!r}") from exc
        if resp.status_code == 200:
            return resp.content
        if resp.status_code in (404, 422):
            return None
        raise RenditionUnavailable(f"normalize answered {resp.status_code}")

    async def aclose(self) -> None:
        await self.http.aclose()


class RenditionUnavailable(Exception):
    """Normalize could not make the rendition now (busy or down): the reader retries."""


def media_router(store: ObjectStore, renditions: Renditions | None = None) -> APIRouter:
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
            data: bytes | None = await store.get(key)
        except S3Error as exc:
            if exc.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            data = None
        if data is None and renditions is not None and _RENDITION.match(key):
            try:
                data = await renditions.get(key)
            except RenditionUnavailable as exc:
                raise HTTPException(
                    503,
                    "the image is being prepared: try again shortly",
                    headers={"Retry-After": "5", "Cache-Control": "no-store"},
                ) from exc
        if data is None:
            raise HTTPException(404, "no such media")
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
