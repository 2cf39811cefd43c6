"""PostgreSQL storage of NVIDIA FLARE servers (`federation_flare_servers`, migration 0002), over
the Federation server's connection pool (adapters/db.py)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg

from servers.common import postgres
from servers.federation.adapters.db import Database
from servers.federation.domain.flare_servers import (
    LIVE,
    FlareServerRecord,
    ServerPage,
    ServerState,
    server_not_found,
)

_COLUMNS = ("flare_server_id", "organization_id", "project_name", "client_names", "state", "failure_reason",
            "address", "create_time", "stop_time")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM federation_flare_servers"
_TOKENS = postgres.PageTokens(
    scope_key="s",
    invalid_message=("page_token is not a token this service issued; pass the previous next_page_token unchanged, "
                     "or none for the first page"),
    mismatch_message="page_token belongs to another listing")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _server(row: asyncpg.Record) -> FlareServerRecord:
    return FlareServerRecord(
        flare_server_id=str(row["flare_server_id"]), organization_id=row["organization_id"],
        project_name=row["project_name"], client_names=tuple(json.loads(row["client_names"])),
        state=ServerState(row["state"]), failure_reason=row["failure_reason"], address=row["address"],
        create_time=_utc(row["create_time"]), stop_time=_utc(row["stop_time"]))


class FlareServerStore:
    """Implements `domain.flare_servers.FlareServerRepository`."""

    def __init__(self, db: Database):
        self.db = db

    async def insert_flare_server(self, server: FlareServerRecord) -> None:
        async with self.db.connection(f"storing FLARE server {server.flare_server_id}") as conn:
            await conn.execute(
                f"INSERT INTO federation_flare_servers ({', '.join(_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                "$8, $9)", uuid.UUID(server.flare_server_id), server.organization_id, server.project_name,
                json.dumps(list(server.client_names)), str(server.state), server.failure_reason, server.address,
                server.create_time, server.stop_time)

    async def get_flare_server(self, flare_server_id: str) -> FlareServerRecord:
        async with self.db.connection(f"reading FLARE server {flare_server_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE flare_server_id = $1", uuid.UUID(flare_server_id))
        if row is None:
            raise server_not_found(flare_server_id)
        return _server(row)

    async def save_flare_server(self, server: FlareServerRecord) -> None:
        async with self.db.connection(f"updating FLARE server {server.flare_server_id}") as conn:
            await conn.execute(
                "UPDATE federation_flare_servers SET state = $2, failure_reason = $3, address = $4, stop_time = $5 "
                "WHERE flare_server_id = $1", uuid.UUID(server.flare_server_id), str(server.state),
                server.failure_reason, server.address, server.stop_time)

    async def delete_flare_server(self, flare_server_id: str) -> None:
        async with self.db.connection(f"deleting FLARE server {flare_server_id}") as conn:
            await conn.execute("DELETE FROM federation_flare_servers WHERE flare_server_id = $1",
                               uuid.UUID(flare_server_id))

    async def list_flare_servers(self, page_size: int, page_token: str, organization_id: str | None) -> ServerPage:
        if organization_id == "":
            return ServerPage()
        items, token = await postgres.keyset_page(
            self.db, select=_SELECT, id_column="flare_server_id", filters={"organization_id": organization_id or ""},
            scope="", limit=postgres.page_size_limit(page_size), page_token=page_token, convert=_server,
            what="listing FLARE servers", tokens=_TOKENS)
        return ServerPage(items=items, next_page_token=token)

    async def live_flare_servers(self) -> list[FlareServerRecord]:
        live = ", ".join(f"'{s}'" for s in LIVE)
        async with self.db.connection("reading live FLARE servers") as conn:
            rows = await conn.fetch(f"{_SELECT} WHERE state IN ({live}) ORDER BY create_time")
        return [_server(r) for r in rows]
