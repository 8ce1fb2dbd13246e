"""The website's own static files (CSS, script, fonts, icon), served from memory.

Each file is read once at start-up and linked as ``/static/<name>?v=<content hash>``, so it can
be cached for a year as immutable: a new version is a new URL. Text files are also kept gzipped.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from portal_web.caching import Representation, strong_etag

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    media_type: str
    version: str
    representation: Representation


class Assets:
    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.files: dict[str, Asset] = {}
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            name = path.relative_to(root).as_posix()
            data = path.read_bytes()
            media = (
                _TYPES.get(path.suffix)
                or mimetypes.guess_type(name)[0]
                or "application/octet-stream"
            )
            compressible = media.startswith(("text/", "image/svg"))
            self.files[name] = Asset(
                media, strong_etag(data)[1:9], Representation.of(data, compress=compressible)
            )

    def url(self, name: str) -> str:
        return f"/static/{name}?v={self.files[name].version}"

    def respond(self, request: Request, name: str) -> Response:
        asset = self.files.get(name)
        if asset is None:
            return Response("Not found\n", status_code=404, media_type="text/plain")
        return asset.representation.respond(
            request,
            media_type=asset.media_type,
            cache_control=IMMUTABLE,
            headers={"Access-Control-Allow-Origin": "*"} if name.endswith(".woff2") else None,
        )
