"""The store rebuild's API against the real Kafka of the local stack, when it cannot run."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from portal_launcher.components.kafka import admin_client_options
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_publishing.rebuild import StoreRebuilder, rebuild_router
from portal_runtime.db import make_engine, make_sessionmaker
from portal_runtime.problems import install_problem_handlers

pytestmark = pytest.mark.stack


async def test_rebuild_without_its_topic_is_a_503_with_the_reason(
    stack_settings: StackSettings,
) -> None:
    # Regression: a cluster without article.published (nothing published yet, or the topic
    # lost) answered the rebuild with a 500.
    env = service_environment(stack_settings, "publishing")
    engine = make_engine(env["DATABASE_URL"], 1)
    topic = f"article.published.missing-{uuid.uuid4().hex[:8]}"
    # As the operator: a service's own user may not even learn whether a topic it has no
    # rights on exists (the broker answers "not authorised" instead).
    rebuilder = StoreRebuilder(
        make_sessionmaker(engine), admin_client_options(stack_settings), topic=topic
    )
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(rebuild_router(rebuilder, lambda: None))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://pub"
        ) as http:
            resp = await http.post("/admin/v1/rebuild")
    finally:
        await engine.dispose()
    assert resp.status_code == 503, resp.text
    assert f"topic {topic} does not exist yet" in resp.json()["detail"]
    assert int(resp.headers["Retry-After"]) > 0
