"""A local HTTP server for image tests: loopback only, started and stopped by the test."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import ExifTags, Image


def jpeg(width: int = 1200, height: int = 800, *, gps: bool = True, rotate: int = 1) -> bytes:
    """A photo-like JPEG with the metadata cameras write (maker, GPS, a comment)."""
    im = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS 5D"
    if rotate != 1:
        exif[ExifTags.Base.Orientation] = rotate
    if gps:
        exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitude: (21.0, 1.0, 30.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85, exif=exif, comment=b"camera owner: Nguyen Van A")
    return out.getvalue()


def png(width: int = 640, height: int = 360) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Nguyen Van A")
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (20, 120, 200, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (a cancelled or limited fetch) is expected here


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunked: bool = False


class ImageServer:
    """Routes path -> Route; counts hits per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                # The client may stop reading (a size limit): expected.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer()

            def _answer(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path, Route(404, b"not found"))
                if route.delay_s:
                    time.sleep(route.delay_s)
                self.send_response(route.status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                if route.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(route.body), 65536):
                        part = route.body[i : i + 65536]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def add(self, path: str, body: bytes = b"", **kwargs: object) -> str:
        self.routes[path] = Route(body=body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, status=status, headers={"Location": location})


@contextmanager
def image_server(setup: Callable[[ImageServer], None] | None = None) -> Iterator[ImageServer]:
    server = ImageServer()
    if setup:
        setup(server)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
