"""Reading the desk's form fields and query parameters: each refuses a bad value with a
``DeskError`` that names the field in Vietnamese."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from portal_moderation.desk import present
from portal_moderation.desk.errors import DeskError

CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def code(value: str | None, name: str, *, required: bool = False) -> str | None:
    """A code (source, section, kind): lower-case letters, digits and dashes."""
    value = (value or "").strip()
    if not value:
        if required:
            raise DeskError(422, f"Thiếu {name}.", f"{name}: required")
        return None
    if len(value) > 64 or not CODE.match(value):
        raise DeskError(422, f"Giá trị của {name} không hợp lệ.", f"{name}: not a code")
    return value


def number(value: str | None, name: str) -> int | None:
    """A positive whole number (a version, a revision, a page marker)."""
    if value is None or value.strip() == "":
        return None
    try:
        found = int(value)
    except ValueError as exc:
        raise DeskError(422, f"{name} không hợp lệ.", f"{name}: not a number") from exc
    if found < 1 or found > 2**31:
        raise DeskError(422, f"{name} không hợp lệ.", f"{name}: out of range")
    return found


def text(value: str | None, name: str, max_len: int) -> str | None:
    if value is None:
        return None
    if len(value) > max_len:
        raise DeskError(422, f"{name} dài quá {max_len} ký tự.", f"{name}: longer than {max_len}")
    return value


def day(value: str | None, name: str) -> datetime | None:
    """A day picked in the form (YYYY-MM-DD), as the start of that day in Vietnam."""
    if not value:
        return None
    try:
        picked = datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise DeskError(422, f"{name} không hợp lệ.", f"{name}: YYYY-MM-DD") from exc
    return picked.replace(tzinfo=present.LOCAL).astimezone(UTC)
