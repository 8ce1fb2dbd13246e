"""The engagement block end to end, on the real stack with all six services running.

The public submits through engagement; editors (and agencies) act in moderation's submissions
desk; answers come back to engagement's public pages, to the live stream of a dialogue and to
search. Every test sends its requests from its own client address (X-Forwarded-For, trusted
from loopback), so the rate limits of one test never touch another.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Portal

pytestmark = pytest.mark.stack

AGENCY = "bo-y-te"  # an agency of deploy/seed/sources.yaml
TRUSTED = "bao-nhan-dan"  # a trusted source: its articles are published at once
QA_TOPIC = "y-te"  # a default Q&A topic (engagement's data/catalog.yaml)
FORUM_TOPIC = "y-kien-nhan-dan"
BODY = "Tôi xin hỏi về chế độ bảo hiểm y tế cho người cao tuổi ở địa phương như thế nào?"


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _word() -> str:
    """A made-up word without diacritics, unique to the test, to find its items in search."""
    return "".join(random.choice("bcdghklmnpqrstvx") + random.choice("aeiou") for _ in range(5))


def _ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


class Client:
    """A member of the public: one client address."""

    def __init__(self, portal: Portal, ip: str | None = None) -> None:
        self.portal = portal
        self.ip = ip or _ip()

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.portal.http.get(
            self.portal.url("engagement", path),
            params=params,
            headers={"X-Forwarded-For": self.ip},
        )

    def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.portal.http.post(
            self.portal.url("engagement", path),
            json=body,
            headers={"X-Forwarded-For": self.ip, **headers},
        )


class Desk:
    """An editor (or agency publisher) in moderation's submissions desk."""

    def __init__(self, portal: Portal, role: str = "editor", source: str | None = None) -> None:
        self.portal = portal
        self.token = portal.editor_token(role, source)

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.portal.http.request(
            method,
            self.portal.url("moderation", f"/v1/submissions{path}"),
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def item(self, submission_id: str) -> dict[str, Any] | None:
        resp = self._call("GET", f"/{submission_id}")
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def wait(self, submission_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.portal.wait_for(
            lambda: self.item(submission_id), what=f"submission {submission_id} in the desk"
        )
        return found

    def act(self, submission_id: str, action: str, **body: Any) -> dict[str, Any]:
        if "revision" not in body:
            current = self.item(submission_id)
            assert current is not None
            body["revision"] = current["revision"]
        resp = self._call("POST", f"/{submission_id}/{action}", body)
        assert resp.status_code == 200, f"{action}: {resp.status_code} {resp.text}"
        data: dict[str, Any] = resp.json()
        return data

    def list(self, **params: Any) -> list[dict[str, Any]]:
        resp = self._call("GET", "", **params)
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items


def _status(client: Client, receipt: dict[str, Any]) -> dict[str, Any]:
    resp = client.get(receipt["status_path"])
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _steps(client: Client, receipt: dict[str, Any]) -> list[str]:
    return [s["state"] for s in _status(client, receipt)["steps"]]


def _ask(client: Client, word: str, **extra: Any) -> dict[str, Any]:
    body = {
        "topic": QA_TOPIC,
        "title": f"Bảo hiểm y tế cho người cao tuổi {word}",
        "body": f"{BODY} Mã {word}.",
        **extra,
    }
    resp = client.post("/v1/qa/questions", body)
    assert resp.status_code == 202, resp.text
    data: dict[str, Any] = resp.json()
    return data


# --- 1. online Q&A --------------------------------------------------------------------------


def test_question_is_screened_routed_answered_published_and_searchable(portal: Portal) -> None:
    public = Client(portal)
    editor = Desk(portal)
    agency = Desk(portal, "agency_publisher", AGENCY)
    word = _word()
    receipt = _ask(public, word, agency=AGENCY, display_name="Nguyễn Văn An", email="an@example.vn")
    assert receipt["reference"].startswith("HD-")
    assert receipt["held_for_review"] is False
    qid = receipt["id"]
    assert _steps(public, receipt) == ["received"]

    item = editor.wait(qid)
    assert item["state"] == "pending" and item["reference"] == receipt["reference"]
    assert "an@example.vn" not in json.dumps(item)
    # The agency sees nothing until the question is routed to it.
    assert agency._call("GET", f"/{qid}").status_code == 403

    editor.act(qid, "approve")
    editor.act(qid, "route", agency=AGENCY)
    portal.wait_for(
        lambda: _steps(public, receipt) == ["received", "accepted", "routed"], what="routed step"
    )
    assert _status(public, receipt)["about"]["agency"] == AGENCY

    # The agency answers; its answer waits for an editor's review.
    assert qid in [i["id"] for i in agency.list()]
    answered = agency.act(qid, "answer", answer=f"Người từ đủ 80 tuổi được cấp thẻ {word}.")
    assert answered["state"] == "answered"
    denied = agency._call("POST", f"/{qid}/publish", {"revision": answered["revision"]})
    assert denied.status_code == 403
    editor.act(qid, "publish")

    def published() -> dict[str, Any] | None:
        resp = public.get(f"/v1/qa/questions/{qid}")
        return resp.json() if resp.status_code == 200 else None

    page = portal.wait_for(published, what="public answered question")
    assert word in page["answer_html"] and page["agency"] == AGENCY
    assert page["asker"] == "Nguyễn Văn An"
    assert page["answered_by"] == "Bộ Y tế"
    listed = public.get("/v1/qa/questions", topic=QA_TOPIC, agency=AGENCY, size=50).json()
    assert qid in [q["id"] for q in listed["items"]]
    other = public.get("/v1/qa/questions", topic="giao-duc", size=50).json()
    assert qid not in [q["id"] for q in other["items"]]

    status = portal.wait_for(
        lambda: (s := _status(public, receipt))["state"] == "published" and s, what="status"
    )
    assert [s["state"] for s in status["steps"]] == [
        "received",
        "accepted",
        "routed",
        "answered",
        "published",
    ]
    assert status["answer"]["answered_by"] == "Bộ Y tế"
    assert status["public_path"] == f"/v1/qa/questions/{qid}"

    times = {a["agency"]: a for a in public.get("/v1/qa/agencies").json()}
    assert times[AGENCY]["answered"] >= 1 and times[AGENCY]["median_hours"] is not None

    def found() -> list[str]:
        resp = portal.http.get(portal.url("search", "/v1/questions/search"), params={"q": word})
        assert resp.status_code == 200, resp.text
        return [h["question_id"] for h in resp.json()["hits"]]

    portal.wait_for(lambda: qid in found(), what="question in search")
    hits = portal.http.get(
        portal.url("search", "/v1/questions/search"),
        params={"q": f"nguoi cao tuoi {word}", "agency": AGENCY},
    ).json()["hits"]
    hit = hits[0]  # the only one with every word, typed without diacritics
    assert hit["question_id"] == qid and hit["path"] == f"/v1/qa/questions/{qid}"


def test_rejected_question_tells_the_asker_why(portal: Portal) -> None:
    public = Client(portal)
    editor = Desk(portal)
    receipt = _ask(public, _word())
    editor.wait(receipt["id"])
    editor.act(receipt["id"], "reject", reason="Câu hỏi trùng với câu hỏi đã trả lời.")
    status = portal.wait_for(
        lambda: (s := _status(public, receipt))["state"] == "rejected" and s, what="rejected"
    )
    assert status["reason"] == "Câu hỏi trùng với câu hỏi đã trả lời."
    assert public.get(f"/v1/qa/questions/{receipt['id']}").status_code == 404


# --- 2. online dialogues ---------------------------------------------------------------------


class LiveReader:
    """A server-sent-events reader in a thread: every event with the time it arrived."""

    def __init__(self, url: str, ip: str) -> None:
        self.url, self.ip = url, ip
        self.events: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self.stop.is_set():  # after the test, the services may go away first
                raise

    def _read(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=60.0)) as http,
            http.stream("GET", self.url, headers={"X-Forwarded-For": self.ip}) as resp,
        ):
            assert resp.status_code == 200
            self.connected.set()
            name, data = "message", ""
            for line in resp.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    self.events.put((time.monotonic(), name, json.loads(data)))
                    name, data = "message", ""

    def __enter__(self) -> LiveReader:
        self.thread.start()
        assert self.connected.wait(10), "the live stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def next(
        self, kind: str, question_id: str, timeout: float = 15.0
    ) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} event for {question_id}"
            at, name, data = self.events.get(timeout=left)
            if name == kind and data.get("question_id") == question_id:
                return at, data


def _put_dialogue(portal: Portal, code: str, starts: datetime, ends: datetime) -> None:
    portal.admin(
        "PUT",
        "engagement",
        f"/admin/v1/dialogues/{code}",
        {
            "title": "Đối thoại về chính sách bảo hiểm y tế",
            "topic": "y-te",
            "description": "Lãnh đạo Bộ Y tế trả lời bạn đọc.",
            "guests": [{"name": "Thứ trưởng Bộ Y tế", "position": "Bộ Y tế"}],
            "questions_open_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "starts_at": starts.isoformat(),
            "ends_at": ends.isoformat(),
        },
    )


def test_dialogue_questions_before_and_during_live_answers_and_transcript(portal: Portal) -> None:
    public = Client(portal)
    editor = Desk(portal)
    code = _unique("doi-thoai-")
    now = datetime.now(UTC)
    _put_dialogue(portal, code, now + timedelta(hours=1), now + timedelta(hours=2))
    assert public.get(f"/v1/dialogues/{code}").json()["phase"] == "upcoming"

    before = public.post(
        f"/v1/dialogues/{code}/questions",
        {"body": "Xin hỏi Thứ trưởng về lộ trình bảo hiểm y tế toàn dân?", "display_name": "Bình"},
    )
    assert before.status_code == 202, before.text

    # The session starts.
    _put_dialogue(portal, code, now - timedelta(minutes=1), now + timedelta(hours=1))
    assert public.get(f"/v1/dialogues/{code}").json()["phase"] == "live"
    during = public.post(
        f"/v1/dialogues/{code}/questions",
        {"body": "Người lao động tự do tham gia bảo hiểm thế nào ạ?", "email": "lao@example.vn"},
    )
    assert during.status_code == 202, during.text
    q1, q2 = before.json()["id"], during.json()["id"]
    editor.wait(q1)
    editor.wait(q2)

    live_url = portal.url("engagement", f"/v1/dialogues/{code}/live")
    with LiveReader(live_url, public.ip) as reader:
        editor.act(q1, "pick")
        reader.next("question", q1)
        # How fast is measured by bench/engagement/live.py (no timed assertions in tests).
        editor.act(q1, "answer", answer="Lộ trình đến năm 2030.", answered_by="Thứ trưởng Bộ Y tế")
        _, data = reader.next("answer", q1)
        assert data["answer_html"] == "<p>Lộ trình đến năm 2030.</p>"
        assert data["answered_by"] == "Thứ trưởng Bộ Y tế"

        editor.act(q2, "answer", answer="Tham gia tự nguyện tại cơ quan bảo hiểm xã hội.")
        reader.next("answer", q2)
        assert "lao@example.vn" not in json.dumps(data)

    # A reader that reconnects gets everything from the start (or after Last-Event-ID).
    with LiveReader(live_url, public.ip) as late:
        late.next("answer", q1, timeout=5)
        late.next("answer", q2, timeout=5)

    # The session ends: no more questions, and the transcript is complete and in order.
    _put_dialogue(portal, code, now - timedelta(hours=2), now - timedelta(seconds=1))
    closed = public.post(f"/v1/dialogues/{code}/questions", {"body": "Câu hỏi gửi muộn ạ?"})
    assert closed.status_code == 409 and "ended" in closed.text
    transcript = public.get(f"/v1/dialogues/{code}/transcript").json()
    assert transcript["complete"] is True
    assert [e["question_id"] for e in transcript["entries"]] == [q1, q2]
    assert transcript["entries"][0]["answered_by"] == "Thứ trưởng Bộ Y tế"
    assert transcript["dialogue"]["answered"] == 2


# --- 3. feedback on Party building -----------------------------------------------------------


def test_feedback_per_section_acknowledged_and_exported(portal: Portal) -> None:
    public = Client(portal)
    editor = Desk(portal)
    code = _unique("du-thao-")
    now = datetime.now(UTC)
    portal.admin(
        "PUT",
        "engagement",
        f"/admin/v1/feedback-documents/{code}",
        {
            "title": "Dự thảo Báo cáo chính trị trình Đại hội",
            "summary": "Lấy ý kiến nhân dân.",
            "requested_by": "Tiểu ban Văn kiện",
            "sections": [
                {"code": "phan-1", "title": "Phần I. Đánh giá", "text": "..."},
                {"code": "phan-2", "title": "Phần II. Định hướng", "text": "..."},
            ],
            "opens_at": (now - timedelta(days=1)).isoformat(),
            "deadline": (now + timedelta(days=30)).isoformat(),
        },
    )
    whole = public.post(
        f"/v1/feedback/documents/{code}/feedback",
        {
            "body": "Đề nghị bổ sung nội dung về chuyển đổi số trong công tác Đảng.",
            "phone": "0912345678",
        },
    )
    on_section = public.post(
        f"/v1/feedback/documents/{code}/feedback",
        {"section": "phan-2", "body": "Cần nêu rõ hơn mục tiêu phát triển nguồn nhân lực."},
    )
    assert whole.status_code == 202 and on_section.status_code == 202, whole.text
    assert whole.json()["reference"].startswith("GY-")
    wrong = public.post(
        f"/v1/feedback/documents/{code}/feedback",
        {"section": "phan-9", "body": "Góp ý phần chín ạ."},
    )
    assert wrong.status_code == 422 and "section" in wrong.text

    editor.wait(whole.json()["id"])
    item = editor.wait(on_section.json()["id"])
    assert item["section_title"] == "Phần II. Định hướng"
    editor.act(on_section.json()["id"], "approve")
    portal.wait_for(
        lambda: _status(public, on_section.json())["state"] == "accepted", what="accepted"
    )
    doc = public.get(f"/v1/feedback/documents/{code}").json()
    assert doc["feedback_total"] == 2 and doc["feedback_on_whole"] == 1
    assert [s["feedback"] for s in doc["sections"]] == [0, 1]

    export = editor._call("GET", "/feedback/export", document=code)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    text = export.content.decode("utf-8-sig")
    assert "Phần II. Định hướng" in text and "chuyển đổi số" in text
    assert "0912345678" not in text and "+84912345678" not in text

    # After the deadline: a clear refusal.
    portal.admin(
        "PUT",
        "engagement",
        f"/admin/v1/feedback-documents/{code}",
        {
            "title": "Dự thảo Báo cáo chính trị trình Đại hội",
            "requested_by": "Tiểu ban Văn kiện",
            "opens_at": (now - timedelta(days=10)).isoformat(),
            "deadline": (now - timedelta(seconds=1)).isoformat(),
        },
    )
    late = public.post(f"/v1/feedback/documents/{code}/feedback", {"body": "Góp ý gửi muộn ạ."})
    assert late.status_code == 409 and "deadline" in late.text


# --- 4 and 5. forum and comments -------------------------------------------------------------


def _published_article(portal: Portal, title: str) -> str:
    key = portal.api_key(TRUSTED)
    ext = _unique("bl")
    resp = portal.http.put(
        portal.url("ingest", f"/v1/articles/{ext}"),
        json={
            "content": {
                "title": title,
                "section": "tin-hoat-dong",
                "body_html": f"<p>{title}. Đảng Cộng sản Việt Nam lãnh đạo toàn diện.</p>",
            }
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code in (200, 202), resp.text
    article_id: str = resp.json()["article_id"]
    return article_id


def test_forum_thread_reply_report_and_withdrawal(portal: Portal) -> None:
    public, reader = Client(portal), Client(portal)
    editor = Desk(portal)
    word = _word()
    thread = public.post(
        f"/v1/forum/topics/{FORUM_TOPIC}/threads",
        {
            "title": f"Kinh nghiệm sinh hoạt chi bộ ở khu dân cư {word}",
            "body": "Chi bộ chúng tôi sinh hoạt chuyên đề mỗi quý, xin chia sẻ kinh nghiệm.",
        },
    )
    assert thread.status_code == 202, thread.text
    tid = thread.json()["id"]
    editor.wait(tid)
    threads = public.get(f"/v1/forum/topics/{FORUM_TOPIC}/threads", size=50).json()["items"]
    assert tid not in [t["id"] for t in threads], "nothing is public before moderation"
    # Replies go only to published threads.
    assert (
        public.post(f"/v1/forum/threads/{tid}/replies", {"body": "Rất hay ạ."}).status_code == 404
    )

    editor.act(tid, "approve")
    portal.wait_for(
        lambda: public.get(f"/v1/forum/threads/{tid}").status_code == 200, what="thread"
    )
    reply = public.post(f"/v1/forum/threads/{tid}/replies", {"body": "Cảm ơn chia sẻ rất bổ ích."})
    assert reply.status_code == 202, reply.text
    rid = reply.json()["id"]
    editor.wait(rid)
    editor.act(rid, "approve")
    portal.wait_for(
        lambda: (
            rid
            in [r["id"] for r in public.get(f"/v1/forum/threads/{tid}").json()["replies"]["items"]]
        ),
        what="reply listed",
    )
    listed = public.get(f"/v1/forum/topics/{FORUM_TOPIC}/threads", size=50).json()["items"]
    assert next(t for t in listed if t["id"] == tid)["replies"] == 1
    # Every topic's threads together, the latest activity first: this thread just had a reply.
    latest = public.get("/v1/forum/threads", size=5).json()
    assert latest["items"][0]["id"] == tid and latest["items"][0]["topic"] == FORUM_TOPIC

    report = reader.post(
        f"/v1/forum/posts/{rid}/reports", {"reason": "offensive", "note": "Xúc phạm"}
    )
    assert report.status_code == 202 and report.json()["received"] is True
    again = reader.post(f"/v1/forum/posts/{rid}/reports", {"reason": "spam"})
    assert again.json()["received"] is False
    portal.wait_for(
        lambda: rid in [i["id"] for i in editor.list(reported="true", kind="forum_reply")],
        what="reported queue",
    )
    editor.act(rid, "withdraw", reason="Vi phạm nội quy diễn đàn.")
    portal.wait_for(
        lambda: (
            rid
            not in [
                r["id"] for r in public.get(f"/v1/forum/threads/{tid}").json()["replies"]["items"]
            ]
        ),
        what="reply withdrawn",
    )
    status = _status(public, reply.json())
    assert status["state"] == "withdrawn" and status["reason"] == "Vi phạm nội quy diễn đàn."


def test_comments_are_pre_moderated_and_listed_with_the_article(portal: Portal) -> None:
    public = Client(portal)
    editor = Desk(portal)
    article_id = _published_article(portal, f"Hội nghị tổng kết công tác {_unique('')}")

    assert public.get(f"/v1/articles/{article_id}/comments").status_code == 404
    portal.wait_for(
        lambda: public.get(f"/v1/articles/{article_id}/comments").status_code == 200,
        what="the published article known to engagement",
    )
    assert public.get(f"/v1/articles/{article_id}/comments").json()["items"] == []
    resp = public.post(
        f"/v1/articles/{article_id}/comments",
        {"body": "Bài viết rất thiết thực, cảm ơn tác giả.", "display_name": "Chi"},
    )
    assert resp.status_code == 202, resp.text
    receipt = resp.json()
    editor.wait(receipt["id"])
    editor.act(receipt["id"], "approve")
    portal.wait_for(
        lambda: public.get(f"/v1/articles/{article_id}/comments").json()["total"] == 1,
        what="comment listed",
    )
    [listed] = public.get(f"/v1/articles/{article_id}/comments").json()["items"]
    assert (
        listed["author"] == "Chi" and listed["body"] == "Bài viết rất thiết thực, cảm ơn tác giả."
    )
    assert (
        public.post("/v1/articles/khong-co-bai/comments", {"body": "Bình luận ạ."}).status_code
        == 404
    )


# --- 6. screening ----------------------------------------------------------------------------


def test_screening_errors_holds_and_the_spam_trap(portal: Portal) -> None:
    public = Client(portal)
    editor = Desk(portal)
    bare = public.post(
        "/v1/qa/questions",
        {
            "topic": QA_TOPIC,
            "title": "Hoi ve bao hiem",
            "body": "Cho toi hoi ve bao hiem y te cho nguoi gia",
        },
    )
    assert bare.status_code == 422
    [problem] = bare.json()["detail"]
    assert problem["loc"] == ["body", "body"] and "diacritics" in problem["msg"]

    long = public.post(
        "/v1/qa/questions", {"topic": QA_TOPIC, "title": "Câu hỏi dài", "body": "Tôi hỏi. " * 700}
    )
    assert long.status_code == 422 and "body" in json.dumps(long.json()["detail"][0]["loc"])

    rude = _ask(public, _word(), display_name="Khách")
    assert rude["held_for_review"] is False
    banned = public.post(
        "/v1/qa/questions",
        {"topic": QA_TOPIC, "title": "Bức xúc quá", "body": f"{BODY} Làm ăn cái đéo gì thế này?"},
    )
    assert banned.status_code == 202 and banned.json()["held_for_review"] is True
    link = public.post(
        "/v1/qa/questions",
        {
            "topic": QA_TOPIC,
            "title": "Thông tin thêm",
            "body": f"{BODY} Xem tại https://vay-nhanh.example.com",
        },
    )
    assert link.json()["held_for_review"] is True
    for receipt, flag in ((banned.json(), "banned_word:đéo"), (link.json(), "link:")):
        item = editor.wait(receipt["id"])
        assert item["flagged"] and any(f.startswith(flag) for f in item["flags"])
        assert _status(public, receipt)["label"] == "Đã nhận, chờ biên tập viên xem xét"
    flagged = editor.list(kind="qa", flagged="true", state="pending", order="newest", limit=200)
    assert banned.json()["id"] in [i["id"] for i in flagged]

    trap = public.post(
        "/v1/qa/questions",
        {"topic": QA_TOPIC, "title": "Quảng cáo", "body": BODY, "website": "http://spam"},
    )
    assert trap.status_code == 202, "a bot must not learn it was caught"
    assert public.get(trap.json()["status_path"]).status_code == 404
    assert editor.item(trap.json()["id"]) is None

    assert (
        public.post(
            "/v1/qa/questions", {"topic": "khong-co", "title": "Câu hỏi", "body": BODY}
        ).status_code
        == 404
    )
    bad_mail = public.post(
        "/v1/qa/questions", {"topic": QA_TOPIC, "title": "Câu hỏi", "body": BODY, "email": "x@"}
    )
    assert bad_mail.status_code == 422 and bad_mail.json()["detail"][0]["loc"] == ["body", "email"]


def test_a_flood_from_one_client_gets_429_and_nothing_accepted_is_lost(portal: Portal) -> None:
    flooder = Client(portal)
    editor = Desk(portal)
    accepted, refused = [], []
    for i in range(16):
        resp = flooder.post(
            f"/v1/forum/topics/{FORUM_TOPIC}/threads",
            {
                "title": f"Chủ đề số {i} của tôi",
                "body": f"Nội dung thảo luận số {i} về xây dựng Đảng.",
            },
        )
        (accepted if resp.status_code == 202 else refused).append(resp)
    assert len(accepted) == 10, [r.status_code for r in refused]  # 10/minute per address
    assert all(r.status_code == 429 for r in refused)
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert "too many" in refused[0].json()["detail"]
    # Another client is not affected.
    assert Client(portal).get(f"/v1/forum/topics/{FORUM_TOPIC}/threads").status_code == 200
    for resp in accepted:
        editor.wait(resp.json()["id"])

    # Per identity: one e-mail address from many addresses.
    email = f"{_unique('nguoi')}@example.vn"
    codes = [_ask_status(Client(portal), email=email) for _ in range(7)]
    assert codes.count(202) == 5 and codes.count(429) == 2, codes


def _ask_status(client: Client, **extra: Any) -> int:
    resp = client.post(
        "/v1/qa/questions", {"topic": QA_TOPIC, "title": "Hỏi về bảo hiểm", "body": BODY, **extra}
    )
    return resp.status_code


def test_idempotency_key_makes_a_retry_safe(portal: Portal) -> None:
    public = Client(portal)
    key = str(uuid.uuid4())
    first = public.post(
        "/v1/qa/questions",
        {"topic": QA_TOPIC, "title": "Hỏi về bảo hiểm", "body": BODY},
        **{"Idempotency-Key": key},
    ).json()
    again = public.post(
        "/v1/qa/questions",
        {"topic": QA_TOPIC, "title": "Hỏi về bảo hiểm", "body": BODY},
        **{"Idempotency-Key": key},
    ).json()
    assert again["id"] == first["id"] and again["repeated"] is True
    assert again["status_token"] != first["status_token"]
    assert _status(public, again)["reference"] == first["reference"]


# --- contact details never leave through a public route --------------------------------------


@pytest.fixture(scope="module")
def seeded(portal: Portal) -> Iterator[dict[str, Any]]:
    """One of everything, each with contact details, taken as far as it goes."""
    editor = Desk(portal)
    marker = uuid.uuid4().hex[:8]
    phone = "0987 654 321"
    phone_forms = ("0987654321", "+84987654321", "987654321", "0987 654 321")
    emails: list[str] = []

    def contact_() -> dict[str, str]:
        # One address per item: the same person six times a minute would meet the rate limit.
        emails.append(f"lien-he-{marker}-{len(emails)}@example.vn")
        return {"email": emails[-1], "phone": phone}

    public = Client(portal)
    ids: dict[str, Any] = {"emails": emails, "phones": phone_forms}

    receipt = _ask(public, _word(), agency=AGENCY, display_name="Người hỏi", **contact_())
    qid = ids["question"] = receipt["id"]
    ids["status_path"] = receipt["status_path"]
    editor.wait(qid)
    editor.act(qid, "route", agency=AGENCY)
    editor.act(qid, "answer", answer="Câu trả lời có đủ thông tin.")
    editor.act(qid, "publish")

    code = ids["dialogue"] = _unique("dt-")
    now = datetime.now(UTC)
    _put_dialogue(portal, code, now - timedelta(minutes=5), now + timedelta(hours=1))
    dq = public.post(
        f"/v1/dialogues/{code}/questions", {"body": "Câu hỏi đối thoại ạ?", **contact_()}
    )
    assert dq.status_code == 202, dq.text
    editor.wait(dq.json()["id"])
    editor.act(dq.json()["id"], "answer", answer="Trả lời trực tiếp.")

    doc = ids["document"] = _unique("gy-")
    portal.admin(
        "PUT",
        "engagement",
        f"/admin/v1/feedback-documents/{doc}",
        {
            "title": "Dự thảo",
            "requested_by": "Ban Tuyên giáo",
            "sections": [{"code": "mot", "title": "Phần một"}],
            "opens_at": (now - timedelta(days=1)).isoformat(),
            "deadline": (now + timedelta(days=1)).isoformat(),
        },
    )
    fb = public.post(
        f"/v1/feedback/documents/{doc}/feedback",
        {"section": "mot", "body": "Góp ý phần một.", **contact_()},
    )
    assert fb.status_code == 202, fb.text

    thread = public.post(
        f"/v1/forum/topics/{FORUM_TOPIC}/threads",
        {"title": "Chủ đề có liên hệ", "body": "Nội dung chủ đề có liên hệ riêng.", **contact_()},
    )
    tid = ids["thread"] = thread.json()["id"]
    editor.wait(tid)
    editor.act(tid, "approve")
    portal.wait_for(
        lambda: public.get(f"/v1/forum/threads/{tid}").status_code == 200, what="thread"
    )
    reply = public.post(
        f"/v1/forum/threads/{tid}/replies", {"body": "Trả lời có liên hệ.", **contact_()}
    )
    ids["post"] = reply.json()["id"]
    editor.wait(ids["post"])
    editor.act(ids["post"], "approve")

    article_id = ids["article"] = _published_article(portal, f"Bài có bình luận {marker}")

    portal.wait_for(
        lambda: public.get(f"/v1/articles/{article_id}/comments").status_code == 200,
        what="the article known to engagement",
    )
    comment = public.post(
        f"/v1/articles/{article_id}/comments", {"body": "Bình luận có liên hệ.", **contact_()}
    )
    assert comment.status_code == 202, comment.text
    cid = ids["comment"] = comment.json()["id"]
    editor.wait(cid)
    editor.act(cid, "approve")
    portal.wait_for(
        lambda: public.get(f"/v1/articles/{article_id}/comments").json()["total"] == 1,
        what="comment",
    )
    portal.wait_for(lambda: public.get(f"/v1/qa/questions/{qid}").status_code == 200, what="answer")
    ids["token"] = receipt["status_token"]
    yield ids


def _values_for(name: str, ids: dict[str, Any]) -> str:
    return {
        "question_id": ids["question"],
        "code": ids["dialogue"],
        "thread_id": ids["thread"],
        "article_id": ids["article"],
        "token": ids["token"],
        "post_id": ids["post"],
        "comment_id": ids["comment"],
    }[name]


def test_no_public_route_returns_contact_details(portal: Portal, seeded: dict[str, Any]) -> None:
    client = Client(portal)
    needles = [*seeded["emails"], *seeded["phones"]]
    assert len(seeded["emails"]) == 6
    walked = []
    for service in ("engagement", "search", "publishing"):
        spec = portal.http.get(portal.url(service, "/openapi.json")).json()
        for path, methods in spec["paths"].items():
            if path.startswith("/admin") or "get" not in methods:
                continue
            concrete = path
            for part in path.split("/"):
                if part.startswith("{"):
                    name = part.strip("{}")
                    if service != "engagement":
                        concrete = ""
                        break
                    if name == "code" and "/feedback/" in path:
                        value = seeded["document"]
                    elif name == "code" and "/forum/" in path:
                        value = FORUM_TOPIC
                    else:
                        value = _values_for(name, seeded)
                    concrete = concrete.replace(part, value)
            if not concrete:
                continue
            if concrete.endswith("/live"):
                with (
                    httpx.Client(timeout=httpx.Timeout(5.0, read=2.0)) as http,
                    http.stream(
                        "GET", portal.url(service, concrete), headers={"X-Forwarded-For": client.ip}
                    ) as resp,
                ):
                    body = ""
                    try:
                        for chunk in resp.iter_text():
                            body += chunk
                    except httpx.ReadTimeout:
                        pass
                    assert "Trả lời trực tiếp" in body
            else:
                resp = portal.http.get(
                    portal.url(service, concrete),
                    params={"q": "liên hệ"} if service == "search" else None,
                    headers={"X-Forwarded-For": client.ip},
                )
                body = resp.text
            walked.append((service, concrete))
            for needle in needles:
                assert needle not in body, f"{service} {concrete} shows {needle}"
    engagement_paths = {p for s, p in walked if s == "engagement"}
    assert len(engagement_paths) >= 18, sorted(engagement_paths)
    # The private contact is there for the officials, behind the admin token only.
    admin = portal.admin("GET", "engagement", f"/admin/v1/submissions/{seeded['question']}/contact")
    assert admin["email"] == seeded["emails"][0] and admin["phone"] == "+84987654321"
    assert (
        portal.http.get(
            portal.url("engagement", f"/admin/v1/submissions/{seeded['question']}/contact")
        ).status_code
        == 401
    )
