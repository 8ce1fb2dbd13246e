"""How the desk shows things to Vietnamese editors: labels, numbers, times (pure, no I/O).

Times are stored in UTC and shown in Asia/Ho_Chi_Minh; numbers use the Vietnamese separators
(75.936 ; 64,5).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from portal_runtime.clock import utcnow

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")

STATE_LABELS = {
    "pending": "Chờ duyệt",
    "auto_published": "Đã đăng, chờ hậu kiểm",
    "published": "Đã duyệt, đã đăng",
    "rejected": "Đã từ chối",
    "retracted": "Đã gỡ",
}
ROLE_LABELS = {
    "admin": "Quản trị",
    "chief_editor": "Tổng biên tập",
    "editor": "Biên tập viên",
    "agency_publisher": "Cơ quan cung cấp tin",
}
POLICY_LABELS = {
    "pre-review": "Duyệt trước khi đăng",
    "trusted": "Tin cậy: đăng ngay, hậu kiểm sau",
}
KIND_LABELS = {
    "central-party-body": "Cơ quan Đảng Trung ương",
    "socio-political": "Tổ chức chính trị - xã hội",
    "ministry": "Bộ, ngành",
    "province": "Tỉnh, thành ủy",
    "other": "Khác",
}
FLAG_LABELS = {
    "title_empty": "Tiêu đề trống",
    "title_too_long": "Tiêu đề quá dài",
    "empty_body": "Nội dung trống",
    "short_body": "Nội dung quá ngắn",
    "no_section": "Chưa có chuyên mục",
    "no_diacritics": "Không dấu / lỗi phông",
    "no_image": "Không có ảnh",
    "no_published_at": "Thiếu thời gian đăng",
    "no_summary": "Thiếu tóm tắt",
    "near_duplicate": "Có thể trùng lặp",
}
REPAIR_LABELS = {
    "markup_removed": "Đã gỡ thẻ HTML không cho phép",
    "attributes_removed": "Đã gỡ thuộc tính HTML",
    "unsafe_url_removed": "Đã gỡ liên kết/ảnh không an toàn",
    "layout_mapped": "Đã chuyển bố cục thành đoạn, tiêu đề",
    "text_normalized": "Đã chuẩn hóa chữ (NFC, vị trí dấu thanh)",
    "summary_generated": "Tóm tắt lấy từ đầu nội dung",
}
ACTION_LABELS = {
    "received": "Nhận phiên bản mới",
    "auto_published": "Tự động đăng (nguồn tin cậy)",
    "approved": "Duyệt",
    "rejected": "Từ chối",
    "edited": "Sửa",
    "retracted": "Gỡ bài",
}
ADMIN_ACTION_LABELS = {
    "source_created": "Thêm cơ quan",
    "source_updated": "Sửa cơ quan, chính sách",
    "categories_updated": "Sửa ánh xạ chuyên mục",
    "api_key_issued": "Cấp khóa API",
    "api_key_revoked": "Thu hồi khóa API",
    "kafka_granted": "Cấp/đổi mật khẩu Kafka",
    "user_created": "Tạo tài khoản",
    "user_updated": "Sửa tài khoản",
    "draft_saved": "Lưu bản thảo",
    "draft_submitted": "Gửi bài (phiên bản mới)",
    "draft_retracted": "Gỡ bài đã gửi",
    "desk_image_uploaded": "Tải ảnh lên",
    "docx_imported": "Nhập từ tệp Word",
    "draft_sent_back": "Trả bài về đơn vị kèm ý kiến",
}
DRAFT_STATE_LABELS = {
    "draft": "Bản thảo",
    "submitted": "Đã gửi",
    "retracted": "Đã gỡ",
}
FIELD_LABELS = {
    "title": "Tiêu đề",
    "summary": "Tóm tắt",
    "section": "Chuyên mục",
    "lead_image": "Ảnh đại diện",
    "state": "Trạng thái",
}
AGE_LABELS = {
    "lt1h": "Dưới 1 giờ",
    "1h-6h": "1–6 giờ",
    "6h-24h": "6–24 giờ",
    "1d-3d": "1–3 ngày",
    "3d-7d": "3–7 ngày",
    "gt7d": "Trên 7 ngày",
}
ERROR_TYPE_LABELS = {
    "decode": "Không đọc được",
    "schema": "Sai loại sự kiện",
    "validation": "Sai định dạng",
    "size": "Quá lớn",
    "too_large": "Sự kiện quá lớn",
    "outbox_too_large": "Sự kiện quá lớn, không gửi đi được",
    "outbox_refused": "Kafka từ chối, không gửi đi được",
    "forbidden": "Không được phép",
    "stale_revision": "Phiên bản cũ",
    "rejected": "Bị từ chối xử lý",
    "processing": "Lỗi xử lý",
    "unreadable": "Bản ghi lỗi không đọc được",
}
# Reasons an editor picks most often (the free text stays available).
REJECT_REASONS = (
    "Trùng lặp với tin đã đăng",
    "Không đúng chuyên mục của cổng",
    "Nội dung chưa đạt yêu cầu",
    "Lỗi phông chữ, định dạng",
    "Thiếu hoặc lỗi hình ảnh",
)


def label(table: dict[str, str], code: str | None) -> str:
    if code is None:
        return ""
    return table.get(code, code)


def number(value: float | int | None, decimals: int = 0) -> str:
    """75936 -> '75.936'; 64.53 with 1 decimal -> '64,5'."""
    if value is None:
        return "–"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def percent(part: int, whole: int) -> str:
    """As the report writes it: a whole percentage, '–' when there is nothing to divide."""
    if whole <= 0:
        return "–"
    return f"{number(round(100 * part / whole))}%"


def ratio(part: int, whole: int) -> float:
    return part / whole if whole > 0 else 0.0


def local(moment: datetime | str | None) -> datetime | None:
    """In Vietnam's time; also takes the ISO 8601 text of another service's API."""
    if moment is None:
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL)


def local_day(moment: datetime) -> date:
    """The day in Vietnam of a moment."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(LOCAL).date()


def local_time(moment: datetime | str | None, with_seconds: bool = False) -> str:
    """'27/11/2026 14:05' in Vietnam's time."""
    value = local(moment)
    if value is None:
        return "–"
    return value.strftime("%d/%m/%Y %H:%M:%S" if with_seconds else "%d/%m/%Y %H:%M")


def duration(seconds: float | None) -> str:
    """A span for people: '45 giây', '12 phút', '2 giờ 15 phút', '3 ngày 4 giờ'."""
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} giây"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} phút"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} giờ {minutes} phút" if minutes else f"{hours} giờ"
    days, hours = divmod(hours, 24)
    return f"{days} ngày {hours} giờ" if hours else f"{days} ngày"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "–"
    now = now or utcnow()
    return f"{duration((now - moment).total_seconds())} trước"


def stale(moment: datetime | None, now: datetime, after: timedelta) -> bool:
    return moment is None or now - moment > after
