"""Pipeline benchmark: partner push -> published -> searchable, against a bare Kafka baseline.

Starts the local stack and all six services on its own ports and folder (unless they already
answer), pushes N synthetic Vietnamese articles from a trusted source (published without waiting
for a person) — half through the partner REST API, half through the agency's Kafka topic — and
prints throughput (articles/s from the first push to the last searchable) and latency
percentiles. Push -> published uses the Kafka timestamp of each article.published record;
push -> searchable polls OpenSearch for the remaining ids every 100 ms. The baseline relays the
same number of messages of the same size through four bare Kafka hops with no processing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.helpers import create_ssl_context
from opensearchpy import AsyncOpenSearch

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27000")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

from portal_contracts.articles import article_id_for  # noqa: E402
from portal_contracts.topics import ARTICLE_PUBLISHED  # noqa: E402
from portal_launcher import stack as launcher  # noqa: E402
from portal_launcher.components.kafka import admin_client_options  # noqa: E402
from portal_launcher.credentials import admin_token  # noqa: E402
from portal_launcher.seed import seed  # noqa: E402
from portal_launcher.services import service_port  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402

SOURCE = "bao-nhan-dan"  # trusted in deploy/seed/sources.yaml
PARAGRAPH = (
    "Đảng Cộng sản Việt Nam lãnh đạo Nhà nước và xã hội, tiếp tục đẩy mạnh công tác xây dựng, "
    "chỉnh đốn Đảng và hệ thống chính trị trong sạch, vững mạnh; phát huy sức mạnh đại đoàn kết "
    "toàn dân tộc, thực hiện thắng lợi các mục tiêu phát triển kinh tế - xã hội. "
)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def article(run: str, i: int) -> dict[str, Any]:
    return {
        "title": f"Hội nghị quán triệt nghị quyết số {i} về công tác xây dựng Đảng ({run})",
        "summary": "Tóm tắt: " + PARAGRAPH[:200],
        "section": "tin-hoat-dong",
        "author": "Phóng viên",
        "body_html": "".join(f"<p>{PARAGRAPH}</p>" for _ in range(8)),
    }


def summarize(name: str, latencies_ms: list[float]) -> str:
    return (
        f"  {name:<22} p50 {percentile(latencies_ms, 50):8.0f} ms   "
        f"p95 {percentile(latencies_ms, 95):8.0f} ms   p99 {percentile(latencies_ms, 99):8.0f} ms"
        f"   (n={len(latencies_ms)})"
    )


async def push_rest(
    client: httpx.AsyncClient,
    url: str,
    key: str,
    items: list[tuple[str, dict[str, Any]]],
    pushed_at: dict[str, float],
    concurrency: int,
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(ext: str, content: dict[str, Any]) -> None:
        async with sem:
            t0 = time.time()
            resp = await client.put(
                f"{url}/v1/articles/{ext}",
                json={"content": content},
                headers={"Authorization": f"Bearer {key}"},
            )
            resp.raise_for_status()
            pushed_at[article_id_for(SOURCE, ext)] = t0

    await asyncio.gather(*(one(ext, c) for ext, c in items))


async def push_kafka(
    creds: dict[str, Any], items: list[tuple[str, dict[str, Any]]], pushed_at: dict[str, float]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=creds["bootstrap_servers"],
        security_protocol="SASL_SSL",
        ssl_context=create_ssl_context(cadata=creds["ssl_ca_pem"]),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=creds["username"],
        sasl_plain_password=creds["password"],
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = []
        for ext, content in items:
            pushed_at[article_id_for(SOURCE, ext)] = time.time()
            value = json.dumps({"external_id": ext, "content": content}).encode()
            futures.append(await producer.send(creds["topic"], value, key=ext.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def watch_published(
    kafka: dict[str, Any], ids: set[str], published_at: dict[str, float], timeout_s: float
) -> None:
    consumer = AIOKafkaConsumer(
        ARTICLE_PUBLISHED.name,
        **kafka,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        await consumer.seek_to_end()
        deadline = time.monotonic() + timeout_s
        while len(published_at) < len(ids) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for rec in records:
                    key = (rec.key or b"").decode()
                    if key in ids and key not in published_at:
                        published_at[key] = rec.timestamp / 1000
    finally:
        await consumer.stop()


async def watch_searchable(
    opensearch_url: str, ids: set[str], searchable_at: dict[str, float], timeout_s: float
) -> None:
    client = AsyncOpenSearch(hosts=[opensearch_url])
    try:
        deadline = time.monotonic() + timeout_s
        while len(searchable_at) < len(ids) and time.monotonic() < deadline:
            remaining = list(ids - set(searchable_at))[:1000]
            try:
                resp = await client.search(
                    index="articles",
                    body={
                        "query": {"terms": {"article_id": remaining}},
                        "_source": ["article_id"],
                        "size": len(remaining),
                    },
                )
                now = time.time()
                for hit in resp["hits"]["hits"]:
                    searchable_at.setdefault(hit["_source"]["article_id"], now)
            except Exception as exc:  # index not created yet
                print(f"  (search not ready: {type(exc).__name__})", file=sys.stderr)
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def pipeline(settings: StackSettings, n: int, concurrency: int) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {admin_token(settings, 'ingest')}"}
    ingest = f"http://{settings.host}:{service_port(settings, 'ingest')}"
    async with httpx.AsyncClient(timeout=60.0) as client:
        key = (
            await client.post(
                f"{ingest}/admin/v1/sources/{SOURCE}/api-keys", json={}, headers=admin
            )
        ).json()["api_key"]
        creds = (
            await client.post(
                f"{ingest}/admin/v1/sources/{SOURCE}/kafka-credentials", json={}, headers=admin
            )
        ).json()
        run = uuid.uuid4().hex[:8]
        rest_items = [(f"bench-{run}-r{i}", article(run, i)) for i in range(n // 2)]
        kafka_items = [(f"bench-{run}-k{i}", article(run, i)) for i in range(n - n // 2)]
        ids = {article_id_for(SOURCE, ext) for ext, _ in rest_items + kafka_items}
        pushed: dict[str, float] = {}
        published: dict[str, float] = {}
        searchable: dict[str, float] = {}
        timeout = 120 + n * 0.5
        watchers = [
            asyncio.create_task(
                watch_published(admin_client_options(settings), ids, published, timeout)
            ),
            asyncio.create_task(
                watch_searchable(settings.opensearch_url, ids, searchable, timeout)
            ),
        ]
        await asyncio.sleep(1.0)  # let the watchers position themselves
        start = time.time()
        await asyncio.gather(
            push_rest(client, ingest, key, rest_items, pushed, concurrency),
            push_kafka(creds, kafka_items, pushed),
        )
        pushed_done = time.time()
        await asyncio.gather(*watchers)
    return {
        "n": n,
        "start": start,
        "pushed_done": pushed_done,
        "pushed": pushed,
        "published": published,
        "searchable": searchable,
    }


async def baseline(settings: StackSettings, n: int, size: int, hops: int = 4) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    topics = [f"bench.{run}.hop{i}" for i in range(hops + 1)]
    # The baseline signs in like the services do (SASL on the internal listener).
    common = admin_client_options(settings)
    admin = AIOKafkaAdminClient(**common)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
    await admin.close()

    async def relay(src: str, dst: str, count: int) -> None:
        consumer = AIOKafkaConsumer(
            src,
            group_id=f"relay-{src}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **common,
        )
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **common)
        await consumer.start()
        await producer.start()
        try:
            seen = 0
            while seen < count:
                batches = await consumer.getmany(timeout_ms=500)
                futures = []
                for records in batches.values():
                    for rec in records:
                        futures.append(await producer.send(dst, rec.value, key=rec.key))
                        seen += 1
                await asyncio.gather(*futures)
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()

    arrived: dict[bytes, float] = {}

    async def sink() -> None:
        consumer = AIOKafkaConsumer(
            topics[-1], group_id=f"sink-{run}", auto_offset_reset="earliest", **common
        )
        await consumer.start()
        try:
            while len(arrived) < n:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for rec in records:
                        arrived.setdefault(rec.key or b"", time.time())
        finally:
            await consumer.stop()

    tasks = [asyncio.create_task(relay(topics[i], topics[i + 1], n)) for i in range(hops)]
    tasks.append(asyncio.create_task(sink()))
    await asyncio.sleep(2.0)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **common)
    await producer.start()
    sent: dict[bytes, float] = {}
    payload = b"x" * size
    start = time.time()
    futures = []
    for i in range(n):
        key = f"{run}-{i}".encode()
        sent[key] = time.time()
        futures.append(await producer.send(topics[0], payload, key=key))
    await asyncio.gather(*futures)
    await producer.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120 + n)
    return {"start": start, "sent": sent, "arrived": arrived}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent REST pushes")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()

    settings = StackSettings()
    started_here = not all(c.is_running() for c in launcher.all_components(settings))
    print(f"stack: {settings.data_dir} (port base {os.environ['PORTAL_STACK_PORT_BASE']})")
    if started_here:
        launcher.stack_up(settings, say=lambda _: None)
        launcher.services_up(settings, say=lambda _: None)
    try:
        seed(settings, demo=False, say=lambda _: None)
        result = asyncio.run(pipeline(settings, args.articles, args.concurrency))
        size = len(json.dumps({"content": article("x" * 8, 1)}).encode())
        base = asyncio.run(baseline(settings, args.articles, size))
    finally:
        if started_here and not args.keep:
            launcher.stack_down(settings, say=lambda _: None)

    pushed, published, searchable = result["pushed"], result["published"], result["searchable"]
    to_pub = [(published[a] - pushed[a]) * 1000 for a in published if a in pushed]
    to_search = [(searchable[a] - pushed[a]) * 1000 for a in searchable if a in pushed]
    last_searchable = max(searchable.values(), default=result["start"])
    elapsed = last_searchable - result["start"]
    throughput = len(searchable) / elapsed if elapsed > 0 else float("nan")
    base_lat = [(base["arrived"][k] - base["sent"][k]) * 1000 for k in base["arrived"]]
    base_elapsed = max(base["arrived"].values()) - base["start"]
    base_tp = len(base["arrived"]) / base_elapsed

    print(
        f"\nPipeline: {args.articles} articles ({args.articles // 2} REST, "
        f"{args.articles - args.articles // 2} Kafka), ~{size} bytes each, from {SOURCE}"
    )
    print(
        f"  pushed in {result['pushed_done'] - result['start']:.1f}s; "
        f"published {len(published)}, searchable {len(searchable)}"
    )
    print(f"  throughput (first push -> last searchable): {throughput:.1f} articles/s")
    print(summarize("push -> published", to_pub))
    print(summarize("push -> searchable", to_search))
    print(f"\nBaseline: {len(base['arrived'])} messages through 4 bare Kafka hops")
    print(f"  throughput: {base_tp:.1f} messages/s")
    print(summarize("end to end", base_lat))
    print(
        f"\nRatio pipeline/baseline throughput: {throughput / base_tp:.3f}  "
        f"(p50 latency x{statistics.median(to_search) / statistics.median(base_lat):.1f})"
        if to_search and base_lat
        else ""
    )
    if len(searchable) < args.articles:
        print(f"WARNING: {args.articles - len(searchable)} articles never became searchable")
        sys.exit(1)


if __name__ == "__main__":
    main()
