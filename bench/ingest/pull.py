"""Pull benchmark: how many sources one ingest instance can poll at a 5-minute interval.

Starts the local stack on its own ports and folder (unless it already answers), local feed
servers in a separate process (several ports, one RSS feed per source, ETag support, a share
of feeds gaining a new item between polls), and one ingest instance in this process with its
real scheduler, fetcher, parser, database, raw archive (S3) and outbox (Kafka).

It configures N sources with one RSS connector each at a short interval (so polls are always
due and the scheduler runs flat out), lets the first import finish, then counts the polls the
instance completes over a window. The capacity at a 5-minute interval is polls per second x
300. Also printed: the outcome mix, poll latency percentiles, the first import's articles/s,
and the CPU the ingest process used (cores).

    uv run --no-sync python bench/ingest/pull.py --sources 1000 --duration 60
    uv run --no-sync python bench/ingest/pull.py --sources 1000 --full-page   # summary-only feeds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27100")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench-pull"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

PARAGRAPH = (
    "Sáng nay, Ban Chấp hành Đảng bộ tỉnh tổ chức Hội nghị để đánh giá tình hình thực hiện "
    "nhiệm vụ chính trị sáu tháng đầu năm, đề ra phương hướng, nhiệm vụ trọng tâm sáu tháng "
    "cuối năm; tiếp tục đẩy mạnh xây dựng, chỉnh đốn Đảng và hệ thống chính trị. "
)


# -- the feed servers (a separate process) ----------------------------------------------------


def serve(ports: int, sources: int, items: int, change: float, full_page: bool) -> None:
    """One process, ``ports`` listening sockets; feed i lives at /f/<i>.rss on port i % ports."""
    from aiohttp import web

    rng = random.Random(1)
    version = [0] * sources
    base = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)

    def feed(i: int, port: int) -> bytes:
        v = version[i]
        rows = []
        for k in range(v, v + items):
            when = base + timedelta(minutes=k)
            link = f"http://127.0.0.1:{port}/p/{i}/{k}.html"
            body = (
                ""
                if full_page
                else f"<content:encoded><![CDATA[<p>{PARAGRAPH * 4}</p>]]></content:encoded>"
            )
            rows.append(
                f"<item><title>Tin {i}-{k}: Hội nghị Ban Chấp hành Đảng bộ</title>"
                f"<link>{link}</link><guid>{link}</guid><pubDate>{format_datetime(when)}</pubDate>"
                f"<category>Thời sự</category><description><![CDATA[{PARAGRAPH}]]></description>"
                f"{body}</item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>Nguồn {i}</title><link>http://127.0.0.1:{port}/</link>"
            + "".join(reversed(rows))
            + "</channel></rss>"
        ).encode()

    async def on_feed(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        if rng.random() < change:  # the site published something since the last poll
            version[i] += 1
        etag = f'"{i}-{version[i]}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=feed(i, request.url.port or 0),
            content_type="application/rss+xml",
            charset="utf-8",
            headers={"ETag": etag},
        )

    async def on_page(request: web.Request) -> web.Response:
        i, k = request.match_info["i"], request.match_info["k"]
        html = (
            f"<html><head><meta charset='utf-8'><title>Tin {i}-{k}</title></head><body>"
            "<nav><a href='/'>Trang chủ</a></nav><article>"
            f"<h1>Tin {i}-{k}</h1>"
            + f"<p>{PARAGRAPH}</p>"
            * 8
            + f"<img src='/img/{i}-{k}.jpg' alt='Ảnh'></article><footer>Bản quyền</footer>"
            "</body></html>"
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{i}.rss", on_feed)
        app.router.add_get("/p/{i}/{k}.html", on_page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        bound = []
        for _ in range(ports):
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            bound.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        print(json.dumps(bound), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the benchmark ----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def bench(args: argparse.Namespace, ports: list[int]) -> None:
    import httpx
    from asgi_lifespan import LifespanManager
    from sqlalchemy import func, select

    from portal_ingest.app import create_app
    from portal_ingest.pull.db import feed_fetch_log
    from portal_ingest.settings import Settings
    from portal_launcher import stack as launcher
    from portal_launcher.services import service_environment
    from portal_launcher.settings import StackSettings

    stack = StackSettings()
    started_stack = not all(c.is_running() for c in launcher.infrastructure(stack))
    if started_stack:
        print("starting the local stack ...", flush=True)
        launcher.stack_up(stack, say=lambda _: None)

    try:
        env: dict[str, Any] = {
            k.lower(): v for k, v in service_environment(stack, "ingest").items()
        }
        env.update(
            feed_allowed_internal_targets=[f"127.0.0.1:{p}" for p in ports],
            feed_scheduler_enabled=True,
            feed_max_concurrency=args.concurrency,
            feed_tick_s=0.1,
            feed_min_interval_s=1,
            # In production every source is its own site; here many share a port, so the
            # per-site pacing would measure the test servers, not ingest.
            host_min_delay_s=0,
            database_pool_size=max(10, args.concurrency // 2),
            log_level="WARNING",
            max_pages_per_poll=args.items,
        )
        settings = Settings(**env)
        app = create_app(settings)
        run = uuid.uuid4().hex[:6]
        token = settings.admin_token.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"}
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://ingest", headers=headers, timeout=60
            ) as http:
                codes = [f"bench-{run}-{i}" for i in range(args.sources)]
                print(f"configuring {args.sources} sources ...", flush=True)
                t0 = time.perf_counter()
                # Polls start as soon as a source is configured: the import starts here.
                t_import = time.perf_counter()
                import_start = datetime.now(UTC)
                sem = asyncio.Semaphore(32)

                async def configure(i: int, code: str) -> None:
                    async with sem:
                        r = await http.put(
                            f"/admin/v1/sources/{code}",
                            json={
                                "name": f"Nguồn thử {i}",
                                "kind": "province",
                                "sections": ["ct-tin-tuc-hoat-dong", "ct-xay-dung-dang"],
                            },
                        )
                        r.raise_for_status()
                        port = ports[i % len(ports)]
                        r = await http.put(
                            f"/admin/v1/sources/{code}/feeds",
                            json={
                                "categories": {"Thời sự": "ct-tin-tuc-hoat-dong"},
                                "connectors": [
                                    {
                                        "kind": "rss",
                                        "url": f"http://127.0.0.1:{port}/f/{i}.rss",
                                        "interval_s": args.interval,
                                        "fetch_full_page": args.full_page,
                                    }
                                ],
                            },
                        )
                        r.raise_for_status()

                await asyncio.gather(*(configure(i, c) for i, c in enumerate(codes)))
                print(f"  configured in {time.perf_counter() - t0:.1f} s", flush=True)

                sessions = app.state.service.sessions
                prefix = f"bench-{run}-%"

                async def polls_since(since: datetime) -> list[Any]:
                    async with sessions() as s:
                        return list(
                            (
                                await s.execute(
                                    select(
                                        feed_fetch_log.c.outcome,
                                        feed_fetch_log.c.duration_ms,
                                        feed_fetch_log.c.counts,
                                    ).where(
                                        feed_fetch_log.c.source.like(prefix),
                                        feed_fetch_log.c.started_at >= since,
                                    )
                                )
                            ).all()
                        )

                async def polled_sources() -> int:
                    async with sessions() as s:
                        return int(
                            (
                                await s.execute(
                                    select(
                                        func.count(func.distinct(feed_fetch_log.c.source))
                                    ).where(feed_fetch_log.c.source.like(prefix))
                                )
                            ).scalar_one()
                        )

                # First import: every feed's items are new.
                while True:
                    if await polled_sources() >= args.sources:
                        break
                    await asyncio.sleep(1)
                import_s = time.perf_counter() - t_import
                first = await polls_since(import_start)
                imported = sum((c or {}).get("new", 0) for _, _, c in first)
                print(
                    f"first import: {imported} articles from {args.sources} sources in "
                    f"{import_s:.1f} s ({imported / import_s:.0f} articles/s)",
                    flush=True,
                )

                await asyncio.sleep(args.interval + 2)  # settle into the steady state
                profiler = None
                if args.profile:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                window_start = datetime.now(UTC)
                await asyncio.sleep(args.duration)
                cpu1, wall1 = time.process_time(), time.perf_counter()
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                rows = await polls_since(window_start)

                # Leave nothing due behind: the bench sources stop being polled.
                async def retire(code: str) -> None:
                    async with sem:
                        await http.put(f"/admin/v1/sources/{code}/feeds", json={"connectors": []})
                        await http.put(
                            f"/admin/v1/sources/{code}",
                            json={"name": code, "kind": "province", "active": False},
                        )

                await asyncio.gather(*(retire(c) for c in codes))
        elapsed = wall1 - wall0
        rate = len(rows) / elapsed
        outcomes: dict[str, int] = {}
        for outcome, _, _ in rows:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        durations = [float(d) for _, d, _ in rows]
        new_items = sum((c or {}).get("new", 0) for _, _, c in rows)
        demand = args.sources / args.interval
        print()
        print(
            f"sources {args.sources}, interval {args.interval} s (demand {demand:.0f} polls/s), "
            f"concurrency {args.concurrency}, {len(ports)} server ports, "
            f"{'summary-only feeds (page fetched + extracted)' if args.full_page else 'full-content feeds'}, "
            f"{args.change:.0%} of polls find a new item"
        )
        print(
            f"window {elapsed:.1f} s: {len(rows)} polls = {rate:.1f} polls/s, "
            f"{new_items} new articles ({new_items / elapsed:.1f}/s)"
        )
        print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        if durations:
            print(
                f"poll duration ms: p50 {percentile(durations, 50):.0f}, "
                f"p95 {percentile(durations, 95):.0f}, p99 {percentile(durations, 99):.0f}, "
                f"mean {statistics.fmean(durations):.0f}"
            )
        print(f"ingest process CPU: {(cpu1 - cpu0) / elapsed:.2f} cores")
        saturated = rate < 0.9 * demand
        print(
            f"=> one ingest instance: {rate:.1f} polls/s "
            f"{'(saturated)' if saturated else '(NOT saturated: raise --sources or lower --interval)'}"
            f" -> about {int(rate * 300):,} sources at a 5-minute interval"
        )
    finally:
        if started_stack and not args.keep_stack:
            launcher.stack_down(stack, say=lambda _: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10, help="items per feed")
    parser.add_argument("--interval", type=int, default=5, help="poll interval in the bench (s)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window (s)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ports", type=int, default=16, help="feed server ports")
    parser.add_argument("--change", type=float, default=0.1, help="share of polls with a new item")
    parser.add_argument("--full-page", action="store_true", help="summary-only feeds")
    parser.add_argument("--keep-stack", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the measured window")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.ports, args.sources, args.items, args.change, args.full_page)
        return
    # The feed servers run in their own process: their work is not counted as ingest's.
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--ports",
            str(args.ports),
            "--sources",
            str(args.sources),
            "--items",
            str(args.items),
            "--change",
            str(args.change),
            *(["--full-page"] if args.full_page else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ports: list[int] = json.loads(server.stdout.readline())
        asyncio.run(bench(args, ports))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
