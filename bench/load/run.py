"""Load benchmark: the public read API and search under concurrent readers, against nginx.

Starts the local stack with publishing and search on its own ports and folder (or reuses what
already answers), loads a data set of N published articles over several sections and sources,
waits until all are searchable, captures the exact responses of a set of URLs (home, section
pages, many articles, several searches) and serves those files with nginx. Then wrk runs each
scenario against the portal and against nginx, and the table gives requests/s, latency
percentiles and errors, and the ratio portal/nginx. The figures are also written as JSON.

The data set goes in as article.reviewed events (an automatic publication decision, as
moderation emits for a trusted source) produced straight to Kafka: publishing's own consumer
stores them, gives them their slugs, and emits article.published through its outbox, which
search indexes. So both read models are built by the real code, and only ingest, normalize and
moderation (measured by bench/pipeline) are skipped. Article ids are stable, so a second run on
the same data folder finds the data set already there and skips loading it.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlencode

import httpx
from aiokafka import AIOKafkaProducer
from opensearchpy import AsyncOpenSearch

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27300")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench-load"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Every wrk connection comes from 127.0.0.1, where real readers come from many addresses: the
# per-client rate limits would measure themselves (429s). The in-flight cap stays as deployed.
os.environ.setdefault("PORTAL_PUBLISHING_RATE_LIMIT_PER_IP", "")
os.environ.setdefault("PORTAL_SEARCH_RATE_LIMIT_PER_IP", "")

from portal_contracts.articles import (  # noqa: E402
    ArticleReviewed,
    ArticleReviewedEvent,
    NormalizedArticle,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.codec import encode  # noqa: E402
from portal_contracts.topics import ARTICLE_REVIEWED  # noqa: E402
from portal_launcher import stack as launcher  # noqa: E402
from portal_launcher.components.kafka import admin_client_options  # noqa: E402
from portal_launcher.seed import SEED_DIR, Seeder, load_seed  # noqa: E402
from portal_launcher.services import ServiceProcess, service_port  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402

SERVICES = ("publishing", "search")
SEARCH_ALIAS = "articles"  # portal_search's default index alias
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
WRK = os.environ.get("WRK", "/usr/bin/wrk")

# --- the data set ----------------------------------------------------------------------------

# Where the articles go: (source, section). Portal sections with their usual agencies, and the
# standard sections of a few partner sub-sites; several sections, several sources.
PLACEMENTS = [
    ("bao-nhan-dan", "tin-hoat-dong"),
    ("bao-nhan-dan", "xay-dung-dang"),
    ("ban-tuyen-giao-dan-van-trung-uong", "van-de-quan-tam"),
    ("ban-to-chuc-trung-uong", "xay-dung-dang"),
    ("van-phong-trung-uong", "van-ban-moi"),
    ("van-phong-trung-uong", "huong-dan-cong-tac-dang"),
    ("bao-nhan-dan", "tong-bi-thu"),
    ("bao-nhan-dan", "thu-tuong"),
    ("tp-ha-noi", "ct-tin-tuc-hoat-dong"),
    ("tp-ha-noi", "ct-xay-dung-dang"),
    ("tp-ho-chi-minh", "ct-tin-tuc-hoat-dong"),
    ("bo-y-te", "ct-van-ban-tai-lieu"),
]
EVENTS = [
    "Hội nghị",
    "Hội thảo khoa học",
    "Tọa đàm",
    "Phiên họp",
    "Đoàn công tác",
    "Lễ kỷ niệm",
    "Buổi làm việc",
    "Hội nghị trực tuyến",
]
TOPICS = [
    "công tác xây dựng, chỉnh đốn Đảng",
    "chuyển đổi số quốc gia",
    "phát triển kinh tế - xã hội",
    "cải cách hành chính",
    "phòng, chống tham nhũng, tiêu cực",
    "giáo dục và đào tạo",
    "y tế cơ sở",
    "xây dựng nông thôn mới",
    "quốc phòng, an ninh",
    "công tác đối ngoại",
    "bảo tồn văn hóa dân tộc",
    "khoa học, công nghệ và đổi mới sáng tạo",
]
PLACES = [
    "Hà Nội",
    "Thành phố Hồ Chí Minh",
    "Hải Phòng",
    "Đà Nẵng",
    "Cần Thơ",
    "Huế",
    "Nghệ An",
    "Thanh Hóa",
    "Quảng Ninh",
    "Lâm Đồng",
    "Đắk Lắk",
    "An Giang",
]
PARAGRAPHS = [
    "Đảng Cộng sản Việt Nam lãnh đạo Nhà nước và xã hội, tiếp tục đẩy mạnh công tác xây dựng, "
    "chỉnh đốn Đảng và hệ thống chính trị trong sạch, vững mạnh toàn diện.",
    "Hội nghị nhấn mạnh yêu cầu phát huy sức mạnh đại đoàn kết toàn dân tộc, thực hiện thắng lợi "
    "các mục tiêu phát triển kinh tế - xã hội của nhiệm kỳ.",
    "Các cấp ủy, tổ chức đảng cần nâng cao năng lực lãnh đạo, sức chiến đấu; gắn việc học tập và "
    "làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh với nhiệm vụ chính trị của địa phương.",
    "Chuyển đổi số được xác định là nhiệm vụ trọng tâm, góp phần hiện đại hóa nền hành chính, "
    "phục vụ người dân và doanh nghiệp ngày càng tốt hơn.",
    "Công tác phòng, chống tham nhũng, lãng phí, tiêu cực được triển khai quyết liệt, đồng bộ, "
    "không có vùng cấm, không có ngoại lệ.",
    "Đại biểu đã thảo luận sôi nổi, đóng góp nhiều ý kiến tâm huyết, trách nhiệm vào dự thảo văn "
    "kiện trình đại hội đảng bộ các cấp.",
    "Phát biểu chỉ đạo, đồng chí yêu cầu các địa phương tập trung tháo gỡ khó khăn, vướng mắc, "
    "thúc đẩy tăng trưởng, bảo đảm an sinh xã hội.",
    "Chương trình mục tiêu quốc gia xây dựng nông thôn mới đạt nhiều kết quả quan trọng, đời sống "
    "vật chất và tinh thần của nhân dân không ngừng được nâng lên.",
    "Ngành y tế tiếp tục củng cố mạng lưới y tế cơ sở, nâng cao chất lượng khám, chữa bệnh và "
    "chăm sóc sức khỏe nhân dân.",
    "Giáo dục và đào tạo là quốc sách hàng đầu; đổi mới căn bản, toàn diện giáo dục gắn với phát "
    "triển nguồn nhân lực chất lượng cao.",
    "Nhiệm vụ bảo vệ vững chắc độc lập, chủ quyền, thống nhất, toàn vẹn lãnh thổ được quán triệt "
    "trong toàn Đảng, toàn dân và toàn quân.",
    "Hoạt động đối ngoại được triển khai chủ động, tích cực, góp phần nâng cao vị thế, uy tín của "
    "đất nước trên trường quốc tế.",
]
SEARCHES: list[dict[str, Any]] = [
    {"q": "chuyển đổi số"},
    {"q": "chuyen doi so"},  # without diacritics
    {"q": "phòng, chống tham nhũng"},
    {"q": "xây dựng nông thôn mới"},
    {"q": "Hà Nội"},
    {"q": "hội nghị trực tuyến", "sort": "date"},
    {"q": "giáo dục", "section": "tin-hoat-dong"},
    {"q": "quoc phong an ninh"},
    {"q": "y tế cơ sở", "size": 20},
    {"q": "đối ngoại", "page": 2},
    {"q": "cải cách hành chính", "source": "bao-nhan-dan"},
    {"q": ""},  # the newest articles
]


def article_for(i: int) -> tuple[str, str, NormalizedArticle]:
    """Article number i of the data set: always the same (stable ids, stable content)."""
    rnd = random.Random(i)
    source, section = PLACEMENTS[i % len(PLACEMENTS)]
    title = (
        f"{rnd.choice(EVENTS)} về {rnd.choice(TOPICS)} tại {rnd.choice(PLACES)} (bài số {i + 1})"
    )
    paragraphs = [rnd.choice(PARAGRAPHS) for _ in range(rnd.randint(10, 18))]
    body_html = "".join(f"<p>{p}</p>" for p in paragraphs)
    external_id = f"load-{i}"
    return (
        source,
        external_id,
        NormalizedArticle(
            title=title,
            summary=paragraphs[0],
            body_html=body_html,
            body_text="\n\n".join(paragraphs),
            author=rnd.choice(["Phóng viên", "Nhóm phóng viên", "Ban biên tập", None]),
            published_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i),
            section=section,
            categories=[section],
        ),
    )


def reviewed_event(i: int) -> ArticleReviewedEvent:
    source, external_id, article = article_for(i)
    article_id = article_id_for(source, external_id)
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=source,
            external_id=external_id,
            revision=1,
            decision=ReviewDecision.AUTO_PUBLISHED,
            reviewer="policy:trusted",
            reviewed_at=datetime.now(UTC),
            article=article,
        ),
    )


async def searchable_count(settings: StackSettings, ids: list[str]) -> int:
    client = AsyncOpenSearch(hosts=[settings.opensearch_url])
    try:
        resp = await client.count(
            index=SEARCH_ALIAS, body={"query": {"terms": {"article_id": ids}}}
        )
        return int(resp["count"])
    except Exception:  # the index is created by search on its first start
        return 0
    finally:
        await client.close()


async def load(settings: StackSettings, n: int, timeout_s: float) -> dict[str, Any]:
    """Publish the data set through publishing's consumer; wait until search has all of it."""
    ids = [article_id_for(s, e) for s, e, _ in (article_for(i) for i in range(n))]
    already = await searchable_count(settings, ids)
    if already == n:
        return {"loaded": 0, "seconds": 0.0, "already": n}
    start = time.monotonic()
    producer = AIOKafkaProducer(
        **admin_client_options(settings),
        acks="all",
        linger_ms=10,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(ARTICLE_REVIEWED.name, encode(event), key=event.subject.encode())
            for event in (reviewed_event(i) for i in range(n))
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    produced = time.monotonic() - start
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = await searchable_count(settings, ids)
        if count >= n:
            break
        await asyncio.sleep(0.5)
    if count < n:
        raise RuntimeError(f"only {count}/{n} articles searchable after {timeout_s:.0f}s")
    return {
        "loaded": n,
        "produced_s": round(produced, 1),
        "seconds": round(time.monotonic() - start, 1),
        "already": already,
    }


# --- the URLs and their captured responses ---------------------------------------------------


def targets(
    settings: StackSettings, n: int, article_urls: int, http: httpx.Client
) -> dict[str, list[str]]:
    """Request targets (path and query) of each scenario, all answering 200 on the portal."""
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
    return {
        "home": ["/v1/home"],
        "section": [f"/v1/sections/{code}/articles" for code in sections],
        "article": [f"/v1/articles/{slug}" for slug in picked],
        "search": [f"/v1/search?{urlencode(params)}" for params in SEARCHES],
    }


def capture(
    settings: StackSettings, scenarios: dict[str, list[str]], files: Path, http: httpx.Client
) -> tuple[list[str], dict[str, int]]:
    """Write each response body as a file; returns nginx map lines and mean sizes."""
    lines: list[str] = []
    sizes: dict[str, int] = {}
    number = 0
    for scenario, paths in scenarios.items():
        service = "search" if scenario == "search" else "publishing"
        base = f"http://{settings.host}:{service_port(settings, service)}"
        total = 0
        for path in paths:
            resp = http.get(base + path)
            if resp.status_code != 200:
                raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:300]}")
            number += 1
            (files / f"{number}.json").write_bytes(resp.content)
            total += len(resp.content)
            lines.append(f'    "{path}" /{number}.json;')
        sizes[scenario] = total // len(paths)
    return lines, sizes


# --- nginx and wrk ---------------------------------------------------------------------------


def start_nginx(
    prefix: Path, host: str, port: int, workers: str, map_lines: list[str]
) -> subprocess.Popen[bytes]:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "targets.map").write_text("\n".join(map_lines) + "\n", encoding="utf-8")
    conf = Template((HERE / "nginx.conf.template").read_text()).safe_substitute(
        prefix=prefix, host=host, port=port, workers=workers
    )
    (prefix / "nginx.conf").write_text(conf)
    # Run as root (as CI does), nginx's workers drop to 'nobody': they must be able to read.
    for path in [prefix, *prefix.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    cmd = [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-e",
        str(prefix / "error.log"),
    ]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx configuration refused:\n{check.stderr}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            httpx.get(f"http://{host}:{port}/", timeout=1.0)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("nginx does not answer")


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk(
    url: str, paths_file: Path, threads: int, connections: int, seconds: int, timeout: int
) -> dict[str, Any]:
    cmd = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "-s",
        str(HERE / "rotate.lua"),
        url,
        "--",
        str(paths_file),
        str(threads),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        stop_process(proc, signal.SIGTERM)
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            raw: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            secs = raw["duration_us"] / 1e6
            return {
                "requests": raw["requests"],
                "rps": raw["requests"] / secs if secs else 0.0,
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "max_ms": raw["max_us"] / 1000,
                "errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
                "non_2xx": raw["status"],  # wrk counts statuses above 399
                "mb_per_s": raw["bytes"] / secs / 1e6 if secs else 0.0,
            }
    raise RuntimeError(f"wrk printed no figures (exit {proc.returncode}):\n{out}\n{err}")


# --- the run ---------------------------------------------------------------------------------


def seed_site(settings: StackSettings) -> None:
    """Only publishing's part of `portal seed`: the site structure (blocks, sections, sub-sites)."""
    site, sources = load_seed(SEED_DIR)
    seeder = Seeder(settings)
    seeder.call(
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
        f"{'p90 ms':>8} {'p99 ms':>8} {'errors':>7} {'non-2xx':>8} {'portal/nginx':>13}"
    )
    rows = [head, "-" * len(head)]
    by_scenario: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        by_scenario.setdefault(r["scenario"], {})[r["target"]] = r
    for r in results:
        ratio = ""
        if r["target"] == "nginx" and "portal" in by_scenario[r["scenario"]]:
            portal = by_scenario[r["scenario"]]["portal"]
            ratio = f"{portal['rps'] / r['rps']:.3g}" if r["rps"] else "n/a"
        rows.append(
            f"{r['scenario']:<9} {r['target']:<7} {r['urls']:>5} {r['bytes']:>7} "
            f"{r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['errors']:>7} {r['non_2xx']:>8} {ratio:>13}"
        )
    return "\n".join(rows)


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
        "--scenarios", default="home,section,article,search", help="comma-separated subset"
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    for tool in (NGINX, WRK):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: run deploy/system-deps.sh")

    settings = StackSettings()
    base = int(os.environ["PORTAL_STACK_PORT_BASE"])
    nginx_port = args.nginx_port or base + 58
    infra = launcher.infrastructure(settings)
    infra_here = not all(c.is_running() for c in infra)
    services_here = [s for s in SERVICES if not ServiceProcess(settings, s).is_running()]
    print(
        f"stack: {settings.data_dir} (port base {base}); nginx on port {nginx_port}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    nginx: subprocess.Popen[bytes] | None = None
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    try:
        if infra_here:
            launcher.stack_up(settings, say=lambda _: None)
        if services_here:
            launcher.services_up(settings, only=tuple(services_here), say=lambda _: None)
        print(f"  stack and services ready ({time.monotonic() - started:.0f}s)")
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
            scenarios = targets(settings, args.articles, args.article_urls, http)
            wanted = args.scenarios.split(",")
            scenarios = {k: v for k, v in scenarios.items() if k in wanted}
            files = work / "files"
            files.mkdir()
            map_lines, sizes = capture(settings, scenarios, files, http)
        nginx = start_nginx(work, settings.host, nginx_port, args.nginx_workers, map_lines)
        print(
            f"  captured {len(map_lines)} responses into {files}; nginx pid {nginx.pid}\n"
            f"  wrk: {args.threads} threads, {args.connections} connections, "
            f"{args.warmup}s warm-up + {args.duration}s per run\n"
        )
        for scenario, paths in scenarios.items():
            paths_file = work / f"{scenario}.paths"
            paths_file.write_text("\n".join(paths) + "\n")
            service = "search" if scenario == "search" else "publishing"
            for target, url in (
                ("portal", f"http://{settings.host}:{service_port(settings, service)}"),
                ("nginx", f"http://{settings.host}:{nginx_port}"),
            ):
                if args.warmup:
                    wrk(url, paths_file, args.threads, args.connections, args.warmup, args.timeout)
                figures = wrk(
                    url, paths_file, args.threads, args.connections, args.duration, args.timeout
                )
                row = {
                    "scenario": scenario,
                    "target": target,
                    "urls": len(paths),
                    "bytes": sizes[scenario],
                    **figures,
                }
                results.append(row)
                print(
                    f"  {scenario:<8} {target:<7} {figures['rps']:9.1f} req/s  "
                    f"p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms",
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
                for name in services_here:
                    ServiceProcess(settings, name).stop()

    print()
    print(table(results))
    print(
        f"\nbytes: mean response body; errors: connect/read/write/timeout; non-2xx: statuses "
        f"above 399. Portal: one process per service (publishing, search) on {os.cpu_count()} "
        f"cores shared with wrk and the stack; nginx: worker_processes {args.nginx_workers}."
    )
    out = ROOT / "artifacts" / f"bench-load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "settings": vars(args) | {"nginx_port": nginx_port, "port_base": base},
                "machine": {
                    "cpus": os.cpu_count(),
                    "loadavg_1m_at_start": load_at_start,
                    "loadavg_1m_at_end": os.getloadavg()[0],
                },
                "data_set": {"articles": args.articles, **loaded},
                "results": results,
            },
            indent=2,
        )
    )
    print(f"figures: {out}")
    failed = [r for r in results if r["errors"] or r["non_2xx"]]
    if failed:
        sys.exit(f"{len(failed)} runs had errors or non-2xx responses")


if __name__ == "__main__":
    main()
