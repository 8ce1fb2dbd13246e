"""Object storage (S3 API: SeaweedFS locally, MinIO in compose) through the minio client.

The minio client is synchronous; calls run in a thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import io
from urllib.parse import urlparse

from minio import Minio
from opentelemetry import trace

from portal_runtime.settings import ServiceSettings

tracer = trace.get_tracer(__name__)


class ObjectStore:
    def __init__(self, settings: ServiceSettings, bucket: str | None = None) -> None:
        url = urlparse(settings.s3_endpoint)
        self.bucket = bucket or settings.s3_bucket
        self.client = Minio(
            url.netloc,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=url.scheme == "https",
            region=settings.s3_region,
        )

    async def ensure_bucket(self) -> None:
        def _ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await asyncio.to_thread(_ensure)

    async def ping(self) -> None:
        exists = await asyncio.to_thread(self.client.bucket_exists, self.bucket)
        if not exists:
            raise RuntimeError(f"bucket {self.bucket!r} does not exist")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        with tracer.start_as_current_span(
            "s3.put_object", attributes={"aws.s3.bucket": self.bucket, "aws.s3.key": key}
        ):
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

        with tracer.start_as_current_span(
            "s3.get_object", attributes={"aws.s3.bucket": self.bucket, "aws.s3.key": key}
        ):
            return await asyncio.to_thread(_get)
