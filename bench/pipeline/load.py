"""The bench's load: articles of ~5 KB and the agencies that push them, over the partner REST
API and the agencies' own Kafka topics, as partners do."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from portal_contracts.articles import article_id_for
from portal_launcher.credentials import admin_token
from portal_launcher.services import service_port
from portal_launcher.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
JSON = "application/json"
NEWS_AGENCY = "bao-nhan-dan"  # trusted in deploy/seed/sources.yaml
BACKFILL_AGENCY = "tap-chi-cong-san"  # made trusted for the run (moderation's admin API)
SEED_SOURCES = ROOT / "deploy" / "seed" / "sources.yaml"
PARAGRAPH = (
    "Đảng Cộng sản Việt Nam lãnh đạo Nhà nước và xã hội, tiếp tục đẩy mạnh công tác xây dựng, "
    "chỉnh đốn Đảng và hệ thống chính trị trong sạch, vững mạnh; phát huy sức mạnh đại đoàn kết "
    "toàn dân tộc, thực hiện thắng lợi các mục tiêu phát triển kinh tế - xã hội. "
)


def article(run: str, i: int, section: str) -> dict[str, Any]:
    return {
        "title": f"Hội nghị quán triệt nghị quyết số {i} về công tác xây dựng Đảng ({run})",
        "summary": "Tóm tắt: " + PARAGRAPH[:200],
        "section": section,
        "author": "Phóng viên",
        "body_html": "".join(f"<p>{PARAGRAPH}</p>" for _ in range(13)),
    }


@dataclass
class Agency:
    code: str
    section: str
    key: str
    creds: dict[str, Any]
    pushed_at: dict[str, float] = field(default_factory=dict)

    def id_of(self, external_id: str) -> str:
        return article_id_for(self.code, external_id)


class Pusher:
    """Pushes articles for agencies over REST (a shared HTTP client) and Kafka (a producer
    per agency, on the partner SASL listener)."""

    def __init__(self, ingest_url: str, concurrency: int) -> None:
        self.ingest_url = ingest_url
        # aiohttp, not httpx, for the pushes: the bench shares the two cores with the pipeline,
        # and httpx cost ten times the CPU per 5 KB PUT (2.0 ms against 0.18 on this machine).
        self.http: aiohttp.ClientSession | None = None
        self.sem = asyncio.Semaphore(concurrency)
        self.producers: dict[str, AIOKafkaProducer] = {}
        self._starting = asyncio.Lock()  # concurrent first pushes start one producer, not many
        self.failures = 0

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        for producer in self.producers.values():
            await producer.stop()

    async def rest(
        self, agency: Agency, external_id: str, content: dict[str, Any], **body: Any
    ) -> None:
        async with self.sem:
            t0 = time.time()
            if self.http is None:  # made in the running loop, as aiohttp wants
                self.http = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=120.0),
                    connector=aiohttp.TCPConnector(limit=64),
                )
            data = json.dumps({"content": content, **body}, ensure_ascii=False).encode()
            headers = {"Authorization": f"Bearer {agency.key}", "Content-Type": JSON}
            url = f"{self.ingest_url}/v1/articles/{external_id}"
            for attempt in range(3):
                try:
                    async with self.http.put(url, data=data, headers=headers) as resp:
                        text = await resp.text()
                        status = resp.status
                    break
                except aiohttp.ClientConnectionError:
                    # A kept-alive connection the server closed while idle: a PUT of the same
                    # article is safe to send again.
                    if attempt == 2:
                        raise
            if status != 202:
                self.failures += 1
                print(f"  REST push {status}: {text[:200]}", file=sys.stderr)
                return
            agency.pushed_at[agency.id_of(external_id)] = t0

    async def producer(self, agency: Agency) -> AIOKafkaProducer:
        async with self._starting:
            return await self._producer(agency)

    async def _producer(self, agency: Agency) -> AIOKafkaProducer:
        if agency.code not in self.producers:
            creds = agency.creds
            producer = AIOKafkaProducer(
                bootstrap_servers=creds["bootstrap_servers"],
                security_protocol="SASL_SSL",
                ssl_context=create_ssl_context(cadata=creds["ssl_ca_pem"]),
                sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=creds["username"],
                sasl_plain_password=creds["password"],
                acks="all",
                compression_type="zstd",  # as the partner guide configures a producer
                linger_ms=5,
                max_request_size=8 * 1024 * 1024,
            )
            await producer.start()
            self.producers[agency.code] = producer
        return self.producers[agency.code]

    async def kafka(
        self, agency: Agency, items: list[tuple[str, dict[str, Any]]], **extra: Any
    ) -> None:
        producer = await self.producer(agency)
        futures = []
        for external_id, content in items:
            agency.pushed_at[agency.id_of(external_id)] = time.time()
            value = json.dumps(
                {"external_id": external_id, "content": content, **extra}, ensure_ascii=False
            ).encode()
            futures.append(
                await producer.send(agency.creds["topic"], value, key=external_id.encode())
            )
        await asyncio.gather(*futures)


# -- set-up ---------------------------------------------------------------------------------------


async def agencies(settings: StackSettings, offered_senders: int) -> tuple[Agency, list[Agency]]:
    """The backfill's agency and the agencies the other scenarios push for (the news agency
    first, then seeded agencies up to ``offered_senders``), each with an API key and Kafka
    credentials; the seeded ones and the backfill's are made trusted for the run (moderation's
    admin API), so their articles are published without an editor."""

    def admin(service: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {admin_token(settings, service)}"}

    base = f"http://{settings.host}"
    ingest = f"{base}:{service_port(settings, 'ingest')}"
    moderation = f"{base}:{service_port(settings, 'moderation')}"
    seeded = yaml.safe_load((SEED_SOURCES).read_text(encoding="utf-8"))["sources"]
    by_code = {s["code"]: s for s in seeded}
    extra = [s["code"] for s in seeded if s["code"] not in (NEWS_AGENCY, BACKFILL_AGENCY)]
    wanted = [(NEWS_AGENCY, "tin-hoat-dong"), (BACKFILL_AGENCY, "ct-tin-tuc-hoat-dong")] + [
        (code, "ct-tin-tuc-hoat-dong") for code in extra[: max(0, offered_senders - 1)]
    ]
    out = []
    async with httpx.AsyncClient(timeout=60.0) as client:
        for code, section in wanted:
            if code != NEWS_AGENCY:
                source = by_code[code]
                resp = await client.put(
                    f"{moderation}/admin/v1/sources/{code}",
                    headers=admin("moderation"),
                    json={"name": source["name"], "kind": source["kind"], "policy": "trusted"},
                )
                resp.raise_for_status()
            key = (
                await client.post(
                    f"{ingest}/admin/v1/sources/{code}/api-keys", json={}, headers=admin("ingest")
                )
            ).json()
            creds = (
                await client.post(
                    f"{ingest}/admin/v1/sources/{code}/kafka-credentials", headers=admin("ingest")
                )
            ).json()
            out.append(Agency(code, section, key["api_key"], creds))
    return out[1], [out[0], *out[2:]]
