"""Secrets of one local stack: generated once per data folder, kept in files only its owner reads.

``<data dir>/secrets/stack.json`` holds the infrastructure's own accounts (PostgreSQL superuser,
Kafka operator, S3 administrator); ``<data dir>/secrets/<service>.json`` holds one service's
credentials and nothing else (its admin token, database role password, Kafka password, S3 key).
Nothing here has a default: a value that is missing is generated, never assumed.

Every file that holds a secret is created with mode 0600 by the call that creates it (never
written first and restricted afterwards), and replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from portal_launcher.settings import StackSettings

SECRETS_DIR = "secrets"
# The one shared admin token of earlier data folders: every service now has its own.
_LEGACY_SHARED_SECRETS = "secrets.json"


def new_secret() -> str:
    """URL-safe letters, digits, '-' and '_': safe in Kafka's JAAS and SCRAM syntax and in URLs."""
    return secrets.token_urlsafe(32)


def _private_temp(path: Path, text: str | bytes) -> Path:
    """A new file beside ``path`` with ``text``, created with mode 0600 (``mkstemp``)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_private(path: Path, text: str | bytes) -> None:
    """Write a file that holds a secret: 0600 from its creation, replaced atomically."""
    tmp = _private_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private(path: Path, text: str | bytes) -> bool:
    """Create ``path`` (0600) with ``text`` unless it exists; False when another writer was first.

    A hard link is atomic and refuses an existing name, so two processes that generate secrets
    for the same data folder at once agree on the first one written.
    """
    tmp = _private_temp(path, text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _load_or_create(path: Path, fresh: dict[str, str]) -> dict[str, str]:
    """The secrets in ``path``; missing keys are added from ``fresh`` (kept keys never change)."""
    if not path.exists():
        create_private(path, json.dumps(fresh, indent=2))
    data: dict[str, str] = json.loads(path.read_text())
    missing = {k: v for k, v in fresh.items() if k not in data}
    if missing:
        data.update(missing)
        write_private(path, json.dumps(data, indent=2))
    return data


def secrets_dir(settings: StackSettings) -> Path:
    return settings.data_dir / SECRETS_DIR


@dataclass(frozen=True)
class StackSecrets:
    """The infrastructure's own accounts (operators and the launcher; never a service's)."""

    postgres_password: str
    kafka_admin_password: str
    s3_admin_access_key: str
    s3_admin_secret_key: str


@dataclass(frozen=True)
class ServiceSecrets:
    """What one service may use, and nothing of another service's."""

    admin_token: str
    database_password: str
    kafka_password: str
    s3_access_key: str
    s3_secret_key: str


def _prepare(settings: StackSettings) -> Path:
    folder = secrets_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    (settings.data_dir / _LEGACY_SHARED_SECRETS).unlink(missing_ok=True)
    return folder


def stack_secrets(settings: StackSettings) -> StackSecrets:
    fresh = StackSecrets(
        postgres_password=new_secret(),
        kafka_admin_password=new_secret(),
        s3_admin_access_key=f"portal-admin-{secrets.token_hex(4)}",
        s3_admin_secret_key=new_secret(),
    )
    data = _load_or_create(_prepare(settings) / "stack.json", asdict(fresh))
    return StackSecrets(**{k: data[k] for k in asdict(fresh)})


def _check_owner(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise ValueError(f"not a service name: {name!r}")


def service_secrets(settings: StackSettings, service: str) -> ServiceSecrets:
    _check_owner(service)
    fresh = ServiceSecrets(
        admin_token=new_secret(),
        database_password=new_secret(),
        kafka_password=new_secret(),
        s3_access_key=f"portal-{service}-{secrets.token_hex(4)}",
        s3_secret_key=new_secret(),
    )
    data = _load_or_create(_prepare(settings) / f"{service}.json", asdict(fresh))
    return ServiceSecrets(**{k: data[k] for k in asdict(fresh)})


def named_secret(settings: StackSettings, owner: str, name: str) -> str:
    """One more secret of ``owner`` (a process or a component), in ``<owner>.json`` beside its
    others: the website's CSRF key, the edge's purge token, engagement's client-address salt."""
    _check_owner(owner)
    return _load_or_create(_prepare(settings) / f"{owner}.json", {name: new_secret()})[name]


def edge_purge_token(settings: StackSettings) -> str:
    """The bearer token the edge asks of a PURGE (the edge's and the purger's secret)."""
    return named_secret(settings, "edge", "purge_token")


def admin_token(settings: StackSettings, service: str) -> str:
    """The bearer token of ``service``'s admin API on this stack."""
    return service_secrets(settings, service).admin_token


def secret_files(settings: StackSettings) -> list[Path]:
    """Every file of this data folder that holds a secret (checked by the tests: mode 0600)."""
    files = sorted(secrets_dir(settings).glob("*.json"))
    for extra in (
        settings.data_dir / "demo-credentials.json",
        settings.data_dir / "kafka" / "server.properties",
        settings.data_dir / "s3" / "s3.json",
        settings.data_dir / "tls" / "ca-key.pem",
        settings.data_dir / "tls" / "kafka-server.pem",
    ):
        if extra.exists():
            files.append(extra)
    return files
