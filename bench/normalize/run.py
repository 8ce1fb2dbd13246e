"""Normalize benchmark: text-only articles and images per second per core, side by side with
bare baselines.

The mix: ~5 KB of partner HTML per article (paragraphs, a heading, a link, inline fonts and
styles, empty paragraphs), a third of the articles with a legacy-encoded run (TCVN3 under
.VnTime, VNI under VNI-Times, or a UTF-8-mojibake title). Image articles add two images each (a
listed 1600x1067 photo and a body chart in an image table; every file distinct, so each is
fetched, checked, stripped and stored anew) served by a local HTTP server in its own process.

It runs the normalize service as its own process on the local stack (Kafka, PostgreSQL, S3 on
its own ports and folder; started here unless already running, stopped after), produces the
articles to article.ingested and waits for every article.normalized. Per core = articles (or
images) / CPU-seconds of normalize: the service process and its image workers. Three runs:
1. text-only articles;
2. articles with two images each: an image costs (run 2 - run 1 per article) / 2;
3. every rendition of some of those images asked of normalize (``/v1/renditions/...``, what
   publishing's /media/ does on a first request): CPU per rendition.
Then, on one core in this process: each step alone, and the baselines: the same HTML through a
bare sanitiser and JSON round trip (text), and the same images decoded, resized and encoded to
the same four WebP widths with bare Pillow (what ingest did before) and bare libvips.
Prints figures, asserts nothing; ``--json PATH`` writes them.

    .tools/bin/uv run python bench/normalize/run.py --articles 300 --image-articles 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27200")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench-normalize"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

import httpx  # noqa: E402
import psutil  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from portal_contracts.articles import (  # noqa: E402
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.codec import encode  # noqa: E402
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED  # noqa: E402
from portal_launcher import stack as launcher  # noqa: E402
from portal_launcher.components.kafka import admin_client_options  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402

SOURCE = "bench-normalize"
WORDS_TEXT = (
    "Đảng Cộng sản Việt Nam lãnh đạo Nhà nước và xã hội tiếp tục đẩy mạnh công tác xây dựng "
    "chỉnh đốn Đảng hệ thống chính trị trong sạch vững mạnh phát huy sức mạnh đại đoàn kết toàn "
    "dân tộc thực hiện thắng lợi các mục tiêu phát triển kinh tế xã hội Hội nghị Ban Chấp hành "
    "Trung ương khóa XIII thảo luận quyết định nhiều nội dung quan trọng tỉnh ủy huyện ủy đảng "
    "viên cán bộ nhân dân chính sách pháp luật đầu tư công an sinh giáo dục y tế văn hóa"
)
WORDS = WORDS_TEXT.split()
TCVN3_RUN = "Ban Th­êng vô TØnh ñy häp phiªn th­êng kú, th¶o luËn nhiÒu néi dung quan träng."
VNI_RUN = "Ñaûng boä tænh laõnh ñaïo toaøn dieän coâng taùc xaây döïng Ñaûng."


def photo(width: int, height: int, seed: int) -> bytes:
    rng = random.Random(seed)
    im = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(250):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(20, 180)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + r, y + r), fill=colour)
    im = Image.blend(
        im.filter(ImageFilter.GaussianBlur(2)),
        Image.effect_noise((width, height), 12).convert("RGB"),
        0.15,
    )
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def chart(seed: int) -> bytes:
    rng = random.Random(seed)
    im = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(im)
    for i in range(12):
        h = rng.randrange(40, 440)
        draw.rectangle((40 + i * 60, 480 - h, 80 + i * 60, 480), fill=(200, 30 + i * 15, 40))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(14, 24))).capitalize() + "."


def article(i: int, run: str, base_url: str, rng: random.Random, *, images: bool) -> ArticleContent:
    paragraphs = [" ".join(sentence(rng) for _ in range(3)) for _ in range(12)]
    kind = i % 6  # 0: TCVN3 run, 2: VNI run, 4: mojibake title; others clean
    if kind == 0:
        paragraphs[2] = f'<font face=".VnTime">{TCVN3_RUN}</font> ' + paragraphs[2]
    if kind == 2:
        paragraphs[4] = f'<span style="font-family:VNI-Times">{VNI_RUN}</span> ' + paragraphs[4]
    title = f"Hội nghị sơ kết công tác xây dựng Đảng số {i} ({run})"
    if kind == 4:
        title = title.encode("utf-8").decode("cp1252", errors="replace")
    figure = (
        f'<table class="image" align="center"><tr><td><img src="{base_url}/{run}-{i}-b.png" '
        'alt="Biểu đồ"></td></tr><tr><td class="caption"><em>Kết quả sáu tháng. Ảnh: PV</em>'
        "</td></tr></table>"
        if images
        else ""
    )
    body = (
        f'<div class="noi-dung" style="font-family:Arial"><p style="text-align:justify">'
        f"{paragraphs[0]}</p><p>&nbsp;</p><h3><b>Những kết quả nổi bật</b></h3>"
        + "".join(
            f'<p style="font-size:13pt"><font color="#333">{p}</font></p>' for p in paragraphs[1:5]
        )
        + figure
        + "".join(f"<p>{p}</p>" for p in paragraphs[5:])
        + '<p>Xem thêm: <a href="/tin/lien-quan.html" target="_blank">tin liên quan</a></p>'
        "<p><strong>Minh Anh</strong></p></div>"
    )
    listed = [{"url": f"{base_url}/{run}-{i}-a.jpg", "caption": "Quang cảnh hội nghị"}]
    return ArticleContent(
        title=title,
        body_html=body,
        section="ct-tin-tuc-hoat-dong",
        canonical_url="https://tinh.example.vn/tin/1.html",
        published_at=datetime(2025, 3, 1, 8, 30),
        images=listed if images else [],
    )


PHOTO_SIZE = (1600, 1067)


def write_images(folder: Path, run: str, n: int) -> list[bytes]:
    photos = [photo(*PHOTO_SIZE, s) for s in range(3)]
    charts = [chart(s) for s in range(3)]
    written = []
    for i in range(n):
        # A unique trailer makes every file distinct (stored anew); normalize cuts it off.
        a = photos[i % 3] + uuid.uuid4().bytes
        b = charts[i % 3]
        # PNG: distinct by a text chunk before IEND (normalize strips it).
        text = b"Comment\x00" + f"bench {run} {i}".encode()
        chunk = len(text).to_bytes(4, "big") + b"tEXt" + text
        chunk += zlib.crc32(chunk[4:]).to_bytes(4, "big")
        b = b[:-12] + chunk + b[-12:]
        (folder / f"{run}-{i}-a.jpg").write_bytes(a)
        (folder / f"{run}-{i}-b.png").write_bytes(b)
        written += [a, b]
    return written


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def produce_and_wait(
    settings: StackSettings, events: list[ArticleIngestedEvent], timeout_s: float
) -> tuple[float, float, dict[str, dict[str, Any]]]:
    """Produce ``events``; wait for their article.normalized. The normalized events by id."""
    wanted = {e.subject for e in events}
    consumer = AIOKafkaConsumer(
        ARTICLE_NORMALIZED.name,
        **admin_client_options(settings),
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=500)  # be assigned before producing
    for tp in consumer.assignment():
        await consumer.seek_to_end(tp)
    producer = AIOKafkaProducer(**admin_client_options(settings), acks="all")
    await producer.start()
    start = time.monotonic()
    try:
        for event in events:
            await producer.send(ARTICLE_INGESTED.name, encode(event), key=event.subject.encode())
        await producer.flush()
        seen: dict[str, dict[str, Any]] = {}
        deadline = start + timeout_s
        while wanted - seen.keys() and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key and r.key.decode() in wanted and r.value:
                        seen[r.key.decode()] = json.loads(r.value)
        return start, time.monotonic(), seen
    finally:
        await producer.stop()
        await consumer.stop()


def events_for(run: str, n: int, base_url: str, *, images: bool) -> list[ArticleIngestedEvent]:
    rng = random.Random(run)
    events = []
    for i in range(n):
        ext = f"{run}-{i}"
        aid = article_id_for(SOURCE, ext)
        events.append(
            ArticleIngestedEvent(
                producer="bench",
                subject=aid,
                data=ArticleIngested(
                    article_id=aid,
                    source=SOURCE,
                    external_id=ext,
                    revision=1,
                    action=ArticleAction.UPSERT,
                    channel=Channel.REST,
                    received_at=datetime.now(UTC),
                    content=article(i, run, base_url, rng, images=images),
                ),
            )
        )
    return events


def service_cpu_s(proc: psutil.Process) -> float:
    """CPU seconds of the service and its image workers (live ones, and those it reaped)."""
    t = proc.cpu_times()
    total = float(t.user + t.system + t.children_user + t.children_system)
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            c = child.cpu_times()
            total += c.user + c.system
    return total


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    fn()  # warm
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n * 1000


def one_core(run: str, base_url: str, files: list[bytes]) -> dict[str, float]:
    """Each step alone and the bare baselines, on one core (this process): ms each."""
    import nh3
    import pyvips

    from portal_normalize.domain import ImageOutcome, finish, prepare
    from portal_normalize.imaging import process_image, render
    from portal_normalize.similarity import fingerprint_text, signature

    pyvips.cache_set_max(0)
    pyvips.concurrency_set(1)
    contents = [e.data.content for e in events_for(run + "-b", 60, base_url, images=False)]
    texts = [c for c in contents if c is not None]
    raws = [encode(e) for e in events_for(run + "-b", 60, base_url, images=False)]
    drafts = [prepare(c) for c in texts]
    outcomes: dict[str, ImageOutcome] = {}
    finished = [finish(d, outcomes) for d in drafts]
    photos = files[0::2][:6]
    widths = (320, 640, 1024, 1600)
    stored = [process_image(f, max_pixels=40_000_000, widths=widths) for f in photos]

    def pillow_four_webp(data: bytes) -> int:
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", (1601, 1068))
        im.load()
        current: Image.Image = im
        for w in sorted(widths, reverse=True):
            h = round(im.height * w / im.width)
            if current.size != (w, h):
                current = current.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=3.0)
            current.save(io.BytesIO(), "WEBP", quality=80, method=3)
        return len(widths)

    def vips_four_webp(data: bytes) -> int:
        for w in widths:
            small = pyvips.Image.thumbnail_buffer(data, w, height=10_000_000, size="down")
            small.webpsave_buffer(Q=80, effort=3, keep="none")
        return len(widths)

    def renders(width: int) -> list[bytes]:
        return [render(p.original, width, max_pixels=40_000_000) for p in stored]

    n = len(texts)
    return {
        "prepare": per_call_ms(lambda: [prepare(c) for c in texts], 3) / n,
        "finish": per_call_ms(lambda: [finish(d, outcomes) for d in drafts], 3) / n,
        "signature": per_call_ms(
            lambda: [
                signature(fingerprint_text(r.article.title, r.article.body_text)) for r in finished
            ],
            3,
        )
        / n,
        "baseline_text": per_call_ms(
            lambda: [
                json.loads(raw) and nh3.clean(c.body_html)
                for raw, c in zip(raws, texts, strict=True)
            ],
            3,
        )
        / n,
        "image_ingest": per_call_ms(
            lambda: [process_image(f, max_pixels=40_000_000, widths=widths) for f in photos], 2
        )
        / len(photos),
        **{
            f"render_{w}": per_call_ms(functools.partial(renders, w), 2) / len(stored)
            for w in widths
        },
        "baseline_pillow_4_webp": per_call_ms(lambda: [pillow_four_webp(f) for f in photos], 1)
        / len(photos),
        "baseline_vips_4_webp": per_call_ms(lambda: [vips_four_webp(f) for f in photos], 1)
        / len(photos),
    }


def renditions_of(normalized: dict[str, dict[str, Any]], articles: int) -> list[str]:
    keys: list[str] = []
    for event in list(normalized.values())[:articles]:
        lead = (event["data"].get("article") or {}).get("lead_image") or {}
        keys += list((lead.get("renditions") or {}).values())
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--articles", type=int, default=300, help="text-only articles")
    parser.add_argument("--image-articles", type=int, default=100, help="articles, 2 images each")
    parser.add_argument("--rendition-images", type=int, default=20, help="images asked for all")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()

    settings = StackSettings()
    infra = launcher.infrastructure(settings)
    started_here = not all(c.is_running() for c in infra)
    print(f"stack: {settings.data_dir} (port base {os.environ['PORTAL_STACK_PORT_BASE']})")
    if started_here:
        launcher.stack_up(settings, say=lambda _: None)
    launcher.migrate(settings, say=lambda _: None)
    normalize = launcher.services(settings, only=("normalize",))[0]
    normalize.stop()  # restarted below with the image server allowed

    run = uuid.uuid4().hex[:8]
    folder = Path(tempfile.mkdtemp(prefix="bench-normalize-"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    os.environ["PORTAL_NORMALIZE_IMAGE_FETCH_ALLOW_HOSTS"] = f"127.0.0.1:{port}"
    warm = 12
    figures: dict[str, Any] = {}
    try:
        files = write_images(folder, run, args.image_articles + warm)
        launcher.services_up(settings, only=("normalize",), say=lambda _: None)
        pid = normalize.pid()
        assert pid is not None
        proc = psutil.Process(pid)
        image_events = events_for(run, args.image_articles + warm, base_url, images=True)
        text_events = events_for(run + "-t", args.articles, base_url, images=False)
        timeout = 120 + 5 * (args.articles + args.image_articles)
        load0 = os.getloadavg()
        asyncio.run(produce_and_wait(settings, image_events[:warm], 300))  # connections, caches

        cpu0 = service_cpu_s(proc)
        start, end, text_done = asyncio.run(produce_and_wait(settings, text_events, timeout))
        cpu_text = service_cpu_s(proc) - cpu0
        wall_text = end - start

        cpu0 = service_cpu_s(proc)
        start, end, image_done = asyncio.run(
            produce_and_wait(settings, image_events[warm:], timeout)
        )
        cpu_images = service_cpu_s(proc) - cpu0
        wall_images = end - start

        keys = renditions_of(image_done, args.rendition_images)
        cpu0 = service_cpu_s(proc)
        with httpx.Client(base_url=normalize.endpoint(), timeout=120) as http:
            made = sum(http.get(f"/v1/renditions/{k}").status_code == 200 for k in keys)
        cpu_renditions = service_cpu_s(proc) - cpu0
        load1 = os.getloadavg()
        steps = one_core(run, base_url, files)
    finally:
        normalize.stop()
        server.terminate()
        server.wait(timeout=10)
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        if started_here and not args.keep:
            launcher.stack_down(settings, say=lambda _: None)

    n_text, n_img = len(text_done), len(image_done)
    text_ms = cpu_text / max(1, n_text) * 1000
    article_with_images_ms = cpu_images / max(1, n_img) * 1000
    image_ms = max(0.0, article_with_images_ms - text_ms) / 2
    rendition_ms = cpu_renditions / max(1, made) * 1000
    renditions_per_image = made / max(1, len(keys)) * 4 if keys else 4
    image_with_renditions_ms = image_ms + rendition_ms * renditions_per_image
    figures = {
        "cores": os.cpu_count(),
        "load_average_before_after": [round(load0[0], 1), round(load1[0], 1)],
        "html_bytes_per_article": round(
            sum(len(e.data.content.body_html.encode()) for e in text_events if e.data.content)
            / len(text_events)
        ),
        "legacy_share": "1/2 (TCVN3 1/6, VNI 1/6, mojibake title 1/6)",
        "text": {
            "articles": n_text,
            "cpu_ms_per_article": round(text_ms, 2),
            "articles_per_s_per_core": round(1000 / text_ms, 1) if text_ms else None,
            "wall_s": round(wall_text, 1),
        },
        "images": {
            "articles": n_img,
            "images": 2 * n_img,
            "image_bytes_each": round(sum(map(len, files)) / len(files)),
            "cpu_ms_per_image": round(image_ms, 2),
            "images_per_s_per_core": round(1000 / image_ms, 1) if image_ms else None,
            "wall_s": round(wall_images, 1),
        },
        "renditions": {
            "made": made,
            "cpu_ms_each": round(rendition_ms, 2),
            "cpu_ms_per_image_if_all_four_asked": round(image_with_renditions_ms, 2),
            "images_per_s_per_core_if_all_four_asked": round(1000 / image_with_renditions_ms, 1),
        },
        "one_core_ms": {k: round(v, 3) for k, v in steps.items()},
        "ratios": {
            "text_vs_bare_sanitise_json": round(
                (steps["prepare"] + steps["finish"] + steps["signature"]) / steps["baseline_text"],
                1,
            ),
            "pillow_4_webp_vs_image_ingest": round(
                steps["baseline_pillow_4_webp"] / steps["image_ingest"], 1
            ),
            "vips_4_webp_vs_image_ingest": round(
                steps["baseline_vips_4_webp"] / steps["image_ingest"], 1
            ),
        },
    }
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    s = steps
    print(
        f"\ntext-only: {n_text} articles, {text_ms:.2f} CPU-ms each"
        f" -> {1000 / text_ms if text_ms else 0:.0f} articles/s per core (service, with Kafka, DB)"
        f"\nimages:    {2 * n_img} images, {image_ms:.2f} CPU-ms each at ingest"
        f" -> {1000 / image_ms if image_ms else 0:.0f} images/s per core"
        f"\n           a rendition on first request {rendition_ms:.1f} CPU-ms"
        f" ({made} made); all four asked: {image_with_renditions_ms:.1f} ms per image"
        f"\none core, this process (ms): prepare {s['prepare']:.2f}, finish {s['finish']:.2f},"
        f" signature {s['signature']:.2f} | bare sanitise+JSON {s['baseline_text']:.2f}"
        f"\n  image check+strip {s['image_ingest']:.1f} | renditions "
        + ", ".join(f"{w}: {s[f'render_{w}']:.1f}" for w in (320, 640, 1024, 1600))
        + f"\n  bare Pillow decode+4 WebP {s['baseline_pillow_4_webp']:.1f}"
        f" | bare libvips 4 WebP {s['baseline_vips_4_webp']:.1f}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
