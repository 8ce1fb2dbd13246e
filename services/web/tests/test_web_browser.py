"""The public website in a real browser (Debian's Chromium driven by Playwright), with every
service running as a process on the test stack: a reader reads, searches, comments, asks,
follows a live dialogue, gives feedback and posts in the forum; editors act in the desk.

On every page type axe-core (npm, injected into the page) must report no serious or critical
violation; the counts go to artifacts/web-axe.json. Screenshots of each page type at 360 px and
1366 px wide go to artifacts/screenshots/web/ for a person to look at.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from portal_contracts.articles import article_id_for
from portal_launcher import stack as launcher
from portal_launcher.credentials import admin_token
from portal_launcher.seed import seed as load_structure
from portal_launcher.services import service_port
from portal_launcher.settings import REPO_ROOT, StackSettings

pytestmark = pytest.mark.stack

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
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
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots" / "web"
AXE_REPORT = REPO_ROOT / "artifacts" / "web-axe.json"
TRUSTED = "bao-nhan-dan"  # published without review (deploy/seed/sources.yaml)
SECTION = "tin-hoat-dong"
QA_TOPIC = "y-te"
AGENCY = "bo-y-te"
FORUM_TOPIC = "y-kien-nhan-dan"
LIVE_REFRESH_S = 5
T = TypeVar("T")

AXE_RESULTS: dict[str, dict[str, int]] = {}
AXE_SOURCE = AXE.read_text() if AXE.exists() else ""


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = 90.0) -> T:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


def reader_ip() -> str:
    """A reader's own address: the website forwards it, so each test has its own rate limits."""
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def word() -> str:
    """A made-up syllable run, unique to a test, to find its items (no diacritics)."""
    return "".join(random.choice("bcdghklmnpqrstvx") + random.choice("aeiou") for _ in range(4))


# --- the portal: services, an image server, the APIs behind the pages ----------------------


class Images:
    """A partner's web server with one photo (normalize fetches it from loopback)."""

    def __init__(self) -> None:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (1600, 1000), (164, 22, 26)).save(buf, "JPEG", quality=80)
        photo = buf.getvalue()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(photo)))
                self.end_headers()
                self.wfile.write(photo)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://{self.host}/{name}"

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Portal:
    settings: StackSettings
    images: Images
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    keys: dict[str, str] = field(default_factory=dict)
    _editor: tuple[str, str] | None = None
    _token: str | None = None

    def url(self, service: str, path: str = "") -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, service)}{path}"

    def web(self, path: str = "/") -> str:
        return self.url("web", path)

    def admin(self, method: str, service: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(
            method,
            self.url(service, path),
            json=body,
            headers={"Authorization": f"Bearer {admin_token(self.settings, service)}"},
        )
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def key(self, source: str) -> str:
        if source not in self.keys:
            issued = self.admin("POST", "ingest", f"/admin/v1/sources/{source}/api-keys", {})
            self.keys[source] = issued["api_key"]
        return self.keys[source]

    def push(self, title: str, **content: Any) -> tuple[str, str]:
        """A trusted partner publishes an article; (external id, article id)."""
        external_id = f"web-{uuid.uuid4().hex[:10]}"
        body = {
            "title": title,
            "section": content.pop("section", SECTION),
            "summary": content.pop("summary", f"Tóm tắt: {title}."),
            "body_html": content.pop(
                "body_html",
                f"<p>{title}. Hội nghị đánh giá kết quả thực hiện nhiệm vụ chính trị và công tác "
                "xây dựng Đảng, đề ra phương hướng thời gian tới.</p>",
            ),
            **content,
        }
        resp = self.http.put(
            self.url("ingest", f"/v1/articles/{external_id}"),
            json={"content": body},
            headers={"Authorization": f"Bearer {self.key(TRUSTED)}"},
        )
        assert resp.status_code in (200, 202), resp.text
        return external_id, article_id_for(TRUSTED, external_id)

    def retract(self, external_id: str) -> None:
        resp = self.http.delete(
            self.url("ingest", f"/v1/articles/{external_id}"),
            headers={"Authorization": f"Bearer {self.key(TRUSTED)}"},
        )
        assert resp.status_code in (200, 202), resp.text

    def published(self, article_id: str) -> dict[str, Any] | None:
        """The article as publishing serves it, once public (and known to engagement)."""
        listing = self.http.get(
            self.url("publishing", f"/v1/subsites/{TRUSTED}/articles"), params={"limit": 100}
        )
        for item in listing.json().get("items", []):
            if item["article_id"] == article_id:
                full = self.http.get(self.url("publishing", f"/v1/articles/{item['slug']}"))
                comments = self.http.get(
                    self.url("engagement", f"/v1/articles/{article_id}/comments")
                )
                if full.status_code == 200 and comments.status_code == 200:
                    data: dict[str, Any] = full.json()
                    return data
        return None

    def searchable(self, q: str, article_id: str) -> bool:
        found = self.http.get(self.url("search", "/v1/search"), params={"q": q}).json()
        return article_id in [h["article_id"] for h in found["hits"]]

    def editor(self) -> tuple[str, str]:
        if self._editor is None:
            username = f"bt{secrets.token_hex(4)}"
            password = secrets.token_urlsafe(16)
            self.admin(
                "PUT",
                "moderation",
                f"/admin/v1/users/{username}",
                {"password": password, "role": "chief_editor", "display_name": "Biên tập viên"},
            )
            self._editor = (username, password)
        return self._editor

    def editor_token(self) -> str:
        if self._token is None:
            username, password = self.editor()
            resp = self.http.post(
                self.url("moderation", "/v1/auth/token"),
                json={"username": username, "password": password},
            )
            self._token = resp.json()["access_token"]
        return self._token

    def submission(self, kind: str, reference: str) -> dict[str, Any] | None:
        """The desk's item of a reader's submission, by the reference the reader was given."""
        resp = self.http.get(
            self.url("moderation", "/v1/submissions"),
            params={"kind": kind, "order": "newest", "limit": 100},
            headers={"Authorization": f"Bearer {self.editor_token()}"},
        )
        assert resp.status_code == 200, resp.text
        return next((i for i in resp.json()["items"] if i["reference"] == reference), None)


@pytest.fixture(scope="module")
def portal(stack_settings: StackSettings) -> Iterator[Portal]:
    images = Images()
    extra = {
        "PORTAL_NORMALIZE_IMAGE_FETCH_ALLOW_HOSTS": images.host,
        "PORTAL_WEB_LIVE_REFRESH_S": str(LIVE_REFRESH_S),
    }
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    launcher.services_down(stack_settings, say=lambda _: None)
    try:
        launcher.services_up(stack_settings, say=lambda _: None)
        load_structure(stack_settings, demo=False, say=lambda _: None)
        yield Portal(stack_settings, images)
    finally:
        launcher.services_down(stack_settings, say=lambda _: None)
        images.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        write_axe_report()


@dataclass(frozen=True)
class Story:
    """The article the reading tests share: published with a lead image and a caption."""

    title: str
    folded: str  # the title's distinctive words typed without diacritics
    slug: str
    article_id: str
    external_id: str


@pytest.fixture(scope="module")
def story(portal: Portal) -> Story:
    tag = word()
    title = f"Hội nghị Ban Chấp hành Đảng bộ tỉnh bàn giải pháp phát triển thủy lợi {tag}"
    external_id, article_id = portal.push(
        title,
        body_html=(
            f"<p>{title}. Hội nghị thống nhất các giải pháp trọng tâm về thủy lợi, đê điều.</p>"
            f'<figure><img src="{portal.images.url("hoi-nghi.jpg")}" alt="Quang cảnh hội nghị">'
            "<figcaption>Quang cảnh hội nghị</figcaption></figure>"
            "<p>Các đại biểu thảo luận sôi nổi, tập trung vào công tác phòng, chống thiên tai.</p>"
        ),
        images=[{"url": portal.images.url("hoi-nghi.jpg"), "caption": "Quang cảnh hội nghị"}],
    )
    item = wait_for(lambda: portal.published(article_id), "the story published", 120)
    wait_for(lambda: portal.searchable(tag, article_id), "the story searchable")
    return Story(title, f"thuy loi {tag}", item["slug"], article_id, external_id)


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (deploy/system-deps.sh installs it)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make install` (npm ci)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any, *, javascript: bool = True, ip: str | None = None) -> Any:
    context = browser.new_context(
        viewport={"width": 1366, "height": 768},
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        java_script_enabled=javascript,
        # The website trusts loopback as a proxy (the local stack): each test a reader of its own.
        extra_http_headers={"X-Forwarded-For": ip or reader_ip()},
    )
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = new_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def desk(browser: Any, portal: Portal) -> Iterator[Any]:
    """An editor signed in to the desk (moderation's web UI) in their own browser."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    context.set_default_timeout(20_000)
    page = context.new_page()
    username, password = portal.editor()
    page.goto(portal.url("moderation", "/desk/login"))
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r".*/desk/queue.*"))
    try:
        yield page
    finally:
        context.close()


def check_page(page: Any, name: str) -> None:
    """axe-core on the page as it is (0 serious or critical), then screenshots at 360 and 1366."""
    # Evaluated by the browser's debugging protocol: the page's CSP (no inline script) stays on.
    page.evaluate(AXE_SOURCE)
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', "
        "'wcag21aa', 'best-practice']})"
    )
    violations = result["violations"]
    counts = {"violations": len(violations)}
    for impact in ("critical", "serious", "moderate", "minor"):
        counts[impact] = sum(1 for v in violations if v["impact"] == impact)
    AXE_RESULTS[name] = counts
    grave = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert not grave, f"{name}: axe finds {grave}"
    size = page.viewport_size
    for width in (360, 1366):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)


def write_axe_report() -> None:
    if not AXE_RESULTS:
        return
    AXE_REPORT.parent.mkdir(parents=True, exist_ok=True)
    AXE_REPORT.write_text(json.dumps(AXE_RESULTS, indent=2, sort_keys=True))


def desk_open(desk: Any, portal: Portal, kind: str, reference: str) -> dict[str, Any]:
    item = wait_for(lambda: portal.submission(kind, reference), f"{reference} in the desk")
    desk.goto(portal.url("moderation", f"/desk/submissions/{item['id']}"))
    return item


def desk_click(desk: Any, label: str) -> None:
    desk.get_by_role("button", name=label, exact=True).click()
    desk.locator(".flash.ok").wait_for()


def receipt_reference(page: Any) -> str:
    """The reference the acknowledgement page gives (the page is the private status link)."""
    page.wait_for_url(re.compile(r".*/gui/trang-thai/[A-Za-z0-9_-]+\?moi=1$"))
    return str(page.locator(".reference").inner_text().strip())


# --- the tests --------------------------------------------------------------------------------


def test_home_page_has_every_block_and_is_cacheable(
    portal: Portal, story: Story, page: Any
) -> None:
    response = page.goto(portal.web("/"))
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "vi"
    blocks = page.locator("section.block h2.block-title").all_inner_texts()
    assert [b.upper() for b in blocks[:2]] == ["TIN HẰNG NGÀY", "DỮ LIỆU, VĂN KIỆN"]
    assert "TƯƠNG TÁC" in " ".join(blocks).upper()
    leaders = page.locator(".leaders h3").all_inner_texts()
    assert leaders == [
        "Tổng Bí thư",
        "Chủ tịch nước",
        "Thủ tướng Chính phủ",
        "Chủ tịch Quốc hội",
        "Thường trực Ban Bí thư",
    ]
    assert page.get_by_role("link", name=story.title).count() >= 1
    assert page.locator(".subsite-groups a[href='/chuyen-trang/tp-ha-noi']").count() == 1
    headers = response.headers
    assert headers["cache-control"].startswith("public, max-age=")
    assert "s-maxage=" in headers["cache-control"] and "stale-if-error=" in headers["cache-control"]
    assert {"home", "site"} <= set(headers["surrogate-key"].split())
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    again = portal.http.get(portal.web("/"), headers={"If-None-Match": headers["etag"]})
    assert again.status_code == 304
    check_page(page, "home")


def test_keyboard_reaches_the_content_with_a_visible_focus(portal: Portal, page: Any) -> None:
    page.goto(portal.web("/"))
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Bỏ qua, đến nội dung chính"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#noi-dung"
    # The next Tab stops inside the main content, on a link with its focus ring.
    page.keyboard.press("Tab")
    inside = page.evaluate("document.querySelector('main').contains(document.activeElement)")
    assert inside
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_an_article_in_two_clicks_with_its_image_breadcrumb_and_metadata(
    portal: Portal, story: Story, page: Any
) -> None:
    page.goto(portal.web("/"))
    # Click 1: the section in the main navigation; click 2: the article in the section.
    page.locator("nav.mainnav").get_by_role("link", name="Tin hoạt động").click()
    page.wait_for_url(re.compile(r".*/chuyen-muc/tin-hoat-dong$"))
    check_page(page, "section")
    page.get_by_role("link", name=story.title).first.click()
    page.wait_for_url(re.compile(rf".*/bai-viet/{re.escape(story.slug)}$"))
    assert page.locator("h1").inner_text() == story.title
    assert "thủy lợi, đê điều" in page.locator(".article-body").inner_text()
    crumbs = page.locator("nav.breadcrumb a").all_inner_texts()
    assert crumbs == ["Trang chủ", "Tin hằng ngày", "Tin hoạt động"]
    lead = page.locator("figure.lead-figure img")
    assert "webp" in lead.get_attribute("srcset") and lead.get_attribute("sizes")
    assert lead.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("figure.lead-figure figcaption").inner_text() == "Quang cảnh hội nghị"
    canonical = page.locator("link[rel=canonical]").get_attribute("href")
    # Readers come in through the edge: the canonical address is the edge's.
    assert canonical == f"{portal.settings.edge_url}/bai-viet/{story.slug}"
    assert page.locator("meta[property='og:title']").get_attribute("content") == story.title
    assert page.locator("meta[property='og:image']").get_attribute("content").startswith("http")
    ld = json.loads(page.locator("script[type='application/ld+json']").inner_text())
    news = next(n for n in ld["@graph"] if n["@type"] == "NewsArticle")
    assert news["headline"] == story.title and news["inLanguage"] == "vi"
    assert news["datePublished"].endswith("+07:00")
    check_page(page, "article")

    headers = portal.http.get(portal.web(f"/bai-viet/{story.slug}")).headers
    assert f"article:{story.article_id}" in headers["surrogate-key"].split()


def test_find_it_by_searching_without_diacritics(portal: Portal, story: Story, page: Any) -> None:
    page.goto(portal.web("/"))
    page.get_by_label("Tìm kiếm trên Cổng").fill(story.folded)
    page.get_by_label("Tìm kiếm trên Cổng").press("Enter")
    page.wait_for_url(re.compile(r".*/tim-kiem\?q=.*"))
    hit = page.locator("ol.hits li").first
    assert hit.locator("h2").inner_text() == story.title
    assert hit.locator("mark").count() >= 1  # the words found, highlighted
    check_page(page, "search")
    hit.get_by_role("link", name=story.title).click()
    page.wait_for_url(re.compile(rf".*/bai-viet/{re.escape(story.slug)}$"))

    page.goto(portal.web(f"/tim-kiem?q={word()}{word()}"))
    assert "Không tìm thấy kết quả nào" in page.locator(".result-count").inner_text()
    assert page.locator(".no-results li").count() >= 3
    check_page(page, "search-empty")


def test_comment_refused_without_diacritics_accepted_with_and_shown_once_approved(
    portal: Portal, story: Story, page: Any, desk: Any
) -> None:
    page.goto(portal.web(f"/bai-viet/{story.slug}"))
    body = page.locator("#bl-body")
    plain = "Bai viet rat hay, toi dong y voi cac giai phap cua hoi nghi"
    body.fill(plain)
    # The reader is told as they type, in plain words, before sending.
    hint = page.locator("#bl-body-dau")
    hint.wait_for(state="visible")
    assert "gõ tiếng Việt có dấu" in hint.inner_text() and "hiểu sai" in hint.inner_text()
    page.get_by_role("button", name="Gửi bình luận").click()
    # The server says the same, beside the field, with the text kept.
    page.wait_for_url(re.compile(r".*/gui/binh-luan/.*"))
    error = page.locator("#f-body-error")
    assert "Vui lòng gõ tiếng Việt có dấu" in error.inner_text()
    assert page.locator("#f-body").input_value() == plain
    assert page.locator("#f-body").get_attribute("aria-invalid") == "true"
    check_page(page, "form-error")

    text = f"Bài viết rất hay, tôi đồng ý với các giải pháp của hội nghị {word()}."
    page.locator("#f-body").fill(text)
    page.locator("#f-display_name").fill("Trần Văn Bình")
    page.get_by_role("button", name="Gửi bình luận").click()
    reference = receipt_reference(page)
    assert "đang chờ duyệt" in page.locator(".notice.ok").inner_text()
    check_page(page, "status")
    status_url = page.url

    desk_open(desk, portal, "comment", reference)
    desk_click(desk, "Duyệt, đăng")

    page.goto(portal.web(f"/bai-viet/{story.slug}"))

    def shown() -> bool:
        page.reload()  # a reload revalidates what the browser's cache holds (max-age)
        return page.locator(".comment-list", has_text=text).count() == 1

    wait_for(shown, "the approved comment on the article")
    assert "Trần Văn Bình" in page.locator(".comment-list").inner_text()
    page.goto(status_url)
    assert page.locator("#state").inner_text() == "Đã đăng"


def test_ask_a_question_and_read_the_answer_after_the_editors_answer(
    portal: Portal, page: Any, desk: Any
) -> None:
    page.goto(portal.web("/hoi-dap"))
    check_page(page, "qa")
    page.get_by_role("link", name="Đặt câu hỏi").first.click()
    page.wait_for_url(re.compile(r".*/gui/hoi-dap.*"))
    check_page(page, "form-question")
    tag = word()
    page.get_by_label("Lĩnh vực").select_option(QA_TOPIC)
    page.get_by_label("Tiêu đề câu hỏi").fill(f"Chế độ bảo hiểm y tế cho người cao tuổi {tag}")
    page.get_by_label("Nội dung câu hỏi").fill(
        "Xin hỏi người cao tuổi ở địa phương được hưởng chế độ bảo hiểm y tế như thế nào?"
    )
    page.get_by_label("Thư điện tử (không bắt buộc)").fill("ban-doc@example.vn")
    page.get_by_role("button", name="Gửi câu hỏi").click()
    reference = receipt_reference(page)
    status_url = page.url
    assert "ban-doc@example.vn" not in page.content()  # contact details are never shown

    desk_open(desk, portal, "qa", reference)
    desk_click(desk, "Tiếp nhận")
    desk.locator("#agency").select_option(AGENCY)
    desk.get_by_role("button", name="Chuyển", exact=True).click()
    desk.locator(".flash.ok").wait_for()
    answer = f"Người từ đủ 80 tuổi được ngân sách nhà nước đóng bảo hiểm y tế {tag}."
    desk.locator("#answer").fill(answer)
    desk.get_by_role("button", name="Lưu trả lời").click()
    desk.locator(".flash.ok").wait_for()
    desk_click(desk, "Duyệt trả lời, đăng")

    # The step (published) and the answer are two events on two topics: either may come first.
    def answered() -> bool:
        page.goto(status_url)
        shown = page.locator(".qa-answer")
        return page.locator("#state").inner_text() == "Đã đăng" and (
            shown.count() > 0 and answer in shown.inner_text()
        )

    wait_for(answered, "the answer on the status page")
    page.get_by_role("link", name="Xem trên Cổng").click()
    page.wait_for_url(re.compile(r".*/hoi-dap/cau-hoi/.*"))
    assert answer in page.locator(".qa-answer").inner_text()
    assert "Bộ Y tế" in page.locator(".qa-answer h2").inner_text()
    assert "ban-doc@example.vn" not in page.content()
    check_page(page, "question")
    page.goto(portal.web("/hoi-dap/co-quan"))
    assert page.locator("table").get_by_role("rowheader", name="Bộ Y tế").count() == 1
    check_page(page, "qa-agencies")


def test_follow_a_live_dialogue_as_answers_arrive(
    portal: Portal, browser: Any, page: Any, desk: Any
) -> None:
    code = f"doi-thoai-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    portal.admin(
        "PUT",
        "engagement",
        f"/admin/v1/dialogues/{code}",
        {
            "title": "Đối thoại về cải cách hành chính",
            "topic": "cai-cach-hanh-chinh",
            "description": "Lãnh đạo các bộ, ngành trả lời câu hỏi của bạn đọc.",
            "guests": [{"name": "Đồng chí Nguyễn Văn Nam", "position": "Thứ trưởng"}],
            "questions_open_at": (now - timedelta(hours=1)).isoformat(),
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
        },
    )
    page.goto(portal.web("/doi-thoai"))
    check_page(page, "dialogues")
    page.get_by_role("link", name="Đối thoại về cải cách hành chính").first.click()
    page.wait_for_url(re.compile(rf".*/doi-thoai/{code}$"))
    assert page.locator("#phase").inner_text() == "Đang diễn ra"
    page.locator("#entries[data-following]").wait_for(state="attached")
    check_page(page, "dialogue-live")

    # A reader without JavaScript follows the page that refreshes itself.
    quiet = new_context(browser, javascript=False)
    plain = quiet.new_page()
    refreshing = plain.goto(portal.web(f"/doi-thoai/{code}?tu-dong=1"))
    assert refreshing.headers["refresh"] == str(LIVE_REFRESH_S)

    question = f"Khi nào thủ tục cấp phép xây dựng được làm trực tuyến toàn trình {word()}?"
    page.locator("#dt-body").fill(question)
    page.get_by_role("button", name="Gửi câu hỏi").click()
    reference = receipt_reference(page)
    page.goto(portal.web(f"/doi-thoai/{code}"))
    page.locator("#entries[data-following]").wait_for(state="attached")

    desk_open(desk, portal, "dialogue", reference)
    desk_click(desk, "Chọn cho khách mời trả lời")
    answer = f"Từ quý tới, thủ tục này được thực hiện trực tuyến toàn trình {word()}."
    desk.locator("#answer").fill(answer)
    desk.locator("#answered_by").fill("Đồng chí Nguyễn Văn Nam")
    desk.get_by_role("button", name="Đăng trả lời").click()
    desk.locator(".flash.ok").wait_for()

    # The open page shows the answer as it arrives, without a reload.
    entry = page.locator("#entries .entry.answered", has_text=answer)
    entry.wait_for(timeout=30_000)
    assert question in entry.inner_text()
    assert "Đồng chí Nguyễn Văn Nam" in entry.inner_text()
    # ... and the page without JavaScript has it after its next refresh, by itself.
    plain.locator("#entries .entry.answered", has_text=answer).wait_for(
        timeout=(LIVE_REFRESH_S * 3 + 10) * 1000
    )
    quiet.close()


def test_feedback_on_one_section_of_a_draft(portal: Portal, page: Any) -> None:
    code = f"du-thao-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    portal.admin(
        "PUT",
        "engagement",
        f"/admin/v1/feedback-documents/{code}",
        {
            "title": "Dự thảo Báo cáo chính trị (lấy ý kiến)",
            "summary": "Lấy ý kiến cán bộ, đảng viên và Nhân dân.",
            "requested_by": "Ban Tuyên giáo và Dân vận Trung ương",
            "sections": [
                {"code": "phan-1", "title": "Phần I. Đánh giá kết quả", "text": "Nội dung phần I."},
                {"code": "phan-2", "title": "Phần II. Phương hướng", "text": "Nội dung phần II."},
            ],
            "opens_at": (now - timedelta(days=1)).isoformat(),
            "deadline": (now + timedelta(days=30)).isoformat(),
        },
    )
    page.goto(portal.web("/gop-y"))
    check_page(page, "documents")
    page.get_by_role("link", name="Dự thảo Báo cáo chính trị (lấy ý kiến)").first.click()
    page.wait_for_url(re.compile(rf".*/gop-y/{code}$"))
    check_page(page, "document")
    page.get_by_role("link", name=re.compile(r"^Góp ý phần này\W+Phần II\. Phương hướng$")).click()
    page.wait_for_url(re.compile(rf".*/gui/gop-y/{code}\?phan=phan-2$"))
    assert page.get_by_label("Phần được góp ý").input_value() == "phan-2"
    assert "Nội dung phần II." in page.locator("blockquote.quote").inner_text()
    check_page(page, "form-feedback")
    page.get_by_label("Ý kiến góp ý").fill(
        "Đề nghị bổ sung nhiệm vụ chuyển đổi số trong công tác xây dựng Đảng ở cơ sở."
    )
    page.get_by_role("button", name="Gửi góp ý").click()
    reference = receipt_reference(page)
    assert reference.startswith("GY-")
    assert "Cảm ơn bạn đã góp ý" in page.locator(".notice.ok").inner_text()
    document = portal.http.get(portal.url("engagement", f"/v1/feedback/documents/{code}")).json()
    counts = {s["code"]: s["feedback"] for s in document["sections"]}
    assert counts == {"phan-1": 0, "phan-2": 1}


def test_post_in_the_forum_and_reply(portal: Portal, page: Any, desk: Any) -> None:
    page.goto(portal.web("/dien-dan"))
    check_page(page, "forum")
    page.locator("nav.tabs").get_by_role("link", name="Ý kiến nhân dân").click()
    page.wait_for_url(re.compile(rf".*/dien-dan/{FORUM_TOPIC}$"))
    page.get_by_role("link", name="Mở chủ đề mới").click()
    title = f"Kiến nghị về sinh hoạt chi bộ khu dân cư {word()}"
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Nội dung").fill(
        "Đề nghị các chi bộ khu dân cư tổ chức sinh hoạt vào buổi tối để đảng viên đi làm "
        "có thể tham dự đầy đủ."
    )
    page.get_by_role("button", name="Gửi bài").click()
    reference = receipt_reference(page)
    desk_open(desk, portal, "forum_thread", reference)
    desk_click(desk, "Duyệt, đăng")

    page.goto(portal.web(f"/dien-dan/{FORUM_TOPIC}"))

    def listed() -> bool:
        page.reload()  # a reload revalidates what the browser's cache holds (max-age)
        return page.get_by_role("link", name=title).count() == 1

    wait_for(listed, "the approved thread in its topic")
    page.get_by_role("link", name=title).click()
    page.wait_for_url(re.compile(r".*/dien-dan/bai/.*"))
    check_page(page, "thread")
    page.locator("#tl-body").fill("Tôi đồng tình, xin bổ sung thêm: nên thông báo lịch trước.")
    page.get_by_role("button", name="Gửi trả lời").click()
    receipt_reference(page)
    assert "đang chờ duyệt" in page.locator(".notice.ok").inner_text()


def test_without_javascript_a_form_needs_a_second_press_and_loses_nothing(
    portal: Portal, story: Story, browser: Any
) -> None:
    context = new_context(browser, javascript=False)
    page = context.new_page()
    page.goto(portal.web(f"/bai-viet/{story.slug}"))
    assert not context.cookies()  # reading sets no cookie: pages stay public for the edge
    text = f"Tôi ủng hộ chủ trương này, mong sớm triển khai ở địa phương {word()}."
    page.locator("#bl-body").fill(text)
    page.get_by_role("button", name="Gửi bình luận").click()
    # No token on the cached page: its own private page asks to press again, text kept.
    assert "bấm nút gửi một lần nữa" in page.locator("#form-notice").inner_text()
    assert page.locator("#f-body").input_value() == text
    page.get_by_role("button", name="Gửi bình luận").click()
    receipt_reference(page)
    context.close()


def test_too_many_submissions_get_a_friendly_wait_with_the_text_kept(
    portal: Portal, story: Story, browser: Any
) -> None:
    context = new_context(browser)  # one reader, one address
    page = context.new_page()
    page.goto(portal.web(f"/gui/binh-luan/{story.slug}"))
    token = page.locator("input[name=csrf_token]").input_value()
    # Engagement takes 10 submissions a minute from one address (RATE_LIMIT_SUBMIT_PER_IP).
    for n in range(10):
        resp = page.request.post(
            portal.web(f"/gui/binh-luan/{story.slug}"),
            form={
                "csrf_token": token,
                "idem": f"idem-{uuid.uuid4().hex}",
                "body": f"Ý kiến số {n}",
            },
            max_redirects=0,
        )
        assert resp.status in (303, 429), resp.status
    text = "Ý kiến này gửi quá nhanh nhưng không bị mất chữ nào."
    page.locator("#f-body").fill(text)
    page.get_by_role("button", name="Gửi bình luận").click()
    notice = page.locator("#form-notice").inner_text()
    assert "Vui lòng thử lại sau" in notice and re.search(r"\d+ (giây|phút)", notice)
    assert page.locator("#f-body").input_value() == text
    context.close()


def test_a_post_from_another_site_is_refused_and_a_private_page_is_never_cached(
    portal: Portal, story: Story
) -> None:
    form = portal.http.get(portal.web(f"/gui/binh-luan/{story.slug}"))
    assert form.headers["cache-control"] == "private, no-store"
    assert form.headers["referrer-policy"] == "no-referrer"
    cookie = form.cookies.get("gui")
    assert cookie and "path=/gui" in form.headers["set-cookie"].lower()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]  # type: ignore[index]
    forged = portal.http.post(
        portal.web(f"/gui/binh-luan/{story.slug}"),
        data={"csrf_token": token, "body": "Bình luận giả mạo từ trang khác."},
        headers={
            "Origin": "https://evil.example",
            "X-Forwarded-For": reader_ip(),
            "Cookie": f"gui={cookie}",
        },
    )
    assert forged.status_code == 403
    wrong = portal.http.post(
        portal.web(f"/gui/binh-luan/{story.slug}"),
        data={"csrf_token": "x" * 43, "body": "Bình luận với mã sai."},
        headers={"X-Forwarded-For": reader_ip(), "Cookie": f"gui={cookie}"},
    )
    assert wrong.status_code == 403 and "bấm nút gửi một lần nữa" in wrong.text
    with_cookie = portal.http.get(portal.web("/"), headers={"Cookie": "ai=1"})
    assert with_cookie.headers["cache-control"] == "private, no-store"
    assert "etag" not in with_cookie.headers


def test_subsites_leaders_and_a_retracted_article(portal: Portal, page: Any) -> None:
    page.goto(portal.web("/chuyen-trang"))
    check_page(page, "subsites")
    page.get_by_role("link", name="Báo Nhân Dân").click()
    page.wait_for_url(re.compile(r".*/chuyen-trang/bao-nhan-dan$"))
    assert page.locator("nav.tabs a").count() == 4  # all, and the three standard sections
    check_page(page, "subsite")
    page.goto(portal.web("/chuyen-muc/tong-bi-thu"))
    assert "Trang lãnh đạo" in page.locator("h1").text_content()

    title = f"Bài sẽ được gỡ {word()}"
    external_id, article_id = portal.push(title)
    item = wait_for(lambda: portal.published(article_id), "published", 120)
    portal.retract(external_id)

    # Asked without the browser: its cache may keep the page it saw for max-age (60 s).
    url = portal.web(f"/bai-viet/{item['slug']}")
    wait_for(lambda: portal.http.get(url).status_code == 410, "the retracted article's page", 60)
    assert page.goto(url).status == 410
    assert "đã được gỡ" in page.locator("h1").inner_text()
    check_page(page, "retracted")
    missing = page.goto(portal.web("/bai-viet/khong-co-bai-nay"))
    assert missing.status == 404
    check_page(page, "not-found")
