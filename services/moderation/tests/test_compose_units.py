"""The compose rules without infrastructure: who writes for which agency and section, what a
draft must hold, what it becomes for ingest; and the use cases' checks on every call (with a
stand-in for ingest's admin API, never reached when a rule refuses)."""

from __future__ import annotations

from typing import Any

import pytest

from portal_moderation.compose import rules
from portal_moderation.compose.rules import DraftFields, DraftState, InvalidDraft
from portal_moderation.compose.usecases import Composer
from portal_moderation.domain import Editor, Forbidden, Role

AGENCY = Editor("thanh-uy", Role.AGENCY_PUBLISHER, source="tp-ha-noi")
EDITOR = Editor("bien-tap", Role.EDITOR)
GRANTED = ("ct-tin-tuc-hoat-dong", "ct-xay-dung-dang")


def test_an_agency_writes_for_its_own_agency_and_never_another() -> None:
    assert rules.writing_source(AGENCY, None) == "tp-ha-noi"
    assert rules.writing_source(AGENCY, "tp-ha-noi") == "tp-ha-noi"
    with pytest.raises(Forbidden, match="only for tp-ha-noi"):
        rules.writing_source(AGENCY, "bo-y-te")


def test_an_editor_writes_for_the_agency_it_names() -> None:
    assert rules.writing_source(EDITOR, "bo-y-te") == "bo-y-te"
    with pytest.raises(InvalidDraft, match="source"):
        rules.writing_source(EDITOR, None)


def test_drafts_of_another_agency_are_out_of_reach_of_an_agency_account() -> None:
    rules.check_draft_access(AGENCY, "tp-ha-noi")
    rules.check_draft_access(EDITOR, "bo-y-te")
    with pytest.raises(Forbidden, match="belongs to bo-y-te"):
        rules.check_draft_access(AGENCY, "bo-y-te")


def test_only_granted_sections() -> None:
    rules.check_section("ct-xay-dung-dang", GRANTED, "tp-ha-noi")
    rules.check_section(None, GRANTED, "tp-ha-noi")  # the editors assign one
    with pytest.raises(Forbidden, match="xay-dung-dang"):
        rules.check_section("xay-dung-dang", GRANTED, "tp-ha-noi")


def test_fields_are_trimmed_and_bounded() -> None:
    cleaned = rules.clean_fields(DraftFields(title="  Tin  ", summary=" ", author=""))
    assert cleaned.title == "Tin" and cleaned.summary is None and cleaned.author is None
    with pytest.raises(InvalidDraft, match="title: required"):
        rules.clean_fields(DraftFields(title="   "))
    with pytest.raises(InvalidDraft, match="summary"):
        rules.clean_fields(DraftFields(title="Tin", summary="x" * 5001))


def test_a_draft_becomes_the_article_ingest_receives_with_the_lead_image_first() -> None:
    content = rules.article_content(
        DraftFields(
            title="Tin",
            section="ct-tin-tuc-hoat-dong",
            body_html="<p>Nội dung</p>",
            lead_image_url="http://127.0.0.1:8001/v1/desk-media/tp-ha-noi/" + "a" * 64 + ".png",
            lead_caption="Quang cảnh",
        )
    )
    assert content.section == "ct-tin-tuc-hoat-dong" and content.body_html == "<p>Nội dung</p>"
    assert [(str(i.url)[-8:], i.caption) for i in content.images] == [("aaaa.png", "Quang cảnh")]
    with pytest.raises(InvalidDraft, match="article"):
        rules.article_content(DraftFields(title="Tin", lead_image_url="javascript:alert(1)"))


def test_external_id_and_states() -> None:
    draft_id = rules.new_draft_id()
    assert rules.external_id_for(draft_id) == f"desk-{draft_id}"
    assert rules.may_retract(DraftState.SUBMITTED)
    assert not rules.may_retract(DraftState.DRAFT)
    assert not rules.may_submit(DraftState.RETRACTED)


class _Ingest:
    """Ingest's admin API as far as the refusals below go: the agencies and their sections."""

    def __init__(self) -> None:
        self.uploads: list[str] = []

    async def get_source(self, code: str) -> dict[str, Any] | None:
        return {"code": code, "active": True, "sections": list(GRANTED)}

    async def desk_image(self, code: str, data: bytes) -> dict[str, Any]:
        self.uploads.append(code)
        return {"url": f"http://ingest/v1/desk-media/{code}/x.png", "bytes": len(data)}


def _sessions_never_used() -> Any:
    def refuse() -> Any:
        raise AssertionError("a refused request must not reach the database")

    return refuse


async def test_the_use_cases_refuse_before_touching_anything() -> None:
    ingest = _Ingest()
    composer = Composer(_sessions_never_used(), ingest)  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        await composer.save(AGENCY, None, DraftFields(title="Tin"), source="bo-y-te")
    with pytest.raises(Forbidden):
        await composer.save(
            AGENCY, None, DraftFields(title="Tin", section="xay-dung-dang"), source=None
        )
    with pytest.raises(Forbidden):
        await composer.upload_image(AGENCY, "bo-y-te", b"\x89PNG")
    with pytest.raises(Forbidden):
        await composer.list_for(AGENCY, "bo-y-te")
    assert ingest.uploads == []


def test_text_pasted_in_a_legacy_font_is_decoded_by_its_font() -> None:
    from portal_moderation.compose.pasted_text import TooMuchText, repair_runs

    from .docx_samples import expected_unicode_sentence, tcvn3, vni

    legacy = tcvn3(expected_unicode_sentence)
    texts, repaired = repair_runs(
        [
            (".VnTime", legacy),
            ("Times New Roman", "Hội nghị"),  # Unicode font: left alone
            ("VNI-Times", vni("Đảng bộ")),
            ("'.VnTime'", "Đảng ủy"),  # cannot be font bytes: Unicode whatever the font says
        ]
    )
    assert texts == [expected_unicode_sentence, "Hội nghị", "Đảng bộ", "Đảng ủy"]
    assert repaired == 2
    with pytest.raises(TooMuchText):
        repair_runs([("Arial", "x")] * 5001)


def test_only_an_editor_sends_a_rejected_article_back_with_a_comment() -> None:
    assert rules.check_send_back(EDITOR, "bo-y-te", "rejected", "  Bổ sung ảnh  ") == "Bổ sung ảnh"
    with pytest.raises(Forbidden):
        rules.check_send_back(AGENCY, "tp-ha-noi", "rejected", "Tự duyệt")
    with pytest.raises(InvalidDraft, match="state"):
        rules.check_send_back(EDITOR, "bo-y-te", "pending", "Bổ sung ảnh")
    with pytest.raises(InvalidDraft, match="comment"):
        rules.check_send_back(EDITOR, "bo-y-te", "rejected", "   ")
