"""The Translator's PostgreSQL adapter: an asyncpg pool, its own migrations, the translations table.

It follows the Trainer's adapter (servers/trainer/adapters/db.py) but owns its tables: they all
start with `translator_`, and migrations are recorded in `translator_schema_migrations` under
their own advisory lock, so the Translator can share a database with the Registry and the Trainer.
Errors: an unreachable database is `Unavailable` (DSN shown without its password); an unknown
translation `NotFound`; a bad page token `InvalidArgument`.
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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from servers.common import errors
from servers.translator.domain.translations import Page, Parity, Translation

log = logging.getLogger("mlmesh.translator.db")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATIONS_TABLE = "translator_schema_migrations"
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"mlmesh.translator.migrations").digest()[:8], "big",
                                    signed=True)
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_UNREACHABLE = (
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


def redact_dsn(dsn: str) -> str:
    """`dsn` without its password."""
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


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations have version {version}")
        found[version] = Migration(version, path.stem, path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(conn: asyncpg.Connection) -> list[int]:
    """Applies pending migrations in one transaction under the Translator's advisory lock."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"]: r for r in await conn.fetch(f"SELECT version, name, checksum FROM {MIGRATIONS_TABLE}")}
        for mig in load_migrations():
            row = done.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise errors.FailedPrecondition(
                        f"Translator migration {mig.name} was applied with a different content; add a new migration "
                        "instead of editing an applied one", reason="MIGRATION_CHANGED")
                continue
            log.info("applying Translator migration %s", mig.name)
            await conn.execute(mig.sql)
            await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                               mig.version, mig.name, mig.checksum)
            applied.append(mig.version)
    return applied


_COLUMNS = ("translation_id", "model_id", "framework", "source_sha256", "converter", "opset", "size_bytes", "md5",
            "sha256", "max_abs_diff", "max_rel_diff", "atol", "rtol", "parity_passed", "batch_source", "samples",
            "top1_agreement", "source_accuracy", "onnx_accuracy", "report_json", "object_key", "contract_address",
            "contract_tx_hash", "create_time")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM translator_translations"
_PARITY = ("max_abs_diff", "max_rel_diff", "atol", "rtol", "batch_source", "samples", "top1_agreement",
           "source_accuracy", "onnx_accuracy")


def _row_values(t: Translation) -> list[object]:
    p = t.parity
    return [uuid.UUID(t.translation_id), uuid.UUID(t.model_id), t.framework, t.source_sha256, t.converter, t.opset,
            t.size_bytes, t.md5, t.sha256, p.max_abs_diff, p.max_rel_diff, p.atol, p.rtol, p.passed, p.batch_source,
            p.samples, p.top1_agreement, p.source_accuracy, p.onnx_accuracy, t.report_json, t.object_key,
            t.contract_address, t.contract_tx_hash, t.create_time]


def _translation(row: asyncpg.Record) -> Translation:
    v = dict(row)
    parity = Parity(passed=v.pop("parity_passed"), **{k: v.pop(k) for k in _PARITY})
    v["translation_id"], v["model_id"] = str(v["translation_id"]), str(v["model_id"])
    v["create_time"] = v["create_time"].astimezone(dt.UTC)
    return Translation(parity=parity, **v)


@dataclass(frozen=True)
class _Cursor:
    """Where a page starts: after (create_time, translation_id), under one model filter."""

    create_time: dt.datetime
    translation_id: uuid.UUID
    model_id: str

    def encode(self) -> str:
        raw = json.dumps({"v": 1, "t": self.create_time.isoformat(), "id": str(self.translation_id),
                          "m": self.model_id}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> _Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("m"), str):
                raise ValueError("bad token")
            t = dt.datetime.fromisoformat(data["t"])
            if t.tzinfo is None:
                raise ValueError("naive time")
            return cls(t, uuid.UUID(data["id"]), data["m"])
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise errors.InvalidArgument(
                "page_token is not a token this service issued; pass the previous next_page_token unchanged, "
                "or none for the first page", reason="PAGE_TOKEN_INVALID") from None


class Database:
    """The Translator's pool and translation repository (implements `domain.ports.TranslationRepository`)."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, acquire_timeout: float = 10.0):
        self.pool, self.dsn, self.acquire_timeout = pool, dsn, acquire_timeout

    def __repr__(self) -> str:
        return f"Database({redact_dsn(self.dsn)!r})"

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 10.0,
                      command_timeout: float | None = 30.0) -> Database:
        """Opens the pool and applies pending migrations; Unavailable if the database cannot be reached."""
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout,
                                             command_timeout=command_timeout,
                                             server_settings={"application_name": "mlmesh-translator"})
        except _UNREACHABLE as exc:
            raise errors.Unavailable(f"PostgreSQL at {redact_dsn(dsn)} is unavailable while connecting: {exc}",
                                     reason="DATABASE_UNAVAILABLE") from exc
        db = cls(pool, dsn, connect_timeout)
        try:
            async with db.connection("applying migrations") as conn:
                await apply_migrations(conn)
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise errors.Unavailable(
                f"PostgreSQL at {redact_dsn(self.dsn)} is unavailable while {what}: {exc or type(exc).__name__}",
                reason="DATABASE_UNAVAILABLE") from exc

    async def insert(self, translation: Translation) -> None:
        placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
        async with self.connection(f"storing translation {translation.translation_id}") as conn:
            await conn.execute(f"INSERT INTO translator_translations ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                               *_row_values(translation))

    async def get(self, translation_id: str) -> Translation:
        async with self.connection(f"reading translation {translation_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE translation_id = $1", uuid.UUID(translation_id))
        if row is None:
            raise errors.NotFound(f"translation {translation_id} does not exist", reason="TRANSLATION_NOT_FOUND",
                                  metadata={"translation_id": translation_id})
        return _translation(row)

    async def list(self, *, page_size: int, page_token: str, model_id: str) -> Page:
        """Translations newest first (keyset pagination), optionally of one model."""
        where: list[str] = []
        args: list[object] = []
        if model_id:
            args.append(uuid.UUID(model_id))
            where.append(f"model_id = ${len(args)}")
        if page_token:
            cursor = _Cursor.decode(page_token)
            if cursor.model_id != model_id:
                raise errors.InvalidArgument("page_token belongs to a listing with a different model_id; keep the "
                                             "filter unchanged while paging", reason="PAGE_TOKEN_MISMATCH")
            args += [cursor.create_time, cursor.translation_id]
            where.append(f"(create_time, translation_id) < (${len(args) - 1}, ${len(args)})")
        args.append(page_size + 1)
        sql = (f"{_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY create_time DESC, translation_id DESC LIMIT ${len(args)}")
        async with self.connection("listing translations") as conn:
            rows = await conn.fetch(sql, *args)
        token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            token = _Cursor(last["create_time"], last["translation_id"], model_id).encode()
        return Page(items=[_translation(r) for r in rows[:page_size]], next_page_token=token)


async def connect(dsn: str, **options) -> Database:
    """`Database.connect(dsn, **options)`: the pool, with the Translator's migrations applied."""
    return await Database.connect(dsn, **options)
