"""Grants and the sharing audit log in the Registry's PostgreSQL (migration 0004): the grantees of a
resource, a share or unshare applied with its audit events in one transaction, the access policy,
and the usages of a dataset (the models registered on it). Implements
`servers.registry.domain.ports.AccessRepository`.

`access_events` is append-only in the database (a trigger refuses UPDATE, DELETE and TRUNCATE,
except the one UPDATE that sets a row's missing ledger anchor, migration 0006); this module
inserts rows and sets anchors, nothing else."""

from __future__ import annotations

import datetime as dt

import asyncpg

from servers.common import errors, ids
from servers.registry.adapters.db import Database, keyset_page
from servers.registry.domain.records import (
    SHARE,
    UNSHARE,
    AccessAnchorRecord,
    AccessEventRecord,
    GrantRecord,
    Page,
    UsageRecord,
)

_ID_FIELD = {"dataset": "dataset_id", "model": "model_id"}


def _ident(kind: str, resource_id: str):
    if kind not in _ID_FIELD:
        raise ValueError(f"unknown resource kind {kind!r}")
    return ids.parse_uuid(resource_id, _ID_FIELD[kind])


def _event(row: asyncpg.Record) -> AccessEventRecord:
    anchor = None
    if row["anchor_tx_hash"]:
        anchor = AccessAnchorRecord(tx_hash=row["anchor_tx_hash"], index=row["anchor_index"])
    return AccessEventRecord(action=row["action"], grantee=row["grantee"],
                             actor_organization_id=row["actor_organization_id"], actor_subject=row["actor_subject"],
                             event_time=row["event_time"].astimezone(dt.UTC), changed=row["changed"],
                             event_id=row["event_id"], anchor=anchor)


_EVENT_COLUMNS = ("event_id, action, grantee, actor_organization_id, actor_subject, event_time, changed, "
                  "anchor_tx_hash, anchor_index")


def _usage(row: asyncpg.Record) -> UsageRecord:
    return UsageRecord(model_id=str(row["model_id"]), organization_id=row["organization_id"],
                       create_time=row["create_time"].astimezone(dt.UTC))


class AccessRepository:
    def __init__(self, db: Database):
        self.db = db

    async def grantees(self, kind: str, resource_id: str) -> frozenset[str]:
        ident = _ident(kind, resource_id)
        async with self.db.connection(f"reading the grants of {kind} {ident}") as conn:
            rows = await conn.fetch("SELECT grantee FROM grants WHERE resource_kind = $1 AND resource_id = $2",
                                    kind, ident)
        return frozenset(r["grantee"] for r in rows)

    async def change(self, kind: str, resource_id: str, action: str, grantees: list[str], *,
                     actor_organization_id: str, actor_subject: str, when: dt.datetime) -> None:
        if action not in (SHARE, UNSHARE):
            raise ValueError(f"unknown action {action!r}")
        ident = _ident(kind, resource_id)
        try:
            async with self.db.connection(f"changing the grants of {kind} {ident}") as conn, conn.transaction():
                for grantee in grantees:
                    if action == SHARE:
                        status = await conn.execute(
                            "INSERT INTO grants (resource_kind, resource_id, grantee, granted_by, grant_time) "
                            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                            kind, ident, grantee, actor_subject, when)
                        changed = status == "INSERT 0 1"
                    else:
                        status = await conn.execute(
                            "DELETE FROM grants WHERE resource_kind = $1 AND resource_id = $2 AND grantee = $3",
                            kind, ident, grantee)
                        changed = status == "DELETE 1"
                    await conn.execute(
                        "INSERT INTO access_events (resource_kind, resource_id, action, grantee, "
                        "actor_organization_id, actor_subject, event_time, changed) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        kind, ident, action, grantee, actor_organization_id, actor_subject, when, changed)
        except (asyncpg.CheckViolationError, asyncpg.NotNullViolationError, asyncpg.DataError) as exc:
            raise errors.InvalidArgument(f"the grants of {kind} {ident} cannot be stored: {exc}",
                                         reason="GRANTEE_INVALID") from None

    async def policy(self, kind: str, resource_id: str) -> tuple[list[GrantRecord], list[AccessEventRecord]]:
        ident = _ident(kind, resource_id)
        async with self.db.connection(f"reading the access policy of {kind} {ident}") as conn:
            grants = await conn.fetch(
                "SELECT grantee, granted_by, grant_time FROM grants WHERE resource_kind = $1 AND resource_id = $2 "
                "ORDER BY grant_time, grantee", kind, ident)
            events = await conn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM access_events WHERE resource_kind = $1 AND resource_id = $2 "
                "ORDER BY event_id", kind, ident)
        return (
            [GrantRecord(grantee=r["grantee"], granted_by=r["granted_by"],
                         grant_time=r["grant_time"].astimezone(dt.UTC)) for r in grants],
            [_event(r) for r in events],
        )

    async def unanchored(self, limit: int) -> list[tuple[str, str, AccessEventRecord]]:
        async with self.db.connection("reading the access events not anchored yet") as conn:
            rows = await conn.fetch(
                f"SELECT resource_kind, resource_id, {_EVENT_COLUMNS} FROM access_events "
                "WHERE anchor_tx_hash = '' ORDER BY event_id LIMIT $1", limit)
        return [(r["resource_kind"], str(r["resource_id"]), _event(r)) for r in rows]

    async def set_anchor(self, event_id: int, tx_hash: str, index: int) -> None:
        async with self.db.connection(f"recording the ledger anchor of access event {event_id}") as conn:
            await conn.execute(
                "UPDATE access_events SET anchor_tx_hash = $2, anchor_index = $3 "
                "WHERE event_id = $1 AND anchor_tx_hash = ''", event_id, tx_hash, index)

    async def usages(self, dataset_id: str, page_size: int, page_token: str) -> Page:
        return await keyset_page(
            self.db, select="SELECT model_id, organization_id, create_time FROM models", id_column="model_id",
            filters={"dataset_id": ids.parse_uuid(dataset_id, "dataset_id")}, page_size=page_size,
            page_token=page_token, convert=_usage, what=f"listing the usages of dataset {dataset_id}",
        )
