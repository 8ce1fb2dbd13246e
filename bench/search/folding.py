"""OpenSearch's CPU per indexed article with each folding filter: ``asciifolding`` (OpenSearch's)
against ``portal_asciifolding`` (the local stack node's table-driven twin, same tokens).

Two scratch indices with the search service's layout (``layout.index_definition``), one per
filter, take the same documents (a ~5 KB Vietnamese article, its words varied, as the search
consumer writes it) in alternating rounds (A B, then B A, ...) after one unmeasured round each;
each round is ``--docs`` documents in ``_bulk`` requests of ``--bulk``, a refresh after each
(as the consumer asks for), then a wait until no merge runs. The node's CPU over a round (user +
system time of its process, from ``/proc``), less what its JIT compiler threads used, divided by
the documents, is that filter's figure for the round.

Uses the OpenSearch of the stack at ``PORTAL_STACK_PORT_BASE``/``PORTAL_STACK_DATA_DIR`` if it
runs (the rest of the stack is not needed), else starts that node alone and stops it after
(default port base 27600, folder ``.stack-bench-folding/``). Deletes its indices at the end.
Prints figures, asserts nothing; ``--json PATH`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.load.dataset import PARAGRAPHS  # noqa: E402
from bench.pipeline.measure import _cpu_s, _jit_cpu_s  # noqa: E402
from portal_contracts.articles import ArticlePublished, NormalizedArticle, PublishedState  # noqa: E402
from portal_launcher.components.opensearch import OpenSearchComponent  # noqa: E402
from portal_launcher.settings import StackSettings  # noqa: E402
from portal_search.domain import document_for  # noqa: E402
from portal_search.layout import FAST_FOLDING, STOCK_FOLDING, index_definition  # noqa: E402

DEFAULT_PORT_BASE = "27600"
DEFAULT_DATA_DIR = ROOT / ".stack-bench-folding"
ARTICLE_BYTES = 4400  # the body; with title, summary and fields about 5 KB
NDJSON = {"content-type": "application/x-ndjson"}


def article_document() -> dict[str, Any]:
    """The document of one ~5 KB article (UTF-8 body), as the search consumer makes it."""
    paragraphs: list[str] = []
    while len("\n\n".join(paragraphs).encode()) < ARTICLE_BYTES:
        paragraphs.append(PARAGRAPHS[len(paragraphs) % len(PARAGRAPHS)])
    now = datetime.now(UTC)
    data = ArticlePublished(
        article_id=str(uuid.uuid4()),
        source="bao-nhan-dan",
        revision=1,
        state=PublishedState.PUBLISHED,
        slug="hoi-nghi-quan-triet-nghi-quyet",
        url_path="/bai-viet/hoi-nghi-quan-triet-nghi-quyet",
        published_at=now,
        updated_at=now,
        article=NormalizedArticle(
            title="Hội nghị quán triệt, triển khai thực hiện Nghị quyết Trung ương",
            summary=PARAGRAPHS[0],
            body_html="".join(f"<p>{p}</p>" for p in paragraphs),
            body_text="\n\n".join(paragraphs),
            section="tin-hoat-dong",
        ),
    )
    return document_for(data).body


def node_cpu_s(pid: int) -> float:
    """CPU seconds of the node so far, less its JIT compiler threads' (a one-off cost)."""
    return _cpu_s(pid) - _jit_cpu_s(pid)


class Scratch:
    """One scratch index with the service's layout and one folding filter."""

    def __init__(self, http: httpx.Client, folding: str, tag: str) -> None:
        self.http = http
        self.folding = folding
        self.name = f"zz_bench_fold_{folding}_{tag}"
        self.written = 0

    def create(self) -> None:
        body = index_definition(shards=1, replicas=0, folding=self.folding)
        # Refreshed by the bench after each _bulk, as the consumer asks for.
        body["settings"]["index"]["refresh_interval"] = "-1"
        self.http.put(f"/{self.name}", json=body).raise_for_status()

    def write(self, source: bytes, docs: int, bulk: int) -> None:
        for start in range(0, docs, bulk):
            lines = []
            for i in range(start, min(start + bulk, docs)):
                action = {"index": {"_id": f"{self.written + i}"}}
                lines += [json.dumps(action).encode(), source]
            r = self.http.post(
                f"/{self.name}/_bulk",
                content=b"\n".join(lines) + b"\n",
                headers=NDJSON,
                params={"filter_path": "errors"},
            )
            r.raise_for_status()
            if r.json().get("errors"):
                raise RuntimeError(f"_bulk into {self.name} failed: {r.text[:500]}")
            self.http.post(f"/{self.name}/_refresh").raise_for_status()
        self.written += docs

    def settle(self) -> None:
        """Wait until no merge of this index runs (its cost belongs to this round)."""
        while True:
            stats = self.http.get(f"/{self.name}/_stats/merge").json()
            if stats["_all"]["primaries"]["merges"]["current"] == 0:
                return
            time.sleep(0.1)

    def count(self) -> int:
        return int(self.http.get(f"/{self.name}/_count").json()["count"])

    def folded_hits(self) -> int:
        """Documents a folded search finds (the same in both, the tokens being the same)."""
        query = {"query": {"match": {"body_text": {"query": "dang", "analyzer": "vi_folded"}}}}
        r = self.http.post(f"/{self.name}/_count", json=query)
        return int(r.json()["count"])

    def delete(self) -> None:
        self.http.delete(f"/{self.name}")


def run(http: httpx.Client, pid: int, *, docs: int, rounds: int, bulk: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    indices = [Scratch(http, STOCK_FOLDING, tag), Scratch(http, FAST_FOLDING, tag)]
    source = json.dumps(article_document(), ensure_ascii=False).encode()
    per_doc: dict[str, list[float]] = {i.folding: [] for i in indices}
    try:
        for index in indices:
            index.create()
        for index in indices:  # warm-up: the node compiles the code of both filters
            index.write(source, docs, bulk)
            index.settle()
        for r in range(rounds):
            order = indices if r % 2 == 0 else indices[::-1]
            for index in order:
                before = node_cpu_s(pid)
                index.write(source, docs, bulk)
                index.settle()
                per_doc[index.folding].append((node_cpu_s(pid) - before) * 1000 / docs)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{f} {ms[-1]:.3f}" for f, ms in per_doc.items())
                + " CPU-ms/doc",
                flush=True,
            )
        counts = {i.folding: (i.count(), i.folded_hits()) for i in indices}
    finally:
        for index in indices:
            index.delete()
    stock, fast = per_doc[STOCK_FOLDING], per_doc[FAST_FOLDING]
    return {
        "docs_per_round": docs,
        "rounds": rounds,
        "bulk": bulk,
        "doc_bytes": len(source),
        "cpu_ms_per_doc": {
            f: {
                "rounds": [round(x, 4) for x in ms],
                "mean": round(statistics.mean(ms), 4),
                "median": round(statistics.median(ms), 4),
            }
            for f, ms in per_doc.items()
        },
        "ratio_fast_to_stock": round(statistics.mean(fast) / statistics.mean(stock), 4),
        "saved_ms_per_doc": round(statistics.mean(stock) - statistics.mean(fast), 4),
        "rounds_fast_lower": sum(1 for s, f in zip(stock, fast, strict=True) if f < s),
        "documents_and_folded_hits": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="documents per round and index")
    parser.add_argument("--rounds", type=int, default=8, help="measured rounds per index")
    parser.add_argument("--bulk", type=int, default=50, help="documents per _bulk")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    os.environ.setdefault("PORTAL_STACK_PORT_BASE", DEFAULT_PORT_BASE)
    os.environ.setdefault("PORTAL_STACK_DATA_DIR", str(DEFAULT_DATA_DIR))
    node = OpenSearchComponent(StackSettings())
    started = not node.is_running()
    if started:
        node.start()
        node.wait_ready()
    try:
        pid = node.pid()
        if pid is None:
            raise SystemExit("OpenSearch runs, but not as a process of this stack")
        with httpx.Client(base_url=node.endpoint(), timeout=120) as http:
            load = os.getloadavg()
            figures = run(http, pid, docs=args.docs, rounds=args.rounds, bulk=args.bulk)
            figures["loadavg_before"] = [round(x, 2) for x in load]
            figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if started:
            node.stop()
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    stock = figures["cpu_ms_per_doc"][STOCK_FOLDING]["mean"]
    fast = figures["cpu_ms_per_doc"][FAST_FOLDING]["mean"]
    print(
        f"OpenSearch CPU per {figures['doc_bytes']}-byte article: {STOCK_FOLDING} {stock:.3f} ms, "
        f"{FAST_FOLDING} {fast:.3f} ms (x{figures['ratio_fast_to_stock']:.2f}, "
        f"lower in {figures['rounds_fast_lower']} of {figures['rounds']} rounds)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
