"""The service's own PostgreSQL database: async engine, sessions and Alembic migrations.

Each service keeps its migrations in ``src/portal_<service>/migrations`` and calls
``run_migrations`` at start-up, as its own database role (`portal migrate` runs them all without
starting the services).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from portal_runtime.settings import PlanCacheMode
from portal_runtime.telemetry import use_stable_conventions

# One naming convention so Alembic autogenerate gives stable constraint names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(
    url: str,
    pool_size: int = 10,
    *,
    trace_statements: bool = False,
    plan_cache_mode: PlanCacheMode = "auto",
) -> AsyncEngine:
    """The service's engine. No ping on every checkout (a round trip each time): a connection
    that died with a database restart fails its statement, the pool drops every connection older
    than that failure, and the caller's retry (a consumer's transient retry, a client's) gets a
    fresh one. ``trace_statements`` makes each SQL statement a span (off: one span per batch or
    request is what a trace needs; statements are for a deep look). ``plan_cache_mode`` is
    PostgreSQL's, for every connection (see ``ServiceSettings.database_plan_cache_mode``)."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": {"plan_cache_mode": plan_cache_mode}},
    )
    if trace_statements:
        use_stable_conventions()
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def run_migrations(migrations_dir: Path, database_url: str) -> None:
    """Upgrade the database to the newest revision (blocking; call from a thread)."""
    # "heads": features may add independent migration branches; all are applied.
    command.upgrade(alembic_config(migrations_dir, database_url), "heads")


async def run_migrations_async(migrations_dir: Path, database_url: str) -> None:
    await asyncio.to_thread(run_migrations, migrations_dir, database_url)
