"""The partner REST API against the real stack: PostgreSQL, S3 (raw archive) and Kafka
(article.ingested through the outbox)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from portal_contracts.articles import ArticleIngestedEvent, article_id_for
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest import partner_api
from portal_ingest.api import install_error_handlers
from portal_ingest.db import outbox
from portal_ingest.deps import ApiDeps, key_grants
from portal_ingest.intake_groups import PushGroups
from portal_ingest.intake_usecases import Ingestor
from portal_ingest.kafka_admin import PartnerKafkaProvisioner
from portal_ingest.usecases import Admin, DeskImages
from portal_runtime.storage import ObjectStore

from .conftest import Ingest, read_events

pytestmark = pytest.mark.stack


def _article(title: str = "Hội nghị Ban Chấp hành Đảng bộ tỉnh", **extra: Any) -> dict[str, Any]:
    return {
        "content": {
            "title": title,
            "summary": "Tóm tắt bài viết.",
            "body_html": "<p>Nội dung bài viết về công tác xây dựng Đảng.</p>",
            "section": "ct-xay-dung-dang",
            **extra,
        }
    }


def _ingested(article_id: str) -> Any:
    def match(event: Envelope) -> bool:
        return isinstance(event, ArticleIngestedEvent) and event.subject == article_id

    return match


async def test_put_archives_raw_bytes_and_emits_article_ingested(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    external_id = f"bai/{uuid.uuid4().hex[:8]}"
    # Bytes exactly as a partner CMS might send them (key order, spacing, escapes).
    raw = json.dumps(_article(), ensure_ascii=True, indent=1).encode()

    resp = await ingest.http.put(
        f"/v1/articles/{external_id}",
        content=raw,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert resp.status_code == 202, resp.text
    receipt = resp.json()
    article_id = article_id_for(source, external_id)
    assert receipt["article_id"] == article_id
    assert receipt["revision"] == 1
    assert receipt["status"] == "received"
    assert receipt["duplicate"] is False

    [event] = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        _ingested(article_id),
        want=1,
    )
    assert isinstance(event, ArticleIngestedEvent)
    assert event.producer == "ingest"
    assert event.data.source == source
    assert event.data.external_id == external_id
    assert event.data.revision == 1
    assert event.data.action == "upsert"
    assert event.data.channel == "rest"
    assert event.data.content is not None
    assert event.data.content.title == "Hội nghị Ban Chấp hành Đảng bộ tỉnh"
    assert event.data.raw_object_key is not None
    assert event.data.raw_object_key.startswith(f"raw/{source}/bai%2F")

    archived = await ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket).get(
        event.data.raw_object_key
    )
    assert archived == raw


async def test_same_content_is_idempotent_and_an_update_is_revision_two(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    external_id = f"hn-{uuid.uuid4().hex[:8]}"
    article_id = article_id_for(source, external_id)
    url = f"/v1/articles/{external_id}"

    first = await ingest.http.put(url, json=_article(), headers=headers)
    # Same content, other key order and spacing: the canonical hash is the same.
    again = await ingest.http.put(
        url,
        content=json.dumps(_article(), sort_keys=True).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    update = await ingest.http.put(url, json=_article("Tiêu đề đã sửa"), headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert update.status_code == 202
    assert update.json()["revision"] == 2

    # Same key, same partition: a second revision-1 event would come before revision 2.
    events = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        _ingested(article_id),
        want=2,
        settle_s=1.0,
    )
    assert [e.data.revision for e in events] == [1, 2]  # type: ignore[attr-defined]

    view = (await ingest.http.get(url, headers=headers)).json()
    assert view["revision"] == 2
    assert view["title"] == "Tiêu đề đã sửa"
    assert [r["revision"] for r in view["revisions"]] == [1, 2]


async def test_delete_retracts_with_a_new_revision(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    external_id = f"rt-{uuid.uuid4().hex[:8]}"
    article_id = article_id_for(source, external_id)
    url = f"/v1/articles/{external_id}"
    assert (await ingest.http.put(url, json=_article(), headers=headers)).status_code == 202

    retract = await ingest.http.delete(url, headers=headers)
    again = await ingest.http.delete(url, headers=headers)

    assert retract.status_code == 202, retract.text
    assert retract.json()["revision"] == 2
    assert retract.json()["action"] == "retract"
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    events = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        _ingested(article_id),
        want=2,
    )
    assert [(e.data.revision, e.data.action) for e in events] == [  # type: ignore[attr-defined]
        (1, "upsert"),
        (2, "retract"),
    ]
    assert events[1].data.content is None  # type: ignore[attr-defined]
    view = (await ingest.http.get(url, headers=headers)).json()
    assert view["status"] == "retracted"
    assert view["title"] == "Hội nghị Ban Chấp hành Đảng bộ tỉnh"  # kept for the partner's list


async def test_retracting_an_unknown_article_is_404(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    resp = await ingest.http.delete("/v1/articles/never-sent", headers=headers)
    assert resp.status_code == 404
    assert "nothing to retract" in resp.json()["detail"]


async def test_missing_invalid_and_revoked_keys_are_401(ingest: Ingest) -> None:
    source = await ingest.new_source()
    key = await ingest.new_key(source)
    url = f"/v1/articles/k-{uuid.uuid4().hex[:8]}"

    missing = await ingest.http.put(url, json=_article())
    malformed = await ingest.http.put(url, json=_article(), headers={"Authorization": "Bearer x"})
    key_id = key.split("_")[1]
    forged = f"pk_{key_id}_{'A' * 43}"
    wrong = await ingest.http.put(
        url, json=_article(), headers={"Authorization": f"Bearer {forged}"}
    )
    ok = await ingest.http.put(url, json=_article(), headers={"Authorization": f"Bearer {key}"})
    revoke = await ingest.http.delete(
        f"/admin/v1/sources/{source}/api-keys/{key_id}", headers=ingest.admin_headers
    )
    revoked = await ingest.http.get(url, headers={"Authorization": f"Bearer {key}"})

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert malformed.status_code == 401
    assert wrong.status_code == 401
    assert ok.status_code == 202
    assert revoke.status_code == 204
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "API key revoked"

    keys = (
        await ingest.http.get(f"/admin/v1/sources/{source}/api-keys", headers=ingest.admin_headers)
    ).json()
    assert [(k["key_id"], k["revoked_at"] is not None) for k in keys] == [(key_id, True)]
    assert "api_key" not in keys[0] and "secret_hash" not in keys[0]


async def test_key_rotation_new_key_works_old_one_revoked(ingest: Ingest) -> None:
    source = await ingest.new_source()
    old = await ingest.new_key(source)
    new = await ingest.new_key(source)
    await ingest.http.delete(
        f"/admin/v1/sources/{source}/api-keys/{old.split('_')[1]}", headers=ingest.admin_headers
    )
    me_old = await ingest.http.get("/v1/me", headers={"Authorization": f"Bearer {old}"})
    me_new = await ingest.http.get("/v1/me", headers={"Authorization": f"Bearer {new}"})
    assert me_old.status_code == 401
    assert me_new.status_code == 200
    assert me_new.json()["code"] == source
    assert me_new.json()["kafka_topic"] == f"partner.{source}.articles"


async def test_section_not_allowed_is_403_naming_it(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    body = _article()
    body["content"]["section"] = "tong-bi-thu"
    resp = await ingest.http.put(
        f"/v1/articles/s-{uuid.uuid4().hex[:8]}", json=body, headers=headers
    )
    assert resp.status_code == 403
    assert "section 'tong-bi-thu' is not allowed" in resp.json()["detail"]


async def test_inactive_source_is_403(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    # The key worked a moment ago (its grant is remembered): deactivating refuses it at once.
    ok = await ingest.http.put(
        f"/v1/articles/x-{uuid.uuid4().hex}", json=_article(), headers=headers
    )
    assert ok.status_code == 202, ok.text
    await ingest.http.put(
        f"/admin/v1/sources/{source}",
        json={"name": "Tắt", "kind": "province", "sections": [], "active": False},
        headers=ingest.admin_headers,
    )
    resp = await ingest.http.put(
        f"/v1/articles/x-{uuid.uuid4().hex}", json=_article(), headers=headers
    )
    assert resp.status_code == 403
    assert resp.json()["detail"] == f"source '{source}' is inactive"


async def test_another_agencys_article_by_portal_id_is_403(ingest: Ingest) -> None:
    source_a, headers_a = await ingest.partner()
    _, headers_b = await ingest.partner()
    external_id = f"a-{uuid.uuid4().hex[:8]}"
    receipt = (
        await ingest.http.put(f"/v1/articles/{external_id}", json=_article(), headers=headers_a)
    ).json()

    own = await ingest.http.get(f"/v1/articles/by-id/{receipt['article_id']}", headers=headers_a)
    other = await ingest.http.get(f"/v1/articles/by-id/{receipt['article_id']}", headers=headers_b)
    # By external id, B addresses its own (non-existent) item, never A's.
    by_external = await ingest.http.get(f"/v1/articles/{external_id}", headers=headers_b)

    assert own.status_code == 200
    assert own.json()["source"] == source_a
    assert other.status_code == 403
    assert "belongs to another source" in other.json()["detail"]
    assert by_external.status_code == 404


async def test_validation_errors_are_422_naming_the_field(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    url = f"/v1/articles/v-{uuid.uuid4().hex[:8]}"

    no_title = await ingest.http.put(
        url, json={"content": {"body_html": "<p>x</p>"}}, headers=headers
    )
    no_content = await ingest.http.put(url, json={"revision": 1}, headers=headers)
    bad_url = await ingest.http.put(url, json=_article(canonical_url="not a url"), headers=headers)
    source_in_body = await ingest.http.put(url, json={**_article(), "source": "x"}, headers=headers)
    bad_id = await ingest.http.put("/v1/articles/bad id!", json=_article(), headers=headers)

    for resp in (no_title, no_content, bad_url, source_in_body, bad_id):
        assert resp.status_code == 422, resp.text
    assert no_title.json()["errors"][0]["field"] == "content.title"
    assert no_title.json()["detail"] == "content.title: Field required"
    assert no_content.json()["errors"][0]["field"] == "content"
    assert bad_url.json()["errors"][0]["field"] == "content.canonical_url"
    assert source_in_body.json()["errors"][0]["field"] == "source"
    assert bad_id.json()["errors"][0]["field"] == "external_id"
    assert "input" not in no_title.json()["errors"][0]  # the body is never echoed


async def test_every_422_names_its_fields_in_errors(ingest: Ingest) -> None:
    # Regression: problems found by the handlers (a cursor, the journey's article id) answered
    # {"detail": "<text>"} without the documented `errors`; a body that is not UTF-8 was a 400.
    _, headers = await ingest.partner()
    bad_cursor = await ingest.http.get("/v1/articles", params={"cursor": "xyz"}, headers=headers)
    bad_journey = await ingest.http.get(
        "/admin/v1/articles/not-a-uuid/journey", headers=ingest.admin_headers
    )
    not_utf8 = await ingest.http.put(
        f"/v1/articles/v-{uuid.uuid4().hex[:8]}",
        content=b'{"content": {"title": "\xff"}}',
        headers={**headers, "Content-Type": "application/json"},
    )
    for resp, field in ((bad_cursor, "cursor"), (bad_journey, "article_id"), (not_utf8, "body")):
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert [e["field"] for e in problem["errors"]] == [field]
        assert problem["detail"].startswith(f"{field}: ")
    spec = (await ingest.http.get("/openapi.json")).json()
    schemas = {
        op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        for item in spec["paths"].values()
        for op in item.values()
        if "422" in op.get("responses", {})
    }
    assert schemas == {"#/components/schemas/ValidationProblem"}


async def test_body_over_the_limit_is_413(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    limit = ingest.settings.max_body_bytes
    huge = json.dumps(_article(body_html="<p>" + "x" * limit + "</p>")).encode()
    url = f"/v1/articles/big-{uuid.uuid4().hex[:8]}"
    json_headers = {**headers, "Content-Type": "application/json"}

    # Refused from the Content-Length header, before the body is read.
    declared = await ingest.http.put(url, content=huge, headers=json_headers)

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for i in range(0, len(huge), 64 * 1024):
            yield huge[i : i + 64 * 1024]

    streamed = await ingest.http.put(url, content=stream(), headers=json_headers)

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["detail"] == f"request body exceeds the limit of {limit} bytes"
    assert (await ingest.http.get(url, headers=headers)).status_code == 404


async def test_partner_revisions_older_or_conflicting_are_409(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    url = f"/v1/articles/r-{uuid.uuid4().hex[:8]}"

    r5 = await ingest.http.put(url, json={**_article("v5"), "revision": 5}, headers=headers)
    r3 = await ingest.http.put(url, json={**_article("v3"), "revision": 3}, headers=headers)
    r5_other = await ingest.http.put(url, json={**_article("v5b"), "revision": 5}, headers=headers)
    r5_replay = await ingest.http.put(url, json={**_article("v5"), "revision": 5}, headers=headers)
    r6 = await ingest.http.put(url, json={**_article("v6"), "revision": 6}, headers=headers)

    assert r5.status_code == 202 and r5.json()["revision"] == 5
    assert r3.status_code == 409
    assert r3.json()["detail"].startswith("revision 3 is older than the newest revision 5")
    assert r3.json()["code"] == "stale_revision"
    assert r5_other.status_code == 409
    assert r5_other.json()["code"] == "revision_conflict"
    assert r5_replay.status_code == 200 and r5_replay.json()["duplicate"] is True
    assert r6.status_code == 202 and r6.json()["revision"] == 6


async def test_list_filters_by_status_and_pages(ingest: Ingest) -> None:
    _, headers = await ingest.partner()
    ids = [f"l-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    for external_id in ids:
        await ingest.http.put(
            f"/v1/articles/{external_id}", json=_article(external_id), headers=headers
        )
    await ingest.http.delete(f"/v1/articles/{ids[0]}", headers=headers)

    page1 = (await ingest.http.get("/v1/articles?limit=2", headers=headers)).json()
    page2 = (
        await ingest.http.get(
            f"/v1/articles?limit=2&cursor={page1['next_cursor']}", headers=headers
        )
    ).json()
    received = (await ingest.http.get("/v1/articles?status=received", headers=headers)).json()
    bad_cursor = await ingest.http.get("/v1/articles?cursor=zzz", headers=headers)

    assert [a["external_id"] for a in page1["items"]] == [ids[2], ids[1]]
    assert [a["external_id"] for a in page2["items"]] == [ids[0]]
    assert page2["next_cursor"] is None
    assert page2["items"][0]["status"] == "retracted"
    assert sorted(a["external_id"] for a in received["items"]) == sorted(ids[1:])
    assert bad_cursor.status_code == 422


async def test_admin_api_needs_the_admin_token(ingest: Ingest) -> None:
    _, partner_headers = await ingest.partner()
    no_token = await ingest.http.get("/admin/v1/sources")
    partner_key = await ingest.http.get("/admin/v1/sources", headers=partner_headers)
    assert no_token.status_code == 401
    assert partner_key.status_code == 401


async def test_admin_upserts_sources(ingest: Ingest) -> None:
    code = await ingest.new_source(["ct-xay-dung-dang", "ct-xay-dung-dang", "van-ban-moi"])
    again = await ingest.http.put(
        f"/admin/v1/sources/{code}",
        json={"name": "Tên mới", "kind": "ministry", "sections": ["van-ban-moi"], "active": True},
        headers=ingest.admin_headers,
    )
    listed = (await ingest.http.get("/admin/v1/sources", headers=ingest.admin_headers)).json()
    bad = await ingest.http.put(
        "/admin/v1/sources/Bad_Code",
        json={"name": "x", "kind": "province", "sections": [], "active": True},
        headers=ingest.admin_headers,
    )

    assert again.status_code == 200
    assert again.json()["name"] == "Tên mới"
    assert again.json()["sections"] == ["van-ban-moi"]
    assert any(s["code"] == code for s in listed)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "code"


async def test_a_page_over_the_bound_is_refused_naming_limit(ingest: Ingest) -> None:
    """The documented bound (200), and a lower one a deployment set (PAGE_SIZE_MAX): each
    refuses a larger page with the same 422, and answers one at the bound."""
    _, headers = await ingest.partner()
    at_bound = await ingest.http.get("/v1/articles?limit=200", headers=headers)
    over = await ingest.http.get("/v1/articles?limit=201", headers=headers)
    wired = ingest.app.state.api
    lowered = ingest.settings.model_copy(update={"page_size_max": 2})
    ingest.app.state.api = replace(wired, settings=lowered)
    try:
        at_lowered = await ingest.http.get("/v1/errors?limit=2", headers=headers)
        over_lowered = await ingest.http.get("/v1/errors?limit=3", headers=headers)
    finally:
        ingest.app.state.api = wired

    assert at_bound.status_code == 200, at_bound.text
    assert over.status_code == 422
    assert over.json()["errors"] == [
        {
            "field": "limit",
            "message": "Input should be less than or equal to 200",
            "type": "less_than_equal",
        }
    ]
    assert at_lowered.status_code == 200, at_lowered.text
    assert over_lowered.status_code == 422
    assert over_lowered.json() == {
        "detail": "limit: Input should be less than or equal to 2",
        "errors": [
            {
                "field": "limit",
                "message": "Input should be less than or equal to 2",
                "type": "less_than_equal",
            }
        ],
    }


async def test_raw_archive_down_is_503_and_nothing_is_stored(ingest: Ingest) -> None:
    """The partner API wired to an S3 endpoint that does not answer: 503, no revision kept."""
    _, headers = await ingest.partner()
    settings = ingest.settings
    sessions = ingest.app.state.service.sessions
    dead_store = ObjectStore(
        settings.model_copy(update={"s3_endpoint": "http://127.0.0.1:9"}),
        bucket=settings.s3_raw_bucket,
    )
    app = FastAPI()
    app.include_router(partner_api.router)
    ingestor = Ingestor(sessions, dead_store, outbox)
    app.state.api = ApiDeps(
        settings=settings,
        sessions=sessions,
        ingestor=ingestor,
        pushes=PushGroups(ingestor, max_items=8, max_wait_s=0.002, in_flight=2),
        admin=Admin(settings, sessions, PartnerKafkaProvisioner(settings)),
        desk_images=DeskImages(settings, sessions, dead_store),
        grants=key_grants(sessions, settings.api_key_cache_s),
        charge_api_key=lambda _token, _cost: None,
    )
    install_error_handlers(app, settings)
    external_id = f"s3-{uuid.uuid4().hex[:8]}"

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest"
    ) as http:
        resp = await http.put(f"/v1/articles/{external_id}", json=_article(), headers=headers)

    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "5"
    after = await ingest.http.get(f"/v1/articles/{external_id}", headers=headers)
    assert after.status_code == 404
