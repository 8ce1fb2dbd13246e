"""Images normalize stored in object storage are served to the public under /media/."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_publishing.app import create_app
from portal_publishing.settings import Settings
from portal_runtime.settings import ServiceSettings
from portal_runtime.storage import ObjectStore

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def client(
    stack_settings: StackSettings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    env = service_environment(stack_settings, "publishing")
    settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://publishing") as http:
            yield http, settings


async def test_stored_image_is_served_immutable(
    client: tuple[httpx.AsyncClient, Settings], stack_settings: StackSettings
) -> None:
    http, _ = client
    key = f"images/{uuid.uuid4().hex}/640.webp"
    body = os.urandom(2048)
    # Stored by normalize, with normalize's key: publishing itself may only read.
    normalize = {k.lower(): v for k, v in service_environment(stack_settings, "normalize").items()}
    await ObjectStore(ServiceSettings(**normalize)).put(key, body, "image/webp")  # type: ignore[arg-type]

    resp = await http.get(f"/media/{key}")
    assert resp.status_code == 200
    assert resp.content == body
    assert resp.headers["content-type"] == "image/webp"
    assert "immutable" in resp.headers["cache-control"]
    again = await http.get(f"/media/{key}", headers={"If-None-Match": resp.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("key", ["images/missing.webp", "..%2F..%2Fetc/passwd", "a/../b.png"])
async def test_missing_or_malformed_keys_are_404(
    client: tuple[httpx.AsyncClient, Settings], key: str
) -> None:
    http, _ = client
    assert (await http.get(f"/media/{key}")).status_code == 404
