"""The caller's session, shared by the `mlmesh` CLI, `mlmesh sensors` and the demos: the settings,
a bearer token (MLMESH_TOKEN, or minted from the local mesh's identity keys), the gRPC metadata
that carries it, and how a failed call is told to the user (its status, a hint, exit 1).

Nothing here knows the commands; `clients/cli.py` imports this module, never the other way round.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import typer
from rich.console import Console

from clients.settings import ClientSettings

err = Console(stderr=True)


def load_settings() -> ClientSettings:
    return ClientSettings()


def mint(settings: ClientSettings, org: str, ttl: int = 3600) -> str:
    """A JWT for `org` signed with the local identity's key (`make up` creates it); exit 2 without one."""
    from servers.common.identity import ensure_keys, mint_token

    keys_dir = settings.data_dir.resolve() / "identity"
    if not keys_dir.exists():
        err.print(f"[red]no local identity at {keys_dir}[/red]: run `make up` first, or set MLMESH_TOKEN")
        raise typer.Exit(2)
    keys = ensure_keys(keys_dir)
    return mint_token(keys, organization_id=org, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                      ttl_seconds=ttl)


def bearer_token(settings: ClientSettings, org: str) -> str:
    """MLMESH_TOKEN when it is set, else a token minted for `org`."""
    return settings.token or mint(settings, org)


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying `token` (none without a token: a server dialled directly)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def fail(exc: grpc.RpcError) -> typer.Exit:
    """Prints a failed call's status and what to do about it; returns the exit (1) to raise."""
    err.print(f"[red]{exc.code().name}[/red]: {exc.details()}")
    if exc.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (exc.details() or ""):
        err.print(f"is the mesh running at {load_settings().front_door}? `make up` starts it (MLMESH_TARGET points "
                  "elsewhere)")
    elif exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        err.print("the front door refused the token: unset MLMESH_TOKEN to mint one from the local identity, or "
                  "get a fresh one")
    return typer.Exit(1)


@contextlib.contextmanager
def rpc_errors() -> Iterator[None]:
    """A gRPC call failing inside the block ends the command through `fail` (exit 1)."""
    try:
        yield
    except grpc.RpcError as exc:
        raise fail(exc) from None
