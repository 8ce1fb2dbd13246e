"""Secrets of a data folder: generated, never defaulted, and private from the moment they exist."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal_launcher import credentials
from portal_launcher.credentials import (
    create_private,
    service_secrets,
    stack_secrets,
    write_private,
)
from portal_launcher.settings import StackSettings


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: a file left to the umask would be world-readable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_file_is_private_before_it_holds_anything(
    tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []
    real_replace = os.replace

    def watching_replace(src: str | Path, dst: str | Path) -> None:
        # The moment the content has been written, before the file takes its name.
        seen.append((Path(src).read_text(), _mode(Path(src))))
        real_replace(src, dst)

    monkeypatch.setattr(credentials.os, "replace", watching_replace)
    target = tmp_path / "nested" / "secret.json"
    write_private(target, "s3cr3t")
    assert seen == [("s3cr3t", 0o600)]
    assert target.read_text() == "s3cr3t" and _mode(target) == 0o600
    assert _mode(target.parent) == 0o700
    write_private(target, "rotated")  # replaced whole, still private
    assert target.read_text() == "rotated" and _mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["secret.json"]  # no leftovers


def test_create_private_keeps_the_first_writer(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "once.json"
    assert create_private(target, "first") is True
    assert create_private(target, "second") is False
    assert target.read_text() == "first" and _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["once.json"]


def test_secrets_are_generated_per_service_and_kept(tmp_path: Path, open_umask: None) -> None:
    settings = StackSettings(data_dir=tmp_path)
    (tmp_path / "secrets.json").write_text(json.dumps({"admin_token": "shared-by-all"}))
    ingest, normalize = service_secrets(settings, "ingest"), service_secrets(settings, "normalize")
    assert ingest.admin_token != normalize.admin_token
    assert ingest.kafka_password != normalize.kafka_password
    assert ingest.database_password != normalize.database_password
    assert len(ingest.admin_token) >= 40
    # Stable across calls (and processes): generated once per data folder.
    assert service_secrets(settings, "ingest") == ingest
    assert stack_secrets(settings) == stack_secrets(settings)
    # The old shared token is gone; every file is the owner's alone.
    assert not (tmp_path / "secrets.json").exists()
    files = sorted((tmp_path / "secrets").iterdir())
    assert [f.name for f in files] == ["ingest.json", "normalize.json", "stack.json"]
    assert all(_mode(f) == 0o600 for f in files) and _mode(tmp_path / "secrets") == 0o700


def test_a_missing_secret_is_added_without_changing_the_others(tmp_path: Path) -> None:
    settings = StackSettings(data_dir=tmp_path)
    before = service_secrets(settings, "search")
    path = tmp_path / "secrets" / "search.json"
    data = json.loads(path.read_text())
    del data["kafka_password"]
    path.write_text(json.dumps(data))
    after = service_secrets(settings, "search")
    assert after.admin_token == before.admin_token
    assert after.kafka_password and after.kafka_password != before.kafka_password


def test_no_default_secrets_in_the_stack_settings() -> None:
    fields = StackSettings.model_fields
    assert not [name for name in fields if "password" in name or "secret" in name]


def test_engagement_gets_a_client_address_salt_of_its_own_data_folder(tmp_path: Path) -> None:
    from portal_launcher.services import service_environment

    first = StackSettings(data_dir=tmp_path / "a")
    salt = service_environment(first, "engagement")["CLIENT_HASH_SALT"]
    assert len(salt) >= 40
    assert service_environment(first, "engagement")["CLIENT_HASH_SALT"] == salt
    assert (
        service_environment(StackSettings(data_dir=tmp_path / "b"), "engagement")[
            "CLIENT_HASH_SALT"
        ]
        != salt
    )
    # Beside engagement's other secrets, which it does not disturb.
    assert service_secrets(first, "engagement") == service_secrets(first, "engagement")
    assert (
        json.loads((tmp_path / "a" / "secrets" / "engagement.json").read_text())["client_hash_salt"]
        == salt
    )
    assert _mode(tmp_path / "a" / "secrets" / "engagement.json") == 0o600
    assert "CLIENT_HASH_SALT" not in service_environment(first, "search")
