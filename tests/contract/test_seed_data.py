"""The seed files (sources, sub-sites, sections) are consistent data."""

from __future__ import annotations

from portal_contracts.topics import partner_topic, source_of_partner_topic
from portal_launcher.seed import DEMO_KAFKA_SOURCE, DEMO_KEY_SOURCES, DEMO_USERS, load_seed


def test_seed_files_load_and_reference_known_sections() -> None:
    site, sources = load_seed()
    kinds = {s["kind"] for s in sources["sources"]}
    assert kinds == {"central-party-body", "socio-political", "ministry", "province"}
    sections = {sec["code"] for b in site["blocks"] for sec in b["sections"]}
    assert set(sources["standard_sections"]) <= sections


def test_every_source_code_is_a_valid_partner_topic_identity() -> None:
    _, sources = load_seed()
    for src in sources["sources"]:
        assert source_of_partner_topic(partner_topic(src["code"])) == src["code"]
        assert src.get("policy", "pre-review") in {"pre-review", "trusted"}


def test_provinces_follow_the_2025_reorganisation() -> None:
    _, sources = load_seed()
    provinces = [s for s in sources["sources"] if s["kind"] == "province"]
    assert len(provinces) == 34


def test_demo_data_refers_to_seeded_sources() -> None:
    _, sources = load_seed()
    codes = {s["code"] for s in sources["sources"]}
    assert set(DEMO_KEY_SOURCES) <= codes
    assert DEMO_KAFKA_SOURCE in codes
    assert {u[3] for u in DEMO_USERS if u[3]} <= codes
