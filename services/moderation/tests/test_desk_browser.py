"""The editors' desk in a real browser (Debian's Chromium driven by Playwright), with the six
services running as processes on the test stack: partner -> ingest -> normalize -> moderation
(an editor in the browser) -> publishing, and the partner's status back at ingest.

Screenshots of the queue, the preview, the dashboard and the sources screen are written under
artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from portal_contracts.articles import article_id_for
from portal_launcher import stack as launcher
from portal_launcher.credentials import admin_token as service_admin_token
from portal_launcher.seed import seed as load_structure
from portal_launcher.services import service_port
from portal_launcher.settings import REPO_ROOT, StackSettings

pytestmark = pytest.mark.stack

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
PRE_REVIEW = "tp-ha-noi"  # pre-review in deploy/seed/sources.yaml
OTHER_AGENCY = "bo-y-te"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
T = TypeVar("T")


@dataclass
class Stack:
    settings: StackSettings
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    keys: dict[str, str] = field(default_factory=dict)

    def admin_token(self, service: str) -> str:
        """``service``'s own admin token (each service has its own)."""
        return service_admin_token(self.settings, service)

    def url(self, service: str, path: str = "") -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, service)}{path}"

    def admin(self, method: str, service: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(
            method,
            self.url(service, path),
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token(service)}"},
        )
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def key(self, source: str) -> str:
        if source not in self.keys:
            issued = self.admin("POST", "ingest", f"/admin/v1/sources/{source}/api-keys", {})
            self.keys[source] = issued["api_key"]
        return self.keys[source]

    def account(self, role: str, source: str | None = None) -> tuple[str, str]:
        username = f"{role.replace('_', '')}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        body: dict[str, Any] = {
            "password": password,
            "role": role,
            "display_name": f"Người dùng {username}",
        }
        if source:
            body["source"] = source
        self.admin("PUT", "moderation", f"/admin/v1/users/{username}", body)
        return username, password

    def push(self, source: str, title: str, **content: Any) -> tuple[str, str]:
        """A partner pushes an article over REST; returns (external id, article id)."""
        external_id = f"desk-{uuid.uuid4().hex[:10]}"
        body = {
            "title": title,
            "section": content.pop("section", "ct-tin-tuc-hoat-dong"),
            "summary": content.pop("summary", f"Tóm tắt: {title}"),
            "body_html": content.pop(
                "body_html",
                f"<p>{title}. Ban Chấp hành Đảng bộ thành phố họp phiên thường kỳ, đánh giá "
                "tình hình thực hiện nhiệm vụ chính trị và công tác xây dựng Đảng.</p>"
                "<p style='font-family:.VnTime'>Hội nghị thống nhất các giải pháp trọng tâm.</p>",
            ),
            **content,
        }
        resp = self.http.put(
            self.url("ingest", f"/v1/articles/{external_id}"),
            json={"content": body},
            headers={"Authorization": f"Bearer {self.key(source)}"},
        )
        assert resp.status_code in (200, 202), resp.text
        assert resp.json()["article_id"] == article_id_for(source, external_id)
        return external_id, resp.json()["article_id"]

    def partner_status(self, source: str, external_id: str) -> dict[str, Any]:
        resp = self.http.get(
            self.url("ingest", f"/v1/articles/{external_id}"),
            headers={"Authorization": f"Bearer {self.key(source)}"},
        )
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def partner_status_by_id(self, source: str, article_id: str) -> dict[str, Any]:
        resp = self.http.get(
            self.url("ingest", f"/v1/articles/by-id/{article_id}"),
            headers={"Authorization": f"Bearer {self.key(source)}"},
        )
        if resp.status_code == 404:
            return {"revisions": [], "history": []}
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def public_article(self, source: str, article_id: str) -> dict[str, Any] | None:
        listing = self.http.get(self.url("publishing", f"/v1/subsites/{source}/articles"))
        for item in listing.json().get("items", []):
            if item["article_id"] == article_id:
                full = self.http.get(self.url("publishing", f"/v1/articles/{item['slug']}"))
                if full.status_code == 200:
                    data: dict[str, Any] = full.json()
                    return data
        return None

    def moderation_item(self, article_id: str) -> dict[str, Any] | None:
        token = self.editor_token()
        resp = self.http.get(
            self.url("moderation", f"/v1/items/{article_id}"),
            headers={"Authorization": f"Bearer {token}"},
        )
        if resp.status_code == 404:
            return None
        data: dict[str, Any] = resp.json()
        return data

    _token: str | None = None

    def editor_token(self) -> str:
        if self._token is None:
            username, password = self.account("chief_editor")
            resp = self.http.post(
                self.url("moderation", "/v1/auth/token"),
                json={"username": username, "password": password},
            )
            self._token = resp.json()["access_token"]
        return self._token


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def stack(stack_settings: StackSettings) -> Iterator[Stack]:
    """All six services as processes; moderation told where ingest and publishing are (the
    launcher passes PORTAL_MODERATION_<NAME> to moderation as <NAME>)."""
    extra = {
        "PORTAL_MODERATION_INGEST_URL": (
            f"http://{stack_settings.host}:{service_port(stack_settings, 'ingest')}"
        ),
        "PORTAL_MODERATION_PUBLISHING_URL": (
            f"http://{stack_settings.host}:{service_port(stack_settings, 'publishing')}"
        ),
    }
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    launcher.services_down(stack_settings, say=lambda _: None)
    try:
        launcher.services_up(stack_settings, say=lambda _: None)
        load_structure(stack_settings, demo=False, say=lambda _: None)
        yield Stack(stack_settings)
    finally:
        launcher.services_down(stack_settings, say=lambda _: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="desk-chromium-")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 768},  # a laptop screen
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    browser_context.clear_cookies()
    page = browser_context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        page.close()


def sign_in(page: Any, stack: Stack, username: str, password: str) -> None:
    page.goto(stack.url("moderation", "/desk/login"))
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r".*/desk/queue.*"))


def csrf_of(page: Any) -> str:
    token: str = page.locator("input[name=csrf_token]").first.get_attribute("value")
    return token


def wait_in_queue(page: Any, stack: Stack, article_id: str, query: str) -> Any:
    """Reload the filtered queue until the item's row shows (the pipeline is asynchronous)."""

    def row() -> Any:
        page.goto(stack.url("moderation", f"/desk/queue?{query}"))
        locator = page.locator(f"#row-{article_id}")
        return locator if locator.count() else None

    return wait_for(row, f"row {article_id} in the queue")


def test_editor_filters_previews_edits_title_and_approves_then_it_is_public(
    stack: Stack, page: Any
) -> None:
    word = uuid.uuid4().hex[:6]
    title = f"Hội nghị Ban Thường vụ Thành ủy lần thứ {word}"
    external_id, article_id = stack.push(PRE_REVIEW, title)
    _, other_id = stack.push(PRE_REVIEW, f"Tin khác cùng nguồn {uuid.uuid4().hex[:6]}")
    wait_for(lambda: stack.moderation_item(other_id), "the other item")
    username, password = stack.account("editor")

    sign_in(page, stack, username, password)
    # The whole pending queue, the oldest item previewed (for a person to look at).
    page.keyboard.press("j")
    page.locator("#preview #panel").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "queue.png"))
    # Filter: this source, pending, and the title's word; the other item of the source is out.
    page.select_option("#f-source", PRE_REVIEW)
    wait_in_queue(page, stack, article_id, f"state=pending&source={PRE_REVIEW}&q={word}")
    assert page.locator(f"#row-{other_id}").count() == 0
    assert page.locator("#f-source").input_value() == PRE_REVIEW
    assert page.locator("#q").input_value() == word

    # Preview (keyboard: j selects the first row and opens it).
    page.keyboard.press("j")
    panel = page.locator("#preview #panel")
    panel.wait_for()
    assert panel.locator(".public h1").inner_text() == title
    assert "Bản gốc nhận được" in panel.inner_text()
    assert "font-family" in panel.locator(".original pre").text_content()  # the raw markup
    assert "Chờ duyệt" in panel.locator(".item-head").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "queue-filtered.png"))

    # The item's own page: the public preview and the original as received side by side.
    queue_url = page.url
    page.goto(stack.url("moderation", f"/desk/items/{article_id}"))
    page.get_by_text("Mã HTML nhận được").click()
    page.screenshot(path=str(SCREENSHOTS / "preview.png"), full_page=True)
    page.goto(queue_url)
    page.keyboard.press("j")
    panel.wait_for()

    # Edit the title, then approve (keyboard: e focuses the title, a approves).
    edited = f"{title} (đã biên tập)"
    page.keyboard.press("e")
    page.locator("[data-focus=title]").fill(edited)
    page.get_by_role("button", name="Lưu thay đổi").click()
    page.locator("#preview .flash.ok", has_text="Đã lưu thay đổi").wait_for()
    assert page.locator("#preview .public h1").inner_text() == edited
    page.keyboard.press("a")
    page.locator("#preview .flash.ok", has_text="Đã duyệt").wait_for()
    # The queue is filtered on pending items, so the approved row may already have left it.
    wait_for(
        lambda: (stack.moderation_item(article_id) or {}).get("state") == "published",
        "item approved",
    )

    public = wait_for(lambda: stack.public_article(PRE_REVIEW, article_id), "public article")
    assert public["title"] == edited
    wait_for(
        lambda: stack.partner_status(PRE_REVIEW, external_id)["status"] == "published",
        "partner status published",
    )


def test_reject_with_a_reason_shows_in_the_partners_status(stack: Stack, page: Any) -> None:
    external_id, article_id = stack.push(PRE_REVIEW, f"Tin cần từ chối {uuid.uuid4().hex[:6]}")
    username, password = stack.account("editor")
    sign_in(page, stack, username, password)
    wait_for(lambda: stack.moderation_item(article_id), "queue item")
    page.goto(stack.url("moderation", f"/desk/items/{article_id}"))
    reason = f"Trùng lặp với tin đã đăng ngày {uuid.uuid4().hex[:4]}"
    page.keyboard.press("r")
    page.locator("[data-focus=reject]").fill(reason)
    page.get_by_role("button", name="Từ chối").click()
    page.locator("#preview .flash.ok", has_text="Đã từ chối").wait_for()

    status = wait_for(
        lambda: (s := stack.partner_status(PRE_REVIEW, external_id))["status"] == "rejected" and s,
        "partner status rejected",
    )
    assert status["reason"] == reason
    assert stack.public_article(PRE_REVIEW, article_id) is None


def test_agency_publisher_sees_only_its_own_items_and_cannot_approve(
    stack: Stack, page: Any
) -> None:
    _, own_id = stack.push(PRE_REVIEW, f"Tin của Thành ủy {uuid.uuid4().hex[:6]}")
    _, other_id = stack.push(OTHER_AGENCY, f"Tin của Bộ Y tế {uuid.uuid4().hex[:6]}")
    wait_for(lambda: stack.moderation_item(other_id), "the other agency's item")
    username, password = stack.account("agency_publisher", PRE_REVIEW)
    sign_in(page, stack, username, password)

    wait_in_queue(page, stack, own_id, "state=all")
    assert page.locator(f"#row-{other_id}").count() == 0
    sources_seen = {
        row.get_attribute("data-id") for row in page.locator("#queue-body tr.row").all()
    }
    assert own_id in sources_seen
    assert page.locator("#f-source").count() == 0  # no source filter: it is always its own

    page.goto(stack.url("moderation", f"/desk/items/{own_id}"))
    assert page.get_by_role("button", name=re.compile("Duyệt")).count() == 0
    assert "Chờ duyệt" in page.locator(".item-head").inner_text()

    other = page.goto(stack.url("moderation", f"/desk/items/{other_id}"))
    assert other is not None and other.status == 403
    assert "không được phép" in page.content()
    assert page.goto(stack.url("moderation", "/desk/sources")).status == 403

    # A forged approve (with a valid CSRF token of its own session) is refused by its role.
    page.goto(stack.url("moderation", "/desk/queue"))
    token = csrf_of(page)
    forged = page.request.post(
        stack.url("moderation", f"/desk/items/{own_id}/approve"),
        form={"csrf_token": token, "version": "1", "revision": "1"},
    )
    assert forged.status == 403
    assert stack.moderation_item(own_id)["state"] == "pending"  # type: ignore[index]


def test_a_state_changing_request_without_the_csrf_token_is_refused(
    stack: Stack, page: Any
) -> None:
    _, article_id = stack.push(PRE_REVIEW, f"Tin kiểm tra CSRF {uuid.uuid4().hex[:6]}")
    item = wait_for(lambda: stack.moderation_item(article_id), "queue item")
    username, password = stack.account("editor")
    sign_in(page, stack, username, password)
    url = stack.url("moderation", f"/desk/items/{article_id}/approve")
    fields = {"version": str(item["version"]), "revision": str(item["revision"])}

    missing = page.request.post(url, form=fields)
    assert missing.status == 403
    assert "CSRF" in missing.text()
    wrong = page.request.post(url, form={**fields, "csrf_token": "x" * 43})
    assert wrong.status == 403
    assert stack.moderation_item(article_id)["state"] == "pending"  # type: ignore[index]

    page.goto(stack.url("moderation", "/desk/queue"))
    ok = page.request.post(url, form={**fields, "csrf_token": csrf_of(page)})
    assert ok.status == 200  # (redirected to the item page)
    assert stack.moderation_item(article_id)["state"] == "published"  # type: ignore[index]


def test_dashboard_shows_the_integration_figures(stack: Stack, page: Any) -> None:
    _, article_id = stack.push(PRE_REVIEW, f"Tin cho bảng theo dõi {uuid.uuid4().hex[:6]}")
    wait_for(lambda: stack.moderation_item(article_id), "queue item")
    username, password = stack.account("chief_editor")
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", "/desk/dashboard"))
    headline = page.locator("#headline").inner_text()
    assert "đã tích hợp" in headline and "hậu kiểm" in headline and "xuất bản" in headline
    integrated = int(page.locator("[data-figure=integrated]").first.inner_text().replace(".", ""))
    assert integrated >= 1
    row = page.locator(f"tr[data-source={PRE_REVIEW}]")
    assert row.count() == 1
    assert int(row.locator("[data-figure=integrated]").inner_text().replace(".", "")) >= 1
    assert page.locator("svg.chart").count() >= 3
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.goto(stack.url("moderation", f"/desk/dashboard?source={PRE_REVIEW}&period=7d"))
    assert (
        "Thành ủy Hà Nội" in page.locator("h1").inner_text()
        or PRE_REVIEW in page.locator("h1").inner_text()
    )


def test_admin_adds_an_agency_sets_policy_and_mapping_issues_and_revokes_a_key(
    stack: Stack, page: Any
) -> None:
    username, password = stack.account("admin")
    sign_in(page, stack, username, password)
    code = f"so-thu-{uuid.uuid4().hex[:6]}"
    page.goto(stack.url("moderation", "/desk/sources"))
    add = page.locator("form[action$='/desk/sources']")
    add.locator("input[name=code]").fill(code)
    add.locator("input[name=name]").fill("Sở Thông tin thử nghiệm")
    add.locator("select[name=kind]").select_option("province")
    add.locator("select[name=policy]").select_option("trusted")
    add.get_by_role("button", name="Thêm cơ quan").click()
    page.wait_for_url(re.compile(f".*/desk/sources/{code}.*"))
    assert "Đã thêm cơ quan" in page.content()

    ingest_source = stack.admin("GET", "ingest", f"/admin/v1/sources/{code}")
    assert "ct-tin-tuc-hoat-dong" in ingest_source["sections"]
    mod = {s["code"]: s for s in stack.admin("GET", "moderation", "/admin/v1/sources")}
    assert mod[code]["policy"] == "trusted"

    mapping = page.locator("form[action$='/categories']")
    mapping.locator("input[name=category]").first.fill("Tin Tức - Sự Kiện")
    mapping.locator("select[name=target]").first.select_option("ct-tin-tuc-hoat-dong")
    mapping.get_by_role("button", name="Lưu ánh xạ").click()
    page.wait_for_url(re.compile(".*done=categories.*"))
    mod = {s["code"]: s for s in stack.admin("GET", "moderation", "/admin/v1/sources")}
    assert mod[code]["categories"] == {"tin tức - sự kiện": "ct-tin-tuc-hoat-dong"}

    page.locator("input[name=label]").fill("CMS thử nghiệm")
    page.get_by_role("button", name="Cấp khóa API mới").click()
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("pk_")
    page.screenshot(path=str(SCREENSHOTS / "sources.png"), full_page=True)
    me = stack.http.get(
        stack.url("ingest", "/v1/me"), headers={"Authorization": f"Bearer {secret}"}
    )
    assert me.status_code == 200 and me.json()["code"] == code

    page.goto(stack.url("moderation", f"/desk/sources/{code}"))
    page.get_by_role("button", name="Thu hồi").click()
    page.wait_for_url(re.compile(".*done=revoked.*"))
    revoked = stack.http.get(
        stack.url("ingest", "/v1/me"), headers={"Authorization": f"Bearer {secret}"}
    )
    assert revoked.status_code == 401

    # Kafka access: a SCRAM user for the agency's own topic, the password shown once.
    page.get_by_role("button", name="Cấp tài khoản Kafka").click()
    password = page.locator("#secret").inner_text().strip()
    assert len(password) >= 16
    assert f"partner.{code}.articles" in page.content()
    access = stack.admin("GET", "ingest", f"/admin/v1/sources/{code}/kafka-credentials")
    assert access["topic"] == f"partner.{code}.articles"
    assert password not in str(access)

    page.goto(stack.url("moderation", f"/desk/audit?tab=admin&item={code}"))
    log = page.locator("table.history").inner_text()
    for entry in ("Thêm cơ quan", "Sửa ánh xạ chuyên mục", "Cấp khóa API", "Thu hồi khóa API"):
        assert entry in log, entry
    assert "Cấp/đổi mật khẩu Kafka" in log
    assert secret not in log and password not in log  # secrets never reach the audit log


def test_keyboard_selection_and_bulk_approve(stack: Stack, page: Any) -> None:
    word = uuid.uuid4().hex[:6]
    ids = [stack.push(PRE_REVIEW, f"Tin duyệt hàng loạt {word} số {i}")[1] for i in range(2)]
    for article_id in ids:
        wait_for(lambda: stack.moderation_item(article_id), "queue item")  # noqa: B023
    username, password = stack.account("editor")
    sign_in(page, stack, username, password)
    wait_in_queue(page, stack, ids[1], f"state=pending&q={word}")
    for _ in ids:
        page.keyboard.press("j")
        page.keyboard.press("x")
    assert page.locator("#queue-body input[type=checkbox]:checked").count() == 2
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Shift+A")
    page.locator("#bulk-result", has_text="Đã duyệt 2").wait_for()
    for article_id in ids:
        wait_for(
            lambda: (stack.moderation_item(article_id) or {}).get("state") == "published",  # noqa: B023
            "approved",
        )
