"""The Registry's PostgreSQL: the asyncpg pool, its schema and migrations, and the keyset pages
its repositories share. The repositories are `datasets_db.DatasetRepository` and
`models_db.ModelRepository`; `main.py` builds them on one `Database`.

One code path for the embedded PostgreSQL (`servers.devstack.postgres`) and a production one.
The pool and migrations are `servers.common.postgres`, set up here by `SCHEMA`: the files
`migrations/NNNN_name.sql` are applied in version order at start, all pending ones in one
transaction under a transaction-scoped advisory lock, so two Registries starting at once apply
them exactly once and a failed migration leaves the schema as it was. `schema_migrations`
records each version with the SHA-256 of its file; an applied file that was edited afterwards
stops the start-up.

Errors: a database that cannot be reached (refused, down, timed out, restarting, unknown
database, bad credentials) is `Unavailable`, with a message naming the URL without its password.
"""

from __future__ import annotations

import logging
from pathlib import Path

from servers.common import postgres
from servers.registry.domain.records import Page

log = logging.getLogger("mlmesh.registry.db")

SCHEMA = postgres.Schema(
    owner="Registry",
    migrations_dir=Path(__file__).with_name("migrations"),
    migrations_table="schema_migrations",
    lock_name="mlmesh.registry.migrations",
    application_name="mlmesh-registry",
    logger=log.name,
    migration_changed=(
        "migration {name} was applied as {applied_name} with a different content (sha256 {applied_checksum}, "
        "file has {checksum}); add a new migration instead of editing an applied one"
    ),
)


class Database(postgres.Postgres):
    """An asyncpg pool on the Registry's database, migrated on connect: `await Database.connect(dsn)`."""

    schema = SCHEMA


_PAGE_TOKENS = postgres.PageTokens(
    scope_key="org",
    invalid_message=(
        "page_token is not a token this service issued; pass the next_page_token of the previous page "
        "unchanged, or none for the first page"
    ),
    mismatch_message=(
        "page_token belongs to a listing with different filters (organization_id, ...); keep the "
        "filters unchanged while paging"
    ),
)


async def keyset_page(
    db: Database, *, select: str, id_column: str, filters: dict[str, object], page_size: int, page_token: str,
    convert, what: str, visible_to: str | None = None, kind: str = "",
) -> Page:
    """One page, newest first, of `select` (a SELECT ... FROM table) with equality `filters`
    (empty values are ignored), keyset-paginated on (create_time, id_column).

    With `visible_to` (an organization), only rows it may read: its own (`organization_id`), those
    granted to it in `grants` under `kind`, and public ones — filtered in SQL, so pages stay full and
    the keyset stays exact. None lists every row (a mesh server calling for itself). Page tokens
    are bound to the filters and to `visible_to`."""
    if visible_to is None:
        size = postgres.page_size_limit(page_size)
        active = {k: v for k, v in filters.items() if v}
        scope = "&".join(f"{k}={v}" for k, v in sorted(active.items()))
        items, next_token = await postgres.keyset_page(
            db, select=select, id_column=id_column, filters=active, scope=scope, limit=size, page_token=page_token,
            convert=convert, what=what, tokens=_PAGE_TOKENS,
        )
        return Page(items=items, next_page_token=next_token)
    if kind not in _KINDS:
        raise ValueError(f"unknown resource kind {kind!r}")
    size = postgres.page_size_limit(page_size)
    active = {k: v for k, v in filters.items() if v}
    scope = "&".join(f"{k}={v}" for k, v in sorted({**active, "viewer": visible_to}.items()))
    where: list[str] = []
    args: list[object] = []
    for column, value in active.items():
        args.append(value)
        where.append(f"{column} = ${len(args)}")
    args.append(visible_to)
    viewer = f"${len(args)}"
    # `kind` and `id_column` are this module's constants, never a caller's text.
    where.append(
        f"(organization_id = {viewer} OR EXISTS (SELECT 1 FROM grants g WHERE g.resource_kind = '{kind}' "
        f"AND g.resource_id = {id_column} AND g.grantee IN ({viewer}, '*')))"
    )
    if page_token:
        cursor = postgres.PageCursor.decode(page_token, scope, _PAGE_TOKENS)
        args += [cursor.create_time, cursor.ident]
        where.append(f"(create_time, {id_column}) < (${len(args) - 1}, ${len(args)})")
    args.append(size + 1)
    sql = f"{select} WHERE {' AND '.join(where)} ORDER BY create_time DESC, {id_column} DESC LIMIT ${len(args)}"
    async with db.connection(what) as conn:
        rows = await conn.fetch(sql, *args)
    items = [convert(r) for r in rows[:size]]
    next_token = ""
    if len(rows) > size:
        last = rows[size - 1]
        next_token = postgres.PageCursor(last["create_time"], last[id_column], scope).encode(_PAGE_TOKENS)
    return Page(items=items, next_page_token=next_token)


_KINDS = ("dataset", "model")
