"""The public forms: their fields, what the reader typed, and every refusal in Vietnamese,
beside the field it concerns (pure logic, no I/O).

Engagement screens every submission (lengths, Vietnamese with diacritics, contact details) and
answers 422 naming the field; ``field_errors`` turns those reasons into plain Vietnamese. The
website checks only what needs no engagement rule (required fields, the longest allowed text),
so one rule never lives in two places; the page script shows the diacritics rule as the reader
types (the same rule as ``portal_text.written_with_diacritics``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal_web.present import wait_vn

SPAM_TRAP = "website"
DIACRITICS_MESSAGE = (
    "Vui lòng gõ tiếng Việt có dấu. Cổng chỉ đăng ý kiến viết có dấu, vì chữ không dấu dễ bị "
    "hiểu sai nghĩa (ví dụ «Dang» có thể là «Đảng», «đang» hay «dáng»). Nếu máy chưa gõ được "
    "dấu, hãy bật bộ gõ tiếng Việt (Telex hoặc VNI)."
)
_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text, textarea, select, email, tel, radio
    required: bool = False
    max_length: int | None = None
    hint: str | None = None
    options: tuple[Option, ...] = ()
    diacritics: bool = False  # checked as the reader types
    autocomplete: str = "off"
    rows: int = 6


@dataclass(frozen=True)
class FormSpec:
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def with_options(self, name: str, options: Iterable[Option]) -> FormSpec:
        return FormSpec(
            tuple(
                Field(**{**f.__dict__, "options": tuple(options)}) if f.name == name else f
                for f in self.fields
            )
        )


NAME = Field(
    "display_name",
    "Tên hiển thị (không bắt buộc)",
    max_length=100,
    hint="Tên này được đăng cùng ý kiến của bạn; để trống để ẩn danh.",
    autocomplete="name",
)
EMAIL = Field(
    "email",
    "Thư điện tử (không bắt buộc)",
    kind="email",
    max_length=254,
    hint="Không công khai. Chỉ cơ quan trả lời dùng để liên hệ lại với bạn khi cần.",
    autocomplete="email",
)
PHONE = Field(
    "phone",
    "Số điện thoại (không bắt buộc)",
    kind="tel",
    max_length=32,
    hint="Không công khai, như thư điện tử.",
    autocomplete="tel",
)

COMMENT = FormSpec(
    (
        Field(
            "body",
            "Ý kiến của bạn",
            kind="textarea",
            required=True,
            max_length=2000,
            diacritics=True,
            rows=5,
            hint="Viết tiếng Việt có dấu. Bình luận được đăng sau khi biên tập viên duyệt.",
        ),
        NAME,
    )
)
QUESTION = FormSpec(
    (
        Field("topic", "Lĩnh vực", kind="select", required=True),
        Field(
            "agency",
            "Cơ quan bạn muốn hỏi (không bắt buộc)",
            kind="select",
            hint="Nếu chưa rõ, Ban Biên tập sẽ chuyển câu hỏi tới cơ quan có thẩm quyền.",
        ),
        Field("title", "Tiêu đề câu hỏi", required=True, max_length=300, diacritics=True),
        Field(
            "body",
            "Nội dung câu hỏi",
            kind="textarea",
            required=True,
            max_length=5000,
            diacritics=True,
            rows=8,
            hint="Ít nhất 20 ký tự, tiếng Việt có dấu.",
        ),
        NAME,
        EMAIL,
        PHONE,
    )
)
DIALOGUE_QUESTION = FormSpec(
    (
        Field(
            "body",
            "Câu hỏi gửi khách mời",
            kind="textarea",
            required=True,
            max_length=2000,
            diacritics=True,
            rows=5,
            hint="Ít nhất 10 ký tự, tiếng Việt có dấu.",
        ),
        NAME,
    )
)
FEEDBACK = FormSpec(
    (
        Field("section", "Phần được góp ý", kind="select"),
        Field(
            "body",
            "Ý kiến góp ý",
            kind="textarea",
            required=True,
            max_length=10_000,
            diacritics=True,
            rows=10,
            hint="Ít nhất 10 ký tự, tiếng Việt có dấu. Ý kiến được chuyển tới cơ quan lấy ý kiến.",
        ),
        NAME,
    )
)
THREAD = FormSpec(
    (
        Field("title", "Tiêu đề", required=True, max_length=300, diacritics=True),
        Field(
            "body",
            "Nội dung",
            kind="textarea",
            required=True,
            max_length=10_000,
            diacritics=True,
            rows=10,
            hint="Ít nhất 20 ký tự. Bài được đăng sau khi biên tập viên duyệt.",
        ),
        NAME,
    )
)
REPLY = FormSpec(
    (
        Field(
            "body",
            "Trả lời của bạn",
            kind="textarea",
            required=True,
            max_length=5000,
            diacritics=True,
            rows=5,
            hint="Được đăng sau khi biên tập viên duyệt.",
        ),
        NAME,
    )
)
REPORT_REASONS = (
    Option("spam", "Quảng cáo, spam"),
    Option("offensive", "Xúc phạm, thiếu văn hóa"),
    Option("false_information", "Thông tin sai sự thật"),
    Option("off_topic", "Lạc đề"),
    Option("other", "Lý do khác"),
)
REPORT = FormSpec(
    (
        Field("reason", "Lý do báo cáo", kind="radio", required=True, options=REPORT_REASONS),
        Field("note", "Ghi chú thêm (không bắt buộc)", kind="textarea", max_length=500, rows=3),
    )
)


@dataclass
class FormState:
    """What the reader typed and what is wrong with it (by field, and for the whole form)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.notice is None


def read_form(spec: FormSpec, data: Mapping[str, Any]) -> FormState:
    """The posted values (strings only, spam trap aside) and the website's own checks."""
    state = FormState()
    for f in spec.fields:
        raw = data.get(f.name)
        state.values[f.name] = raw if isinstance(raw, str) else ""
    for f in spec.fields:
        value = state.values[f.name].strip()
        if f.required and not value:
            state.errors[f.name] = (
                f"Vui lòng chọn {f.label.lower()}."
                if f.kind in ("select", "radio")
                else f"Vui lòng nhập {f.label.lower()}."
            )
        elif f.max_length is not None and len(value) > f.max_length:
            state.errors[f.name] = (
                f"Dài quá {f.max_length} ký tự (bạn đã viết {len(value)}). Vui lòng rút gọn."
            )
        elif f.options and value and value not in {o.value for o in f.options}:
            state.errors[f.name] = "Lựa chọn không hợp lệ, vui lòng chọn lại."
    return state


def trapped(data: Mapping[str, Any]) -> bool:
    """The hidden field people never see was filled in: a robot."""
    value = data.get(SPAM_TRAP)
    return isinstance(value, str) and bool(value.strip())


def payload(spec: FormSpec, state: FormState) -> dict[str, Any]:
    """The API body: every field the reader filled in (empty optional ones left out)."""
    return {f.name: state.values[f.name] for f in spec.fields if state.values[f.name].strip()}


def _message(item: Mapping[str, Any], field_name: str | None) -> str:
    kind = str(item.get("type", ""))
    msg = str(item.get("msg", ""))
    numbers = _NUMBER.findall(msg)
    if kind == "no_diacritics":
        return DIACRITICS_MESSAGE
    if kind == "too_short":
        need = numbers[0] if numbers else "vài"
        return f"Nội dung quá ngắn: vui lòng viết ít nhất {need} ký tự."
    if kind == "invalid_contact" or field_name in ("email", "phone"):
        if field_name == "phone":
            return "Số điện thoại chưa đúng (ví dụ 0912 345 678)."
        return "Địa chỉ thư điện tử chưa đúng (ví dụ ten@example.vn)."
    if kind in ("string_too_long", "too_long"):
        return f"Dài quá {numbers[0]} ký tự, vui lòng rút gọn." if numbers else "Nội dung quá dài."
    if kind in ("missing", "string_too_short"):
        return "Vui lòng điền mục này."
    return "Giá trị chưa hợp lệ, vui lòng kiểm tra lại."


def field_errors(detail: Any, spec: FormSpec) -> tuple[dict[str, str], str | None]:
    """Engagement's 422 reasons by form field, in Vietnamese; what names no field of the form
    becomes one message for the whole form."""
    errors: dict[str, str] = {}
    general: str | None = None
    items = detail if isinstance(detail, list) else [detail]
    for item in items:
        if not isinstance(item, Mapping):
            general = general or "Không gửi được: nội dung chưa hợp lệ, vui lòng kiểm tra lại."
            continue
        loc = [str(p) for p in (item.get("loc") or [])]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where in the request; the field (if any) follows
        name = next((p for p in reversed(loc) if spec.field(p) is not None), None)
        if name is not None:
            errors.setdefault(name, _message(item, name))
        else:
            general = general or _message(item, None)
    return errors, general


def rate_limited_notice(retry_after_s: int) -> str:
    return (
        f"Bạn đã gửi nhiều lần trong thời gian ngắn. Vui lòng thử lại sau {wait_vn(retry_after_s)}"
        ". Nội dung bạn viết vẫn còn nguyên bên dưới."
    )


CONFIRM_NOTICE = (
    "Để bảo vệ bạn khỏi việc bị gửi thay, vui lòng bấm nút gửi một lần nữa. Nội dung bạn viết "
    "vẫn còn nguyên bên dưới."
)
CLOSED_NOTICE = "Đã hết thời gian nhận ý kiến cho mục này, nên nội dung chưa được gửi."
UNAVAILABLE_NOTICE = (
    "Hệ thống đang bận, chưa gửi được. Vui lòng thử lại sau ít phút; nội dung bạn viết vẫn còn "
    "nguyên bên dưới."
)
