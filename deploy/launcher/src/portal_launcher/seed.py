"""`portal seed`: load sources and site structure (data files) into the services, and demo data.

The files under deploy/seed/ are the single place where agencies, sub-sites and sections are
listed; this sends them to each owning service through its admin API, so a province list change is
an edit and a re-run, never a code change. Re-running is harmless (every call is an upsert).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from portal_contracts.articles import article_id_for
from portal_launcher.components.varnish import purge_edge
from portal_launcher.credentials import admin_token, create_private
from portal_launcher.services import service_port
from portal_launcher.settings import REPO_ROOT, StackSettings

SEED_DIR = REPO_ROOT / "deploy" / "seed"

# Demo agencies and accounts of `make run` (credentials are generated per data folder).
DEMO_KEY_SOURCES = (
    "tp-ha-noi",
    "bo-y-te",
    "bao-nhan-dan",
    "van-phong-trung-uong",
    "hoc-vien-chinh-tri-quoc-gia",
)
DEMO_KAFKA_SOURCE = "tp-ha-noi"
DEMO_USERS: tuple[tuple[str, str, str, str | None], ...] = (
    ("quantri", "admin", "Quản trị hệ thống", None),
    ("tongbientap", "chief_editor", "Tổng biên tập", None),
    ("bientap", "editor", "Biên tập viên", None),
    ("hanoi", "agency_publisher", "Thành ủy Hà Nội", "tp-ha-noi"),
)
DEMO_EDITOR = "tongbientap"  # approves the demo items marked for it, answers the demo question
DEMO_WAIT_S = 120.0


def load_seed(seed_dir: Path = SEED_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    site = yaml.safe_load((seed_dir / "site.yaml").read_text(encoding="utf-8"))
    sources = yaml.safe_load((seed_dir / "sources.yaml").read_text(encoding="utf-8"))
    codes = [s["code"] for s in sources["sources"]]
    if len(codes) != len(set(codes)):
        raise ValueError("sources.yaml lists a source code twice")
    known = {sec["code"] for block in site["blocks"] for sec in block["sections"]}
    for src in sources["sources"]:
        unknown = (set(src.get("sections", [])) | set(src.get("categories", {}).values())) - known
        if unknown:
            raise ValueError(f"source {src['code']}: unknown sections {sorted(unknown)}")
    return site, sources


class Seeder:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.http = httpx.Client(timeout=30.0)

    def url(self, service: str, path: str) -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, service)}{path}"

    def call(self, method: str, service: str, path: str, body: Any = None) -> Any:
        # Each service's admin API answers only to that service's own token.
        token = admin_token(self.settings, service)
        resp = self.http.request(
            method,
            self.url(service, path),
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {service}{path}: {resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else None

    def structure(self, site: dict[str, Any], sources: dict[str, Any]) -> int:
        standard = sources["standard_sections"]
        for src in sources["sources"]:
            code = src["code"]
            self.call(
                "PUT",
                "ingest",
                f"/admin/v1/sources/{code}",
                {
                    "name": src["name"],
                    "kind": src["kind"],
                    "sections": [*standard, *src.get("sections", [])],
                    "active": src.get("active", True),
                },
            )
            self.call(
                "PUT",
                "normalize",
                f"/admin/v1/sources/{code}/mapping",
                {
                    "categories": src.get("categories", {}),
                    "timezone": src.get("timezone", "Asia/Ho_Chi_Minh"),
                    "default_section": src.get("default_section"),
                },
            )
            self.call(
                "PUT",
                "moderation",
                f"/admin/v1/sources/{code}",
                {
                    "name": src["name"],
                    "kind": src["kind"],
                    "policy": src.get("policy", "pre-review"),
                },
            )
        self.call(
            "PUT",
            "publishing",
            "/admin/v1/site",
            {
                "blocks": site["blocks"],
                "standard_sections": standard,
                "subsites": [
                    {"code": s["code"], "name": s["name"], "kind": s["kind"]}
                    for s in sources["sources"]
                    if s.get("active", True)
                ],
            },
        )
        # Every cached page that shows section or sub-site names (the `site` surrogate key).
        purge_edge(self.settings, ["site"], hard=False)
        return len(sources["sources"])

    def demo_credentials(self) -> dict[str, Any]:
        """Issue demo keys and accounts once per data folder; later runs reuse them."""
        path = self.settings.data_dir / "demo-credentials.json"
        if path.exists():
            saved: dict[str, Any] = json.loads(path.read_text())
            return saved
        creds: dict[str, Any] = {"api_keys": {}, "users": {}, "kafka": {}}
        for source in DEMO_KEY_SOURCES:
            key = self.call("POST", "ingest", f"/admin/v1/sources/{source}/api-keys", {})
            creds["api_keys"][source] = key["api_key"]
        creds["kafka"] = self.call(
            "POST", "ingest", f"/admin/v1/sources/{DEMO_KAFKA_SOURCE}/kafka-credentials", {}
        )
        for username, role, display, agency in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            body: dict[str, Any] = {"password": password, "role": role, "display_name": display}
            if agency:
                body["source"] = agency
            self.call("PUT", "moderation", f"/admin/v1/users/{username}", body)
            creds["users"][username] = {"password": password, "role": role}
        if not create_private(path, json.dumps(creds, ensure_ascii=False, indent=2)):
            saved = json.loads(path.read_text())  # another seeder was first: its keys stand
            return saved
        return creds

    def demo_articles(self, creds: dict[str, Any]) -> int:
        articles = yaml.safe_load((SEED_DIR / "demo-articles.yaml").read_text(encoding="utf-8"))
        sent = 0
        for item in articles["articles"]:
            key = creds["api_keys"].get(item["source"]) or self.api_key(creds, item["source"])
            resp = self.http.put(
                self.url("ingest", f"/v1/articles/{item['external_id']}"),
                json={"content": item["content"]},
                headers={"Authorization": f"Bearer {key}"},
            )
            if resp.status_code >= 400:
                raise RuntimeError(f"demo article {item['external_id']}: {resp.text[:300]}")
            sent += 1
        return sent

    def api_key(self, creds: dict[str, Any], source: str) -> str:
        """A demo key for a source added to DEMO_KEY_SOURCES after the credentials were saved."""
        key: str = self.call("POST", "ingest", f"/admin/v1/sources/{source}/api-keys", {})[
            "api_key"
        ]
        creds["api_keys"][source] = key
        path = self.settings.data_dir / "demo-credentials.json"
        path.write_text(json.dumps(creds, ensure_ascii=False, indent=2))
        path.chmod(0o600)
        return key

    def editor(self, creds: dict[str, Any]) -> dict[str, str]:
        """Bearer header of the demo chief editor (the desk's JSON API)."""
        password = creds["users"][DEMO_EDITOR]["password"]
        token = self.call(
            "POST", "moderation", "/v1/auth/token", {"username": DEMO_EDITOR, "password": password}
        )["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def wait(self, what: str, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + DEMO_WAIT_S
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"demo seed: timed out waiting for {what}")
            time.sleep(0.5)

    def desk_get(self, headers: dict[str, str], path: str) -> dict[str, Any] | None:
        resp = self.http.get(self.url("moderation", path), headers=headers)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise RuntimeError(f"GET moderation{path}: {resp.status_code} {resp.text[:300]}")
        data: dict[str, Any] = resp.json()
        return data

    def desk_post(self, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
        resp = self.http.post(self.url("moderation", path), json=body, headers=headers)
        if resp.status_code >= 400:
            raise RuntimeError(f"POST moderation{path}: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def demo_approvals(self, creds: dict[str, Any]) -> int:
        """Approve, as the demo chief editor, the demo articles marked ``approve: true``."""
        articles = yaml.safe_load((SEED_DIR / "demo-articles.yaml").read_text(encoding="utf-8"))
        wanted = [
            article_id_for(a["source"], a["external_id"])
            for a in articles["articles"]
            if a.get("approve")
        ]
        headers = self.editor(creds)
        for article_id in wanted:
            item = self.wait(
                f"demo article {article_id} in the review queue",
                lambda aid=article_id: self.desk_get(headers, f"/v1/items/{aid}"),  # type: ignore[misc]
            )
            if item["state"] == "pending":
                self.desk_post(
                    headers, f"/v1/items/{article_id}/approve", {"revision": item["revision"]}
                )
        return len(wanted)

    def demo_engagement(self, creds: dict[str, Any]) -> None:
        """A scheduled dialogue, a draft open for feedback, an answered question, a thread."""
        data = yaml.safe_load((SEED_DIR / "demo-engagement.yaml").read_text(encoding="utf-8"))
        now = datetime.now(UTC).replace(microsecond=0)
        d = data["dialogue"]
        starts = (now + timedelta(days=d["starts_in_days"])).replace(minute=0, second=0)
        self.call(
            "PUT",
            "engagement",
            f"/admin/v1/dialogues/{d['code']}",
            {
                "title": d["title"],
                "topic": d["topic"],
                "description": d["description"].strip(),
                "guests": d["guests"],
                "questions_open_at": (now - timedelta(hours=1)).isoformat(),
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=d["duration_hours"])).isoformat(),
            },
        )
        doc = data["document"]
        self.call(
            "PUT",
            "engagement",
            f"/admin/v1/feedback-documents/{doc['code']}",
            {
                "title": doc["title"],
                "summary": doc["summary"].strip(),
                "requested_by": doc["requested_by"],
                "sections": [{**s, "text": s["text"].strip()} for s in doc["sections"]],
                "opens_at": (now - timedelta(days=1)).isoformat(),
                "deadline": (now + timedelta(days=doc["deadline_in_days"])).isoformat(),
            },
        )
        q, t = data["question"], data["thread"]
        question = self.submit(
            "/v1/qa/questions",
            {k: q[k] for k in ("topic", "agency", "title", "body", "display_name")},
            q["idempotency_key"],
        )
        thread = self.submit(
            f"/v1/forum/topics/{t['topic']}/threads",
            {k: t[k] for k in ("title", "body", "display_name")},
            t["idempotency_key"],
        )
        headers = self.editor(creds)
        # Each step as an editor takes it, from wherever a previous run left the item.
        steps = {
            "pending": ("approve", {}),
            "accepted": ("route", {"agency": q["agency"]}),
            "routed": ("answer", {"answer": q["answer"].strip(), "answered_by": q["answered_by"]}),
            "answered": ("publish", {}),
        }
        for _ in range(len(steps)):
            item = self.wait(
                "the demo question in the desk",
                lambda: self.desk_get(headers, f"/v1/submissions/{question}"),
            )
            if item["state"] not in steps:
                break
            action, body = steps[item["state"]]
            self.desk_post(
                headers,
                f"/v1/submissions/{question}/{action}",
                {"revision": item["revision"], **body},
            )
        item = self.wait(
            "the demo thread in the desk",
            lambda: self.desk_get(headers, f"/v1/submissions/{thread}"),
        )
        if item["state"] == "pending":
            self.desk_post(
                headers, f"/v1/submissions/{thread}/approve", {"revision": item["revision"]}
            )

    def submit(self, path: str, body: dict[str, Any], idempotency_key: str) -> str:
        """A reader's submission (the same key again stores nothing new); its id."""
        resp = self.http.post(
            self.url("engagement", path), json=body, headers={"Idempotency-Key": idempotency_key}
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"POST engagement{path}: {resp.status_code} {resp.text[:300]}")
        receipt_id: str = resp.json()["id"]
        return receipt_id


def seed(settings: StackSettings, demo: bool, say: Any = print) -> dict[str, Any] | None:
    site, sources = load_seed()
    seeder = Seeder(settings)
    count = seeder.structure(site, sources)
    say(f"  seed: {count} sources and {len(site['blocks'])} blocks loaded")
    if not demo:
        return None
    creds = seeder.demo_credentials()
    sent = seeder.demo_articles(creds)
    say(f"  seed: {sent} demo articles pushed through the partner API")
    approved = seeder.demo_approvals(creds)
    say(f"  seed: {approved} of them approved in the desk by the demo chief editor")
    seeder.demo_engagement(creds)
    say("  seed: a scheduled dialogue, a draft open for feedback, an answered question, a thread")
    return creds
