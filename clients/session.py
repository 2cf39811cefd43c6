"""The caller's session, shared by the `mlmesh` CLI, `mlmesh sensors` and the demos: the settings,
a bearer token (MLMESH_TOKEN, or minted from the local mesh's identity keys — dev tooling, which is
why minting lives here and not in the mlmesh-client wheel), an `mlmesh.Client` carrying it, and how
a failed call is told to the user (its status, reason, request id, a hint, and the exit code).

Exit codes of every command:
  0  success
  1  the mesh refused or failed the request (any gRPC status but the two below), or a check the
     command makes failed (verify found a mismatch, a watched job did not succeed, a download did
     not hash to the recorded SHA-256)
  2  usage: bad arguments, a missing file, no local identity to mint a token from
  3  the mesh did not answer: UNAVAILABLE or DEADLINE_EXCEEDED (is it running? `make up`)

Nothing here knows the commands; `clients/cli.py` imports this module, never the other way round.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import grpc
import typer
from rich.console import Console

import mlmesh
from clients.settings import ClientSettings
from mlmesh.client.errors import MlmeshError

err = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def load_settings() -> ClientSettings:
    return ClientSettings()


def mint(settings: ClientSettings, org: str, ttl: int = 3600) -> str:
    """A JWT for `org` signed with the local identity's key (`make up` creates it); exit 2 without one."""
    from servers.common.identity import ensure_keys, mint_token

    keys_dir = settings.data_dir.resolve() / "identity"
    if not keys_dir.exists():
        err.print(f"[red]no local identity at {keys_dir}[/red]: run `make up` first, or set MLMESH_TOKEN")
        raise typer.Exit(EXIT_USAGE)
    keys = ensure_keys(keys_dir)
    return mint_token(keys, organization_id=org, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                      ttl_seconds=ttl)


def bearer_token(settings: ClientSettings, org: str) -> str:
    """MLMESH_TOKEN when it is set, else a token minted for `org`."""
    return settings.token or mint(settings, org)


def client(org: str | None = None, *, target: str | None = None) -> mlmesh.Client:
    """An `mlmesh.Client` of the front door (or `target`) acting as `org` (default MLMESH_ORG)."""
    s = load_settings()
    org = org or s.org
    return mlmesh.Client(target or s.front_door, token=bearer_token(s, org), organization_id=org)


def exit_code(exc: MlmeshError) -> int:
    return EXIT_UNREACHABLE if exc.code in _UNREACHABLE else EXIT_FAILED


def fail(exc: MlmeshError, *, as_json: bool = False) -> typer.Exit:
    """Prints a failed call's status and what to do about it; returns the exit to raise."""
    if as_json:
        print(json.dumps({"error": {"code": exc.code.name, "message": exc.message, "reason": exc.reason,
                                    "domain": exc.domain, "request_id": exc.request_id}}), file=sys.stderr)
        return typer.Exit(exit_code(exc))
    extra = ", ".join(x for x in (exc.reason, f"request id {exc.request_id}" if exc.request_id else "") if x)
    err.print(f"[red]{exc.code.name}[/red]: {exc.message}" + (f" ({extra})" if extra else ""), highlight=False)
    if exc.code in _UNREACHABLE:
        err.print(f"is the mesh running at {load_settings().front_door}? `make up` starts it (MLMESH_TARGET points "
                  "elsewhere)")
    elif exc.code == grpc.StatusCode.UNAUTHENTICATED:
        err.print("the front door refused the token: unset MLMESH_TOKEN to mint one from the local identity, or "
                  "get a fresh one")
    return typer.Exit(exit_code(exc))


@contextlib.contextmanager
def mesh_errors(*, as_json: bool = False) -> Iterator[None]:
    """A call failing inside the block ends the command through `fail`."""
    try:
        yield
    except MlmeshError as exc:
        raise fail(exc, as_json=as_json) from None
