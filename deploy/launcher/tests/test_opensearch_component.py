"""The OpenSearch component against a real node on its own ports (the run's port base + 200) and data folder."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal_launcher.components.opensearch import OpenSearchComponent
from portal_launcher.settings import StackSettings

from .ports import OPENSEARCH_OFFSET, component_port_base

# The first run builds the launcher with Maven (and may fill the Maven cache) before the start.
pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

INDEX = "test-vi-folding"
TITLE = "Đảng Cộng sản Việt Nam"


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _search(client: httpx.Client, text: str) -> list[dict[str, Any]]:
    r = client.post(
        f"/{INDEX}/_search",
        json={"query": {"match": {"title": {"query": text, "operator": "and"}}}},
    )
    r.raise_for_status()
    hits: list[dict[str, Any]] = r.json()["hits"]["hits"]
    return hits


@pytest.fixture(scope="module")
def opensearch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchComponent]:
    data_dir: Path = tmp_path_factory.mktemp("stack")
    settings = StackSettings(port_base=component_port_base(OPENSEARCH_OFFSET), data_dir=data_dir)
    component = OpenSearchComponent(settings)
    assert not _port_open(settings.host, settings.opensearch_port), (
        f"port {settings.opensearch_port} is taken: another OpenSearch test stack is running"
    )
    try:
        component.start()
        component.wait_ready()
        yield component
    finally:
        component.stop()


@pytest.fixture(scope="module")
def indexed(opensearch: OpenSearchComponent) -> OpenSearchComponent:
    """An index whose analyzer folds Vietnamese diacritics but keeps the original token too."""
    with httpx.Client(base_url=opensearch.endpoint(), timeout=30.0) as client:
        r = client.put(
            f"/{INDEX}",
            json={
                "settings": {
                    "analysis": {
                        "filter": {
                            "vi_folding": {"type": "asciifolding", "preserve_original": True}
                        },
                        "analyzer": {
                            "vi_folded": {
                                "type": "custom",
                                "tokenizer": "standard",
                                "filter": ["lowercase", "vi_folding"],
                            }
                        },
                    }
                },
                "mappings": {"properties": {"title": {"type": "text", "analyzer": "vi_folded"}}},
            },
        )
        assert r.status_code == 200, r.text
        r = client.put(f"/{INDEX}/_doc/1", params={"refresh": "true"}, json={"title": TITLE})
        assert r.status_code == 201, r.text
    return opensearch


def test_version_is_2_19(opensearch: OpenSearchComponent) -> None:
    assert opensearch.version().startswith("2.19.")
    assert opensearch.endpoint() == f"http://127.0.0.1:{opensearch.settings.opensearch_port}"


def test_single_node_is_green_and_has_the_modules(opensearch: OpenSearchComponent) -> None:
    with httpx.Client(base_url=opensearch.endpoint(), timeout=30.0) as client:
        health = client.get(
            "/_cluster/health", params={"wait_for_status": "green", "timeout": "30s"}
        )
        assert health.json()["status"] == "green"
        assert health.json()["cluster_name"] == "portal-local"
        plugins = client.get("/_cat/plugins", params={"h": "component"}).text.split()
    modules = ("CommonAnalysisPlugin", "Netty4Plugin", "MapperExtrasPlugin", "PainlessPlugin")
    # The node's own: portal_asciifolding (services/search/tests/test_folding_stack.py).
    for module in (*modules, "VietnameseFoldingPlugin"):
        assert any(p.endswith(module) for p in plugins), plugins


def test_unaccented_query_finds_vietnamese_title(indexed: OpenSearchComponent) -> None:
    with httpx.Client(base_url=indexed.endpoint(), timeout=30.0) as client:
        for query in ("dang cong san", "Đảng Cộng sản", "DANG CONG SAN VIET NAM"):
            hits = _search(client, query)
            assert [h["_source"]["title"] for h in hits] == [TITLE], query
        assert _search(client, "dang cong nhan") == []


def test_document_survives_restart(indexed: OpenSearchComponent) -> None:
    settings = indexed.settings
    assert indexed.stop()
    assert not indexed.is_running()
    assert not _port_open(settings.host, settings.opensearch_port)

    indexed.start()
    indexed.wait_ready()
    with httpx.Client(base_url=indexed.endpoint(), timeout=30.0) as client:
        # The shard recovers from disk after the node is up; wait for it before reading.
        client.get("/_cluster/health", params={"wait_for_status": "green", "timeout": "30s"})
        doc = client.get(f"/{INDEX}/_doc/1")
        assert doc.status_code == 200, doc.text
        assert doc.json()["_source"]["title"] == TITLE
        assert len(_search(client, "dang cong san")) == 1
