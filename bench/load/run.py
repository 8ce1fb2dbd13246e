"""Load benchmark: the public read path under concurrent readers — the origin (publishing,
search), the edge cache in front of it (Varnish), and nginx serving the same bytes.

Starts the local stack (with the edge) and publishing, search and the edge purger on its own
ports and folder (or reuses what already answers), loads a data set of N published articles
over several sections and sources, waits until all are searchable, captures the exact responses
of each scenario's URLs and serves those files with nginx. Then wrk runs each scenario
(scenarios.py) against the origin, the edge and nginx. Two more measure the edge's promises
(edge.py): freshness (an edit or a retraction under load, until the edge shows it) and the
origin down (the edge keeps answering from stale copies). The table gives requests/s, latency
percentiles, errors and the ratios to nginx; `--json PATH` writes the figures.

The data set goes in as article.reviewed events (an automatic publication decision, as
moderation emits for a trusted source) produced straight to Kafka: publishing's own consumer
stores them, gives them their slugs, and emits article.published through its outbox, which
search indexes and the purger turns into edge purges. So the read models are built by the real
code, and only ingest, normalize and moderation (measured by bench/pipeline) are skipped.
Article ids are stable, so a second run on the same data folder skips loading them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27300")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench-load"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Every wrk connection comes from 127.0.0.1, where real readers come from many addresses: the
# per-client rate limits would measure themselves (429s). The in-flight cap stays as deployed.
os.environ.setdefault("PORTAL_PUBLISHING_RATE_LIMIT_PER_IP", "")
os.environ.setdefault("PORTAL_SEARCH_RATE_LIMIT_PER_IP", "")
# The website's pages read engagement too (the home page's engagement block), as 127.0.0.1.
os.environ.setdefault("PORTAL_ENGAGEMENT_RATE_LIMIT_READ_PER_IP", "")

from dataset import PLACEMENTS, SEARCHES, article_for, load  # noqa: E402
from edge import Load, freshness, origin_down  # noqa: E402
from scenarios import Catalog, Scenario, by_name  # noqa: E402
from tools import NGINX, WRK, start_nginx, stop_process, wrk  # noqa: E402

from portal_contracts.articles import article_id_for  # noqa: E402
from portal_launcher import stack as launcher  # noqa: E402
from portal_launcher.seed import SEED_DIR, Seeder, load_seed  # noqa: E402
from portal_launcher.services import PURGER, process, service_port  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402

TARGETS = ("origin", "edge", "nginx")
_EXTENSIONS = {"application/json": "json", "text/html": "html", "application/xml": "xml"}


def catalog(settings: StackSettings, n: int, article_urls: int, http: httpx.Client) -> Catalog:
    """What the data set offers: its sections, a sample of its articles' slugs, the searches."""
    pub = f"http://{settings.host}:{service_port(settings, 'publishing')}"
    mine = {article_id_for(s, e) for s, e, _ in (article_for(i) for i in range(n))}
    sections = sorted({section for _, section in PLACEMENTS})
    slugs: list[str] = []
    for code in sections:  # every article of the data set, section by section
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = http.get(f"{pub}/v1/sections/{code}/articles", params=params)
            page.raise_for_status()
            body = page.json()
            slugs += [item["slug"] for item in body["items"] if item["article_id"] in mine]
            cursor = body["next_cursor"]
            if not cursor:
                break
    if len(slugs) < n:
        raise RuntimeError(f"only {len(slugs)}/{n} articles listed by publishing")
    picked = random.Random(42).sample(slugs, min(article_urls, len(slugs)))
    return Catalog(sections=sections, slugs=picked, searches=SEARCHES)


def origin_url(settings: StackSettings, scenario: Scenario) -> str:
    return f"http://{settings.host}:{service_port(settings, scenario.origin)}"


def capture(
    settings: StackSettings, paths: dict[str, list[str]], scenarios: list[Scenario], files: Path
) -> tuple[list[str], dict[str, int]]:
    """Write each origin response body as a file; returns nginx map lines and mean sizes."""
    lines: list[str] = []
    sizes: dict[str, int] = {}
    number = 0
    with httpx.Client(timeout=30.0) as http:
        for scenario in scenarios:
            total = 0
            for path in paths[scenario.name]:
                resp = http.get(origin_url(settings, scenario) + path)
                if resp.status_code != 200:
                    raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:300]}")
                number += 1
                media = resp.headers.get("content-type", "").split(";")[0].strip()
                name = f"{number}.{_EXTENSIONS.get(media, 'bin')}"
                (files / name).write_bytes(resp.content)
                total += len(resp.content)
                lines.append(f'    "{path}" /{name};')
            sizes[scenario.name] = total // len(paths[scenario.name])
    return lines, sizes


async def prime(base: str, paths: list[str], concurrency: int = 8) -> None:
    """Ask every URL once, so the measured run reads cached answers (the origin's page cache,
    the edge's objects) and not the first render of each."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60.0) as http:

        async def one(path: str) -> None:
            async with gate:
                resp = await http.get(base + path)
                if resp.status_code != 200:
                    raise RuntimeError(f"{base}{path}: {resp.status_code}")

        await asyncio.gather(*(one(p) for p in paths))


def seed_site(settings: StackSettings) -> None:
    """Only publishing's part of `portal seed`: the site structure (blocks, sections, sub-sites)."""
    site, sources = load_seed(SEED_DIR)
    Seeder(settings).call(
        "PUT",
        "publishing",
        "/admin/v1/site",
        {
            "blocks": site["blocks"],
            "standard_sections": sources["standard_sections"],
            "subsites": [
                {"code": s["code"], "name": s["name"], "kind": s["kind"]}
                for s in sources["sources"]
                if s.get("active", True)
            ],
        },
    )


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'scenario':<9} {'target':<7} {'URLs':>5} {'bytes':>7} {'req/s':>9} {'p50 ms':>8} "
        f"{'p90 ms':>8} {'p99 ms':>8} {'errors':>7} {'non-2xx':>8} {'/nginx':>8}"
    )
    rows = [head, "-" * len(head)]
    nginx = {r["scenario"]: r["rps"] for r in results if r["target"] == "nginx"}
    for r in results:
        base = nginx.get(r["scenario"])
        ratio = f"{r['rps'] / base:.3g}" if base and r["target"] != "nginx" else ""
        rows.append(
            f"{r['scenario']:<9} {r['target']:<7} {r['urls']:>5} {r['bytes']:>7} "
            f"{r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['errors']:>7} {r['non_2xx']:>8} {ratio:>8}"
        )
    return "\n".join(rows)


def per_scenario(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON figures: per scenario and target, req_s, p50_ms, p99_ms (and the rest)."""
    out: dict[str, Any] = {}
    for r in results:
        entry = out.setdefault(r["scenario"], {"urls": r["urls"], "bytes": r["bytes"]})
        entry[r["target"]] = {
            "req_s": round(r["rps"], 1),
            "p50_ms": round(r["p50_ms"], 3),
            "p99_ms": round(r["p99_ms"], 3),
            "p90_ms": round(r["p90_ms"], 3),
            "max_ms": round(r["max_ms"], 3),
            "errors": r["errors"],
            "non_2xx": r["non_2xx"],
        }
    for entry in out.values():
        if "nginx" in entry:
            for target in ("origin", "edge"):
                if target in entry and entry["nginx"]["req_s"]:
                    entry[f"{target}_vs_nginx"] = round(
                        entry[target]["req_s"] / entry["nginx"]["req_s"], 4
                    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000, help="articles in the data set")
    parser.add_argument("--article-urls", type=int, default=1000, help="articles rotated by wrk")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk open connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured run first")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout, s")
    parser.add_argument(
        "--nginx-port",
        type=int,
        default=int(os.environ.get("BENCH_LOAD_NGINX_PORT", "0")) or None,
        help="default: BENCH_LOAD_NGINX_PORT, else the stack's port base + 58",
    )
    parser.add_argument("--nginx-workers", default="auto", help="nginx worker_processes")
    parser.add_argument(
        "--scenarios",
        default="home,section,article,search,web-home,web-article",
        help="comma-separated subset",
    )
    parser.add_argument(
        "--freshness-trials", type=int, default=20, help="edits/retractions timed; 0 = none"
    )
    parser.add_argument(
        "--origin-down", type=int, default=10, help="seconds with publishing stopped; 0 = none"
    )
    parser.add_argument("--json", type=Path, help="write the figures there (and to artifacts/)")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    for tool in (NGINX, WRK):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: run deploy/system-deps.sh")
    scenarios = by_name(args.scenarios.split(","))

    settings = StackSettings()
    base = int(os.environ["PORTAL_STACK_PORT_BASE"])
    nginx_port = args.nginx_port or base + 58
    infra = launcher.infrastructure(settings)
    infra_here = not all(c.is_running() for c in infra)
    origins = [s.origin for s in scenarios]
    # The website reads engagement too (its side blocks).
    backing = ["engagement", "search"] if "web" in origins else []
    wanted = tuple(dict.fromkeys([*origins, *backing, "publishing", PURGER]))
    services_here = [p for p in launcher.services(settings, wanted) if not p.is_running()]
    print(
        f"stack: {settings.data_dir} (port base {base}); edge {settings.edge_url}; nginx on port "
        f"{nginx_port}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    nginx: subprocess.Popen[bytes] | None = None
    results: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    try:
        if infra_here:
            launcher.stack_up(settings, say=lambda _: None)
        if services_here:
            launcher.services_up(
                settings, only=tuple(p.service for p in services_here), say=lambda _: None
            )
        print(f"  stack, edge and services ready ({time.monotonic() - started:.0f}s)")
        seed_site(settings)
        loaded = asyncio.run(load(settings, args.articles, timeout_s=120 + args.articles * 0.2))
        if loaded["loaded"]:
            print(
                f"  loaded {loaded['loaded']} articles: produced in {loaded['produced_s']}s, "
                f"all published and searchable in {loaded['seconds']}s"
            )
        else:
            print(f"  data set of {args.articles} articles already published and searchable")
        with httpx.Client(timeout=30.0) as http:
            offer = catalog(settings, args.articles, args.article_urls, http)
        paths = {s.name: s.paths(offer) for s in scenarios}
        files = work / "files"
        files.mkdir()
        map_lines, sizes = capture(settings, paths, scenarios, files)
        nginx = start_nginx(work, settings.host, nginx_port, args.nginx_workers, map_lines)
        print(
            f"  captured {len(map_lines)} responses into {files}; nginx pid {nginx.pid}\n"
            f"  wrk: {args.threads} threads, {args.connections} connections, "
            f"{args.warmup}s warm-up + {args.duration}s per run\n"
        )
        for scenario in scenarios:
            paths_file = work / f"{scenario.name}.paths"
            paths_file.write_text("\n".join(paths[scenario.name]) + "\n")
            targets = {"origin": origin_url(settings, scenario)}
            if scenario.via_edge:
                targets["edge"] = settings.edge_url
            targets["nginx"] = f"http://{settings.host}:{nginx_port}"
            for target, url in targets.items():
                if target != "nginx":
                    asyncio.run(prime(url, paths[scenario.name]))
                if args.warmup:
                    wrk(url, paths_file, args.threads, args.connections, args.warmup, args.timeout)
                figures = wrk(
                    url, paths_file, args.threads, args.connections, args.duration, args.timeout
                )
                results.append(
                    {
                        "scenario": scenario.name,
                        "target": target,
                        "urls": len(paths[scenario.name]),
                        "bytes": sizes[scenario.name],
                        **figures,
                    }
                )
                print(
                    f"  {scenario.name:<8} {target:<7} {figures['rps']:9.1f} req/s  "
                    f"p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms",
                    flush=True,
                )
        edge_paths = [p for s in scenarios if s.via_edge for p in paths[s.name]]
        edge_file = work / "edge.paths"
        edge_file.write_text("\n".join(edge_paths) + "\n")
        if args.freshness_trials and offer.slugs:
            load_spec = Load(edge_file, args.threads, args.connections, args.timeout)
            trial_slugs = list(reversed(offer.slugs))
            fresh = asyncio.run(
                freshness(settings, trial_slugs, args.articles, args.freshness_trials, load_spec)
            )
            extra["freshness"] = fresh.summary()
            f = extra["freshness"]
            print(
                f"  freshness {f['trials']} trials under load ({f['load_during']['rps']:.0f} "
                f"req/s on the edge): p50 {f['freshness_ms']['p50']} ms, max "
                f"{f['freshness_ms']['max']} ms (edits {f['publish_ms']}, retractions "
                f"{f['retract_ms']}; publishing itself showed it after {f['origin_ms']})",
                flush=True,
            )
        if args.origin_down and edge_paths:
            # The pages the edge holds: each asked once (after the freshness trials' second
            # purges, which come EDGE_REPURGE_AFTER_S later).
            time.sleep(3.0)
            asyncio.run(prime(settings.edge_url, edge_paths))
            down = origin_down(
                settings, edge_file, args.threads, args.connections, args.origin_down
            )
            extra["origin_down"] = down
            print(
                f"  origin down {down['seconds']}s ({down['objects_made_stale']} objects stale): "
                f"{down['rps']:.0f} req/s from the edge, errors {down['origin_down_errors']}",
                flush=True,
            )
    finally:
        if nginx is not None:
            stop_process(nginx, signal.SIGQUIT)  # graceful: workers finish, then exit
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            if infra_here:
                launcher.stack_down(settings, say=lambda _: None)
            else:
                for proc in services_here:
                    process(settings, proc.service).stop()

    print()
    print(table(results))
    print(
        f"\nbytes: mean response body; errors: connect/read/write/timeout; non-2xx: statuses "
        f"above 399; /nginx: requests/s as a share of nginx's. Origin: one process per service "
        f"on {os.cpu_count()} cores shared with wrk, the edge and the stack; nginx: "
        f"worker_processes {args.nginx_workers}."
    )
    report = {
        "when": datetime.now(UTC).isoformat(),
        "settings": {k: str(v) for k, v in vars(args).items()}
        | {"nginx_port": nginx_port, "port_base": base},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": load_at_start,
            "loadavg_1m_at_end": os.getloadavg()[0],
        },
        "data_set": {"articles": args.articles, **loaded},
        "scenarios": {**per_scenario(results), **extra},
        "results": results,
    }
    out = ROOT / "artifacts" / f"bench-load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    for path in (out, args.json):
        if path is not None:
            path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"figures: {args.json or out}")
    failed = [r for r in results if r["errors"] or r["non_2xx"]]
    if failed:
        sys.exit(f"{len(failed)} runs had errors or non-2xx responses")
    if extra.get("origin_down", {}).get("origin_down_errors"):
        sys.exit("the edge answered errors while the origin was down")


if __name__ == "__main__":
    main()
