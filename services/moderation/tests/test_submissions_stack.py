"""The submissions desk on the real stack: events in from engagement, decisions out.

One moderation app runs in-process for the module; tests produce engagement's events to the
real broker and read moderation's events back by subject. Each test uses its own ids.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from portal_contracts.questions import QuestionSubmitted, QuestionSubmittedEvent
from portal_contracts.submissions import (
    ReportReason,
    SubmissionReported,
    SubmissionReportedEvent,
    SubmissionSubmitted,
    SubmissionSubmittedEvent,
)
from portal_contracts.topics import (
    QUESTION_ANSWERED,
    QUESTION_SUBMITTED,
    SUBMISSION_MODERATED,
    SUBMISSION_REPORTED,
    SUBMISSION_SUBMITTED,
)
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_moderation.app import create_app
from portal_moderation.settings import Settings

pytestmark = pytest.mark.stack


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@dataclass
class Desk:
    app: Any
    admin_token: str
    events: Any

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://mod")

    async def source(self) -> str:
        code = f"co-quan-{uuid.uuid4().hex[:8]}"
        async with self.client() as http:
            resp = await http.put(
                f"/admin/v1/sources/{code}",
                json={"name": f"Cơ quan {code}", "kind": "ministry", "policy": "pre-review"},
                headers={"Authorization": f"Bearer {self.admin_token}"},
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
            resp = await http.put(
                f"/admin/v1/users/{username}",
                json=body,
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
        assert resp.status_code == 201, resp.text
        return username, password

    async def token(self, role: str, source: str | None = None) -> dict[str, str]:
        username, password = await self.account(role, source)
        async with self.client() as http:
            resp = await http.post(
                "/v1/auth/token", json={"username": username, "password": password}
            )
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    async def wait_item(self, headers: dict[str, str], sid: str) -> dict[str, Any]:
        async with self.client() as http:
            for _ in range(300):
                resp = await http.get(f"/v1/submissions/{sid}", headers=headers)
                if resp.status_code == 200:
                    data: dict[str, Any] = resp.json()
                    return data
                await asyncio.sleep(0.2)
        raise AssertionError(f"submission {sid} never reached the desk")


@pytest.fixture(scope="module")
async def desk(stack_settings: StackSettings, kafka_events: Any) -> AsyncIterator[Desk]:
    env = service_environment(stack_settings, "moderation")
    values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    values.update(ingest_url="http://127.0.0.1:9", publishing_url="http://127.0.0.1:9")
    app = create_app(Settings(**values))
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        yield Desk(app, env["ADMIN_TOKEN"], kafka_events)


def question(**kw: Any) -> QuestionSubmittedEvent:
    qid = str(uuid.uuid4())
    data = {
        "question_id": qid,
        "topic": "y-te",
        "title": "Bảo hiểm y tế hộ gia đình",
        "body": "Xin hỏi mức đóng bảo hiểm y tế hộ gia đình năm nay?",
        "submitted_at": datetime.now(UTC),
        "reference": "HD-2026-000001",
        **kw,
    }
    return QuestionSubmittedEvent(
        producer="engagement", subject=qid, data=QuestionSubmitted(**data)
    )


async def test_a_redelivered_question_is_queued_once(desk: Desk, processed: Any) -> None:
    event = question(screening_flags=["link:bit.ly/x"])
    # The same question once more under another event id, after the redelivery: the marker.
    again = event.model_copy(update={"event_id": uuid.uuid4()})
    await desk.events.produce(QUESTION_SUBMITTED.name, event, event, again)
    editor = await desk.token("editor")
    item = await desk.wait_item(editor, event.data.question_id)
    assert item["state"] == "pending" and item["flagged"] is True
    assert item["reference"] == "HD-2026-000001"
    assert item["may"] == ["approve", "reject", "route"]
    await processed(desk.app, again.event_id)
    item = await desk.wait_item(editor, event.data.question_id)
    assert [h["action"] for h in item["history"]] == ["received"]


async def test_route_answer_publish_emits_steps_and_the_answer(desk: Desk) -> None:
    agency = await desk.source()
    event = question(agency=agency)
    qid = event.data.question_id
    await desk.events.produce(QUESTION_SUBMITTED.name, event)
    editor = await desk.token("editor")
    publisher = await desk.token("agency_publisher", agency)
    other = await desk.token("agency_publisher", await desk.source())
    item = await desk.wait_item(editor, qid)
    async with desk.client() as http:
        unknown = await http.post(
            f"/v1/submissions/{qid}/route",
            json={"revision": item["revision"], "agency": "khong-co-co-quan"},
            headers=editor,
        )
        assert unknown.status_code == 422 and "agency" in unknown.text
        routed = await http.post(
            f"/v1/submissions/{qid}/route",
            json={"revision": item["revision"], "agency": agency},
            headers=editor,
        )
        assert routed.status_code == 200, routed.text
        stale = await http.post(
            f"/v1/submissions/{qid}/approve", json={"revision": 0}, headers=editor
        )
        assert stale.status_code == 409 and "revision" in stale.text
        assert (await http.get(f"/v1/submissions/{qid}", headers=other)).status_code == 403
        listed = await http.get("/v1/submissions", headers=publisher)
        assert [i["id"] for i in listed.json()["items"]] == [qid]
        answered = await http.post(
            f"/v1/submissions/{qid}/answer",
            json={"revision": 1, "answer": "Mức đóng bằng 4,5% mức lương cơ sở.\n\n<b>Hết</b>"},
            headers=publisher,
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["answered_by"] == f"Cơ quan {agency}"
        assert answered.json()["answer_html"] == (
            "<p>Mức đóng bằng 4,5% mức lương cơ sở.</p><p>&lt;b&gt;Hết&lt;/b&gt;</p>"
        )
        published = await http.post(
            f"/v1/submissions/{qid}/publish", json={"revision": 2}, headers=editor
        )
        assert published.status_code == 200, published.text
    steps = await desk.events.read(SUBMISSION_MODERATED.name, qid, until=lambda e: len(e) >= 3)
    assert [(e["data"]["state"], e["data"]["revision"]) for e in steps] == [
        ("routed", 1),
        ("answered", 2),
        ("published", 3),
    ]
    assert steps[0]["data"]["agency"] == agency
    [answer] = await desk.events.read(QUESTION_ANSWERED.name, qid, until=lambda e: len(e) >= 1)
    assert answer["data"]["revision"] == 3 and answer["data"]["state"] == "published"
    assert answer["data"]["agency"] == agency and answer["data"]["kind"] == "qa"


async def test_reports_queue_a_published_comment_again(desk: Desk) -> None:
    sid = str(uuid.uuid4())
    await desk.events.produce(
        SUBMISSION_SUBMITTED.name,
        SubmissionSubmittedEvent(
            producer="engagement",
            subject=sid,
            data=SubmissionSubmitted(
                submission_id=sid,
                kind="comment",
                context_id=str(uuid.uuid4()),
                context_title="Bài viết",
                body="Bình luận của bạn đọc.",
                submitted_at=datetime.now(UTC),
            ),
        ),
    )
    editor = await desk.token("editor")
    await desk.wait_item(editor, sid)
    async with desk.client() as http:
        ok = await http.post(f"/v1/submissions/{sid}/approve", json={"revision": 0}, headers=editor)
        assert ok.json()["state"] == "published"
    report = SubmissionReportedEvent(
        producer="engagement",
        subject=sid,
        data=SubmissionReported(
            report_id=str(uuid.uuid4()),
            submission_id=sid,
            kind="comment",
            reason=ReportReason.SPAM,
            reports=1,
            reported_at=datetime.now(UTC),
        ),
    )
    await desk.events.produce(SUBMISSION_REPORTED.name, report, report)
    async with desk.client() as http:
        for _ in range(150):
            reported = await http.get(
                "/v1/submissions", params={"reported": "true", "kind": "comment"}, headers=editor
            )
            if sid in [i["id"] for i in reported.json()["items"]]:
                break
            await asyncio.sleep(0.2)
        item = (await http.get(f"/v1/submissions/{sid}", headers=editor)).json()
        assert item["open_reports"] == 1 and len(item["report_list"]) == 1
        assert "withdraw" in item["may"] and "dismiss_reports" in item["may"]
        kept = await http.post(
            f"/v1/submissions/{sid}/dismiss-reports", json={"revision": 1}, headers=editor
        )
        assert kept.json()["open_reports"] == 0 and kept.json()["state"] == "published"


async def test_the_web_desk_lists_and_acts_on_submissions(desk: Desk) -> None:
    event = question(asker_display_name="Bạn đọc Hà")
    qid = event.data.question_id
    await desk.events.produce(QUESTION_SUBMITTED.name, event)
    await desk.wait_item(await desk.token("editor"), qid)
    username, password = await desk.account("editor")
    async with desk.client() as http:
        form = await http.get("/desk/login")
        signed = await http.post(
            "/desk/login",
            data={"username": username, "password": password, "csrf_token": csrf_in(form.text)},
        )
        assert signed.status_code == 303
        page = await http.get("/desk/submissions", params={"tab": "qa", "order": "newest"})
        assert page.status_code == 200
        assert f"/desk/submissions/{qid}" in page.text and "Bạn đọc gửi" in page.text
        detail = await http.get(f"/desk/submissions/{qid}")
        assert detail.status_code == 200 and "Bạn đọc Hà" in detail.text
        refused = await http.post(f"/desk/submissions/{qid}/approve", data={"revision": "0"})
        assert refused.status_code == 403  # no CSRF token
        done = await http.post(
            f"/desk/submissions/{qid}/approve",
            data={"revision": "0", "csrf_token": csrf_in(detail.text)},
        )
        assert done.status_code == 303
        after = await http.get(done.headers["location"])
        assert "Đã tiếp nhận" in after.text
        rejected = await http.post(
            f"/desk/submissions/{qid}/reject",
            data={"revision": "1", "reason": "", "csrf_token": csrf_in(after.text)},
        )
        assert rejected.status_code == 422 and "reason" in rejected.text
    steps = await desk.events.read(SUBMISSION_MODERATED.name, qid, until=lambda e: len(e) >= 1)
    assert steps[0]["data"]["state"] == "accepted"
