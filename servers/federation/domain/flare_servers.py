"""NVIDIA FLARE servers for real clients as resources (the seed's `/nvoverser`): a provisioned
project (a server named `localhost`, named clients, certificates), its server process started and
stopped on request, and each client's startup kit downloadable by the server's owner.

Access as for jobs (docs/security.md): a server belongs to the organization that created it;
anyone else is told it does not exist. On start, servers a previous process was running are
stopped (their process groups killed) and FAILED with a reason: a server's process lives only as
long as the Federation server that started it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from servers.common import errors, ids
from servers.common.access import Access, access

log = logging.getLogger("mlmesh.federation.flare")

CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_NAMES = ("localhost", "admin", "server")
DEFAULT_CLIENTS = ("site-1", "site-2")
MAX_CLIENTS = 64
MAX_LIVE_SERVERS = 4  # FLARE server processes this Federation server runs at once (one per organization)
CHUNK_BYTES = 1 << 20
RESTART_REASON = "the Federation server restarted while this FLARE server was running; its processes were stopped"
STOP_REASON = "the Federation server stopped while this FLARE server was running"


class ServerState(enum.StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


LIVE = (ServerState.STARTING, ServerState.RUNNING)


@dataclass(frozen=True)
class FlareServerRecord:
    flare_server_id: str
    organization_id: str
    project_name: str
    client_names: tuple[str, ...]
    state: ServerState
    create_time: dt.datetime
    failure_reason: str = ""
    address: str = ""
    stop_time: dt.datetime | None = None


@dataclass(frozen=True)
class ServerPage:
    items: list[FlareServerRecord] = field(default_factory=list)
    next_page_token: str = ""


class FlareServerRepository(Protocol):
    async def insert_flare_server(self, server: FlareServerRecord) -> None: ...
    async def get_flare_server(self, flare_server_id: str) -> FlareServerRecord: ...
    async def save_flare_server(self, server: FlareServerRecord) -> None: ...
    async def delete_flare_server(self, flare_server_id: str) -> None: ...
    async def list_flare_servers(self, page_size: int, page_token: str, organization_id: str | None) -> ServerPage: ...
    async def live_flare_servers(self) -> list[FlareServerRecord]: ...


class FlareHosting(Protocol):
    """Provisions a project into a directory and runs its server (adapters/flare.py)."""

    def available(self) -> str:
        """"" when FLARE servers can run here, else why not."""
    async def provision(self, server_dir: Path, project_name: str, client_names: tuple[str, ...]) -> None: ...
    async def start(self, server_dir: Path) -> str:
        """Starts the provisioned server as its own process group; returns the address clients dial."""
    async def stop(self, server_dir: Path) -> None: ...
    def kit(self, server_dir: Path, client_name: str) -> Path:
        """The client's startup kit as a zip archive (made once)."""
    def admin_kit(self, server_dir: Path) -> Path:
        """The project admin's kit folder (named after the admin), which never leaves the server."""


def server_not_found(flare_server_id: str) -> errors.NotFound:
    return errors.NotFound(f"FLARE server {flare_server_id} does not exist", reason="FLARE_SERVER_NOT_FOUND",
                           metadata={"flare_server_id": flare_server_id})


def _bad(name: str, message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"{name}: {message}", reason=name.split(".")[-1].upper() + "_INVALID",
                                  metadata={"field": name})


def check_clients(names: tuple[str, ...]) -> tuple[str, ...]:
    names = names or DEFAULT_CLIENTS
    if len(names) > MAX_CLIENTS:
        raise _bad("flare_server.client_names", f"at most {MAX_CLIENTS} clients, got {len(names)}")
    for name in names:
        if not CLIENT_NAME.match(name) or name in RESERVED_NAMES:
            raise _bad("flare_server.client_names", f"{name[:70]!r} is not a client name (lower-case letters, digits "
                       f"and '-', at most 63 characters; not {', '.join(RESERVED_NAMES)})")
    if len(set(names)) != len(names):
        raise _bad("flare_server.client_names", "names must be unique")
    return tuple(names)


class FlareServers:
    def __init__(self, repo: FlareServerRepository, hosting: FlareHosting, work_root: Path,
                 clock: Callable[[], dt.datetime]):
        self.repo, self.hosting, self.work_root, self.clock = repo, hosting, work_root, clock
        self._lock = asyncio.Lock()

    def server_dir(self, flare_server_id: str) -> Path:
        return self.work_root / "flare-servers" / flare_server_id

    async def start(self) -> None:
        for server in await self.repo.live_flare_servers():
            await self.hosting.stop(self.server_dir(server.flare_server_id))
            await self._end(server, ServerState.FAILED, RESTART_REASON)

    async def close(self) -> None:
        for server in await self.repo.live_flare_servers():
            await self.hosting.stop(self.server_dir(server.flare_server_id))
            await self._end(server, ServerState.FAILED, STOP_REASON)

    async def _end(self, server: FlareServerRecord, state: ServerState, reason: str = "") -> FlareServerRecord:
        ended = replace(server, state=state, failure_reason=reason, stop_time=self.clock())
        await self.repo.save_flare_server(ended)
        return ended

    async def create(self, project_name: str, client_names: tuple[str, ...], *, caller_org: str | None,
                     organization_id: str = "") -> FlareServerRecord:
        """Provisions the project and starts its server: RUNNING, or FAILED with the reason."""
        owner = caller_org if caller_org is not None else organization_id
        if not owner:
            raise _bad("flare_server.organization_id", "a server needs an owner organization (a token with an org "
                       "claim)")
        project = project_name or "mlmesh"
        if not PROJECT_NAME.match(project):
            raise _bad("flare_server.project_name", "lower-case letters, digits and '_', starting with a letter, at "
                       "most 40 characters")
        clients = check_clients(client_names)
        why_not = self.hosting.available()
        if why_not:
            raise errors.FailedPrecondition(f"FLARE servers cannot run on this Federation server: {why_not}",
                                            reason="FRAMEWORK_UNAVAILABLE", metadata={"framework": "flare"})
        async with self._lock:
            return await self._create(owner, project, clients)

    async def _create(self, owner: str, project: str, clients: tuple[str, ...]) -> FlareServerRecord:
        live = await self.repo.live_flare_servers()
        mine = [s for s in live if s.organization_id == owner]
        if mine:
            raise errors.FailedPrecondition(
                f"your organization already runs FLARE server {mine[0].flare_server_id}; shut it down first "
                '(POST /nvoverser {"shutdown": true}) or delete it', reason="FLARE_SERVER_RUNNING",
                metadata={"flare_server_id": mine[0].flare_server_id})
        if len(live) >= MAX_LIVE_SERVERS:
            raise errors.ResourceExhausted(f"this Federation server already runs {len(live)} FLARE servers, its "
                                           "limit; try again when one is shut down", reason="FLARE_SERVERS_EXHAUSTED",
                                           metadata={})
        server = FlareServerRecord(flare_server_id=str(uuid.uuid4()), organization_id=owner, project_name=project,
                                   client_names=clients, state=ServerState.STARTING, create_time=self.clock())
        await self.repo.insert_flare_server(server)
        directory = self.server_dir(server.flare_server_id)
        try:
            await self.hosting.provision(directory, project, clients)
            address = await self.hosting.start(directory)
        except Exception as exc:
            await self.hosting.stop(directory)
            log.warning("FLARE server %s failed to start: %s", server.flare_server_id, exc)
            return await self._end(server, ServerState.FAILED, f"the FLARE server did not start: {exc}"[:4000])
        running = replace(server, state=ServerState.RUNNING, address=address)
        await self.repo.save_flare_server(running)
        log.info("FLARE server %s (%s, clients %s) running at %s for %s", server.flare_server_id, project,
                 ", ".join(clients), address, owner)
        return running

    async def get(self, flare_server_id: str, caller_org: str | None) -> FlareServerRecord:
        server = await self.repo.get_flare_server(ids.parse_id(flare_server_id, "flare_server_id"))
        if access(caller_org, server.organization_id) is not Access.OWNER:
            raise server_not_found(server.flare_server_id)
        return server

    async def running(self, flare_server_id: str, owner: str) -> tuple[FlareServerRecord, Path]:
        """A real-mode job's server: `owner`'s, RUNNING; with its admin kit folder. Field errors
        name `flare.flare_server_id`."""
        if not flare_server_id:
            raise _bad("flare.flare_server_id", "a real-mode FLARE job names the running FLARE server its clients "
                       "joined (POST /nvoverser {\"start\": true})")
        try:
            server = await self.get(flare_server_id, owner)
        except errors.NotFound:
            raise errors.NotFound(f"flare.flare_server_id: FLARE server {flare_server_id} does not exist",
                                  reason="FLARE_SERVER_NOT_FOUND", metadata={"field": "flare.flare_server_id"}) from None
        if server.state is not ServerState.RUNNING:
            raise errors.FailedPrecondition(f"flare.flare_server_id: FLARE server {server.flare_server_id} is "
                                            f"{server.state}, not RUNNING", reason="FLARE_SERVER_NOT_RUNNING",
                                            metadata={"field": "flare.flare_server_id"})
        return server, self.hosting.admin_kit(self.server_dir(server.flare_server_id))

    async def list(self, page_size: int, page_token: str, caller_org: str | None) -> ServerPage:
        return await self.repo.list_flare_servers(page_size, page_token, caller_org)

    async def seed(self, start: bool, shutdown: bool, caller_org: str | None) -> FlareServerRecord:
        """The seed's `POST /nvoverser/` body: `{"start": true}` starts a server with the default
        clients, `{"shutdown": true}` stops the caller's running one."""
        if start == shutdown:
            raise _bad("nvoverser", 'send {"start": true} to start a FLARE server or {"shutdown": true} to stop yours')
        if shutdown:
            return await self.shutdown(caller_org)
        return await self.create("", (), caller_org=caller_org)

    async def shutdown(self, caller_org: str | None) -> FlareServerRecord:
        """The seed's `{"shutdown": true}`: stops the caller's newest running server."""
        page = await self.repo.list_flare_servers(1000, "", caller_org)
        running = [s for s in page.items if s.state is ServerState.RUNNING]
        if not running:
            raise errors.FailedPrecondition("nvoverser.shutdown: your organization has no running FLARE server",
                                            reason="NO_RUNNING_FLARE_SERVER", metadata={"field": "nvoverser.shutdown"})
        await self.hosting.stop(self.server_dir(running[0].flare_server_id))
        return await self._end(running[0], ServerState.STOPPED)

    async def delete(self, flare_server_id: str, caller_org: str | None) -> None:
        server = await self.get(flare_server_id, caller_org)
        directory = self.server_dir(server.flare_server_id)
        await self.hosting.stop(directory)
        await self.repo.delete_flare_server(server.flare_server_id)
        await asyncio.to_thread(shutil.rmtree, directory, True)

    async def kit_chunks(self, flare_server_id: str, client_name: str, caller_org: str | None
                         ) -> AsyncIterator[bytes]:
        """One client's startup kit, streamed (owner only)."""
        server = await self.get(flare_server_id, caller_org)
        if client_name not in server.client_names:
            raise errors.NotFound(f"client_name: FLARE server {server.flare_server_id} has no client "
                                  f"{client_name[:70]!r} (it has {', '.join(server.client_names)})",
                                  reason="FLARE_CLIENT_NOT_FOUND", metadata={"field": "client_name"})
        if server.state is ServerState.FAILED and not self.server_dir(server.flare_server_id).exists():
            raise errors.FailedPrecondition(f"FLARE server {server.flare_server_id} failed before its kits were made",
                                            reason="FLARE_SERVER_FAILED", metadata={})
        path = await asyncio.to_thread(self.hosting.kit, self.server_dir(server.flare_server_id), client_name)
        with path.open("rb") as f:
            while block := await asyncio.to_thread(f.read, CHUNK_BYTES):
                yield block
