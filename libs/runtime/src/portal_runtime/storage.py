"""Object storage (S3 API: SeaweedFS locally, MinIO in compose) through the minio clients.

Writes, the hot path (the raw archive's packs, every stored image), go through
miniopy-async, minio's port to asyncio: on the event loop, over pooled connections, with
neither a thread hop per call nor the GIL traffic of a worker thread. Reads, bucket checks and
``client`` (which callers use for what this class does not wrap: ``stat_object``, minio's
``S3Error`` codes) stay on the synchronous minio client, run in a thread. Each call is a client
span named like the AWS SDK's (``S3.PutObject``) with the conventions' ``rpc.*``, ``aws.s3.*``
and ``server.*`` attributes.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from minio import Minio
from miniopy_async.api import Minio as AsyncMinio
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from portal_runtime.settings import ServiceSettings

tracer = trace.get_tracer(__name__)


class ObjectStoreUnavailable(ConnectionError):
    """A write that failed, whatever the client or the server said (an OSError, as a lost
    connection is: callers treat both as the store being away)."""


class ObjectStore:
    def __init__(self, settings: ServiceSettings, bucket: str | None = None) -> None:
        if not settings.s3_access_key or not settings.s3_secret_key.get_secret_value():
            raise ValueError(
                f"{settings.service_name} stores objects: set S3_ACCESS_KEY and S3_SECRET_KEY "
                "(its own key, limited to its buckets)"
            )
        url = urlparse(settings.s3_endpoint)
        self.bucket = bucket or settings.s3_bucket
        self._server = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
        # Both clients take the same arguments.
        self._client_args: dict[str, Any] = {
            "endpoint": url.netloc,
            "access_key": settings.s3_access_key,
            "secret_key": settings.s3_secret_key.get_secret_value(),
            "secure": url.scheme == "https",
            "region": settings.s3_region,
        }
        self.client = Minio(**self._client_args)
        # The asyncio client's connections belong to the loop that opened them.
        self._writer: AsyncMinio | None = None
        self._writer_loop: asyncio.AbstractEventLoop | None = None

    def _async_client(self) -> AsyncMinio:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer_loop is not loop:
            self._writer = AsyncMinio(**self._client_args)
            self._writer_loop = loop
        return self._writer

    async def close(self) -> None:
        """Close the pooled connections of the writes (the app's end)."""
        writer, self._writer = self._writer, None
        if writer is not None and self._writer_loop is asyncio.get_running_loop():
            await writer.close_session()  # type: ignore[no-untyped-call]

    @contextmanager
    def _span(self, method: str, key: str | None = None) -> Iterator[Span]:
        attributes: dict[str, str | int] = {
            "rpc.system": "aws-api",
            "rpc.service": "S3",
            "rpc.method": method,
            "aws.s3.bucket": self.bucket,
            "server.address": self._server[0],
            "server.port": self._server[1],
        }
        if key is not None:
            attributes["aws.s3.key"] = key
        with tracer.start_as_current_span(
            f"S3.{method}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span

    async def ensure_bucket(self) -> None:
        def _ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        with self._span("CreateBucket"):
            await asyncio.to_thread(_ensure)

    async def ping(self) -> None:
        exists = await asyncio.to_thread(self.client.bucket_exists, self.bucket)
        if not exists:
            raise RuntimeError(f"bucket {self.bucket!r} does not exist")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._span("PutObject", key) as span:
            span.set_attribute("http.request.body.size", len(data))
            try:
                await self._async_client().put_object(
                    self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
                )
            except OSError:
                raise
            except Exception as exc:  # the client's and the server's errors alike
                raise ObjectStoreUnavailable(f"PutObject {key}: {exc!r}") from exc

    async def get(self, key: str) -> bytes:
        def _get() -> bytes:
            resp = self.client.get_object(self.bucket, key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        with self._span("GetObject", key):
            return await asyncio.to_thread(_get)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the object from ``offset`` (a ranged GET: one payload of a pack,
        without reading the others). A range past the object's end raises ``ValueError``."""
        if offset < 0 or length < 0:
            raise ValueError(f"no byte range of {length} bytes at {offset}")
        if length == 0:
            return b""  # an empty range is no HTTP Range at all

        def _get() -> bytes:
            resp = self.client.get_object(self.bucket, key, offset=offset, length=length)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        with self._span("GetObject", key) as span:
            span.set_attribute("http.request.header.range", f"bytes={offset}-{offset + length - 1}")
            data = await asyncio.to_thread(_get)
        if len(data) != length:  # the object ends before the range does
            raise ValueError(f"{key}: {len(data)} bytes at {offset}, not {length}")
        return data
