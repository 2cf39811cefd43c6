"""PostgreSQL plumbing shared by the servers' adapters: the asyncpg pool, schema migrations, keyset pages.

Each server describes its schema with a `Schema` (migrations directory, migrations table, advisory
lock name, owner label, application_name) and subclasses `Postgres` with it; its repositories stay
in its own adapter. Only adapters import this module (it imports asyncpg); domain code does not.

Migrations are the files `NNNN_name.sql` of `Schema.migrations_dir`, applied in version order at
start. All pending ones run in one transaction under a transaction-scoped advisory lock (key: the
first 8 bytes of sha256(`Schema.lock_name`)), so two servers starting at once apply them exactly
once and a failed migration leaves the schema as it was. `Schema.migrations_table` records each
version with the SHA-256 of its file; an applied file that was edited afterwards is
FailedPrecondition (MIGRATION_CHANGED).

A database that cannot be reached (refused, down, timed out, restarting, unknown database, bad
credentials) is `Unavailable` (DATABASE_UNAVAILABLE), naming the URL without its password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from servers.common import errors

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Failures that mean "the database is not there (now)": retrying later may work.
UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.ClientConfigurationError,
)


def advisory_lock_key(name: str) -> int:
    """The pg_advisory_xact_lock key for `name`: the first 8 bytes of its sha256, as a signed bigint."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def redact_dsn(dsn: str) -> str:
    """`dsn` without its password (URL or key=value form), for messages and logs."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparseable database URL>"
    if parts.scheme in ("postgres", "postgresql"):
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hosts = netloc.rsplit("@", 1)
            netloc = f"{userinfo.split(':', 1)[0]}@{hosts}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return re.sub(r"(?i)password\s*=\s*('[^']*'|\S+)", "password=***", dsn)


def unavailable(dsn: str, what: str, exc: BaseException, *, rich: bool = True) -> errors.Unavailable:
    """Unavailable (DATABASE_UNAVAILABLE) for `exc`, one of UNREACHABLE, raised while doing `what`.

    `rich` (the Registry's form) names an exception without a message by its type and adds the
    redacted URL as `database` metadata; without it (the Trainer's and Translator's form) the detail
    is `str(exc)`, possibly empty, and there is no metadata."""
    if not rich:
        return errors.Unavailable(
            f"PostgreSQL at {redact_dsn(dsn)} is unavailable while {what}: {exc}", reason="DATABASE_UNAVAILABLE"
        )
    detail = str(exc) or type(exc).__name__
    return errors.Unavailable(
        f"PostgreSQL at {redact_dsn(dsn)} is unavailable while {what}: {detail}",
        reason="DATABASE_UNAVAILABLE",
        metadata={"database": redact_dsn(dsn)},
    )


# -- schema and migrations ----------------------------------------------------------------------

_MIGRATION_CHANGED = (
    "{owner} migration {name} was applied with a different content; add a new migration instead of editing an "
    "applied one"
)


@dataclass(frozen=True)
class Schema:
    """What one server's database looks like to this module."""

    owner: str  # "Registry", "Trainer", ...: in messages and logs
    migrations_dir: Path
    migrations_table: str  # e.g. "trainer_schema_migrations"
    lock_name: str  # the advisory lock is advisory_lock_key(lock_name)
    application_name: str  # PostgreSQL's application_name for the pool's connections
    logger: str = "mlmesh.db"
    # FailedPrecondition message when an applied migration changed; fields: owner, name (the file's),
    # applied_name, applied_checksum, checksum.
    migration_changed: str = _MIGRATION_CHANGED
    rich_unavailable: bool = True  # see `unavailable`

    @property
    def lock_key(self) -> int:
        return advisory_lock_key(self.lock_name)

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(self.logger)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """The migration files in `directory`, by version. Fails on a misnamed file or a duplicate version."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations have version {version}: {found[version].name} and {path.name}")
        found[version] = Migration(version, path.stem, path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(
    conn: asyncpg.Connection, schema: Schema, migrations: Iterable[Migration] | None = None
) -> list[int]:
    """Applies the pending migrations (by default those of `schema.migrations_dir`) in one transaction
    under the schema's advisory lock; returns the versions applied now."""
    todo = list(load_migrations(schema.migrations_dir) if migrations is None else migrations)
    table, log = schema.migrations_table, schema.log
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", schema.lock_key)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (version integer PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"]: r for r in await conn.fetch(f"SELECT version, name, checksum FROM {table}")}
        for mig in todo:
            row = done.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise errors.FailedPrecondition(
                        schema.migration_changed.format(
                            owner=schema.owner, name=mig.name, applied_name=row["name"],
                            applied_checksum=row["checksum"], checksum=mig.checksum,
                        ),
                        reason="MIGRATION_CHANGED",
                    )
                continue
            log.info("applying %s migration %s", schema.owner, mig.name)
            await conn.execute(mig.sql)
            await conn.execute(
                f"INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)",
                mig.version, mig.name, mig.checksum,
            )
            applied_now.append(mig.version)
        unknown = sorted(set(done) - {m.version for m in todo})
        if unknown:
            log.warning("the database has migrations this %s does not know: %s (a newer release ran?)",
                        schema.owner, unknown)
    return applied_now


# -- the pool -----------------------------------------------------------------------------------


class Postgres:
    """An asyncpg pool on one server's database. Subclasses set `schema`; make one with
    `await Subclass.connect(dsn)`."""

    schema: ClassVar[Schema]

    def __init__(self, pool: asyncpg.Pool, dsn: str, acquire_timeout: float = 10.0):
        self.pool = pool
        self.dsn = dsn
        self.acquire_timeout = acquire_timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_dsn(self.dsn)!r})"

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 30.0,
        migrate: bool = True,
        application_name: str | None = None,
    ):
        """Opens the pool and (unless `migrate=False`) applies pending migrations.

        Unavailable if the database cannot be reached within `connect_timeout` seconds."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                server_settings={"application_name": application_name or cls.schema.application_name},
            )
        except UNREACHABLE as exc:
            raise unavailable(dsn, "connecting", exc, rich=cls.schema.rich_unavailable) from exc
        db = cls(pool, dsn, acquire_timeout=connect_timeout)
        if migrate:
            try:
                await db.migrate()
            except BaseException:
                await db.close()
                raise
        return db

    async def migrate(self) -> list[int]:
        async with self.connection("applying migrations") as conn:
            applied = await apply_migrations(conn, self.schema)
        if applied:
            self.schema.log.info("database %s: applied migrations %s", redact_dsn(self.dsn), applied)
        return applied

    async def ping(self) -> None:
        """Unavailable unless the database answers (for health checks)."""
        async with self.connection("checking health") as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection-level failures inside the block become Unavailable."""
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                yield conn
        except UNREACHABLE as exc:
            raise unavailable(self.dsn, what, exc, rich=self.schema.rich_unavailable) from exc


# -- keyset pagination --------------------------------------------------------------------------


@dataclass(frozen=True)
class PageTokens:
    """How a listing's page tokens look: the JSON key of the filter scope, and the messages of
    PAGE_TOKEN_INVALID and PAGE_TOKEN_MISMATCH."""

    scope_key: str
    invalid_message: str
    mismatch_message: str


def model_id_page_tokens() -> PageTokens:
    """The page tokens of a listing filtered by nothing but an optional `model_id` (the Trainer's
    jobs, the Translator's translations)."""
    return PageTokens(
        scope_key="m",
        invalid_message=("page_token is not a token this service issued; pass the previous next_page_token "
                         "unchanged, or none for the first page"),
        mismatch_message=("page_token belongs to a listing with a different model_id; keep the filter unchanged "
                          "while paging"),
    )


@dataclass(frozen=True)
class PageCursor:
    """Where a page starts: after the row (create_time, ident), under one filter `scope` (a token
    is only valid under the same filters). Encoded as unpadded urlsafe base64 of
    {"v": 1, "t": create_time, "id": ident, <scope_key>: scope}."""

    create_time: dt.datetime
    ident: uuid.UUID
    scope: str

    def encode(self, tokens: PageTokens) -> str:
        raw = json.dumps(
            {"v": 1, "t": self.create_time.isoformat(), "id": str(self.ident), tokens.scope_key: self.scope},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, scope: str, tokens: PageTokens) -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("unknown token version")
            t, ident, token_scope = data["t"], data["id"], data[tokens.scope_key]
            if not (isinstance(t, str) and isinstance(ident, str) and isinstance(token_scope, str)):
                raise ValueError("wrong types")
            create_time = dt.datetime.fromisoformat(t)
            if create_time.tzinfo is None:
                raise ValueError("naive time")
            cursor = cls(create_time, uuid.UUID(ident), token_scope)
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise errors.InvalidArgument(tokens.invalid_message, reason="PAGE_TOKEN_INVALID") from None
        if cursor.scope != scope:
            raise errors.InvalidArgument(tokens.mismatch_message, reason="PAGE_TOKEN_MISMATCH")
        return cursor


def page_size_limit(page_size: int) -> int:
    """The rows per page for a requested `page_size`: 0 means 50, above 1000 is 1000, negative is
    InvalidArgument."""
    if page_size < 0:
        raise errors.InvalidArgument(f"page_size {page_size} is negative", reason="PAGE_SIZE_NEGATIVE")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


async def keyset_page(
    db: Postgres, *, select: str, id_column: str, filters: dict[str, object], scope: str, limit: int,
    page_token: str, convert: Callable[[asyncpg.Record], Any], what: str, tokens: PageTokens,
) -> tuple[list[Any], str]:
    """One page, newest first, of `select` (a SELECT ... FROM table) with equality `filters` (empty
    values are ignored), keyset-paginated on (create_time, id_column): at most `limit` converted rows
    and the next page's token ("" on the last page). Tokens are bound to `scope`."""
    active = {k: v for k, v in filters.items() if v}
    where: list[str] = []
    args: list[object] = []
    for column, value in active.items():
        args.append(value)
        where.append(f"{column} = ${len(args)}")
    if page_token:
        cursor = PageCursor.decode(page_token, scope, tokens)
        args += [cursor.create_time, cursor.ident]
        where.append(f"(create_time, {id_column}) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    sql = (
        f"{select} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY create_time DESC, {id_column} DESC LIMIT ${len(args)}"
    )
    async with db.connection(what) as conn:
        rows = await conn.fetch(sql, *args)
    items = [convert(r) for r in rows[:limit]]
    next_token = ""
    if len(rows) > limit:
        last = rows[limit - 1]
        next_token = PageCursor(last["create_time"], last[id_column], scope).encode(tokens)
    return items, next_token
