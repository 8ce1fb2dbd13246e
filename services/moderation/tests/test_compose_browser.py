"""Agencies writing for their own sub-site in the desk, in a real browser (Debian's Chromium
through Playwright) on the test stack with every service running: the article goes through
ingest as the agency (channel ``desk``), normalize, an editor's review and publishing like any
partner's, and is searchable with its image's renditions.

Screenshots of the compose page (and the Word import) go to artifacts/screenshots/desk/.
"""

from __future__ import annotations

import html
import io
import re
import uuid
from typing import Any

import pytest
from PIL import Image, ImageDraw

from portal_contracts.articles import article_id_for
from portal_launcher.components.s3 import s3_client

from .docx_samples import TABLE, expected_unicode_sentence, sample_docx, tcvn3
from .test_desk_browser import (
    OTHER_AGENCY,
    PRE_REVIEW,
    SCREENSHOTS,
    Stack,
    browser_context,
    csrf_of,
    page,
    sign_in,
    stack,
    wait_for,
)

pytestmark = pytest.mark.stack

__all__ = ["browser_context", "page", "stack"]  # the shared fixtures, used by name

DESK_SHOTS = SCREENSHOTS / "desk"
NOT_GRANTED = "xay-dung-dang"  # a central section: not granted to tp-ha-noi (deploy/seed)


def photo_png(tmp_path: Any, name: str = "anh-hoi-nghi.png") -> Any:
    """A 1200x800 PNG picture (big enough to lead, with renditions at every width)."""
    img = Image.new("RGB", (1200, 800), (200, 30, 30))
    draw = ImageDraw.Draw(img)
    for x in range(0, 1200, 40):
        draw.line([(x, 0), (1200 - x, 800)], fill=(255, 220, 0), width=6)
    draw.text((40, 40), uuid.uuid4().hex, fill=(255, 255, 255))  # a new file each time
    path = tmp_path / name
    img.save(path, "PNG")
    return path


def photo_png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 90, 200)).save(out, "PNG")
    return out.getvalue()


def draft_id_of(page: Any) -> str:
    match = re.search(r"/desk/compose/([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def write_article(page: Any, stack: Stack, title: str, body: str, image: Any | None) -> str:
    """Fill the compose form in the browser (the rich text editor for the body) and submit;
    returns the draft id."""
    page.goto(stack.url("moderation", "/desk/compose/new"))
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Tóm tắt (sapo)").fill(f"Tóm tắt: {title}")
    page.get_by_label("Chuyên mục").select_option("ct-tin-tuc-hoat-dong")
    page.get_by_label("Tác giả").fill("Văn phòng Thành ủy")
    editor = page.locator("#editor .ql-editor")
    editor.click()
    page.keyboard.type(body)
    if image is not None:
        page.locator("input[name=lead_image]").set_input_files(str(image))
        page.get_by_label("Chú thích ảnh").fill("Quang cảnh hội nghị")
    return submit_form(page)


def submit_form(page: Any) -> str:
    page.get_by_role("button", name=re.compile("^Gửi")).click()
    page.locator(".flash.ok", has_text="Đã gửi bài").wait_for()
    return draft_id_of(page)


def approve_in_desk(page: Any, stack: Stack, article_id: str, revision: int) -> None:
    wait_for(
        lambda: (
            (item := stack.moderation_item(article_id))
            and item["revision"] == revision
            and item["state"] == "pending"
        ),
        f"revision {revision} pending in the queue",
    )
    page.goto(stack.url("moderation", f"/desk/items/{article_id}"))
    page.keyboard.press("a")
    page.locator("#preview .flash.ok, .flash.ok", has_text="Đã duyệt").first.wait_for()
    wait_for(
        lambda: (stack.moderation_item(article_id) or {}).get("state") == "published",
        "item approved",
    )


def search_hits(stack: Stack, q: str) -> list[dict[str, Any]]:
    resp = stack.http.get(stack.url("search", "/v1/search"), params={"q": q})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["hits"]
    return items


def test_agency_writes_with_an_image_editor_approves_and_it_is_public_and_searchable(
    stack: Stack, page: Any, tmp_path: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    title = f"Thành ủy Hà Nội triển khai chương trình chuyển đổi số {word}"
    body = f"Sáng nay, Ban Thường vụ Thành ủy họp bàn kế hoạch chuyển đổi số năm {word}."
    username, password = stack.account("agency_publisher", PRE_REVIEW)
    sign_in(page, stack, username, password)

    page.goto(stack.url("moderation", "/desk/compose/new"))
    page.locator("#editor .ql-editor").wait_for()  # the rich text editor, not the textarea
    DESK_SHOTS.mkdir(parents=True, exist_ok=True)
    draft_id = write_article(page, stack, title, body, photo_png(tmp_path))
    page.screenshot(path=str(DESK_SHOTS / "compose.png"), full_page=True)
    assert page.locator("#lead-image").count() == 1
    article_id = article_id_for(PRE_REVIEW, f"desk-{draft_id}")

    # It entered through ingest as the agency, on the desk channel, with the original archived.
    status = wait_for(
        lambda: (s := stack.partner_status_by_id(PRE_REVIEW, article_id))["revisions"] and s,
        "ingest's status",
    )
    assert [r["channel"] for r in status["revisions"]] == ["desk"]

    editor_name, editor_password = stack.account("editor")
    page.context.clear_cookies()
    sign_in(page, stack, editor_name, editor_password)
    approve_in_desk(page, stack, article_id, 1)

    public = wait_for(lambda: stack.public_article(PRE_REVIEW, article_id), "public article")
    assert public["title"] == title
    assert body in public["body_text"]
    lead = public["lead_image"]
    assert lead is not None and lead["caption"] == "Quang cảnh hội nghị"
    assert sorted(int(w) for w in lead["renditions"]) == [320, 640, 1024, 1200]
    for width, key in lead["renditions"].items():
        media = stack.http.get(stack.url("publishing", f"/media/{key}"))
        assert media.status_code == 200 and media.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(media.content)).size == (
            int(width),
            round(800 * int(width) / 1200),
        )
    hits = wait_for(lambda: search_hits(stack, word), "searchable")
    assert [h["article_id"] for h in hits] == [article_id]
    wait_for(
        lambda: stack.partner_status(PRE_REVIEW, f"desk-{draft_id}")["status"] == "published",
        "ingest's status published",
    )

    # The audit log says who wrote and who submitted.
    chief, chief_password = stack.account("chief_editor")
    page.context.clear_cookies()
    sign_in(page, stack, chief, chief_password)
    page.goto(stack.url("moderation", f"/desk/audit?tab=admin&actor={username}"))
    log = page.locator("main").inner_text()
    assert "Lưu bản thảo" in log and "Gửi bài" in log and "Tải ảnh lên" in log


def test_agency_cannot_write_for_another_agency_or_an_ungranted_section(
    stack: Stack, page: Any
) -> None:
    other_name, other_password = stack.account("agency_publisher", OTHER_AGENCY)
    sign_in(page, stack, other_name, other_password)
    page.goto(stack.url("moderation", "/desk/compose/new"))
    others_title = f"Tin của Bộ Y tế {uuid.uuid4().hex[:6]}"
    page.get_by_label("Tiêu đề").fill(others_title)
    page.locator("#editor .ql-editor").click()
    page.keyboard.type("Bộ Y tế hướng dẫn phòng bệnh mùa đông.")
    page.get_by_role("button", name="Xem trước").click()
    page.locator("#preview h1").wait_for()
    assert page.locator("#preview h1").inner_text() == others_title
    body = page.frame_locator("#preview iframe").locator("body")
    assert "phòng bệnh mùa đông" in body.inner_text()
    page.get_by_role("link", name="Quay lại sửa bài").click()
    others_draft = draft_id_of(page)

    username, password = stack.account("agency_publisher", PRE_REVIEW)
    page.context.clear_cookies()
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", "/desk/compose/new"))
    # The form offers only its own agency and the sections granted to it.
    assert page.locator("#compose-source").inner_text() == "Thành ủy Hà Nội"
    offered = {o.get_attribute("value") for o in page.locator("select[name=section] option").all()}
    assert offered == {"ct-tin-tuc-hoat-dong", "ct-xay-dung-dang", "ct-van-ban-tai-lieu"}
    token = csrf_of(page)
    fields = {"csrf_token": token, "title": "Tin giả mạo", "body_html": "<p>x</p>", "do": "save"}

    # The positive first: its own agency and a granted section is accepted.
    own = page.request.post(
        stack.url("moderation", "/desk/compose/new"),
        multipart={**fields, "section": "ct-xay-dung-dang"},
    )
    assert own.status == 200 and "Đã lưu bản thảo" in own.text()
    own_draft = re.search(r"/desk/compose/([0-9a-f-]{36})", own.url)
    assert own_draft is not None
    png = {"name": "anh.png", "mimeType": "image/png", "buffer": photo_png_bytes()}
    inline = page.request.post(
        stack.url("moderation", f"/desk/compose/{own_draft.group(1)}/images"),
        multipart={"image": png},
        headers={"X-CSRF-Token": token},
    )
    assert inline.status == 201 and "/v1/desk-media/tp-ha-noi/" in inline.json()["url"]
    not_an_image = page.request.post(
        stack.url("moderation", f"/desk/compose/{own_draft.group(1)}/images"),
        multipart={"image": {**png, "buffer": b"<svg onload=alert(1)>"}},
        headers={"X-CSRF-Token": token},
    )
    assert not_an_image.status == 422

    crafted = [
        ("/desk/compose/new", {**fields, "source": OTHER_AGENCY}),
        ("/desk/compose/new", {**fields, "section": NOT_GRANTED}),
        (f"/desk/compose/{others_draft}", fields),
        (f"/desk/compose/{others_draft}", {**fields, "do": "submit"}),
        (f"/desk/compose/{others_draft}/retract", {"csrf_token": token}),
        (f"/desk/compose/{others_draft}/images", {"csrf_token": token, "image": png}),
    ]
    for path, form in crafted:
        resp = page.request.post(stack.url("moderation", path), multipart=form)
        assert resp.status == 403, (path, resp.status, resp.text()[:300])
    assert page.goto(stack.url("moderation", f"/desk/compose/{others_draft}")).status == 403
    listed = page.goto(stack.url("moderation", f"/desk/compose?source={OTHER_AGENCY}"))
    assert listed is not None and listed.status == 403
    # Nothing of the other agency's was changed or sent.
    page.context.clear_cookies()
    sign_in(page, stack, other_name, other_password)
    page.goto(stack.url("moderation", f"/desk/compose/{others_draft}"))
    assert page.locator("#draft-state").inner_text() == "Bản thảo"


def test_rejected_goes_back_with_the_reason_and_the_resubmitted_revision_is_approved(
    stack: Stack, page: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    title = f"Hội nghị sơ kết công tác dân vận {word}"
    username, password = stack.account("agency_publisher", PRE_REVIEW)
    sign_in(page, stack, username, password)
    draft_id = write_article(page, stack, title, f"Hội nghị diễn ra tại trụ sở {word}.", None)
    article_id = article_id_for(PRE_REVIEW, f"desk-{draft_id}")

    editor_name, editor_password = stack.account("editor")
    page.context.clear_cookies()
    sign_in(page, stack, editor_name, editor_password)
    wait_for(lambda: stack.moderation_item(article_id), "queue item")
    page.goto(stack.url("moderation", f"/desk/items/{article_id}"))
    reason = f"Thiếu thời gian, địa điểm cụ thể của hội nghị {word}"
    page.keyboard.press("r")
    page.locator("[data-focus=reject]").fill(reason)
    page.get_by_role("button", name="Từ chối").click()
    page.locator(".flash.ok", has_text="Đã từ chối").first.wait_for()
    # The editor sends it back to the agency with a comment (from the agency's articles).
    comment = f"Đề nghị bổ sung ảnh và danh sách đại biểu {word}"
    page.goto(stack.url("moderation", f"/desk/compose/{draft_id}"))
    page.get_by_label("Ý kiến gửi đơn vị").fill(comment)
    page.get_by_role("button", name="Gửi lại cho đơn vị").click()
    page.locator(".flash.ok", has_text="Đã trả bài về đơn vị").wait_for()

    # Back at the agency: its list and the article show the editor's reason and comment.
    page.context.clear_cookies()
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", "/desk/compose"))
    row = page.locator(f"#draft-{draft_id}")
    assert reason in row.locator(".reason").inner_text()
    assert "Đã từ chối" in row.inner_text()
    row_text = row.inner_text()
    page.goto(stack.url("moderation", f"/desk/compose/{draft_id}"))
    assert reason in page.locator("#rejection").inner_text()
    assert comment in page.locator("#editor-comment").inner_text()
    assert comment in row_text
    assert page.get_by_role("button", name="Gửi lại cho đơn vị").count() == 0  # editors only
    revised = f"{title}: sáng 4/12 tại Hội trường Thành ủy"
    page.get_by_label("Tiêu đề").fill(revised)
    submit_form(page)

    page.context.clear_cookies()
    sign_in(page, stack, editor_name, editor_password)
    approve_in_desk(page, stack, article_id, 2)
    public = wait_for(lambda: stack.public_article(PRE_REVIEW, article_id), "public article")
    assert public["title"] == revised
    status = stack.partner_status_by_id(PRE_REVIEW, article_id)
    assert sorted(r["revision"] for r in status["revisions"]) == [1, 2]
    assert [h["status"] for h in status["history"] if h["revision"] == 1][-1] == "rejected"

    # The agency edits the published article: a new revision waits for review while the
    # approved one stays public; then it retracts the article and it leaves the public site.
    page.context.clear_cookies()
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", f"/desk/compose/{draft_id}"))
    assert page.locator("#unsent").count() == 0
    page.get_by_label("Tóm tắt (sapo)").fill(f"Bản cập nhật {word}")
    page.get_by_role("button", name="Lưu bản thảo").click()
    page.locator("#unsent").wait_for()  # saved, not yet sent: the public has the older text
    submit_form(page)
    assert page.locator("#unsent").count() == 0
    wait_for(
        lambda: (stack.moderation_item(article_id) or {}).get("revision") == 3,
        "revision 3 in review",
    )
    assert stack.public_article(PRE_REVIEW, article_id)["title"] == revised  # type: ignore[index]
    page.get_by_role("button", name="Gỡ bài").click()
    page.locator(".flash.ok", has_text="Đã gỡ bài").wait_for()
    wait_for(lambda: stack.public_article(PRE_REVIEW, article_id) is None, "retracted")
    wait_for(
        lambda: stack.partner_status_by_id(PRE_REVIEW, article_id)["status"] == "retracted",
        "ingest's status retracted",
    )


def test_a_word_document_in_tcvn3_with_a_table_and_an_image_is_published_as_unicode(
    stack: Stack, page: Any, tmp_path: Any
) -> None:
    document = tmp_path / "bao-cao-tong-ket.docx"
    document.write_bytes(sample_docx())
    username, password = stack.account("agency_publisher", PRE_REVIEW)
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", "/desk/compose"))
    page.get_by_role("link", name="Nhập từ tệp Word").click()
    page.locator("input[name=document]").set_input_files(str(document))
    page.get_by_role("button", name="Nhập").click()
    page.locator(".flash.ok", has_text="Đã nhập tệp Word").wait_for()
    page.locator("#editor .ql-editor").wait_for()
    assert expected_unicode_sentence in page.locator("#editor").inner_text()
    notes = page.locator("#import-notes").inner_text()
    assert "TCVN3" in notes and "Unicode" in notes
    DESK_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DESK_SHOTS / "import.png"), full_page=True)
    # The writer reviews it, picks the section and submits.
    page.get_by_label("Chuyên mục").select_option("ct-tin-tuc-hoat-dong")
    draft_id = submit_form(page)
    article_id = article_id_for(PRE_REVIEW, f"desk-{draft_id}")

    editor_name, editor_password = stack.account("editor")
    page.context.clear_cookies()
    sign_in(page, stack, editor_name, editor_password)
    approve_in_desk(page, stack, article_id, 1)

    public = wait_for(lambda: stack.public_article(PRE_REVIEW, article_id), "public article")
    assert expected_unicode_sentence in public["body_text"]
    assert "<table" in public["body_html"]
    for row in TABLE:
        for cell in row:
            assert cell in public["body_text"]
    stored = [i for i in public["images"] if i.get("object_key")]
    assert len(stored) == 1, public["images"]
    key = stored[0]["object_key"]
    assert f"/media/{key}" in public["body_html"]
    found = s3_client(stack.settings).stat_object(stack.settings.s3_bucket, key)
    assert found.size and found.size > 0
    media = stack.http.get(stack.url("publishing", f"/media/{key}"))
    assert media.status_code == 200 and media.headers["content-type"] == "image/png"


PASTE = """([markup]) => {
  const data = new DataTransfer();
  data.setData("text/html", markup);
  data.setData("text/plain", "");
  const paste = new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true});
  document.querySelector("#editor .ql-editor").dispatchEvent(paste);
}"""


def test_text_pasted_from_word_in_a_legacy_font_is_repaired_in_the_editor(
    stack: Stack, page: Any
) -> None:
    username, password = stack.account("agency_publisher", PRE_REVIEW)
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", "/desk/compose/new"))
    page.locator("#editor .ql-editor").click()
    legacy = html.escape(tcvn3(expected_unicode_sentence))
    markup = (
        # As Word puts it on the clipboard: the font's name quoted, with Office's own styles.
        f"<p class=MsoNormal><span style='font-family:\".VnTime\";mso-bidi-font-family:Arial'>"
        f"{legacy}</span>"
        '<span style="font-family:Arial"> và văn bản Unicode giữ nguyên.</span></p>'
    )
    page.evaluate(PASTE, [markup])
    editor = page.locator("#editor .ql-editor")
    wait_for(lambda: expected_unicode_sentence in editor.inner_text(), "the pasted text repaired")
    assert "văn bản Unicode giữ nguyên" in editor.inner_text()
    page.get_by_label("Tiêu đề").fill(f"Bài dán từ Word {uuid.uuid4().hex[:6]}")
    page.get_by_role("button", name="Lưu bản thảo").click()
    page.locator(".flash.ok", has_text="Đã lưu bản thảo").wait_for()
    assert expected_unicode_sentence in page.locator("#editor .ql-editor").inner_text()


def test_a_file_that_is_not_a_word_document_is_refused_with_a_reason(
    stack: Stack, page: Any, tmp_path: Any
) -> None:
    username, password = stack.account("agency_publisher", PRE_REVIEW)
    sign_in(page, stack, username, password)
    page.goto(stack.url("moderation", "/desk/compose/import"))
    good = tmp_path / "bao-cao.docx"
    good.write_bytes(sample_docx())
    bad = tmp_path / "bao-cao-hong.docx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    page.locator("input[name=document]").set_input_files(str(bad))
    page.get_by_role("button", name="Nhập").click()
    assert "Không nhập được tệp Word" in page.locator("main").inner_text()
    refused = page.request.post(
        stack.url("moderation", "/desk/compose/import"),
        multipart={
            "csrf_token": csrf_of(page),
            "document": {
                "name": bad.name,
                "mimeType": "application/zip",
                "buffer": bad.read_bytes(),
            },
        },
    )
    assert refused.status == 422 and "not a zip package" in refused.text()
    page.goto(stack.url("moderation", "/desk/compose/import"))
    page.locator("input[name=document]").set_input_files(str(good))
    page.get_by_role("button", name="Nhập").click()
    page.locator(".flash.ok", has_text="Đã nhập tệp Word").wait_for()
