"""Admin API request models: bad input is refused by validation (422), never by the database."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portal_ingest.admin_api import SourceIn


def test_source_name_with_nul_is_refused() -> None:
    # Found by fuzzing (tests/fuzz): a NUL in the name reached PostgreSQL and answered 500.
    with pytest.raises(ValidationError, match="NUL"):
        SourceIn(name="Văn phòng\x00", kind="central-party-body")


def test_source_name_without_nul_is_kept() -> None:
    assert SourceIn(name="Văn phòng Trung ương", kind="central-party-body").name == (
        "Văn phòng Trung ương"
    )
