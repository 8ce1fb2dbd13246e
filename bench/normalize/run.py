"""Normalize benchmark: articles per second per core on a realistic mix.

The mix: ~5 KB of partner HTML per article (paragraphs, a heading, an image table with a
caption, a link, inline fonts and styles, empty paragraphs), a third of the articles with a
legacy-encoded run (TCVN3 under .VnTime, VNI under VNI-Times, or a UTF-8-mojibake title), and
two images each (a listed photo and a body chart/photo, every file distinct so each is
fetched, decoded, stripped and rendered anew) served by a local HTTP server in its own process.

It runs the normalize service as its own process on the local stack (Kafka, PostgreSQL, S3 on
its own ports and folder; started here unless already running, stopped after), produces the
articles to article.ingested and waits for every article.normalized. Per core = articles /
CPU-seconds of the normalize process (all its threads). A breakdown per step is measured in
this process on one core. Prints figures; asserts nothing.

    .tools/bin/uv run python bench/normalize/run.py --articles 200
"""

from __future__ import annotations

import argparse
import asyncio
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27200")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench-normalize"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

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


def article(i: int, run: str, base_url: str, rng: random.Random) -> ArticleContent:
    paragraphs = [" ".join(sentence(rng) for _ in range(3)) for _ in range(12)]
    kind = i % 6  # 0: TCVN3 run, 2: VNI run, 4: mojibake title; others clean
    if kind == 0:
        paragraphs[2] = f'<font face=".VnTime">{TCVN3_RUN}</font> ' + paragraphs[2]
    if kind == 2:
        paragraphs[4] = f'<span style="font-family:VNI-Times">{VNI_RUN}</span> ' + paragraphs[4]
    title = f"Hội nghị sơ kết công tác xây dựng Đảng số {i} ({run})"
    if kind == 4:
        title = title.encode("utf-8").decode("cp1252", errors="replace")
    body = (
        f'<div class="noi-dung" style="font-family:Arial"><p style="text-align:justify">'
        f"{paragraphs[0]}</p><p>&nbsp;</p><h3><b>Những kết quả nổi bật</b></h3>"
        + "".join(
            f'<p style="font-size:13pt"><font color="#333">{p}</font></p>' for p in paragraphs[1:5]
        )
        + f'<table class="image" align="center"><tr><td><img src="{base_url}/{run}-{i}-b.png" '
        'alt="Biểu đồ"></td></tr><tr><td class="caption"><em>Kết quả sáu tháng. Ảnh: PV</em>'
        "</td></tr></table>"
        + "".join(f"<p>{p}</p>" for p in paragraphs[5:])
        + '<p>Xem thêm: <a href="/tin/lien-quan.html" target="_blank">tin liên quan</a></p>'
        "<p><strong>Minh Anh</strong></p></div>"
    )
    return ArticleContent(
        title=title,
        body_html=body,
        section="ct-tin-tuc-hoat-dong",
        canonical_url="https://tinh.example.vn/tin/1.html",
        published_at=datetime(2025, 3, 1, 8, 30),
        images=[{"url": f"{base_url}/{run}-{i}-a.jpg", "caption": "Quang cảnh hội nghị"}],
    )


def write_images(folder: Path, run: str, n: int) -> int:
    photos = [photo(1600, 1067, s) for s in range(3)]
    charts = [chart(s) for s in range(3)]
    total = 0
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
        total += len(a) + len(b)
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def produce_and_wait(
    settings: StackSettings, events: list[ArticleIngestedEvent], timeout_s: float
) -> tuple[float, float, int]:
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
        seen: set[str] = set()
        deadline = start + timeout_s
        while wanted - seen and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key and r.key.decode() in wanted:
                        seen.add(r.key.decode())
        return start, time.monotonic(), len(seen)
    finally:
        await producer.stop()
        await consumer.stop()


def events_for(run: str, n: int, base_url: str) -> list[ArticleIngestedEvent]:
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
                    content=article(i, run, base_url, rng),
                ),
            )
        )
    return events


def breakdown(folder: Path, run: str, base_url: str) -> dict[str, float]:
    """Each step alone on one core (this process): ms per article or per image."""
    from portal_normalize.domain import ImageOutcome, finish, prepare
    from portal_normalize.imaging import process_image
    from portal_normalize.similarity import fingerprint_text, signature

    contents = [e.data.content for e in events_for(run + "-b", 30, base_url)]
    t = time.process_time()
    drafts = [prepare(c) for c in contents if c is not None]
    prep = (time.process_time() - t) / len(drafts) * 1000
    files = sorted(folder.glob(f"{run}-*"))[:20]
    t = time.process_time()
    for f in files:
        process_image(f.read_bytes(), max_pixels=40_000_000, widths=(320, 640, 1024, 1600))
    img = (time.process_time() - t) / len(files) * 1000
    outcomes = {
        c.url: ImageOutcome(c.url, object_key="k", width=1600, height=1067, renditions={320: "r"})
        for d in drafts
        for c in d.images
    }
    t = time.process_time()
    finished = [finish(d, outcomes) for d in drafts]
    fin = (time.process_time() - t) / len(drafts) * 1000
    t = time.process_time()
    for r in finished:
        signature(fingerprint_text(r.article.title, r.article.body_text))
    sig = (time.process_time() - t) / len(finished) * 1000
    html = sum(len(c.body_html.encode()) for c in contents if c) / len(contents)
    return {"prepare": prep, "image": img, "finish": fin, "signature": sig, "html_bytes": html}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200)
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
    try:
        warm = 12
        image_bytes = write_images(folder, run, args.articles + warm)
        launcher.services_up(settings, only=("normalize",), say=lambda _: None)
        pid = normalize.pid()
        assert pid is not None
        proc = psutil.Process(pid)
        all_events = events_for(run, args.articles + warm, base_url)
        asyncio.run(produce_and_wait(settings, all_events[:warm], 300))  # connections, caches
        cpu0 = proc.cpu_times()
        load0 = os.getloadavg()
        start, end, done = asyncio.run(
            produce_and_wait(settings, all_events[warm:], 120 + 5 * args.articles)
        )
        cpu1 = proc.cpu_times()
        load1 = os.getloadavg()
        parts = breakdown(folder, run, base_url)
    finally:
        normalize.stop()
        server.terminate()
        server.wait(timeout=10)
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        if started_here and not args.keep:
            launcher.stack_down(settings, say=lambda _: None)

    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    wall = end - start
    print(
        json.dumps(
            {
                "articles": done,
                "html_bytes_per_article": round(parts["html_bytes"]),
                "images_per_article": 2,
                "image_bytes_per_article": round(image_bytes / (args.articles + warm)),
                "legacy_share": "1/2 (TCVN3 1/6, VNI 1/6, mojibake title 1/6)",
                "cores": os.cpu_count(),
                "load_average_before_after": [round(load0[0], 1), round(load1[0], 1)],
            },
            ensure_ascii=False,
        )
    )
    print(f"  wall clock            {wall:8.1f} s  -> {done / wall:6.2f} articles/s (one process)")
    print(f"  normalize CPU         {cpu:8.1f} s  -> {done / cpu:6.2f} articles/s per core")
    print(f"  CPU per article       {cpu / done * 1000:8.0f} ms")
    print("  one core, per step (this process):")
    print(f"    text+markup+metadata {parts['prepare']:7.1f} ms/article")
    print(f"    image check+strip+4 WebP renditions {parts['image']:7.1f} ms/image")
    print(f"    rewrite+lead+report  {parts['finish']:7.1f} ms/article")
    print(f"    near-dup signature   {parts['signature']:7.1f} ms/article")


if __name__ == "__main__":
    main()
