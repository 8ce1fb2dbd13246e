"""The body of every service's Alembic ``env.py``: async engine, online and offline modes."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config


def _do_run(connection: Connection, metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(metadata: MetaData, version_table: str) -> None:
    config = context.config
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with engine.connect() as connection:
        await connection.run_sync(_do_run, metadata, version_table)
    await engine.dispose()


def run_env(metadata: MetaData, version_table: str = "alembic_version") -> None:
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            literal_binds=True,
            version_table=version_table,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async(metadata, version_table))
    else:  # pragma: no cover - called from a running loop: run in a fresh thread's loop
        import threading

        errors: list[BaseException] = []

        def runner() -> None:
            try:
                asyncio.run(_run_async(metadata, version_table))
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=runner)
        t.start()
        t.join()
        if errors:
            raise errors[0]
