"""The forms: what the reader typed, and every refusal in Vietnamese beside its field."""

from __future__ import annotations

from portal_web import forms
from portal_web.present import wait_vn


def test_required_and_too_long_fields_are_named_and_nothing_typed_is_lost() -> None:
    state = forms.read_form(forms.COMMENT, {"body": "  ", "display_name": "A" * 101, "x": "y"})
    assert state.errors["body"] == "Vui lòng nhập ý kiến của bạn."
    assert "Dài quá 100 ký tự" in state.errors["display_name"]
    assert state.values == {"body": "  ", "display_name": "A" * 101}


def test_a_choice_outside_the_options_is_refused() -> None:
    spec = forms.QUESTION.with_options("topic", [forms.Option("y-te", "Y tế")])
    state = forms.read_form(spec, {"topic": "khac", "title": "Tiêu đề", "body": "Nội dung"})
    assert state.errors == {"topic": "Lựa chọn không hợp lệ, vui lòng chọn lại."}
    ok = forms.read_form(spec, {"topic": "y-te", "title": "Tiêu đề", "body": "Nội dung"})
    assert ok.errors == {}
    assert forms.payload(spec, ok) == {"topic": "y-te", "title": "Tiêu đề", "body": "Nội dung"}


def test_engagements_reasons_become_plain_vietnamese_beside_the_field() -> None:
    detail = [
        {
            "loc": ["body", "body"],
            "msg": "write in Vietnamese with diacritics",
            "type": "no_diacritics",
        },
        {
            "loc": ["body", "title"],
            "msg": "too short: write at least 5 characters (you wrote 2)",
            "type": "too_short",
        },
        {"loc": ["body", "email"], "msg": "not an e-mail address", "type": "invalid_contact"},
        {
            "loc": ["body", "agency"],
            "msg": "String should have at most 64 characters",
            "type": "string_too_long",
        },
    ]
    errors, general = forms.field_errors(detail, forms.QUESTION)
    assert errors["body"] == forms.DIACRITICS_MESSAGE
    assert "gõ tiếng Việt có dấu" in errors["body"] and "Telex" in errors["body"]
    assert errors["title"] == "Nội dung quá ngắn: vui lòng viết ít nhất 5 ký tự."
    assert errors["email"].startswith("Địa chỉ thư điện tử chưa đúng")
    assert errors["agency"] == "Dài quá 64 ký tự, vui lòng rút gọn."
    assert general is None
    other, general = forms.field_errors(
        [{"loc": ["body"], "msg": "x", "type": "json_invalid"}], forms.COMMENT
    )
    assert other == {} and general


def test_the_spam_trap_and_the_wait_after_a_rate_limit() -> None:
    assert forms.trapped({"website": "http://spam"})
    assert not forms.trapped({"website": "  "}) and not forms.trapped({})
    notice = forms.rate_limited_notice(90)
    assert "Vui lòng thử lại sau 1 phút 30 giây" in notice and "còn nguyên" in notice
    assert [wait_vn(s) for s in (5, 60, 3600, 5400)] == [
        "5 giây",
        "1 phút",
        "1 giờ",
        "1 giờ 30 phút",
    ]


def test_contact_details_are_asked_only_by_the_question_form() -> None:
    def names(spec: forms.FormSpec) -> set[str]:
        return {f.name for f in spec.fields}

    assert {"email", "phone"} <= names(forms.QUESTION)
    for spec in (forms.COMMENT, forms.DIALOGUE_QUESTION, forms.FEEDBACK, forms.THREAD, forms.REPLY):
        assert not {"email", "phone"} & names(spec)
