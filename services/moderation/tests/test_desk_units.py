"""The web desk's pure logic: no infrastructure."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from portal_contracts.articles import (
    MediaRef,
    NormalizedArticle,
    QualityIssue,
    QualityReport,
)
from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import ARTICLE_INGESTED, PARTNER_DEAD_LETTERS
from portal_moderation.deadletters import record_of
from portal_moderation.desk import charts, present
from portal_moderation.desk.auth import csrf_for, csrf_matches, safe_next
from portal_moderation.domain import (
    Action,
    Claim,
    Conflict,
    DeskPage,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemState,
    ItemStatus,
    Role,
    apply_edits,
    authorize_page,
    claim_by_other,
    decide,
    flags_of,
    may_see,
    received_between,
    section_for_categories,
    with_mapped_section,
)
from portal_moderation.peers import site_from

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _article(**update: object) -> NormalizedArticle:
    base = NormalizedArticle(
        title="Hội nghị Trung ương",
        summary="Tóm tắt",
        body_html="<p>Nội dung</p>",
        body_text="Nội dung",
        section=None,
        categories=["Tin Tức - Sự kiện", "Xây dựng Đảng"],
        images=[
            MediaRef(original_url="https://nguon.vn/a.jpg", caption="Ảnh A"),
            MediaRef(original_url="https://nguon.vn/b.jpg", caption="Ảnh B"),
        ],
    )
    return base.model_copy(update=update)


# --- CSRF and sign-in redirects -------------------------------------------------------------


def test_csrf_token_is_bound_to_the_session_secret() -> None:
    token = csrf_for("session-a")
    assert csrf_matches("session-a", token)
    assert not csrf_matches("session-b", token)
    assert not csrf_matches("session-a", None)
    assert not csrf_matches("session-a", "")
    assert not csrf_matches(None, token)
    assert not csrf_matches("session-a", token + "x")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/desk/items/abc?x=1", "/desk/items/abc?x=1"),
        ("https://evil.example/desk/", "/desk/queue"),
        ("//evil.example/desk/x", "/desk/queue"),
        ("/desk\\@evil", "/desk/queue"),
        ("/admin/v1/users", "/desk/queue"),
        (None, "/desk/queue"),
    ],
)
def test_after_sign_in_only_a_desk_path_is_followed(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


# --- roles on pages -------------------------------------------------------------------------


def test_pages_by_role() -> None:
    admin = Editor("qt", Role.ADMIN)
    chief = Editor("tbt", Role.CHIEF_EDITOR)
    editor = Editor("btv", Role.EDITOR)
    agency = Editor("hn", Role.AGENCY_PUBLISHER, source="tp-ha-noi")
    assert all(may_see(admin, page) for page in DeskPage)
    assert may_see(chief, DeskPage.AUDIT) and not may_see(chief, DeskPage.SOURCES)
    assert not may_see(editor, DeskPage.AUDIT) and not may_see(editor, DeskPage.USERS)
    assert may_see(agency, DeskPage.QUEUE) and may_see(agency, DeskPage.DASHBOARD)
    with pytest.raises(Forbidden):
        authorize_page(agency, DeskPage.SOURCES)


# --- the version lock -----------------------------------------------------------------------


def test_acting_on_an_item_that_changed_since_it_was_opened_is_a_conflict() -> None:
    item = ItemStatus(revision=1, state=ItemState.PENDING, published_revision=None, version=3)
    assert decide(item, Action.APPROVE, revision=1, version=3).state is ItemState.PUBLISHED
    with pytest.raises(Conflict) as caught:
        decide(item, Action.APPROVE, revision=1, version=2)
    assert caught.value.reason.startswith("version:")
    # The API's callers without a version keep the revision lock only.
    assert decide(item, Action.APPROVE, revision=1).state is ItemState.PUBLISHED


def test_a_live_claim_of_a_colleague_is_shown_mine_or_expired_is_not() -> None:
    claim = Claim("bientap1", NOW - timedelta(minutes=2), NOW + timedelta(minutes=8))
    assert claim_by_other(claim, "bientap2", NOW) == claim
    assert claim_by_other(claim, "bientap1", NOW) is None
    assert claim_by_other(claim, "bientap2", NOW + timedelta(minutes=9)) is None
    assert claim_by_other(None, "bientap2", NOW) is None


# --- edits: the lead image ------------------------------------------------------------------


def test_lead_image_is_one_of_the_articles_images_or_none() -> None:
    edited, changes = apply_edits(_article(), {"lead_image": "https://nguon.vn/b.jpg"})
    assert edited.lead_image is not None and edited.lead_image.caption == "Ảnh B"
    assert changes == {"lead_image": {"before": None, "after": "https://nguon.vn/b.jpg"}}

    cleared, changes = apply_edits(edited, {"lead_image": ""})
    assert cleared.lead_image is None
    assert changes == {"lead_image": {"before": "https://nguon.vn/b.jpg", "after": None}}

    with pytest.raises(InvalidEdit, match="lead_image"):
        apply_edits(_article(), {"lead_image": "https://elsewhere.example/x.jpg"})


def test_clearing_the_section_is_an_edit() -> None:
    edited, changes = apply_edits(_article(section="xay-dung-dang"), {"section": ""})
    assert edited.section is None
    assert changes == {"section": {"before": "xay-dung-dang", "after": None}}


# --- quality flags and category mapping -----------------------------------------------------


def test_flags_are_issues_that_need_a_person_and_near_duplicates() -> None:
    report = QualityReport(
        score=0.5,
        issues=[
            QualityIssue(code="no_section", message="-"),
            QualityIssue(code="no_image", message="-", needs_person=False),
            QualityIssue(code="no_diacritics", message="-"),
        ],
    )
    assert flags_of(report, section=None) == ["no_section", "no_diacritics"]
    # A section set later (by an editor or the mapping) clears "no section".
    assert flags_of(report, section="xay-dung-dang") == ["no_diacritics"]
    assert flags_of(report.model_dump(mode="json"), section=None, duplicate_of="x") == [
        "no_section",
        "no_diacritics",
        "near_duplicate",
    ]
    assert flags_of(None, section=None) == []


def test_category_mapping_ignores_case_spacing_and_unicode_form() -> None:
    mapping = {"tin tức - sự kiện": "ct-tin-tuc-hoat-dong"}
    decomposed = "TIN TU\u031b\u0301C  -  SU\u031b\u0323 KIE\u0302\u0323N"  # NFD, capitals, spaces
    assert section_for_categories([decomposed], mapping) == ("ct-tin-tuc-hoat-dong", decomposed)
    assert section_for_categories(["Khác"], mapping) is None

    mapped, change = with_mapped_section(_article(), mapping)
    assert mapped.section == "ct-tin-tuc-hoat-dong"
    assert change == {
        "section": {
            "before": None,
            "after": "ct-tin-tuc-hoat-dong",
            "category": "Tin Tức - Sự kiện",
        }
    }
    # A section the partner named is never overridden.
    kept, change = with_mapped_section(_article(section="xay-dung-dang"), mapping)
    assert kept.section == "xay-dung-dang" and change == {}


# --- backlog ages ---------------------------------------------------------------------------


def test_age_buckets() -> None:
    oldest, newest = received_between("1h-6h", NOW)
    assert oldest == NOW - timedelta(hours=6) and newest == NOW - timedelta(hours=1)
    assert received_between("gt7d", NOW) == (None, NOW - timedelta(days=7))
    with pytest.raises(ValueError, match="age"):
        received_between("forever", NOW)


# --- dead letters ---------------------------------------------------------------------------


def _letter(topic: str, value: bytes, source: str | None = None) -> bytes:
    event = DeadLetterEvent(
        producer="ingest",
        subject=f"{topic}/0/7",
        data=DeadLetter(
            original_topic=topic,
            original_partition=0,
            original_offset=7,
            original_value_b64=base64.b64encode(value).decode(),
            consumer_group="ingest",
            reason="content.title: Field required",
            error_type="validation",
            failed_at=NOW,
            source=source,
        ),
    )
    return encode(event)


def test_a_partner_dead_letter_belongs_to_the_partner_of_its_topic() -> None:
    value = json.dumps({"external_id": "bai-1", "content": {}}).encode()
    row = record_of(PARTNER_DEAD_LETTERS, 0, 12, _letter("partner.so-tt.articles", value), None)
    assert row["source"] == "so-tt"
    assert row["external_id"] == "bai-1"
    assert row["error_type"] == "validation"
    assert row["failed_at"] == NOW
    assert (row["dlq_topic"], row["dlq_partition"], row["dlq_offset"]) == (
        PARTNER_DEAD_LETTERS,
        0,
        12,
    )


def test_a_pipeline_dead_letter_takes_the_source_from_the_original_event() -> None:
    value = json.dumps(
        {"type": "article.ingested", "data": {"source": "bo-y-te", "article_id": "a1"}}
    ).encode()
    row = record_of(
        ARTICLE_INGESTED.dead_letter_topic, 0, 3, _letter("article.ingested", value), None
    )
    assert (row["source"], row["article_id"]) == ("bo-y-te", "a1")


def test_an_unreadable_dead_letter_is_still_recorded() -> None:
    row = record_of(PARTNER_DEAD_LETTERS, 0, 4, b"\xff not json", 1_800_000_000_000)
    assert row["error_type"] == "unreadable"
    assert row["source"] is None
    assert row["failed_at"] == datetime.fromtimestamp(1_800_000_000, UTC)


# --- presentation and charts ----------------------------------------------------------------


def test_vietnamese_numbers_percentages_and_durations() -> None:
    assert present.number(75936) == "75.936"
    assert present.number(64.53, 1) == "64,5"
    # The report's own figures: 68,447 of 75,936 reviewed is 90%.
    assert present.percent(68447, 75936) == "90%"
    assert present.percent(48960, 75936) == "64%"
    assert present.percent(1, 0) == "–"
    assert present.duration(45) == "45 giây"
    assert present.duration(2 * 3600 + 15 * 60) == "2 giờ 15 phút"
    assert present.duration(3 * 86400 + 4 * 3600) == "3 ngày 4 giờ"
    assert present.local_time(datetime(2026, 11, 27, 3, 5, tzinfo=UTC)) == "27/11/2026 10:05"
    assert present.local_time("2026-11-27T20:00:00+00:00") == "28/11/2026 03:00"


def test_charts_escape_every_label() -> None:
    svg = str(charts.hbars([("<script>alert(1)</script>", 3)], title="Lý do <b>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "&lt;b&gt;" in svg


def test_daily_series_fill_the_days_without_figures_and_weeks_sum_them() -> None:
    from portal_moderation.reports import Day

    days = [Day(date(2026, 11, 2), 5, 1, 1), Day(date(2026, 11, 4), 2, 2, 0)]
    span, series = charts.daily_series(
        days, first=None, last=date(2026, 11, 10), names=("a", "b", "c")
    )
    assert span[0] == date(2026, 11, 2) and span[-1] == date(2026, 11, 10) and len(span) == 9
    assert series[0].values[:3] == [5, 0, 2]
    weeks, summed = charts.weekly(span, series)
    assert weeks == [date(2026, 11, 2), date(2026, 11, 9)]
    assert summed[0].values == [7, 0]
    assert "polyline" in str(charts.lines(span, series, title="t"))


def test_site_structure_from_publishing() -> None:
    site = site_from(
        {
            "blocks": [
                {
                    "code": "chuyen-trang",
                    "name": "Chuyên trang",
                    "sections": [{"code": "ct-xay-dung-dang", "name": "Xây dựng Đảng"}],
                }
            ],
            "standard_sections": ["ct-xay-dung-dang"],
            "subsites": [],
        }
    )
    assert site.available
    assert site.name_of("ct-xay-dung-dang") == "Xây dựng Đảng"
    assert site.name_of("khac") == "khac"
    assert site.standard_sections == ["ct-xay-dung-dang"]
    assert site.blocks == [("Chuyên trang", [("ct-xay-dung-dang", "Xây dựng Đảng")])]
