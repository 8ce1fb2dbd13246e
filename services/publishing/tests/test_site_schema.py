"""The admin site payload: the seed data is accepted; inconsistent structures are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from portal_publishing.schemas import SiteIn

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed"


def seed_payload() -> dict[str, Any]:
    site = yaml.safe_load((SEED / "site.yaml").read_text())
    sources = yaml.safe_load((SEED / "sources.yaml").read_text())
    return {
        "blocks": site["blocks"],
        "standard_sections": sources["standard_sections"],
        "subsites": [
            {"code": s["code"], "name": s["name"], "kind": s["kind"]} for s in sources["sources"]
        ],
    }


def test_the_seed_files_make_a_valid_site() -> None:
    site = SiteIn.model_validate(seed_payload())
    assert [b.code for b in site.blocks][:2] == ["tin-hang-ngay", "du-lieu"]
    assert site.standard_sections == [
        "ct-tin-tuc-hoat-dong",
        "ct-xay-dung-dang",
        "ct-van-ban-tai-lieu",
    ]
    assert len(site.subsites) > 50


def test_duplicate_section_codes_are_refused() -> None:
    payload = seed_payload()
    payload["blocks"][1]["sections"].append({"code": "tin-hoat-dong", "name": "X", "kind": "news"})
    with pytest.raises(ValidationError, match="section code 'tin-hoat-dong' appears twice"):
        SiteIn.model_validate(payload)


def test_unknown_standard_section_is_refused() -> None:
    payload = seed_payload()
    payload["standard_sections"].append("khong-co")
    with pytest.raises(ValidationError, match="standard_sections: 'khong-co'"):
        SiteIn.model_validate(payload)


def test_bad_codes_and_unknown_fields_are_refused() -> None:
    payload = seed_payload()
    payload["subsites"][0]["code"] = "Tỉnh Hà Nội"
    with pytest.raises(ValidationError, match=r"subsites\.0\.code"):
        SiteIn.model_validate(payload)
    payload = seed_payload()
    payload["extra"] = 1
    with pytest.raises(ValidationError, match="extra"):
        SiteIn.model_validate(payload)


def test_nul_in_a_name_is_refused_naming_the_field() -> None:
    # Regression: a NUL in a section name reached PostgreSQL and the PUT answered 500.
    payload = seed_payload()
    payload["blocks"][0]["sections"][0]["name"] = "Tin\x00 tức"
    with pytest.raises(ValidationError) as refused:
        SiteIn.model_validate(payload)
    [error] = refused.value.errors()
    assert error["loc"] == ("blocks", 0, "sections", 0, "name")
    assert "NUL" in error["msg"]
