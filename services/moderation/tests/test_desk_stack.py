"""The web desk in-process on the real stack (PostgreSQL, Kafka): sign-in, CSRF, roles, the
editors' lock, bulk approval, originals, near-duplicates, category mapping, the dashboard's
figures, dead letters and the audit log."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalized,
    ArticleNormalizedEvent,
    ArticleReviewedEvent,
    Channel,
    MediaRef,
    NormalizedArticle,
    QualityIssue,
    QualityReport,
    article_id_for,
)
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_REVIEWED,
    PARTNER_DEAD_LETTERS,
    partner_topic,
)
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_moderation.app import create_app
from portal_moderation.settings import Settings

pytestmark = pytest.mark.stack

MAX_FAILURES = 3


def _address() -> str:
    return ".".join(["10", *(str(secrets.randbelow(256)) for _ in range(3))])


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@dataclass
class Desk:
    app: Any
    admin_token: str
    events: Any

    def client(self, scheme: str = "http", address: str | None = None) -> httpx.AsyncClient:
        """A client; with ``address``, one the app sees as that address (loopback is a trusted
        proxy), so its failed sign-ins throttle no other test."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=f"{scheme}://mod",
            headers={"X-Forwarded-For": address} if address else None,
        )

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def source(self, policy: str = "pre-review", **extra: Any) -> str:
        code = f"nguon-{uuid.uuid4().hex[:10]}"
        async with self.client() as http:
            resp = await http.put(
                f"/admin/v1/sources/{code}",
                json={"name": f"Cơ quan {code}", "kind": "province", "policy": policy, **extra},
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
        async with self.client() as http:
            resp = await http.put(f"/admin/v1/users/{username}", json=body, headers=self.admin())
        assert resp.status_code == 201, resp.text
        return username, password

    @asynccontextmanager
    async def browser(
        self, role: str, source: str | None = None, scheme: str = "http"
    ) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
        """A signed-in browser-like client (cookies), its CSRF token and user name."""
        username, password = await self.account(role, source)
        async with self.client(scheme) as http:
            form = await http.get("/desk/login")
            resp = await http.post(
                "/desk/login",
                data={
                    "username": username,
                    "password": password,
                    "csrf_token": csrf_in(form.text),
                },
            )
            assert resp.status_code == 303, resp.text
            page = await http.get("/desk/queue")
            assert page.status_code == 200, page.text
            yield http, csrf_in(page.text), username

    async def normalized(
        self,
        source: str,
        *,
        title: str | None = None,
        text: str = "Đảng Cộng sản Việt Nam lãnh đạo toàn diện.",
        section: str | None = "ct-tin-tuc-hoat-dong",
        categories: list[str] | None = None,
        images: list[MediaRef] | None = None,
        external_id: str | None = None,
        revision: int = 1,
        duplicate_of: str | None = None,
    ) -> str:
        external_id = external_id or f"bai-{uuid.uuid4().hex[:8]}"
        article_id = article_id_for(source, external_id)
        article = NormalizedArticle(
            title=title or f"Bài {external_id}",
            summary=text[:100],
            body_html=f"<p>{text}</p>",
            body_text=text,
            section=section,
            categories=categories or [],
            images=images or [],
        )
        issues = [QualityIssue(code="no_section", message="no section")] if not section else []
        event = ArticleNormalizedEvent(
            producer="normalize",
            subject=article_id,
            data=ArticleNormalized(
                article_id=article_id,
                source=source,
                external_id=external_id,
                revision=revision,
                action=ArticleAction.UPSERT,
                received_at=datetime.now(UTC),
                article=article,
                quality=QualityReport(score=0.8, issues=issues),
                duplicate_of=duplicate_of,
            ),
        )
        await self.events.produce(ARTICLE_NORMALIZED.name, event)
        return article_id

    async def item(self, article_id: str, timeout_s: float = 60, **expect: Any) -> dict[str, Any]:
        """The item as the JSON API shows it, once it exists (and matches ``expect``)."""
        async with self.client() as http:
            username, password = await self.account("chief_editor")
            token = (
                await http.post("/v1/auth/token", json={"username": username, "password": password})
            ).json()["access_token"]
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                resp = await http.get(
                    f"/v1/items/{article_id}", headers={"Authorization": f"Bearer {token}"}
                )
                if resp.status_code == 200:
                    data: dict[str, Any] = resp.json()
                    if all(data.get(k) == v for k, v in expect.items()):
                        return data
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"item {article_id} {expect}: {resp.text}")
                await asyncio.sleep(0.2)

    async def reviewed(self, article_id: str, count: int = 1) -> list[ArticleReviewedEvent]:
        found = await self.events.read(
            ARTICLE_REVIEWED.name, article_id, until=lambda evs: len(evs) >= count
        )
        return [ArticleReviewedEvent.model_validate(e) for e in found]


@pytest.fixture(scope="module")
async def desk(stack_settings: StackSettings, kafka_events: Any) -> AsyncIterator[Desk]:
    env = service_environment(stack_settings, "moderation")
    values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    values.update(
        login_max_failures=MAX_FAILURES,
        ingest_url="http://127.0.0.1:9",  # nothing listens: the pages must cope
        publishing_url="http://127.0.0.1:9",
    )
    app = create_app(Settings(**values))
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        yield Desk(app, env["ADMIN_TOKEN"], kafka_events)


# --- sign-in, cookies, CSRF -----------------------------------------------------------------


async def test_sign_in_sets_an_httponly_session_cookie_and_sign_out_ends_it(desk: Desk) -> None:
    username, password = await desk.account("editor")
    async with desk.client() as http:
        anonymous = await http.get("/desk/queue?state=all")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/desk/login?next=%2Fdesk%2Fqueue%3Fstate%3Dall"

        form = await http.get("/desk/login")
        assert form.status_code == 200
        assert "httponly" in form.headers["set-cookie"].lower()
        resp = await http.post(
            "/desk/login",
            data={
                "username": username,
                "password": password,
                "csrf_token": csrf_in(form.text),
                "next": "/desk/queue?state=all",
            },
        )
        assert resp.status_code == 303
        assert resp.headers["location"] == "/desk/queue?state=all"
        cookie = next(
            c for c in resp.headers.get_list("set-cookie") if c.startswith("desk_session=")
        )
        attributes = cookie.lower()
        assert "httponly" in attributes and "samesite=lax" in attributes
        assert "secure" not in attributes  # plain HTTP on loopback
        page = await http.get("/desk/queue")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store, private"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

        out = await http.post("/desk/logout", data={"csrf_token": csrf_in(page.text)})
        assert out.status_code == 303
        http.cookies.set("desk_session", cookie.split(";")[0].split("=", 1)[1])
        assert (await http.get("/desk/queue")).status_code == 303  # the session is gone


async def test_over_https_the_session_cookie_is_secure(desk: Desk) -> None:
    username, password = await desk.account("editor")
    async with desk.client("https") as http:
        form = await http.get("/desk/login")
        resp = await http.post(
            "/desk/login",
            data={"username": username, "password": password, "csrf_token": csrf_in(form.text)},
        )
        cookie = next(
            c for c in resp.headers.get_list("set-cookie") if c.startswith("desk_session=")
        )
        assert "secure" in cookie.lower()


async def test_sign_in_without_the_csrf_token_is_refused(desk: Desk) -> None:
    username, password = await desk.account("editor")
    async with desk.client() as http:
        await http.get("/desk/login")
        resp = await http.post("/desk/login", data={"username": username, "password": password})
        assert resp.status_code == 403
        assert "CSRF" in resp.text
        assert "desk_session" not in resp.headers.get("set-cookie", "")


async def test_repeated_wrong_passwords_throttle_that_address_not_the_account(
    desk: Desk,
) -> None:
    username, password = await desk.account("editor")

    async def sign_in(http: httpx.AsyncClient, secret: str) -> httpx.Response:
        form = await http.get("/desk/login")
        return await http.post(
            "/desk/login",
            data={"username": username, "password": secret, "csrf_token": csrf_in(form.text)},
        )

    async with desk.client(address=_address()) as http:
        for _ in range(MAX_FAILURES):
            wrong = await sign_in(http, "sai-mat-khau")
            assert wrong.status_code == 401
            assert "không đúng" in wrong.text
        throttled = await sign_in(http, password)
        assert throttled.status_code == 429
        assert "sai quá nhiều lần" in throttled.text
        assert int(throttled.headers["Retry-After"]) > 0
    async with desk.client(address=_address()) as elsewhere:
        assert (await sign_in(elsewhere, password)).status_code == 303


async def test_a_name_with_a_nul_character_is_refused_with_422(desk: Desk) -> None:
    _, password = await desk.account("editor")
    async with desk.client(address=_address()) as http:
        form = await http.get("/desk/login")
        resp = await http.post(
            "/desk/login",
            data={
                "username": "bien\x00tap",
                "password": password,
                "csrf_token": csrf_in(form.text),
            },
        )
        assert resp.status_code == 422
        assert "Nhập tên đăng nhập" in resp.text


async def test_a_decision_without_a_valid_csrf_token_is_refused(desk: Desk) -> None:
    source = await desk.source()
    article_id = await desk.normalized(source)
    item = await desk.item(article_id)
    form = {"version": str(item["version"]), "revision": "1"}
    async with desk.browser("editor") as (http, token, _):
        assert (await http.post(f"/desk/items/{article_id}/approve", data=form)).status_code == 403
        wrong = await http.post(
            f"/desk/items/{article_id}/approve", data={**form, "csrf_token": "x" * 43}
        )
        assert wrong.status_code == 403
        other_site = await http.post(
            f"/desk/items/{article_id}/approve",
            data={**form, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert other_site.status_code == 403
        assert (await desk.item(article_id))["state"] == "pending"

        # htmx sends the token in a header and gets the item back in place.
        ok = await http.post(
            f"/desk/items/{article_id}/approve",
            data=form,
            headers={"X-CSRF-Token": token, "HX-Request": "true", "Origin": "http://mod"},
        )
        assert ok.status_code == 200, ok.text
        assert "Đã duyệt" in ok.text
        assert (
            f'id="row-{article_id}" class="row" data-id="{article_id}" hx-swap-oob="true"'
            in ok.text
        )
    assert (await desk.item(article_id))["state"] == "published"


# --- roles ----------------------------------------------------------------------------------


async def test_pages_and_actions_check_the_role_on_the_server(desk: Desk) -> None:
    source = await desk.source()
    other = await desk.source()
    own_id = await desk.normalized(source, title="Tin của cơ quan mình")
    other_id = await desk.normalized(other, title="Tin của cơ quan khác")
    await desk.item(own_id)
    await desk.item(other_id)

    async with desk.browser("editor") as (editor, _, _):
        for path in ("/desk/sources", "/desk/users", "/desk/audit"):
            assert (await editor.get(path)).status_code == 403, path
        assert (await editor.get("/desk/dashboard")).status_code == 200
    async with desk.browser("chief_editor") as (chief, _, _):
        assert (await chief.get("/desk/audit")).status_code == 200
        assert (await chief.get("/desk/sources")).status_code == 403

    async with desk.browser("agency_publisher", source) as (agency, token, _):
        queue = await agency.get("/desk/queue")
        assert own_id in queue.text and other_id not in queue.text
        assert (await agency.get(f"/desk/queue?source={other}")).status_code == 403
        assert (await agency.get(f"/desk/items/{other_id}")).status_code == 403
        assert (await agency.get(f"/desk/items/{other_id}/panel")).status_code == 403
        panel = await agency.get(f"/desk/items/{own_id}/panel")
        assert panel.status_code == 200 and "/approve" not in panel.text
        approve = await agency.post(
            f"/desk/items/{own_id}/approve",
            data={"csrf_token": token, "version": "1", "revision": "1"},
        )
        assert approve.status_code == 403
        bulk = await agency.post(
            "/desk/items/bulk-approve", data={"csrf_token": token, "item": f"{own_id}:1"}
        )
        assert bulk.status_code == 403
        mine = await agency.get("/desk/dashboard")
        assert mine.status_code == 200 and source in mine.text and other not in mine.text
        assert (await agency.get(f"/desk/dashboard?source={other}")).status_code == 403
    assert (await desk.item(own_id))["state"] == "pending"

    async with desk.browser("editor") as (retracting_editor, token, _):
        refused = await retracting_editor.post(
            f"/desk/items/{own_id}/retract",
            data={"csrf_token": token, "reason": "Không phù hợp", "version": "1", "revision": "1"},
        )
        assert refused.status_code == 403


# --- two editors on one item ----------------------------------------------------------------


async def test_two_editors_never_act_on_one_item_unknowingly(desk: Desk) -> None:
    source = await desk.source()
    article_id = await desk.normalized(source, title="Tiêu đề gốc")
    item = await desk.item(article_id)
    async with (
        desk.browser("editor") as (first, first_token, first_name),
        desk.browser("editor") as (second, second_token, _),
    ):
        assert (await first.get(f"/desk/items/{article_id}/panel")).status_code == 200
        seen = await second.get(f"/desk/items/{article_id}/panel")
        assert f"<strong>{first_name}</strong> đang mở mục này" in seen.text
        queue = await second.get(f"/desk/queue?source={source}")
        assert f"Đang xem: {first_name}" in queue.text

        edited = await first.post(
            f"/desk/items/{article_id}/edit",
            data={
                "csrf_token": first_token,
                "version": str(item["version"]),
                "revision": "1",
                "title": "Tiêu đề đã sửa",
            },
            headers={"HX-Request": "true"},
        )
        assert edited.status_code == 200 and "Đã lưu thay đổi" in edited.text

        # The second editor approves what the screen showed before the edit: refused.
        stale = await second.post(
            f"/desk/items/{article_id}/approve",
            data={"csrf_token": second_token, "version": str(item["version"]), "revision": "1"},
            headers={"HX-Request": "true"},
        )
        assert stale.status_code == 409
        assert "vừa được thay đổi" in stale.text
        assert "Tiêu đề đã sửa" in stale.text  # shown the item as it is now
        assert (await desk.item(article_id))["state"] == "pending"

        fresh = await desk.item(article_id)
        approved = await second.post(
            f"/desk/items/{article_id}/approve",
            data={"csrf_token": second_token, "version": str(fresh["version"]), "revision": "1"},
        )
        assert approved.status_code == 303
    [event] = await desk.reviewed(article_id)
    assert event.data.decision == "approved"
    assert event.data.article is not None and event.data.article.title == "Tiêu đề đã sửa"


async def test_bulk_approve_approves_the_selection_and_reports_what_changed_meanwhile(
    desk: Desk,
) -> None:
    source = await desk.source()
    ids = [await desk.normalized(source, title=f"Tin số {i}") for i in range(3)]
    items = [await desk.item(i) for i in ids]
    async with desk.browser("editor") as (http, token, _):
        resp = await http.post(
            "/desk/items/bulk-approve",
            data={
                "csrf_token": token,
                "item": [
                    f"{ids[0]}:{items[0]['version']}",
                    f"{ids[1]}:{items[1]['version']}",
                    f"{ids[2]}:{items[2]['version'] + 5}",  # changed since the page was drawn
                ],
            },
            headers={"HX-Request": "true"},
        )
    assert resp.status_code == 200, resp.text
    assert "Đã duyệt 2" in resp.text and "Không duyệt được 1" in resp.text
    assert resp.headers["hx-trigger"] == "queue-changed"
    assert [(await desk.item(i))["state"] for i in ids] == ["published", "published", "pending"]
    for article_id in ids[:2]:
        [event] = await desk.reviewed(article_id)
        assert event.data.decision == "approved"


async def test_edit_summary_section_and_lead_image_then_approve_in_one_go(desk: Desk) -> None:
    source = await desk.source()
    images = [
        MediaRef(original_url="https://nguon.example/anh-1.jpg", caption="Ảnh 1"),
        MediaRef(original_url="https://nguon.example/anh-2.jpg", caption="Ảnh 2"),
    ]
    article_id = await desk.normalized(source, images=images)
    item = await desk.item(article_id)
    async with desk.browser("editor") as (http, token, username):
        resp = await http.post(
            f"/desk/items/{article_id}/edit",
            data={
                "csrf_token": token,
                "version": str(item["version"]),
                "revision": "1",
                "title": "Tiêu đề mới",
                "summary": "Sa-pô mới",
                "section": "ct-xay-dung-dang",
                "lead_image": "https://nguon.example/anh-2.jpg",
                "and_approve": "1",
            },
            headers={"HX-Request": "true"},
        )
    assert resp.status_code == 200, resp.text
    assert "Đã lưu thay đổi và duyệt" in resp.text
    [event] = await desk.reviewed(article_id)
    article = event.data.article
    assert article is not None
    assert (article.title, article.summary, article.section) == (
        "Tiêu đề mới",
        "Sa-pô mới",
        "ct-xay-dung-dang",
    )
    assert article.lead_image is not None and article.lead_image.caption == "Ảnh 2"
    assert event.data.reviewer == username


# --- originals, near-duplicates, category mapping -------------------------------------------


async def test_the_original_as_received_is_shown_beside_the_repaired_article(desk: Desk) -> None:
    source = await desk.source()
    external_id = f"goc-{uuid.uuid4().hex[:8]}"
    article_id = article_id_for(source, external_id)
    raw_html = '<p><font face=".VnTime">Héi nghÞ</font></p><script>x()</script>'
    await desk.events.produce(
        ARTICLE_INGESTED.name,
        ArticleIngestedEvent(
            producer="ingest",
            subject=article_id,
            data=ArticleIngested(
                article_id=article_id,
                source=source,
                external_id=external_id,
                revision=1,
                action=ArticleAction.UPSERT,
                channel=Channel.KAFKA,
                received_at=datetime.now(UTC),
                content=ArticleContent(title="Héi nghÞ (TCVN3)", body_html=raw_html),
            ),
        ),
    )
    await desk.normalized(source, external_id=external_id, title="Hội nghị")
    await desk.item(article_id)
    async with desk.browser("editor") as (http, _, _):
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            panel = await http.get(f"/desk/items/{article_id}/panel")
            if "Héi nghÞ (TCVN3)" in panel.text:
                break
            assert asyncio.get_running_loop().time() < deadline, "original never shown"
            await asyncio.sleep(0.3)
    # The partner's markup is shown as text, never run.
    assert "&lt;script&gt;x()&lt;/script&gt;" in panel.text
    assert "<script>x()" not in panel.text
    assert "Kafka" in panel.text


async def test_a_near_duplicate_is_flagged_and_shown_with_its_twin(desk: Desk) -> None:
    """Normalize finds near-duplicates (duplicate_of, the first article of the story); the desk
    flags them and shows each with its twin, both ways."""
    first_source = await desk.source()
    second_source = await desk.source()
    first = await desk.normalized(first_source, title="Khai mạc Hội nghị Trung ương")
    await desk.item(first)
    second = await desk.normalized(second_source, title="Khai mạc Hội nghị TƯ", duplicate_of=first)
    item = await desk.item(second)
    assert item["duplicate_of"] == first
    assert "near_duplicate" in item["flags"]
    unrelated = await desk.normalized(second_source, title="Tin khác")
    assert "near_duplicate" not in (await desk.item(unrelated))["flags"]

    async with desk.browser("editor") as (http, _, _):
        queue = await http.get(f"/desk/queue?source={second_source}&flag=near_duplicate")
        assert second in queue.text and unrelated not in queue.text
        panel = await http.get(f"/desk/items/{second}/panel")
        assert "Có thể trùng lặp" in panel.text
        assert f"/desk/items/{second}/compare/{first}" in panel.text
        twin_panel = await http.get(f"/desk/items/{first}/panel")
        assert f"/desk/items/{first}/compare/{second}" in twin_panel.text
        compare = await http.get(f"/desk/items/{second}/compare/{first}")
        assert compare.status_code == 200
        assert (
            "Khai mạc Hội nghị Trung ương" in compare.text
            and "Khai mạc Hội nghị TƯ" in compare.text
        )


async def test_the_agencys_category_mapping_gives_a_section_on_arrival(desk: Desk) -> None:
    source = await desk.source(categories={"Tin Tức - Sự Kiện": "ct-tin-tuc-hoat-dong"})
    article_id = await desk.normalized(source, section=None, categories=["tin tức - sự kiện"])
    item = await desk.item(article_id)
    assert item["section"] == "ct-tin-tuc-hoat-dong"
    assert item["article"]["section"] == "ct-tin-tuc-hoat-dong"
    assert "no_section" not in item["flags"]
    unmapped = await desk.normalized(source, section=None, categories=["Khác"])
    assert (await desk.item(unmapped))["flags"] == ["no_section"]
    async with desk.browser("chief_editor") as (http, _, _):
        panel = await http.get(f"/desk/items/{article_id}/panel")
    assert "theo chuyên mục “tin tức - sự kiện” của cơ quan" in panel.text


# --- the dashboard and dead letters ---------------------------------------------------------


def _figure(html: str, name: str, source: str | None = None) -> int:
    if source is not None:
        html = html.split(f'data-source="{source}"', 1)[1].split("</tr>", 1)[0]
    match = re.search(rf'data-figure="{name}"[^>]*>([^<]*)<', html)
    assert match, f"no figure {name}"
    return int(match.group(1).replace(".", "").strip())


async def test_dashboard_figures_come_from_the_data_live(desk: Desk) -> None:
    source = await desk.source()
    ids = [await desk.normalized(source, title=f"Tin bảng {i}") for i in range(4)]
    items = [await desk.item(i) for i in ids]
    async with desk.browser("chief_editor") as (http, token, _):
        for article_id, item in zip(ids[:1], items[:1], strict=True):
            await http.post(
                f"/desk/items/{article_id}/approve",
                data={"csrf_token": token, "version": str(item["version"]), "revision": "1"},
            )
        await http.post(
            f"/desk/items/{ids[1]}/reject",
            data={
                "csrf_token": token,
                "version": str(items[1]["version"]),
                "revision": "1",
                "preset": "Trùng lặp với tin đã đăng",
            },
        )
        # A message of this agency refused at ingest (its dead letter).
        letter = DeadLetterEvent(
            producer="ingest",
            subject=f"{partner_topic(source)}/0/1",
            data=DeadLetter(
                original_topic=partner_topic(source),
                original_partition=0,
                original_offset=1,
                original_value_b64=base64.b64encode(b'{"external_id": "x"}').decode(),
                consumer_group="ingest",
                reason="content: Field required",
                error_type="validation",
                failed_at=datetime.now(UTC),
                source=source,
            ),
        )
        await desk.events.produce(PARTNER_DEAD_LETTERS, letter)

        deadline = asyncio.get_running_loop().time() + 60
        while True:
            page = await http.get(f"/desk/dashboard?source={source}&period=7d")
            assert page.status_code == 200
            # Figures follow the Kafka topics: the source's row appears once its items arrive.
            if f'data-source="{source}"' in page.text and _figure(page.text, "errors", source) == 1:
                break
            assert asyncio.get_running_loop().time() < deadline, "dead letter never counted"
            await asyncio.sleep(0.5)
        html = page.text
        assert _figure(html, "integrated") == 4
        assert _figure(html, "reviewed") == 2
        assert _figure(html, "published") == 1
        assert _figure(html, "rejected") == 1
        assert _figure(html, "pending") == 2
        assert "hậu kiểm <strong>2</strong> tin, bài (đạt 50% tin bài tích hợp)" in html
        assert "xuất bản <strong>1</strong> (25% tin bài tích hợp)" in html
        assert "Trùng lặp với tin đã đăng" in html  # the reasons chart
        assert "content: Field required" in html  # the latest error
        # Pull health comes from ingest; here ingest does not answer and the page says so.
        assert 'id="pull-health"' in html
        assert "Không lấy được tình trạng thu thập" in html
        live = await http.get(f"/desk/dashboard/live?source={source}&period=7d")
        assert live.status_code == 200 and "<html" not in live.text
        # The all-sources page is cached for a few seconds: it shows the source once refreshed.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            everyone = (await http.get("/desk/dashboard")).text
            if f'data-source="{source}"' in everyone:
                break
            assert asyncio.get_running_loop().time() < deadline, "source never on the dashboard"
            await asyncio.sleep(1.0)
        assert _figure(everyone, "integrated", source) == 4


# --- the audit log --------------------------------------------------------------------------


async def test_the_audit_log_is_searchable_by_item_and_by_person(desk: Desk) -> None:
    source = await desk.source()
    article_id = await desk.normalized(source, title=f"Tin nhật ký {uuid.uuid4().hex[:6]}")
    item = await desk.item(article_id)
    async with desk.browser("editor") as (editor, token, editor_name):
        await editor.post(
            f"/desk/items/{article_id}/edit",
            data={
                "csrf_token": token,
                "version": str(item["version"]),
                "revision": "1",
                "title": "Tiêu đề trong nhật ký",
            },
        )
    async with desk.browser("chief_editor") as (chief, _, _):
        by_person = await chief.get(f"/desk/audit?actor={editor_name}")
        assert "Tiêu đề trong nhật ký" in by_person.text
        assert f"/desk/items/{article_id}" in by_person.text
        by_item = await chief.get(f"/desk/audit?item={item['external_id']}")
        assert by_item.text.count(f"/desk/items/{article_id}") >= 2  # received and edited
        assert "<del>" in by_item.text and "<ins>Tiêu đề trong nhật ký</ins>" in by_item.text
        nobody = await chief.get(f"/desk/audit?actor=nobody-{uuid.uuid4().hex[:4]}")
        assert f"/desk/items/{article_id}" not in nobody.text
