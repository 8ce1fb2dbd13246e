"""Object storage (S3 API: SeaweedFS locally, MinIO in compose) through the minio client.

The minio client is synchronous; calls run in a thread so they never block the event loop.
Each call is a client span named like the AWS SDK's (``S3.PutObject``) with the conventions'
``rpc.*``, ``aws.s3.*`` and ``server.*`` attributes.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from minio import Minio
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from portal_runtime.settings import ServiceSettings

tracer = trace.get_tracer(__name__)


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
        self.client = Minio(
            url.netloc,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=url.scheme == "https",
            region=settings.s3_region,
        )

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
            await asyncio.to_thread(
                self.client.put_object,
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
            )

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
