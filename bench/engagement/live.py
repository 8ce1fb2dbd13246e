"""Live dialogue benchmark: an editor's answer -> every connected server-sent-events reader.

Starts the local stack and all six services on its own ports and folder (unless they already
answer), schedules a live dialogue, connects R readers to its live stream (each from its own
client address), submits N questions, then answers them one by one in moderation's desk and
prints, per answer and reader, the time from the answer request being sent to the event
arriving at the reader (percentiles and max), and the time from a question's submission to its
appearance in the editors' queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PORTAL_STACK_PORT_BASE", "27100")
os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(ROOT / ".stack-bench-engagement"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

from portal_launcher import stack as launcher  # noqa: E402
from portal_launcher.credentials import admin_token  # noqa: E402
from portal_launcher.seed import seed  # noqa: E402
from portal_launcher.services import service_port  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def url(settings: StackSettings, service: str, path: str) -> str:
    return f"http://{settings.host}:{service_port(settings, service)}{path}"


async def reader(
    http: httpx.AsyncClient,
    live_url: str,
    ip: str,
    arrivals: dict[str, list[float]],
    expected: int,
    all_connected: asyncio.Event,
    readers: int,
) -> None:
    seen = 0
    async with http.stream("GET", live_url, headers={"X-Forwarded-For": ip}) as resp:
        resp.raise_for_status()
        arrivals.setdefault("", []).append(time.time())  # connected
        if len(arrivals[""]) >= readers:
            all_connected.set()
        name, data = "message", ""
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                if name == "answer":
                    arrivals.setdefault(json.loads(data)["question_id"], []).append(time.time())
                    seen += 1
                    if seen >= expected:
                        return
                name, data = "message", ""


def reader_process(
    live_url: str,
    ips: list[str],
    expected: int,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """Readers in a process of their own, so that parsing streams never delays the clock."""

    async def go() -> dict[str, list[float]]:
        arrivals: dict[str, list[float]] = {}
        all_connected = asyncio.Event()
        limits = httpx.Limits(max_connections=len(ips) + 5)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, read=120.0), limits=limits
        ) as http:
            tasks = [
                asyncio.create_task(
                    reader(http, live_url, ip, arrivals, expected, all_connected, len(ips))
                )
                for ip in ips
            ]
            await all_connected.wait()
            out.put(("ready", len(ips)))
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
        return arrivals

    out.put(("done", asyncio.run(go())))


async def prepare(settings: StackSettings, questions: int) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {admin_token(settings, 'moderation')}"}
    engagement_admin = {"Authorization": f"Bearer {admin_token(settings, 'engagement')}"}
    async with httpx.AsyncClient(timeout=30.0) as http:
        username = f"bench{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        resp = await http.put(
            url(settings, "moderation", f"/admin/v1/users/{username}"),
            json={"password": password, "role": "editor", "display_name": "Bench"},
            headers=admin,
        )
        resp.raise_for_status()
        token = (
            await http.post(
                url(settings, "moderation", "/v1/auth/token"),
                json={"username": username, "password": password},
            )
        ).json()["access_token"]
        code = f"bench-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        (
            await http.put(
                url(settings, "engagement", f"/admin/v1/dialogues/{code}"),
                json={
                    "title": "Đối thoại đo hiệu năng",
                    "topic": "xay-dung-dang",
                    "starts_at": (now - timedelta(minutes=1)).isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                },
                headers=engagement_admin,
            )
        ).raise_for_status()
        editor = {"Authorization": f"Bearer {token}"}
        submitted: dict[str, float] = {}
        queued: dict[str, float] = {}
        for i in range(questions):
            resp = await http.post(
                url(settings, "engagement", f"/v1/dialogues/{code}/questions"),
                json={"body": f"Câu hỏi số {i} gửi tới khách mời của buổi đối thoại?"},
                headers={"X-Forwarded-For": f"10.9.{i // 250}.{i % 250 + 1}"},
            )
            resp.raise_for_status()
            submitted[resp.json()["id"]] = time.time()
        while len(queued) < len(submitted):
            for qid in submitted:
                if qid not in queued:
                    got = await http.get(
                        url(settings, "moderation", f"/v1/submissions/{qid}"), headers=editor
                    )
                    if got.status_code == 200:
                        queued[qid] = time.time()
            await asyncio.sleep(0.02)
    return {"code": code, "editor": editor, "submitted": submitted, "queued": queued}


async def answer_all(
    settings: StackSettings, editor: dict[str, str], ids: list[str]
) -> dict[str, float]:
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30.0) as http:
        for qid in ids:
            sent[qid] = time.time()
            (
                await http.post(
                    url(settings, "moderation", f"/v1/submissions/{qid}/answer"),
                    json={"revision": 0, "answer": "Xin trả lời bạn đọc.", "answered_by": "Khách"},
                    headers=editor,
                )
            ).raise_for_status()
            await asyncio.sleep(0.2)  # answers come one after another, as in a real session
    return sent


def run(settings: StackSettings, questions: int, readers: int, processes: int) -> dict[str, Any]:
    prepared = asyncio.run(prepare(settings, questions))
    live_url = url(settings, "engagement", f"/v1/dialogues/{prepared['code']}/live")
    ips = [f"10.8.{r // 250}.{r % 250 + 1}" for r in range(readers)]
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    workers = [
        mp.Process(target=reader_process, args=(live_url, ips[i::processes], questions, out))
        for i in range(processes)
        if ips[i::processes]
    ]
    for w in workers:
        w.start()
    connected = 0
    while connected < readers:
        kind, n = out.get(timeout=60)
        assert kind == "ready"
        connected += n
    sent = asyncio.run(answer_all(settings, prepared["editor"], list(prepared["submitted"])))
    arrivals: dict[str, list[float]] = {}
    for _ in workers:
        kind, found = out.get(timeout=300)
        for qid, ats in found.items():
            if qid:
                arrivals.setdefault(qid, []).extend(ats)
    for w in workers:
        w.join(timeout=10)
    return {**prepared, "sent": sent, "arrivals": arrivals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument(
        "--processes",
        type=int,
        default=4,
        help="reader processes (the readers' parsing in one "
        "process would otherwise be what is measured)",
    )
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
        result = run(settings, args.questions, args.readers, args.processes)
    finally:
        if started_here and not args.keep:
            launcher.stack_down(settings, say=lambda _: None)

    to_queue = [(result["queued"][q] - result["submitted"][q]) * 1000 for q in result["queued"]]
    live = [(at - result["sent"][q]) * 1000 for q, ats in result["arrivals"].items() for at in ats]
    expected = args.questions * args.readers
    print(
        f"questions: {args.questions}, live readers: {args.readers} in {args.processes} processes"
    )
    print(
        "submission -> editors' queue (ms): "
        f"p50 {percentile(to_queue, 50):.0f}  p95 {percentile(to_queue, 95):.0f}  "
        f"max {max(to_queue):.0f}"
    )
    print(
        f"answer -> live reader (ms), {len(live)}/{expected} deliveries: "
        f"p50 {percentile(live, 50):.0f}  p95 {percentile(live, 95):.0f}  "
        f"p99 {percentile(live, 99):.0f}  max {max(live):.0f}"
    )
    print(f"within one second: {sum(1 for v in live if v < 1000) / max(len(live), 1):.1%}")


if __name__ == "__main__":
    main()
