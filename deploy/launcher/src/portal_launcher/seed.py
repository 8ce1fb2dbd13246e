"""`portal seed`: load sources and site structure (data files) into the services, and demo data.

The files under deploy/seed/ are the single place where agencies, sub-sites and sections are
listed; this sends them to each owning service through its admin API, so a province list change is
an edit and a re-run, never a code change. Re-running is harmless (every call is an upsert).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import yaml

from portal_launcher.credentials import admin_token, create_private
from portal_launcher.services import service_port
from portal_launcher.settings import REPO_ROOT, StackSettings

SEED_DIR = REPO_ROOT / "deploy" / "seed"

# Demo agencies and accounts of `make run` (credentials are generated per data folder).
DEMO_KEY_SOURCES = ("tp-ha-noi", "bo-y-te", "bao-nhan-dan")
DEMO_KAFKA_SOURCE = "tp-ha-noi"
DEMO_USERS: tuple[tuple[str, str, str, str | None], ...] = (
    ("quantri", "admin", "Quản trị hệ thống", None),
    ("tongbientap", "chief_editor", "Tổng biên tập", None),
    ("bientap", "editor", "Biên tập viên", None),
    ("hanoi", "agency_publisher", "Thành ủy Hà Nội", "tp-ha-noi"),
)


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
            key = creds["api_keys"][item["source"]]
            resp = self.http.put(
                self.url("ingest", f"/v1/articles/{item['external_id']}"),
                json={"content": item["content"]},
                headers={"Authorization": f"Bearer {key}"},
            )
            if resp.status_code >= 400:
                raise RuntimeError(f"demo article {item['external_id']}: {resp.text[:300]}")
            sent += 1
        return sent


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
    return creds
