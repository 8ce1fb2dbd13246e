"""The partner API's batch push (POST /v1/articles/batch) on the real stack: each item decided
as a single push is and answered on its own; a malformed or oversized batch refused whole."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from portal_contracts.articles import ArticleIngestedEvent, article_id_for
from portal_contracts.topics import ARTICLE_INGESTED

from .conftest import Ingest, read_events

pytestmark = pytest.mark.stack

SECTION = "ct-xay-dung-dang"
URL = "/v1/articles/batch"


def _item(external_id: str, title: str, **extra: Any) -> dict[str, Any]:
    content = {"title": title, "body_html": "<p>Nội dung.</p>", "section": SECTION}
    return {"external_id": external_id, "content": content, **extra}


async def test_each_item_of_a_batch_is_answered_on_its_own(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    tag = uuid.uuid4().hex[:8]
    a, b = f"lo-{tag}/a", f"lo-{tag}/b"
    elsewhere = _item(f"lo-{tag}/c", "Tin chuyên mục khác")
    elsewhere["content"]["section"] = "tong-bi-thu"
    limit = ingest.settings.max_body_bytes
    huge = _item(f"lo-{tag}/d", "Tin quá lớn")
    # Within the content's own bounds (characters), over the single push's limit (bytes).
    huge["content"]["body_html"] = "<p>" + "ệ" * (limit // 3 + 1) + "</p>"
    items = [
        _item(a, "Tin A", revision=3),
        _item(b, "Tin B"),
        _item(a, "Tin A"),  # the same content again: a repeat of revision 3
        elsewhere,
        _item(b, "Tin B cũ", revision=1),  # revision 1 of b holds other content
        huge,
        _item(b, "Tin B, sửa"),
    ]

    resp = await ingest.http.post(URL, json={"items": items}, headers=headers)

    assert resp.status_code == 200, resp.text
    answers = resp.json()["items"]
    assert [(x["external_id"], x["status"]) for x in answers] == [
        (a, 202),
        (b, 202),
        (a, 200),
        (elsewhere["external_id"], 403),
        (b, 409),
        (huge["external_id"], 413),
        (b, 202),
    ]
    assert [x["receipt"]["revision"] for x in answers if x["receipt"]] == [3, 1, 3, 2]
    assert "section 'tong-bi-thu' is not allowed" in answers[3]["detail"]
    assert answers[4]["code"] == "revision_conflict"
    assert f"limit of {limit} bytes" in answers[5]["detail"]

    ids = {article_id_for(source, a), article_id_for(source, b)}
    events = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: isinstance(e, ArticleIngestedEvent) and e.subject in ids,
        want=3,
        settle_s=1.0,
    )
    assert sorted(
        (e.subject, e.data.revision) for e in events if isinstance(e, ArticleIngestedEvent)
    ) == sorted(
        [
            (article_id_for(source, a), 3),
            (article_id_for(source, b), 1),
            (article_id_for(source, b), 2),
        ]
    )
    view = (await ingest.http.get(f"/v1/articles/{b}", headers=headers)).json()
    assert (view["revision"], view["title"]) == (2, "Tin B, sửa")
    for refused in (elsewhere, huge):
        missing = await ingest.http.get(f"/v1/articles/{refused['external_id']}", headers=headers)
        assert missing.status_code == 404


async def test_a_malformed_batch_is_refused_whole_naming_the_field(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    tag = uuid.uuid4().hex[:8]
    good = _item(f"bad-{tag}/a", "Tin tốt")
    untitled = {"external_id": f"bad-{tag}/b", "content": {"section": SECTION}}
    bad_id = _item("có dấu cách", "Tin")
    too_many = [
        _item(f"many-{tag}-{i}", f"Tin {i}") for i in range(ingest.settings.batch_max_items + 1)
    ]

    missing_title = await ingest.http.post(URL, json={"items": [good, untitled]}, headers=headers)
    wrong_id = await ingest.http.post(URL, json={"items": [bad_id]}, headers=headers)
    huge_revision = _item(f"bad-{tag}/c", "Tin", revision=2**31)
    beyond = await ingest.http.post(URL, json={"items": [huge_revision]}, headers=headers)
    empty = await ingest.http.post(URL, json={"items": []}, headers=headers)
    over = await ingest.http.post(URL, json={"items": too_many}, headers=headers)
    no_key = await ingest.http.post(URL, json={"items": [good]})

    assert missing_title.status_code == 422
    assert [e["field"] for e in missing_title.json()["errors"]] == ["items.1.content.title"]
    assert wrong_id.status_code == 422
    assert [e["field"] for e in wrong_id.json()["errors"]] == ["items.0.external_id"]
    assert beyond.status_code == 422
    assert [e["field"] for e in beyond.json()["errors"]] == ["items.0.revision"]
    assert empty.status_code == 422
    assert over.status_code == 422
    assert [e["field"] for e in over.json()["errors"]] == ["items"]
    assert no_key.status_code == 401
    # Nothing of a refused batch is stored, not even its valid items.
    assert (
        await ingest.http.get(f"/v1/articles/{good['external_id']}", headers=headers)
    ).status_code == 404


async def test_a_batch_over_its_byte_limit_is_413_naming_it(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    limit = ingest.settings.batch_max_bytes
    body = json.dumps({"items": [_item("x", "y" * limit)]}).encode()

    json_headers = {**headers, "Content-Type": "application/json"}

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for i in range(0, len(body), 256 * 1024):
            yield body[i : i + 256 * 1024]

    declared = await ingest.http.post(URL, content=body, headers=json_headers)
    streamed = await ingest.http.post(URL, content=stream(), headers=json_headers)

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["detail"] == f"request body exceeds the limit of {limit} bytes"
