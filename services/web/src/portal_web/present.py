"""How values read in Vietnamese on the pages: times, durations, counts (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


def parse_time(value: str | datetime | None) -> datetime | None:
    """An API time (ISO 8601, UTC) as an aware datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local(value: str | datetime | None) -> datetime | None:
    moment = parse_time(value)
    return moment.astimezone(VIETNAM) if moment else None


def time_vn(value: str | datetime | None) -> str:
    """'08:30, 28/03/2026' in Vietnam time."""
    moment = local(value)
    return moment.strftime("%H:%M, %d/%m/%Y") if moment else ""


def date_vn(value: str | datetime | None) -> str:
    moment = local(value)
    return moment.strftime("%d/%m/%Y") if moment else ""


def long_date_vn(value: str | datetime | None) -> str:
    """'Thứ Bảy, 28/03/2026'."""
    moment = local(value)
    return f"{WEEKDAYS[moment.weekday()]}, {moment.strftime('%d/%m/%Y')}" if moment else ""


def iso(value: str | datetime | None) -> str:
    """For <time datetime> and JSON-LD: ISO 8601 with the Vietnam offset."""
    moment = local(value)
    return moment.isoformat(timespec="seconds") if moment else ""


def duration_vn(delta: timedelta | float | None) -> str:
    """A time span in words: '45 phút', '3 giờ 20 phút', '2 ngày 4 giờ' (hours as a number)."""
    if delta is None:
        return ""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta) * 3600
    minutes = max(0, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} ngày {hours} giờ" if hours else f"{days} ngày"
    if hours:
        return f"{hours} giờ {mins} phút" if mins else f"{hours} giờ"
    return f"{max(mins, 1)} phút"


def wait_vn(seconds: int) -> str:
    """How long to wait before trying again: '30 giây', '2 phút', '1 phút 30 giây', '1 giờ'."""
    seconds = max(1, int(seconds))
    if seconds < 60:
        return f"{seconds} giây"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} phút {secs} giây" if secs else f"{minutes} phút"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} giờ {minutes} phút" if minutes else f"{hours} giờ"


def number_vn(value: int) -> str:
    """Thousands with dots, as Vietnamese writes them: 75.936."""
    return f"{value:,}".replace(",", ".")


def now() -> datetime:
    return datetime.now(UTC)
