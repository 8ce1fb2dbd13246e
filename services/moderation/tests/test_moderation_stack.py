"""The review desk on the real stack: article.normalized in, editors' decisions, article.reviewed out."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from portal_contracts.articles import (
    ArticleAction,
    ArticleNormalized,
    ArticleNormalizedEvent,
    ArticleReviewedEvent,
    NormalizedArticle,
    QualityIssue,
    QualityReport,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_NORMALIZED, ARTICLE_REVIEWED
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_moderation.app import create_app
from portal_moderation.db import sign_in_failures
from portal_moderation.settings import Settings

pytestmark = pytest.mark.stack


@dataclass
class Desk:
    app: Any
    http: httpx.AsyncClient
    admin_token: str
    events: Any

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def source(self, policy: str) -> str:
        code = f"nguon-{uuid.uuid4().hex[:10]}"
        resp = await self.http.put(
            f"/admin/v1/sources/{code}",
            json={"name": f"Nguồn {code}", "kind": "province", "policy": policy},
            headers=self.admin(),
        )
        assert resp.status_code == 200, resp.text
        return code

    async def account(self, role: str, source: str | None = None) -> tuple[str, str]:
        username = f"{role.replace('_', '-')}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        body: dict[str, Any] = {"password": password, "role": role, "display_name": username}
        if source:
            body["source"] = source
        resp = await self.http.put(f"/admin/v1/users/{username}", json=body, headers=self.admin())
        assert resp.status_code == 201, resp.text
        return username, password

    async def sign_in(self, role: str, source: str | None = None) -> tuple[str, dict[str, str]]:
        username, password = await self.account(role, source)
        resp = await self.http.post(
            "/v1/auth/token", json={"username": username, "password": password}
        )
        assert resp.status_code == 200, resp.text
        return username, {"Authorization": f"Bearer {resp.json()['access_token']}"}

    async def normalized(
        self,
        source: str,
        external_id: str,
        revision: int,
        *,
        action: ArticleAction = ArticleAction.UPSERT,
        title: str | None = None,
    ) -> str:
        event = await self.normalized_event(
            source, external_id, revision, action=action, title=title
        )
        return event.subject

    async def normalized_event(
        self,
        source: str,
        external_id: str,
        revision: int,
        *,
        action: ArticleAction = ArticleAction.UPSERT,
        title: str | None = None,
    ) -> ArticleNormalizedEvent:
        article_id = article_id_for(source, external_id)
        article = None
        if action is ArticleAction.UPSERT:
            text = "Đảng Cộng sản Việt Nam lãnh đạo toàn diện."
            article = NormalizedArticle(
                title=title or f"Bài {external_id} bản {revision}",
                summary=text,
                body_html=f"<p>{text}</p>",
                body_text=text,
                section="ct-tin-tuc-hoat-dong",
            )
        event = ArticleNormalizedEvent(
            producer="normalize",
            subject=article_id,
            data=ArticleNormalized(
                article_id=article_id,
                source=source,
                external_id=external_id,
                revision=revision,
                action=action,
                received_at=datetime.now(UTC),
                article=article,
                quality=QualityReport(
                    score=0.75,
                    issues=[QualityIssue(code="no_image", message="no image", needs_person=True)],
                )
                if article
                else None,
            ),
        )
        await self.events.produce(ARTICLE_NORMALIZED.name, event)
        return event

    async def item(self, article_id: str, headers: dict[str, str]) -> httpx.Response:
        return await self.http.get(f"/v1/items/{article_id}", headers=headers)

    async def wait_item(
        self, article_id: str, headers: dict[str, str], revision: int = 1, timeout_s: float = 60
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            resp = await self.item(article_id, headers)
            if resp.status_code == 200 and resp.json()["revision"] >= revision:
                data: dict[str, Any] = resp.json()
                return data
            assert resp.status_code in (200, 404), resp.text
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no item {article_id} at revision {revision}: {resp.text}")
            await asyncio.sleep(0.2)

    async def reviewed(self, article_id: str, count: int = 1) -> list[ArticleReviewedEvent]:
        found = await self.events.read(
            ARTICLE_REVIEWED.name, article_id, until=lambda evs: len(evs) >= count
        )
        return [ArticleReviewedEvent.model_validate(e) for e in found]


@pytest.fixture(scope="module")
async def desk(stack_settings: StackSettings, kafka_events: Any) -> AsyncIterator[Desk]:
    env = service_environment(stack_settings, "moderation")
    settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mod") as http,
    ):
        yield Desk(app, http, env["ADMIN_TOKEN"], kafka_events)


def _recent(moment: datetime) -> bool:
    return abs(datetime.now(UTC) - moment) < timedelta(minutes=2)


async def test_trusted_source_is_auto_published_at_once(desk: Desk) -> None:
    source = await desk.source("trusted")
    article_id = await desk.normalized(source, "a1", 1, title="Tin đáng tin cậy")
    [event] = await desk.reviewed(article_id)
    assert event.producer == "moderation"
    assert event.data.decision == "auto_published"
    assert event.data.reviewer == "policy:trusted"
    assert event.data.revision == 1
    assert event.data.article is not None and event.data.article.title == "Tin đáng tin cậy"
    assert _recent(event.data.reviewed_at)

    _, editor = await desk.sign_in("editor")
    item = await desk.wait_item(article_id, editor)
    assert item["state"] == "auto_published"  # still in post-review
    assert item["published_revision"] == 1
    assert item["flags"] == ["no_image"]


async def test_pre_review_waits_for_an_editor_then_approve_publishes(desk: Desk) -> None:
    source = f"chua-khai-bao-{uuid.uuid4().hex[:8]}"  # unknown source: pre-review
    article_id = await desk.normalized(source, "b1", 1, title="Chờ duyệt")
    username, editor = await desk.sign_in("editor")
    item = await desk.wait_item(article_id, editor)
    assert item["state"] == "pending"
    assert item["article"]["title"] == "Chờ duyệt"
    assert item["quality"]["score"] == 0.75
    queue = await desk.http.get(
        "/v1/items", params={"state": "pending", "source": source}, headers=editor
    )
    assert [i["article_id"] for i in queue.json()["items"]] == [article_id]

    resp = await desk.http.post(
        f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=editor
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "published"
    # The approval is the article's first decision: nothing left when it arrived (an event then
    # would stand before the approval's, on the same partition).
    decisions = await desk.events.read(
        ARTICLE_REVIEWED.name,
        article_id,
        until=lambda found: any(e["data"]["decision"] == "approved" for e in found),
    )
    assert [e["data"]["decision"] for e in decisions] == ["approved"]
    event = ArticleReviewedEvent.model_validate(decisions[0])
    assert event.data.reviewer == username
    assert _recent(event.data.reviewed_at)
    assert event.data.article is not None and event.data.article.title == "Chờ duyệt"

    again = await desk.http.post(
        f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=editor
    )
    assert again.status_code == 409
    history = (await desk.http.get(f"/v1/items/{article_id}/history", headers=editor)).json()
    assert [(h["action"], h["actor"]) for h in history] == [
        ("received", f"source:{source}"),
        ("approved", username),
    ]
    assert history[1]["event_id"] == str(event.event_id)


async def test_reject_needs_a_reason_and_emits_rejected(desk: Desk) -> None:
    source = await desk.source("pre-review")
    article_id = await desk.normalized(source, "c1", 1)
    username, editor = await desk.sign_in("editor")
    await desk.wait_item(article_id, editor)
    no_reason = await desk.http.post(
        f"/v1/items/{article_id}/reject", json={"revision": 1}, headers=editor
    )
    assert no_reason.status_code == 422
    assert "reason" in no_reason.text
    resp = await desk.http.post(
        f"/v1/items/{article_id}/reject",
        json={"revision": 1, "reason": "Sai chuyên mục"},
        headers=editor,
    )
    assert resp.status_code == 200, resp.text
    [event] = await desk.reviewed(article_id)
    assert (event.data.decision, event.data.reviewer, event.data.reason) == (
        "rejected",
        username,
        "Sai chuyên mục",
    )
    assert event.data.article is None


async def test_edit_of_a_published_item_republishes_and_chief_retracts(desk: Desk) -> None:
    source = await desk.source("pre-review")
    article_id = await desk.normalized(source, "d1", 1, title="Tiêu đề gốc")
    editor_name, editor = await desk.sign_in("editor")
    await desk.wait_item(article_id, editor)

    # Edited while pending: no event yet; the approval carries the edit.
    edit = await desk.http.patch(
        f"/v1/items/{article_id}",
        json={"revision": 1, "title": "Tiêu đề đã sửa"},
        headers=editor,
    )
    assert edit.status_code == 200, edit.text
    approve = await desk.http.post(
        f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=editor
    )
    assert approve.status_code == 200, approve.text
    [approved] = await desk.reviewed(article_id)
    assert approved.data.article is not None
    assert approved.data.article.title == "Tiêu đề đã sửa"

    # Edited while published: a new approved event at the same revision.
    edit = await desk.http.patch(
        f"/v1/items/{article_id}",
        json={"revision": 1, "summary": "Tóm tắt mới", "section": "ct-xay-dung-dang"},
        headers=editor,
    )
    assert edit.status_code == 200, edit.text
    events = await desk.reviewed(article_id, 2)
    update = events[1].data
    assert (update.decision, update.revision, update.reviewer) == ("approved", 1, editor_name)
    assert update.article is not None
    assert (update.article.summary, update.article.section) == ("Tóm tắt mới", "ct-xay-dung-dang")
    assert update.article.title == "Tiêu đề đã sửa"

    # An editor may not retract; a chief editor may.
    denied = await desk.http.post(
        f"/v1/items/{article_id}/retract", json={"reason": "Sai sự thật"}, headers=editor
    )
    assert denied.status_code == 403
    chief_name, chief = await desk.sign_in("chief_editor")
    retract = await desk.http.post(
        f"/v1/items/{article_id}/retract", json={"reason": "Sai sự thật"}, headers=chief
    )
    assert retract.status_code == 200, retract.text
    events = await desk.reviewed(article_id, 3)
    assert (events[2].data.decision, events[2].data.reviewer, events[2].data.reason) == (
        "retracted",
        chief_name,
        "Sai sự thật",
    )

    history = (await desk.http.get(f"/v1/items/{article_id}/history", headers=chief)).json()
    assert [h["action"] for h in history] == [
        "received",
        "edited",
        "approved",
        "edited",
        "retracted",
    ]
    assert history[1]["changes"] == {"title": {"before": "Tiêu đề gốc", "after": "Tiêu đề đã sửa"}}
    assert history[1]["event_id"] is None  # a pending edit emits nothing
    assert history[3]["changes"]["section"] == {
        "before": "ct-tin-tuc-hoat-dong",
        "after": "ct-xay-dung-dang",
    }
    assert history[4]["actor_role"] == "chief_editor"


async def test_stale_approve_gets_409_and_an_update_goes_back_to_review(
    desk: Desk, processed: Any
) -> None:
    source = await desk.source("pre-review")
    article_id = await desk.normalized(source, "e1", 1)
    _, editor = await desk.sign_in("editor")
    await desk.wait_item(article_id, editor)
    ok = await desk.http.post(
        f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=editor
    )
    assert ok.status_code == 200, ok.text

    await desk.normalized(source, "e1", 2, title="Bản cập nhật")
    item = await desk.wait_item(article_id, editor, revision=2)
    assert item["state"] == "pending"
    assert item["published_revision"] == 1  # the approved version stays public meanwhile

    stale = await desk.http.post(
        f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=editor
    )
    assert stale.status_code == 409
    assert stale.json()["detail"]["current_revision"] == 2
    assert "revision" in stale.json()["detail"]["reason"]
    # The decision leaves through the outbox a moment after the answer: wait for it, then
    # check that it is the only one.
    await desk.events.read(ARTICLE_REVIEWED.name, article_id, until=bool)
    assert len(await desk.events.read(ARTICLE_REVIEWED.name, article_id)) == 1

    # An older revision arriving late changes nothing.
    late = await desk.normalized_event(source, "e1", 1, title="Bản cũ đến muộn")
    await processed(desk.app, late.event_id)
    item = (await desk.item(article_id, editor)).json()
    assert (item["revision"], item["article"]["title"]) == (2, "Bản cập nhật")


async def test_two_editors_never_both_approve(desk: Desk) -> None:
    source = await desk.source("pre-review")
    article_id = await desk.normalized(source, "f1", 1)
    _, first = await desk.sign_in("editor")
    _, second = await desk.sign_in("editor")
    await desk.wait_item(article_id, first)
    results = await asyncio.gather(
        desk.http.post(f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=first),
        desk.http.post(f"/v1/items/{article_id}/approve", json={"revision": 1}, headers=second),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    # A later decision on the article is the marker: its event follows any earlier one on the
    # article's partition, so once it is out, every approval is out too.
    _, chief = await desk.sign_in("chief_editor")
    retracted = await desk.http.post(
        f"/v1/items/{article_id}/retract", json={"reason": "Đánh dấu"}, headers=chief
    )
    assert retracted.status_code == 200, retracted.text
    decisions = await desk.events.read(
        ARTICLE_REVIEWED.name,
        article_id,
        until=lambda found: any(e["data"]["decision"] == "retracted" for e in found),
    )
    assert [e["data"]["decision"] for e in decisions] == ["approved", "retracted"]


async def test_partner_retraction_is_passed_on_at_once(desk: Desk) -> None:
    source = await desk.source("pre-review")
    article_id = await desk.normalized(source, "g1", 1)
    await desk.normalized(source, "g1", 2, action=ArticleAction.RETRACT)
    [event] = await desk.reviewed(article_id)
    assert (event.data.decision, event.data.reviewer, event.data.revision) == (
        "retracted",
        "partner",
        2,
    )
    _, editor = await desk.sign_in("editor")
    item = await desk.wait_item(article_id, editor, revision=2)
    assert item["state"] == "retracted"
    assert item["article"] is not None  # editors still see what was withdrawn


async def test_agency_publisher_sees_only_its_own_items_and_cannot_act(desk: Desk) -> None:
    own = await desk.source("pre-review")
    other = await desk.source("pre-review")
    own_id = await desk.normalized(own, "h1", 1)
    other_id = await desk.normalized(other, "h2", 1)
    _, editor = await desk.sign_in("editor")
    await desk.wait_item(own_id, editor)
    await desk.wait_item(other_id, editor)

    _, agency = await desk.sign_in("agency_publisher", source=own)
    assert (await desk.item(own_id, agency)).status_code == 200
    assert (await desk.item(other_id, agency)).status_code == 403
    assert (await desk.http.get(f"/v1/items/{other_id}/history", headers=agency)).status_code == 403
    approve = await desk.http.post(
        f"/v1/items/{own_id}/approve", json={"revision": 1}, headers=agency
    )
    assert approve.status_code == 403
    listing = await desk.http.get("/v1/items", headers=agency)
    assert {i["source"] for i in listing.json()["items"]} == {own}
    assert (
        await desk.http.get("/v1/items", params={"source": other}, headers=agency)
    ).status_code == 403
    me = (await desk.http.get("/v1/auth/me", headers=agency)).json()
    assert (me["role"], me["source"], me["may"]) == ("agency_publisher", own, ["view"])


async def test_sign_in_and_tokens(desk: Desk) -> None:
    username, password = await desk.account("editor")
    wrong = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password + "x"}
    )
    assert wrong.status_code == 401
    unknown = await desk.http.post(
        "/v1/auth/token", json={"username": "khong-co-ai", "password": password}
    )
    assert unknown.status_code == 401
    form = await desk.http.post("/v1/auth/token", data={"username": username, "password": password})
    assert form.status_code == 200, form.text
    headers = {"Authorization": f"Bearer {form.json()['access_token']}"}
    assert (await desk.http.get("/v1/items", headers=headers)).status_code == 200
    assert (await desk.http.get("/v1/items")).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await desk.http.get("/v1/items", headers=bad)).status_code == 401
    assert (await desk.http.post("/v1/auth/logout", headers=headers)).status_code == 204
    assert (await desk.http.get("/v1/items", headers=headers)).status_code == 401

    # A changed password ends the account's sessions.
    again = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}
    )
    headers = {"Authorization": f"Bearer {again.json()['access_token']}"}
    reset = await desk.http.put(
        f"/admin/v1/users/{username}",
        json={"password": secrets.token_urlsafe(16), "role": "editor", "display_name": "x"},
        headers=desk.admin(),
    )
    assert reset.status_code == 200, reset.text
    assert (await desk.http.get("/v1/items", headers=headers)).status_code == 401


async def test_admin_api_needs_the_admin_token_and_checks_fields(desk: Desk) -> None:
    assert (await desk.http.get("/admin/v1/sources")).status_code == 401
    editor_token = (await desk.sign_in("admin"))[1]
    assert (await desk.http.get("/admin/v1/sources", headers=editor_token)).status_code == 401
    bad_policy = await desk.http.put(
        "/admin/v1/sources/bo-thu",
        json={"name": "Bộ", "kind": "ministry", "policy": "always"},
        headers=desk.admin(),
    )
    assert bad_policy.status_code == 422 and "policy" in bad_policy.text
    no_source = await desk.http.put(
        "/admin/v1/users/dai-dien-bo",
        json={"password": "mat-khau-du-dai", "role": "agency_publisher", "display_name": "x"},
        headers=desk.admin(),
    )
    assert no_source.status_code == 422 and "source" in no_source.text
    short = await desk.http.put(
        "/admin/v1/users/bien-tap-moi",
        json={"password": "ngan", "role": "editor", "display_name": "x"},
        headers=desk.admin(),
    )
    assert short.status_code == 422 and "password" in short.text
    code = await desk.source("trusted")
    listed = (await desk.http.get("/admin/v1/sources", headers=desk.admin())).json()
    assert {"code": code, "policy": "trusted"}.items() <= next(
        s for s in listed if s["code"] == code
    ).items()


async def test_an_account_is_updated_without_a_new_password(desk: Desk) -> None:
    # Regression: the upsert's INSERT half checked NOT NULL on password_hash first (500).
    username, password = await desk.account("editor")
    resp = await desk.http.put(
        f"/admin/v1/users/{username}",
        json={"role": "chief_editor", "display_name": "Trưởng ban"},
        headers=desk.admin(),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["role"] == "chief_editor"
    signed_in = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}
    )
    assert signed_in.status_code == 200 and signed_in.json()["role"] == "chief_editor"


async def test_every_422_has_the_documented_shape(desk: Desk) -> None:
    # Regression: handler-raised 422s answered {"detail": "<text>"}, not the documented list;
    # NUL reached PostgreSQL (500); an undecodable body was an undocumented 400.
    _, editor = await desk.sign_in("editor")
    bad_cursor = await desk.http.get("/v1/items", params={"cursor": "xyz"}, headers=editor)
    nul_name = await desk.http.put(
        "/admin/v1/sources/bo-nul",
        json={"name": "Bộ\x00", "kind": "ministry", "policy": "trusted"},
        headers=desk.admin(),
    )
    not_utf8 = await desk.http.post(
        f"/v1/items/{uuid.uuid4()}/retract",
        content=b'{"revision": 1, "reason": "\xff"}',
        headers={**editor, "Content-Type": "application/json"},
    )
    spec = (await desk.http.get("/openapi.json")).json()
    documented = {
        json.dumps(op["responses"]["422"]["content"])
        for item in spec["paths"].values()
        for op in item.values()
        if "422" in op.get("responses", {})
    }
    assert documented == {
        json.dumps(
            {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationFailed"}}}
        )
    }
    for resp, field in ((bad_cursor, "cursor"), (nul_name, "name"), (not_utf8, "body")):
        assert resp.status_code == 422, resp.text
        [problem] = resp.json()["detail"]
        assert problem["loc"][-1] == field and problem["msg"] and problem["type"]


def _address() -> dict[str, str]:
    """A client address of its own (loopback is a trusted proxy here), so one test's failed
    sign-ins throttle nobody else."""
    octets = (str(secrets.randbelow(256)) for _ in range(3))
    return {"X-Forwarded-For": ".".join(["10", *octets])}


async def test_wrong_sign_ins_under_many_names_from_one_address_get_429_before_hashing(
    desk: Desk,
) -> None:
    accounts = desk.app.state.accounts
    limit = accounts.limits.per_address
    assert limit > 0
    username, password = await desk.account("editor")
    spray = _address()
    statuses: list[int] = []
    hashes_at_limit = 0
    for n in range(50):
        resp = await desk.http.post(
            "/v1/auth/token",
            json={"username": f"ten-{secrets.token_hex(4)}", "password": "doan-sai-mat-khau"},
            headers=spray,
        )
        statuses.append(resp.status_code)
        if n == limit - 1:
            hashes_at_limit = accounts.passwords.hashes_run
        if resp.status_code == 429:
            assert int(resp.headers["Retry-After"]) > 0
    assert statuses == [401] * limit + [429] * (50 - limit)
    # Refused before any password was checked: not one hash after the limit.
    assert accounts.passwords.hashes_run == hashes_at_limit
    # Even the right password waits from there; from another address it works.
    blocked = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=spray
    )
    assert blocked.status_code == 429
    assert accounts.passwords.hashes_run == hashes_at_limit
    elsewhere = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=_address()
    )
    assert elsewhere.status_code == 200, elsewhere.text


async def test_a_strangers_wrong_sign_ins_do_not_lock_the_editor_out(desk: Desk) -> None:
    username, password = await desk.account("editor")
    editor, stranger = _address(), _address()
    first = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=editor
    )
    assert first.status_code == 200, first.text
    limit = desk.app.state.accounts.limits.per_name_and_address
    for _ in range(limit):
        resp = await desk.http.post(
            "/v1/auth/token",
            json={"username": username, "password": "doan-sai-mat-khau"},
            headers=stranger,
        )
        assert resp.status_code == 401
    throttled = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=stranger
    )
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60  # login_lockout_minutes
    again = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=editor
    )
    assert again.status_code == 200, again.text


async def test_a_successful_sign_in_clears_that_names_failures_from_that_address(
    desk: Desk,
) -> None:
    username, password = await desk.account("editor")
    here = _address()
    limit = desk.app.state.accounts.limits.per_name_and_address

    async def attempt(secret: str) -> int:
        resp = await desk.http.post(
            "/v1/auth/token", json={"username": username, "password": secret}, headers=here
        )
        return resp.status_code

    assert [await attempt("doan-sai-mat-khau") for _ in range(limit - 1)] == [401] * (limit - 1)
    assert await attempt(password) == 200
    # The count started again: another limit - 1 mistakes still leave the right password in.
    assert [await attempt("doan-sai-mat-khau") for _ in range(limit - 1)] == [401] * (limit - 1)
    assert await attempt(password) == 200


async def test_an_overlong_forwarded_address_is_counted_not_a_server_error(desk: Desk) -> None:
    username, password = await desk.account("editor")
    odd = {"X-Forwarded-For": "k" * 300}
    right = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=odd
    )
    assert right.status_code == 200, right.text
    wrong = await desk.http.post(
        "/v1/auth/token", json={"username": username, "password": "doan-sai-mat-khau"}, headers=odd
    )
    assert wrong.status_code == 401


async def test_failures_older_than_the_window_are_pruned(desk: Desk) -> None:
    sessions = desk.app.state.accounts.sessions
    window = desk.app.state.accounts.limits.window
    old, recent = _address()["X-Forwarded-For"], _address()
    async with sessions.begin() as session:
        await session.execute(
            sign_in_failures.insert().values(
                address=old, username="ai-do", failed_at=datetime.now(UTC) - window * 2
            )
        )

    async def rows_from(address: str) -> int:
        async with sessions() as session:
            query = select(func.count()).where(sign_in_failures.c.address == address)
            return int((await session.execute(query)).scalar_one())

    assert await rows_from(old) == 1
    wrong = await desk.http.post(
        "/v1/auth/token",
        json={"username": "ai-do", "password": "doan-sai-mat-khau"},
        headers=recent,
    )
    assert wrong.status_code == 401
    assert await rows_from(recent["X-Forwarded-For"]) == 1
    assert await rows_from(old) == 0


async def test_bad_requests_get_4xx_naming_the_field(desk: Desk) -> None:
    source = await desk.source("pre-review")
    article_id = await desk.normalized(source, "k1", 1)
    _, editor = await desk.sign_in("editor")
    await desk.wait_item(article_id, editor)
    empty_title = await desk.http.patch(
        f"/v1/items/{article_id}", json={"revision": 1, "title": "   "}, headers=editor
    )
    assert empty_title.status_code == 422 and "title" in empty_title.text
    nothing = await desk.http.patch(f"/v1/items/{article_id}", json={"revision": 1}, headers=editor)
    assert nothing.status_code == 422 and "title" in nothing.text
    bad_section = await desk.http.patch(
        f"/v1/items/{article_id}", json={"revision": 1, "section": "Không Hợp Lệ"}, headers=editor
    )
    assert bad_section.status_code == 422 and "section" in bad_section.text
    bad_cursor = await desk.http.get("/v1/items", params={"cursor": "xyz"}, headers=editor)
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.text
    missing = await desk.http.post(
        f"/v1/items/{uuid.uuid4()}/approve", json={"revision": 1}, headers=editor
    )
    assert missing.status_code == 404 and "article_id" in missing.text
    huge = await desk.http.post(
        f"/v1/items/{article_id}/reject",
        json={"revision": 1, "reason": "x" * 100_000},
        headers=editor,
    )
    assert huge.status_code == 413


async def test_queue_pages_in_arrival_order(desk: Desk) -> None:
    source = await desk.source("pre-review")
    ids = [await desk.normalized(source, f"p{i}", 1) for i in range(5)]
    _, editor = await desk.sign_in("editor")
    for article_id in ids:
        await desk.wait_item(article_id, editor)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"source": source, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await desk.http.get("/v1/items", params=params, headers=editor)).json()
        seen += [i["article_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    newest = await desk.http.get(
        "/v1/items", params={"source": source, "order": "newest"}, headers=editor
    )
    assert [i["article_id"] for i in newest.json()["items"]] == ids[::-1]
