"""Pipeline benchmark: partner push -> searchable, against a bare four-hop Kafka relay.

Starts the local stack on its own ports and folder (unless it already runs) and the six services
with their traces sent to an in-process OTLP receiver that counts spans, then runs:

1. throughput: N articles of ~5 KB from a trusted agency, half through the partner REST API and
   half through the agency's Kafka topic, pushed as fast as they are taken; articles per second
   from the steady slope of completions (10 % to 90 % of them searchable); per service the CPU
   time (each process's /proc), the database transactions (pg_stat_database) and the spans, per
   article;
2. baseline: the same number of messages of the same size through four bare Kafka hops (consume,
   produce, commit; no processing), its steady slope;
3. offered rate: 50 articles/s for 60 s (open loop, REST and Kafka in turn), spread over 20
   trusted agencies, as the day's news of many agencies arrives (one agency sending 50/s is a
   burst, which ingest paces on purpose: --offered-agencies 1 measures that); latency
   percentiles push -> searchable;
4. backfill: 5,000 articles from one agency (half REST, half Kafka; unmarked, so the burst must
   be detected, unless --backfill-marked) while another agency pushes one article per second;
   latency push -> searchable of the other agency's articles.

Searchable = the article's document is found by a search of OpenSearch (measure.Searchable). Prints a table and,
with --json PATH, writes the figures the issue asks for. Options make a quick run
(--articles, --scenarios, --offered-rate/--offered-s/--offered-agencies, --backfill).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27000")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.pipeline.baseline import baseline  # noqa: E402
from bench.pipeline.load import Agency, Pusher, agencies, article  # noqa: E402
from bench.pipeline.measure import (  # noqa: E402
    BENCH_CLIENT,
    JIT_SUFFIX,
    CoreUse,
    Meter,
    Searchable,
    Usage,
    hop_latencies,
    journeys,
    latency_ms,
    percentile,
    steady_rate,
    steady_span,
)
from portal_launcher import stack as launcher  # noqa: E402
from portal_launcher.seed import seed  # noqa: E402
from portal_launcher.services import BACKENDS, service_port  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402
from tests.e2e.otlp_receiver import OtlpReceiver  # noqa: E402

SCENARIOS = ("throughput", "baseline", "offered", "backfill")

# -- the scenarios --------------------------------------------------------------------------------


# How often the services export their spans (the OpenTelemetry SDK's default: 5 s).
SPAN_EXPORT_S = float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY") or 5000) / 1000


@dataclass
class Results:
    articles: int = 0
    throughput: float | None = None
    baseline: float | None = None
    offered: dict[str, float] | None = None
    offered_hops: dict[str, dict[str, float]] | None = None
    backfill_other: dict[str, float] | None = None
    usage: Usage | None = None
    steady_cores_busy: float | None = None  # share of the machine's cores busy in the slope
    notes: list[str] = field(default_factory=list)


async def throughput(
    pusher: Pusher,
    agency: Agency,
    watcher: Searchable,
    meter: Meter,
    cores: CoreUse,
    n: int,
    res: Results,
    label: str = "throughput",
) -> None:
    run = uuid.uuid4().hex[:8]
    rest = [(f"tp-{run}-r{i}", article(run, i, agency.section)) for i in range(n // 2)]
    kafka = [(f"tp-{run}-k{i}", article(run, i, agency.section)) for i in range(n - n // 2)]
    ids = [agency.id_of(e) for e, _ in rest + kafka]
    watcher.watch(ids)
    before = await meter.snapshot()
    start = time.time()
    await asyncio.gather(*(pusher.rest(agency, e, c) for e, c in rest), pusher.kafka(agency, kafka))
    pushed = time.time()
    done = await watcher.until_all(ids, timeout_s=600 + n * 0.5)
    # The last spans (exported every 5 s) and the status consumers' work.
    await asyncio.sleep(SPAN_EXPORT_S + 1.0)
    usage = Meter.between(before, await meter.snapshot())
    times = [watcher.at[i] for i in ids if i in watcher.at]
    res.articles = len(times)
    res.throughput = steady_rate(times)
    res.steady_cores_busy = cores.busy_share(*steady_span(times))
    res.usage = usage
    lat = latency_ms(agency.pushed_at, {i: watcher.at[i] for i in ids if i in watcher.at})
    last = max(times, default=start)
    print(
        f"\n{label}: {n} articles ({len(rest)} REST, {len(kafka)} Kafka) from {agency.code}; "
        f"pushed in {pushed - start:.1f} s, all searchable after {last - start:.1f} s"
        + ("" if done else f"  (only {len(times)} searchable: timed out)")
    )
    print(
        f"  steady slope (10-90 % of completions): {res.throughput:.1f} articles/s, "
        f"the machine's cores {100 * res.steady_cores_busy:.0f} % busy meanwhile"
    )
    print(f"  first push -> last searchable: {len(times) / max(last - start, 1e-9):.1f} articles/s")
    print(_percentiles("push -> searchable", lat))
    if not done:
        res.notes.append(f"throughput: {n - len(times)} of {n} articles never became searchable")


async def offered(
    settings: StackSettings,
    pusher: Pusher,
    senders: list[Agency],
    watcher: Searchable,
    rate: float,
    seconds: float,
    res: Results,
) -> None:
    run = uuid.uuid4().hex[:8]
    count = int(rate * seconds)
    ids: list[str] = []
    channels: dict[str, list[str]] = {"REST": [], "Kafka": []}
    start = time.monotonic()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        agency = senders[i % len(senders)]
        external_id = f"of-{run}-{i}"
        ids.append(agency.id_of(external_id))
        watcher.watch([ids[-1]])
        content = article(run, i, agency.section)
        if (i // len(senders)) % 2:  # each agency in turn over Kafka and REST
            channels["Kafka"].append(ids[-1])
            tasks.append(asyncio.create_task(pusher.kafka(agency, [(external_id, content)])))
        else:
            channels["REST"].append(ids[-1])
            tasks.append(asyncio.create_task(pusher.rest(agency, external_id, content)))
    await asyncio.gather(*tasks)
    done = await watcher.until_all(ids, timeout_s=600 + count)
    pushed_at = {k: v for a in senders for k, v in a.pushed_at.items()}

    def latencies(members: list[str]) -> list[float]:
        return latency_ms(pushed_at, {i: watcher.at[i] for i in members if i in watcher.at})

    lat = latencies(ids)
    res.offered = {p: percentile(lat, q) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}
    print(
        f"\noffered: {rate:g} articles/s for {seconds:g} s ({count}, REST and Kafka in turn, "
        f"from {len(senders)} agencies)"
    )
    print(_percentiles("push -> searchable", lat))
    for channel, members in channels.items():
        print(_percentiles(f"  of which {channel}", latencies(members)))
    hops = hop_latencies(pushed_at, watcher.at, await journeys(settings, ids))
    res.offered_hops = {
        hop: {p: percentile(v, q) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}
        for hop, v in hops.items()
    }
    print("  where the time went, per hop (ingest's journey of each article's events):")
    for hop, values in hops.items():
        print(_percentiles(f"  {hop}", values))
    if not done:
        res.notes.append(f"offered: {count - len(lat)} of {count} never became searchable")


async def backfill(
    pusher: Pusher,
    province: Agency,
    news: Agency,
    watcher: Searchable,
    other_watcher: Searchable,
    n: int,
    marked: bool,
    res: Results,
) -> None:
    run = uuid.uuid4().hex[:8]
    extra = {"backfill": True} if marked else {}
    rest = [(f"bf-{run}-r{i}", article(run, i, province.section)) for i in range(n // 2)]
    kafka = [(f"bf-{run}-k{i}", article(run, i, province.section)) for i in range(n - n // 2)]
    ids = [province.id_of(e) for e, _ in rest + kafka]
    watcher.watch(ids)
    other_ids: list[str] = []
    other_pushes: list[asyncio.Task[None]] = []
    stop = asyncio.Event()

    async def one_per_second() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            external_id = f"tin-{run}-{i}"
            other_ids.append(news.id_of(external_id))
            other_watcher.watch([other_ids[-1]])
            push = pusher.rest(news, external_id, article(run, i, news.section))
            other_pushes.append(asyncio.create_task(push))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    start = time.time()
    ticker = asyncio.create_task(one_per_second())
    await asyncio.gather(
        *(pusher.rest(province, e, c, **extra) for e, c in rest),
        pusher.kafka(province, kafka, **extra),
    )
    pushed = time.time()
    done = await watcher.until_all(ids, timeout_s=600 + n * 0.5)
    stop.set()
    await ticker
    await asyncio.gather(*other_pushes)
    await other_watcher.until_all(other_ids, timeout_s=120)
    reached = [watcher.at[i] for i in ids if i in watcher.at]
    last = max(reached, default=start)
    lat = latency_ms(
        news.pushed_at, {i: other_watcher.at[i] for i in other_ids if i in other_watcher.at}
    )
    res.backfill_other = {"p50": percentile(lat, 50), "p99": percentile(lat, 99)}
    print(
        f"\nbackfill: {n} articles from {province.code} ({'marked' if marked else 'unmarked'}; "
        f"{len(rest)} REST, {len(kafka)} Kafka) pushed in {pushed - start:.1f} s, "
        f"{len(reached)} searchable after {last - start:.1f} s; meanwhile {news.code} pushed "
        f"{len(other_ids)} articles, one per second"
    )
    print(_percentiles(f"{news.code} push -> searchable", lat))
    if not done:
        res.notes.append(f"backfill: {n - len(reached)} of {n} never became searchable")


def _percentiles(name: str, values: list[float]) -> str:
    return (
        f"  {name:<36} p50 {percentile(values, 50):8.0f} ms   p95 {percentile(values, 95):8.0f} ms"
        f"   p99 {percentile(values, 99):8.0f} ms   (n={len(values)})"
    )


# -- set-up ---------------------------------------------------------------------------------------


def start_services(settings: StackSettings, receiver: OtlpReceiver, bursts: bool) -> None:
    """(Re)start the six services with traces to ``receiver`` and no partner rate limits (one
    client pushes for the agencies; the per-key limit would measure its own 429s); without
    ``bursts``, ingest does not treat one agency's flood as a burst (its bulk lane then holds
    marked backfills only)."""
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    # Spans leave each service as in production, every OTEL_BSP_SCHEDULE_DELAY (the SDK's 5 s
    # unless set; exporting twice a second cost the services 8-21 % of their CPU); none dropped.
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "200000"
    os.environ["PORTAL_INGEST_RATE_LIMIT_PER_API_KEY"] = ""
    os.environ["PORTAL_INGEST_RATE_LIMIT_PER_IP"] = ""
    if not bursts:
        os.environ["PORTAL_INGEST_BURST_ITEMS"] = str(10**9)
    launcher.services_down(settings, say=lambda _: None)
    launcher.services_up(settings, say=lambda _: None)


async def main_async(args: argparse.Namespace, settings: StackSettings) -> Results:
    res = Results()
    receiver = OtlpReceiver(keep_spans=False).start()
    try:
        start_services(settings, receiver, bursts=not args.no_burst_detection)
        seed(settings, demo=False, say=lambda _: None)
        province, senders = await agencies(settings, args.offered_agencies)
        news = senders[0]
        pusher = Pusher(
            f"http://{settings.host}:{service_port(settings, 'ingest')}", args.concurrency
        )
        # The bulk runs are polled once a second (the slope needs no finer step, and each poll
        # is work for OpenSearch, which shares the two cores with the pipeline); latencies are
        # read by a fine watcher.
        watcher = Searchable(settings.opensearch_url, interval_s=1.0).start()
        fine = Searchable(settings.opensearch_url, interval_s=0.1).start()
        meter = Meter(settings, receiver)
        cores = CoreUse().start()
        size = len(
            json.dumps({"content": article("x" * 8, 1, news.section)}, ensure_ascii=False).encode()
        )
        print(f"articles of {size} bytes (REST body); load average {os.getloadavg()[0]:.1f}")
        try:
            if args.warmup:
                # The same work first, not measured: the JVMs compile their hot code.
                warm = Results()
                await throughput(pusher, news, watcher, meter, cores, args.warmup, warm, "warm-up")
            if "throughput" in args.scenarios:
                await throughput(pusher, news, watcher, meter, cores, args.articles, res)
            if "baseline" in args.scenarios:
                res.baseline, relayed = await baseline(settings, args.articles, size)
                print(
                    f"\nbaseline: {args.articles} messages of {size} bytes through 4 bare Kafka hops"
                )
                print(f"  steady slope (10-90 % of arrivals): {res.baseline:.1f} messages/s")
                print(_percentiles("end to end", relayed))
            if "offered" in args.scenarios:
                await offered(
                    settings, pusher, senders, fine, args.offered_rate, args.offered_s, res
                )
            if "backfill" in args.scenarios:
                await backfill(
                    pusher,
                    province,
                    news,
                    watcher,
                    fine,
                    args.backfill,
                    args.backfill_marked,
                    res,
                )
        finally:
            await watcher.stop()
            await fine.stop()
            await cores.stop()
            await pusher.close()
        if pusher.failures:
            res.notes.append(f"{pusher.failures} REST pushes failed")
    finally:
        receiver.stop()
    return res


def report(res: Results, args: argparse.Namespace) -> dict[str, Any]:
    usage = res.usage
    n = max(res.articles, 1)
    figures: dict[str, Any] = {
        "articles": res.articles,
        "throughput_articles_per_s": res.throughput,
        "steady_cores_busy_share": res.steady_cores_busy,
        "baseline_messages_per_s": res.baseline,
        "offered_latency_ms": res.offered,
        "offered_hops_ms": res.offered_hops,
        "backfill_other_agency_ms": res.backfill_other,
        "cpu_ms_per_article": None,
        "xacts_per_article": None,
        "spans_per_article": None,
    }
    if usage is not None:
        cpu = usage.per_article({k: v * 1000 for k, v in usage.cpu_s.items()}, n)
        figures["cpu_ms_per_article"] = cpu
        figures["xacts_per_article"] = usage.per_article(usage.xacts, n)
        figures["spans_per_article"] = usage.per_article(usage.spans, n)
        print(f"\nper article ({res.articles} articles of the throughput run):")
        print(f"  {'service':<12}{'CPU ms':>10}{'xacts':>10}{'spans':>10}")
        for s in (*BACKENDS, "total"):
            print(
                f"  {s:<12}{cpu[s]:>10.1f}{figures['xacts_per_article'][s]:>10.1f}"
                f"{figures['spans_per_article'][s]:>10.1f}"
            )
        stack = {
            k: v * 1000 / n
            for k, v in usage.cpu_s.items()
            if k not in BACKENDS and not k.endswith(JIT_SUFFIX) and k != BENCH_CLIENT
        }
        print("  infrastructure CPU ms: " + ", ".join(f"{k} {v:.1f}" for k, v in stack.items()))
        jit = {
            k.removesuffix(JIT_SUFFIX): v * 1000 / n
            for k, v in usage.cpu_s.items()
            if k.endswith(JIT_SUFFIX)
        }
        figures["infrastructure_cpu_ms_per_article"] = stack
        client = usage.cpu_s.get(BENCH_CLIENT, 0.0) * 1000 / n
        figures["bench_client_cpu_ms_per_article"] = client
        print(f"  the bench's own CPU ms (pushing, polling, receiving spans): {client:.1f}")
        figures["jit_cpu_ms_per_article"] = jit
        if jit:
            # A JVM started for the run compiles its hot code during it: a one-off cost.
            when = f"after a warm-up of {args.warmup}" if args.warmup else "freshly started JVMs"
            print(
                "    of which JIT compiling: "
                + ", ".join(f"{k} {v:.1f}" for k, v in jit.items())
                + f" ({when})"
            )
    if res.throughput and res.baseline:
        print(f"\nratio pipeline/baseline throughput: {res.throughput / res.baseline:.3f}")
    for note in res.notes:
        print(f"WARNING: {note}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000, help="throughput and baseline")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent REST pushes")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--offered-rate", type=float, default=50.0, help="articles per second")
    parser.add_argument("--offered-s", type=float, default=60.0, help="seconds of offered load")
    parser.add_argument(
        "--offered-agencies",
        type=int,
        default=20,
        help="agencies sharing the offered load (1: one agency, whose flood is a burst)",
    )
    parser.add_argument("--backfill", type=int, default=5000, help="articles of the backfill")
    parser.add_argument(
        "--backfill-marked", action="store_true", help='the backfill says "backfill": true'
    )
    parser.add_argument(
        "--no-burst-detection",
        action="store_true",
        help="ingest takes one agency's flood as news (the throughput scenario then measures "
        "the pipeline without the bulk lane's pacing)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2000,
        help="articles pushed through first, not measured, so that the figures are a running "
        "portal's, whose JVMs have compiled their hot code (0: freshly started JVMs)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    args.scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = args.scenarios - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    settings = StackSettings()
    started_here = not all(c.is_running() for c in launcher.infrastructure(settings))
    print(
        f"stack: {settings.data_dir} (port base {os.environ['PORTAL_STACK_PORT_BASE']}); "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    if started_here:
        launcher.stack_up(settings, say=lambda _: None)
    try:
        # uvloop, as the services run (uvicorn's default where it is installed): the bench's
        # pushes (HTTP, and TLS to the partner listener), polls and spans share the two cores
        # with the pipeline, and asyncio's own loop and TLS layer cost more CPU per article.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            res = runner.run(main_async(args, settings))
    finally:
        if started_here and not args.keep:
            launcher.stack_down(settings, say=lambda _: None)
        elif not args.keep:
            launcher.services_down(settings, say=lambda _: None)
    figures = report(res, args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")
    if res.notes:
        sys.exit(1)


if __name__ == "__main__":
    main()
