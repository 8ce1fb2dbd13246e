"""The partner guide's Kafka client configurations (services/ingest/README.md), taken from the
README as written and run against the real broker: a Java client (Kafka's console producer from
the broker's own jars), librdkafka (confluent-kafka) and Python (aiokafka) each connect over
SASL_SSL with the documented settings, and their article arrives."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from portal_contracts.articles import article_id_for
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_INGESTED
from portal_launcher.components.kafka import KAFKA_LOG4J2, java_home, kafka_classpath

from .conftest import Ingest, read_events

pytestmark = pytest.mark.stack

GUIDE = Path(__file__).resolve().parents[1] / "README.md"
PORTAL_README = Path(__file__).resolve().parents[3] / "README.md"


def _blocks(language: str, guide: Path = GUIDE, heading: str = "## Kafka partners") -> list[str]:
    """The fenced ``language`` blocks of the guide's partner section, in order."""
    text = guide.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    section = section[: section.index("\n## ", 3)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_portal_readme_shows_the_same_configurations() -> None:
    for language in ("properties", "python"):
        shown = _blocks(language, PORTAL_README, "## For partner agencies")
        assert shown == _blocks(language), f"README.md and {GUIDE} differ ({language})"


def _filled(block: str, creds: dict[str, Any], ca_file: Path) -> str:
    values = {
        "<bootstrap_servers>": creds["bootstrap_servers"],
        "<username>": creds["username"],
        "<password>": creds["password"],
        "<ca_file>": str(ca_file),
    }
    for placeholder, value in values.items():
        assert placeholder in block or placeholder == "<ca_file>", f"{placeholder} not in guide"
        block = block.replace(placeholder, value)
    return block


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _message(external_id: str, client: str) -> bytes:
    return json.dumps(
        {
            "external_id": external_id,
            "content": {
                "title": f"Tin gửi qua Kafka bằng {client}",
                "section": "ct-tin-tuc-hoat-dong",
                "body_html": "<p>Nội dung thử nghiệm của cấu hình trong hướng dẫn.</p>",
            },
        },
        ensure_ascii=False,
    ).encode()


async def _arrived(ingest: Ingest, source: str, external_id: str) -> None:
    article_id = article_id_for(source, external_id)

    def mine(event: Envelope) -> bool:
        return event.subject == article_id

    [event] = await read_events(ingest.kafka, ARTICLE_INGESTED.name, mine, want=1, timeout_s=60)
    assert event.data.channel == "kafka"  # type: ignore[attr-defined]


@pytest.fixture
async def partner(ingest: Ingest, tmp_path: Path) -> tuple[str, dict[str, Any], Path]:
    source, _ = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    ca_file = tmp_path / "portal-ca.pem"
    ca_file.write_text(creds["ssl_ca_pem"])
    return source, creds, ca_file


async def test_the_documented_python_configuration(
    ingest: Ingest, partner: tuple[str, dict[str, Any], Path]
) -> None:
    source, creds, ca_file = partner
    [block] = _blocks("python")
    scope: dict[str, Any] = {}
    exec(_filled(block, creds, ca_file), scope)  # noqa: S102 - the guide's own code
    producer = scope["producer"]
    external_id = f"guide-py-{uuid.uuid4().hex[:8]}"
    await producer.start()
    try:
        await producer.send_and_wait(
            creds["topic"], _message(external_id, "Python"), key=external_id.encode()
        )
    finally:
        await producer.stop()
    await _arrived(ingest, source, external_id)


async def test_the_documented_librdkafka_configuration(
    ingest: Ingest, partner: tuple[str, dict[str, Any], Path]
) -> None:
    source, creds, ca_file = partner
    _, librdkafka = _blocks("properties")
    config = _properties(_filled(librdkafka, creds, ca_file))
    delivered: list[Any] = []
    producer = Producer(config)
    external_id = f"guide-rd-{uuid.uuid4().hex[:8]}"
    producer.produce(
        creds["topic"],
        _message(external_id, "librdkafka"),
        key=external_id.encode(),
        on_delivery=lambda err, msg: delivered.append(err or msg.offset()),
    )
    assert await asyncio.to_thread(producer.flush, 60) == 0
    assert len(delivered) == 1 and isinstance(delivered[0], int), delivered
    await _arrived(ingest, source, external_id)


async def test_the_documented_java_configuration(
    ingest: Ingest, partner: tuple[str, dict[str, Any], Path], tmp_path: Path
) -> None:
    source, creds, ca_file = partner
    java, _ = _blocks("properties")
    config = tmp_path / "client.properties"
    config.write_text(_filled(java, creds, ca_file))
    external_id = f"guide-java-{uuid.uuid4().hex[:8]}"
    line = external_id.encode() + b"\t" + _message(external_id, "Java") + b"\n"
    proc = await asyncio.to_thread(
        subprocess.run,
        [str(java_home() / "bin" / "java"), "-Xmx128m",
         f"-Dlog4j2.configurationFile={KAFKA_LOG4J2}",
         "-cp", os.pathsep.join(kafka_classpath()),
         "org.apache.kafka.tools.ConsoleProducer",
         "--bootstrap-server", creds["bootstrap_servers"], "--topic", creds["topic"],
         "--command-config", str(config),
         "--reader-property", "parse.key=true", "--reader-property", "key.separator=\t"],
        input=line, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors="replace")[-3000:]
    await _arrived(ingest, source, external_id)
