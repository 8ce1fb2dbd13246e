"""PostgreSQL and S3 (SeaweedFS) of the local stack, started for real on their own ports."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from portal_launcher.components.postgres import SERVICE_DATABASES, PostgresComponent
from portal_launcher.components.s3 import S3Component, s3_client
from portal_launcher.credentials import stack_secrets
from portal_launcher.settings import StackSettings

from .ports import POSTGRES_S3_OFFSET, component_port_base

pytestmark = pytest.mark.stack

PORT_BASE = component_port_base(POSTGRES_S3_OFFSET)
VIETNAMESE = "Nghị quyết số 57-NQ/TW của Bộ Chính trị về đột phá phát triển khoa học, công nghệ"


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.pg = PostgresComponent(settings)
        self.s3 = S3Component(settings)

    def start(self) -> None:
        for c in (self.pg, self.s3):
            c.start()  # both boot in parallel
        for c in (self.pg, self.s3):
            c.wait_ready()
            c.after_ready()

    def stop(self) -> None:
        for c in (self.s3, self.pg):
            c.stop()

    def sql(self, database: str, query: str, *args: Any) -> list[Any]:
        async def run() -> list[Any]:
            conn = await asyncpg.connect(
                host=self.settings.host,
                port=self.settings.postgres_port,
                user="postgres",
                password=stack_secrets(self.settings).postgres_password,
                database=database,
            )
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("pg-s3-stack")
    s = Stack(StackSettings(port_base=PORT_BASE, data_dir=data_dir))
    try:
        s.start()
        yield s
    finally:
        s.stop()  # always, also when start-up failed half-way
    shutil.rmtree(data_dir, ignore_errors=True)


def test_service_databases_exist(stack: Stack) -> None:
    names = {r["datname"] for r in stack.sql("postgres", "SELECT datname FROM pg_database")}
    assert set(SERVICE_DATABASES) <= names
    assert stack.pg.version().startswith("18.")


def test_vietnamese_text_round_trips(stack: Stack) -> None:
    stack.sql("publishing", "CREATE TABLE IF NOT EXISTS t_vi (id serial PRIMARY KEY, body text)")
    row = stack.sql(
        "publishing",
        "INSERT INTO t_vi (body) VALUES ($1) RETURNING id, body, upper(body) AS up",
        VIETNAMESE,
    )[0]
    assert row["body"] == VIETNAMESE
    assert row["up"] == VIETNAMESE.upper()  # Unicode case mapping, not just ASCII
    again = stack.sql("publishing", "SELECT body FROM t_vi WHERE id = $1", row["id"])
    assert again[0]["body"] == VIETNAMESE


def test_s3_buckets_and_objects(stack: Stack) -> None:
    client = s3_client(stack.settings)
    names = {b.name for b in client.list_buckets()}
    assert {stack.settings.s3_bucket, stack.settings.s3_raw_bucket} <= names

    text = VIETNAMESE.encode()
    key = "bài-viết/nghị-quyết.txt"
    client.put_object(
        stack.settings.s3_bucket,
        key,
        io.BytesIO(text),
        len(text),
        content_type="text/plain; charset=utf-8",
    )
    assert _get(stack, stack.settings.s3_bucket, key) == text

    big = os.urandom(2 * 1024 * 1024)  # incompressible: SeaweedFS gzips compressible uploads
    client.put_object(stack.settings.s3_raw_bucket, "raw/big.bin", io.BytesIO(big), len(big))
    assert client.stat_object(stack.settings.s3_raw_bucket, "raw/big.bin").size == len(big)
    assert hashlib.sha256(_get(stack, stack.settings.s3_raw_bucket, "raw/big.bin")).digest() == (
        hashlib.sha256(big).digest()
    )


def test_data_survives_restart(stack: Stack) -> None:
    marker = f"{VIETNAMESE} — {uuid.uuid4()}"
    stack.sql("engagement", "CREATE TABLE IF NOT EXISTS t_restart (body text)")
    stack.sql("engagement", "INSERT INTO t_restart (body) VALUES ($1)", marker)
    blob = os.urandom(2 * 1024 * 1024)
    key = f"restart/{uuid.uuid4()}.bin"
    s3_client(stack.settings).put_object(stack.settings.s3_bucket, key, io.BytesIO(blob), len(blob))

    stack.stop()
    assert not stack.pg.is_running()
    assert not stack.s3.is_running()
    stack.start()

    rows = stack.sql("engagement", "SELECT body FROM t_restart WHERE body = $1", marker)
    assert [r["body"] for r in rows] == [marker]
    assert _get(stack, stack.settings.s3_bucket, key) == blob


def _get(stack: Stack, bucket: str, key: str) -> bytes:
    resp = s3_client(stack.settings).get_object(bucket, key)
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


def test_a_data_folder_from_before_service_roles_is_secured_on_start(stack: Stack) -> None:
    """Folders made before every service had its own role trusted any local connection and kept
    the services' tables under the superuser: a start gives the superuser its password, makes
    every sign-in need one, and hands each database's objects to its service's role."""
    stack.sql("normalize", "CREATE TABLE legacy_items (id serial PRIMARY KEY, body text)")
    stack.sql("normalize", "CREATE FUNCTION legacy_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    stack.pg.hba_file.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    loaded = stack.sql("postgres", "SELECT pg_conf_load_time() AS t")[0]["t"]
    stack.sql("postgres", "SELECT pg_reload_conf()")
    # The reload is asynchronous (a signal to the postmaster): wait until a new connection
    # shows it, or the superuser could lose its password while sign-ins still need one.
    deadline = time.monotonic() + 30
    while stack.sql("postgres", "SELECT pg_conf_load_time() AS t")[0]["t"] <= loaded:
        assert time.monotonic() < deadline, "PostgreSQL did not reload pg_hba.conf"
        time.sleep(0.05)
    stack.sql("postgres", "ALTER ROLE postgres PASSWORD NULL")

    stack.pg.after_ready()

    owners = stack.sql(
        "normalize",
        "SELECT pg_get_userbyid(relowner) AS owner FROM pg_class "
        "WHERE relname IN ('legacy_items', 'legacy_items_id_seq')",
    )
    assert [r["owner"] for r in owners] == ["normalize", "normalize"]
    fn_owner = stack.sql(
        "normalize",
        "SELECT pg_get_userbyid(proowner) AS o FROM pg_proc WHERE proname = 'legacy_fn'",
    )
    assert fn_owner[0]["o"] == "normalize"
    assert "trust" not in stack.pg.hba_file.read_text()

    async def without_password() -> None:
        conn = await asyncpg.connect(
            host=stack.settings.host,
            port=stack.settings.postgres_port,
            user="postgres",
            password="",
            database="postgres",
        )
        await conn.close()

    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(without_password())
    # The superuser's own password still works (it was given before the switch).
    assert stack.sql("postgres", "SELECT 1 AS one")[0]["one"] == 1
