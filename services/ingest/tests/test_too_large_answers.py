"""A 413 from ingest names the limit that was broken: the request body's, or an image's own
(refused as the desk's upload route refuses it)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from portal_ingest.api import install_error_handlers
from portal_ingest.settings import Settings
from portal_ingest.usecases import RefusalKind, Refused


def _client() -> TestClient:
    """The error handlers and body limit of ingest's app (app.py) around two small routes."""
    app = FastAPI()
    install_error_handlers(app, Settings.model_construct(max_body_bytes=1000))
    limited = APIRouter(max_body_size=1000)

    @limited.post("/body")
    async def body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/image")
    async def image() -> None:
        raise Refused(RefusalKind.TOO_LARGE, "image larger than the limit of 5242880 bytes")

    app.include_router(limited)
    return TestClient(app)


def _chunks() -> Iterator[bytes]:  # no Content-Length: the limiter counts while reading
    yield b"x" * 600
    yield b"x" * 600


def test_a_body_over_the_limit_is_told_the_limit() -> None:
    client = _client()
    assert client.post("/body", content=b"x" * 1000).json() == {"bytes": 1000}

    refused = client.post("/body", content=_chunks())

    assert refused.status_code == 413
    assert refused.json()["detail"] == "request body exceeds the limit of 1000 bytes"


def test_an_image_over_its_own_limit_keeps_its_reason() -> None:
    refused = _client().post("/image")

    assert refused.status_code == 413
    assert refused.json()["detail"] == "image larger than the limit of 5242880 bytes"
