"""`python -m servers.devstack.envoy`: print (or write) a rendered config, to read it or to
ship it to a deployment. `--service` picks rows of the route table (default: the Registry);
health and reflection are always routed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servers.common import identity
from servers.devstack.envoy import routes
from servers.devstack.envoy.render import (
    DEFAULT_ADMIN_PORT,
    DEFAULT_LISTEN,
    dump_yaml,
    UpstreamTls,
    render_envoy_config,
    write_envoy_config,
)


def _upstream_arg(text: str) -> tuple[str, tuple[str, int]]:
    name, _, addr = text.partition("=")
    host, _, port = addr.rpartition(":")
    if not name or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT, got {text!r}")
    return name, (host, int(port))


def main(argv: Sequence[str] | None = None) -> int:
    """Print (or write) a rendered config, to read it or to ship it to a deployment."""
    p = argparse.ArgumentParser(prog="python -m servers.devstack.envoy", description=main.__doc__)
    p.add_argument("--upstream", type=_upstream_arg, action="append", required=True, help="NAME=HOST:PORT")
    p.add_argument("--out", type=Path, help="write here (plus the merged .binpb) instead of stdout")
    p.add_argument("--listen", default=f"{DEFAULT_LISTEN[0]}:{DEFAULT_LISTEN[1]}")
    p.add_argument("--admin-port", type=int, default=DEFAULT_ADMIN_PORT)
    p.add_argument("--service", action="append",
                   help="service of the route table to route (repeat); default: the Registry")
    key_source = p.add_mutually_exclusive_group(required=True)
    key_source.add_argument("--keys-dir", type=Path, help="embedded issuer: key pair directory")
    key_source.add_argument("--jwks-uri", help="OIDC issuer's JWKS URI")
    key_source.add_argument("--jwks-file", help="a JWKS file as Envoy sees it (mounted at deploy time)")
    p.add_argument("--issuer", default=identity.DEFAULT_ISSUER)
    p.add_argument("--audience", action="append", help="accepted audience (repeat)")
    p.add_argument("--upstream-ca", type=Path, help="mutual TLS to the servers: the mesh CA (PEM)")
    p.add_argument("--upstream-cert", type=Path, help="mutual TLS to the servers: Envoy's certificate (PEM)")
    p.add_argument("--upstream-key", type=Path, help="mutual TLS to the servers: Envoy's private key (PEM)")
    args = p.parse_args(argv)
    tls_files = (args.upstream_ca, args.upstream_cert, args.upstream_key)
    if any(tls_files) and not all(tls_files):
        p.error("--upstream-ca, --upstream-cert and --upstream-key go together")

    try:
        table = routes.select(args.service or routes.DEFAULT_SERVICES)
    except ValueError as exc:
        p.error(str(exc))
    host, _, port = args.listen.rpartition(":")
    kwargs: dict[str, Any] = {
        "upstreams": dict(args.upstream),
        "routes": table,
        "listen_host": host,
        "listen_port": int(port),
        "admin_port": args.admin_port,
        "issuer": args.issuer,
        "audiences": tuple(args.audience or (identity.DEFAULT_AUDIENCE,)),
        "upstream_tls": UpstreamTls(*tls_files) if all(tls_files) else None,
    }
    if args.keys_dir:
        kwargs["jwks"] = identity.jwks(identity.ensure_keys(args.keys_dir))
    elif args.jwks_file:
        kwargs["jwks_file"] = args.jwks_file
    else:
        kwargs["jwks_uri"] = args.jwks_uri
    if args.out:
        print(write_envoy_config(args.out, **kwargs))
    else:
        print(dump_yaml(render_envoy_config(**kwargs)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
