"""Render the Envoy front door's config from the route table (`routes.py`).

The config is built as a Python dict and dumped as YAML rather than filled into a YAML
template, because most of it is derived, not written: the routes come from the route table
and, for REST services, the descriptor set `make gen` builds (one route per public RPC, no
timeout on streaming ones); the local JWKS comes from the embedded identity's key pair; the
JWT provider is either that JWKS or an OIDC issuer's `jwks_uri` (which then needs its own TLS
cluster); the clusters come from the upstream map. `envoy/README.md` explains each filter.

Filter chain (order matters):
  header_mutation   strip identity headers a client might forge (x-mlmesh-org, ...)
  jwt_authn         verify the bearer token; services the table marks jwt=False (health)
                    are exempt; on success add the org claim / verified payload as headers
  grpc_json_transcoder  REST+JSON <-> gRPC for the table's REST services only
  router            per-RPC routes to HTTP/2 upstream clusters; nothing else is routed
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from servers.common import identity
from servers.common.tls import service_name, spiffe_id
from servers.common.caller import JWT_PAYLOAD_HEADER, ORG_HEADER
from servers.common.endpoints import ENVOY_ADMIN_PORT, ENVOY_PORT
from servers.devstack.envoy.descriptors import DEFAULT_DESCRIPTOR, build_descriptor_set, read_methods
from servers.devstack.envoy.routes import (
    DEFAULT_SERVICES,
    NO_TIMEOUT,
    Exposure,
    HttpRoute,
    ServiceRoute,
    select,
)

DEFAULT_ROUTES: tuple[ServiceRoute, ...] = select(DEFAULT_SERVICES)
DEFAULT_LISTEN = ("127.0.0.1", ENVOY_PORT)
DEFAULT_ADMIN_PORT = ENVOY_ADMIN_PORT
DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# Headers Envoy sets from a verified token. Servers may trust them because no client copy
# gets through: Envoy 1.40's jwt_authn sanitizes them itself, and the header_mutation filter
# removes them first anyway (older jwt_authn appended to a client's copy, and left it alone
# on routes without a JWT requirement).
SUBJECT_HEADER = "x-mlmesh-subject"
PAYLOAD_HEADER = JWT_PAYLOAD_HEADER
IDENTITY_HEADERS = (ORG_HEADER, SUBJECT_HEADER, PAYLOAD_HEADER)

JWT_PROVIDER = "mlmesh"

# Envoy's own replies (JWT failures, unknown paths, bad query parameters, no upstream) to
# REST clients get the same JSON shape as transcoded gRPC errors: google.rpc.Status
# {"code": <gRPC code>, "message": ...}. HTTP status -> gRPC code, as google.rpc.Code documents.
_HTTP_TO_GRPC_CODE = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    409: 10,  # ABORTED
    413: 8,  # RESOURCE_EXHAUSTED
    429: 8,  # RESOURCE_EXHAUSTED
    499: 1,  # CANCELLED
    501: 12,  # UNIMPLEMENTED
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}

# Flow-control windows and buffers: small enough that a slow peer makes Envoy push back
# instead of buffering (Envoy's default HTTP/2 windows are 256 MiB), large enough for
# full speed on a LAN. Envoy's edge-proxy guide suggests the same order of magnitude.
_STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 4 << 20
_BUFFER_LIMIT = 1 << 20


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": int(port)}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class UpstreamTls:
    """Envoy's mesh identity (servers.common.tls): the CA that signs the servers' certificates, and
    the certificate and key Envoy presents to them."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _upstream_tls_socket(name: str, tls: UpstreamTls, alpn: str = "h2") -> dict[str, Any]:
    """Mutual TLS to upstream `name`: Envoy's certificate, the server's checked against the mesh CA
    and its URI SAN spiffe://mlmesh/<name> (so only that server, not any mesh certificate), ALPN h2
    (http/1.1 for an HTTP front)."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": service_name(name),
            "common_tls_context": {
                "alpn_protocols": [alpn],
                "tls_certificates": [{"certificate_chain": {"filename": str(tls.cert_file)},
                                      "private_key": {"filename": str(tls.key_file)}}],
                "validation_context": {
                    "trusted_ca": {"filename": str(tls.ca_file)},
                    "match_typed_subject_alt_names": [
                        {"san_type": "URI", "matcher": {"exact": spiffe_id(name)}}
                    ],
                },
            },
        },
    }


def _upstream_cluster(name: str, host: str, port: int, tls: UpstreamTls | None = None,
                      http_front_of: str | None = None) -> dict[str, Any]:
    """An HTTP/2 cluster to one gRPC server: mutual TLS with `tls`, h2c (plaintext) without. With
    `http_front_of` (a server's name), an HTTP/1.1 cluster to that server's HTTP front, whose
    certificate is the server's."""
    protocol: dict[str, Any] = {
        "http2_protocol_options": {
            "initial_stream_window_size": _STREAM_WINDOW,
            "initial_connection_window_size": _CONNECTION_WINDOW,
            "connection_keepalive": {"interval": "30s", "timeout": "10s"},
        }
    }
    if http_front_of is not None:
        protocol = {"http_protocol_options": {}}
    cluster = {
        "name": f"upstream_{name}",
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "2s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": _BUFFER_LIMIT,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": "300s"},
                "explicit_http_config": protocol,
            }
        },
        "load_assignment": {
            "cluster_name": f"upstream_{name}",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]}],
        },
    }
    if tls is not None:
        cluster["transport_socket"] = _upstream_tls_socket(
            http_front_of or name, tls, "h2" if http_front_of is None else "http/1.1")
    return cluster


def _jwks_cluster(uri: str, ca_bundle: Path) -> tuple[str, dict[str, Any]]:
    """The cluster Envoy fetches a remote JWKS through (TLS with hostname check for https)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"jwks_uri must be an http(s) URL, got {uri!r}")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = "jwks_" + "".join(c if c.isalnum() else "_" for c in f"{host}_{port}")
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC" if _is_ip(host) else "LOGICAL_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]}],
        },
    }
    if parts.scheme == "https":
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": {"filename": str(ca_bundle)},
                        "match_typed_subject_alt_names": [
                            {"san_type": "IP_ADDRESS" if _is_ip(host) else "DNS", "matcher": {"exact": host}}
                        ],
                    }
                },
            },
        }
    return name, cluster


def _jwt_filter(
    *,
    jwks: Mapping[str, Any] | None,
    jwks_uri: str | None,
    jwks_file: str | None = None,
    jwks_cluster: str | None,
    issuer: str,
    audiences: Sequence[str],
    org_claim: str,
    open_prefixes: Sequence[str],
) -> dict[str, Any]:
    """One provider; a token is required everywhere except under `open_prefixes`."""
    provider: dict[str, Any] = {
        "issuer": issuer,
        "audiences": list(audiences),
        # Only the Authorization header: a token in a query string ends up in logs.
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
        # The token itself is not passed on; the servers get the verified claims.
        "forward": False,
        "forward_payload_header": PAYLOAD_HEADER,
        "claim_to_headers": [
            {"header_name": ORG_HEADER, "claim_name": org_claim},
            {"header_name": SUBJECT_HEADER, "claim_name": "sub"},
        ],
        "clock_skew_seconds": 30,
        # Verified tokens are cached (by their text, until they expire): a client sends the same token on
        # every call, and an RS256 signature check per request costs more than the rest of the filter.
        "jwt_cache_config": {"jwt_cache_size": 1000},
    }
    if jwks is not None:
        provider["local_jwks"] = {"inline_string": json.dumps(dict(jwks), separators=(",", ":"))}
    elif jwks_file is not None:
        # A JWKS file mounted at deploy time (k8s dev overlay: a ConfigMap), read at Envoy's start.
        provider["local_jwks"] = {"filename": jwks_file}
    else:
        provider["remote_jwks"] = {
            "http_uri": {"uri": jwks_uri, "cluster": jwks_cluster, "timeout": "5s"},
            "cache_duration": "300s",
            # Fetch at startup in the background; do not hold the listener back if the
            # issuer is down (requests fail with 401 until a fetch succeeds).
            "async_fetch": {"fast_listener": True},
            "retry_policy": {
                "num_retries": 3,
                "retry_back_off": {"base_interval": "0.5s", "max_interval": "5s"},
            },
        }
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {JWT_PROVIDER: provider},
            "rules": [
                *({"match": {"prefix": prefix}} for prefix in open_prefixes),
                {"match": {"prefix": "/"}, "requires": {"provider_name": JWT_PROVIDER}},
            ],
        },
    }


def _transcoder_filter(descriptor_path: Path, services: Sequence[str]) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http."
            "grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": str(descriptor_path),
            "services": list(services),
            "print_options": {
                "preserve_proto_field_names": True,
                "always_print_primitive_fields": True,
            },
            "convert_grpc_status": True,
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
            },
            "query_param_unescape_plus": True,
            # Only unary JSON bodies are buffered; HttpBody streams are not (see README).
            "max_request_body_size": 4 << 20,
            "max_response_body_size": 16 << 20,
        },
    }


def _header_strip_filter() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"request_mutations": [{"remove": h} for h in IDENTITY_HEADERS]},
        },
    }


# Local replies Envoy sends with an empty body, by their response code details, with the
# google.rpc.Status a REST client gets instead of {"code": 3, "message": ""} (a format string: %% is %).
_SILENT_REFUSALS = {
    "path_normalization_failed": (
        3,
        "the request path is not valid: it holds an encoded NUL (%%00) or another character Envoy "
        "refuses to normalize",
    ),
}


def _details_are(details: str) -> dict[str, Any]:
    """An access-log filter on a reply's response code details (Envoy's CEL filter)."""
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": f"response.code_details == '{details}'",
            },
        }
    }


def _local_reply_config() -> dict[str, Any]:
    """REST clients get Envoy's own errors as google.rpc.Status JSON; gRPC clients are untouched."""
    not_grpc = {
        "or_filter": {
            "filters": [
                {
                    "header_filter": {
                        "header": {
                            "name": "content-type",
                            "string_match": {"prefix": "application/grpc"},
                            "invert_match": True,
                            # A GET from curl has no content-type: that is not gRPC either.
                            "treat_missing_header_as_empty": True,
                        }
                    }
                },
                # A REST call the transcoder has already turned into gRPC (an upstream that is down,
                # a timeout): its content-type says gRPC by now, the original path says REST.
                {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
            ]
        }
    }

    def status_is(op: str, value: int) -> dict[str, Any]:
        return {
            "status_code_filter": {
                "comparison": {"op": op, "value": {"default_value": value, "runtime_key": "mlmesh.unused"}}
            }
        }

    def mapper(status_filter: dict[str, Any], code: int) -> dict[str, Any]:
        return {
            "filter": {"and_filter": {"filters": [status_filter, not_grpc]}},
            "body_format_override": {
                "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"},
            },
        }

    # Envoy's own refusals that come without a body: say what was refused.
    mappers = [
        {
            "filter": {"and_filter": {"filters": [_details_are(details), not_grpc]}},
            "body_format_override": {"json_format": {"code": code, "message": message}},
        }
        for details, (code, message) in _SILENT_REFUSALS.items()
    ]
    mappers += [mapper(status_is("EQ", http), grpc) for http, grpc in _HTTP_TO_GRPC_CODE.items()]
    mappers.append(mapper(status_is("GE", 500), 13))  # INTERNAL
    mappers.append(mapper(status_is("GE", 400), 3))  # INVALID_ARGUMENT
    return {"mappers": mappers}


def _route(match: dict[str, str], cluster: str, timeout: float) -> dict[str, Any]:
    return {
        "match": {**match, "grpc": {}},
        "route": {"cluster": cluster, "timeout": "0s" if timeout == NO_TIMEOUT else _duration(timeout)},
    }


_NO_TRANSCODING = {
    "envoy.filters.http.grpc_json_transcoder": {
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
        "disabled": True,
    }
}


def _http_route(row: HttpRoute, upstreams: Mapping[str, tuple[str, int]], unary_timeout: float) -> dict[str, Any]:
    """A plain HTTP route to a server's HTTP front: path, method and content-type matched; no
    transcoding on it (the transcoder would otherwise claim the seed's paths as HttpBody uploads)."""
    if row.upstream not in upstreams:
        raise ValueError(f"no upstream {row.upstream!r} for the HTTP route {row}; have {sorted(upstreams)}")
    match: dict[str, Any]
    if row.path:
        match = {"path": row.path}
    elif row.prefix:
        match = {"prefix": row.prefix}
    else:
        match = {"safe_regex": {"regex": row.regex}}
    headers = [{"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(row.methods)}}}]
    if row.content_type:
        headers.append({"name": "content-type", "string_match": {"prefix": row.content_type, "ignore_case": True}})
    timeout = unary_timeout if row.timeout is None else row.timeout
    return {
        "match": {**match, "headers": headers},
        "route": {"cluster": f"upstream_{row.upstream}",
                  "timeout": "0s" if timeout == NO_TIMEOUT else _duration(timeout)},
        "typed_per_filter_config": _NO_TRANSCODING,
    }


def _routes(
    table: Sequence[ServiceRoute],
    descriptor_path: Path,
    upstreams: Mapping[str, tuple[str, int]],
    default_upstream: str,
    unary_timeout: float,
) -> list[dict[str, Any]]:
    """The router's routes, in table order: per-RPC for REST rows (only RPCs with a REST
    binding), per-method or per-prefix for NATIVE rows, none for INTERNAL rows."""
    rest = [row.service for row in table if row.exposure is Exposure.REST]
    methods = read_methods(descriptor_path, rest)
    routes: list[dict[str, Any]] = []
    for row in table:
        if not row.routed:
            continue
        upstream = row.upstream or default_upstream
        if upstream not in upstreams:
            raise ValueError(f"no upstream {upstream!r} for {row.service}; have {sorted(upstreams)}")
        cluster = f"upstream_{upstream}"
        if row.exposure is Exposure.REST:
            slow = dict(row.slow)
            for m in methods:
                if m.service != row.service or not m.public:
                    continue
                route = _route({"path": m.path}, cluster, NO_TIMEOUT if m.streaming else slow.get(m.name, unary_timeout))
                if m.name in slow and not m.streaming:
                    # a unary call sends nothing until it is done: the stream idle timeout must wait too
                    route["route"]["idle_timeout"] = _duration(slow[m.name])
                routes.append(route)
        elif row.methods:
            routes += [_route({"path": f"{row.prefix}{name}"}, cluster, t) for name, t in row.methods]
        else:
            timeout = unary_timeout if row.timeout is None else row.timeout
            routes.append(_route({"prefix": row.prefix}, cluster, timeout))
    return routes


_ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "grpc_path": "%REQ(:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "duration_ms": "%DURATION%",
    "upstream": "%UPSTREAM_CLUSTER%",
    "org": f"%REQ({ORG_HEADER})%",
    "request_id": "%REQ(X-REQUEST-ID)%",
}


# Per-prediction paths (the Open Inference Protocol, both halves): a successful call is not access-logged
# (as the Learner does not log it at INFO); a failed one is, as is every call on any other path.
# (Envoy's safe_regex matches the whole path.)
QUIET_PATHS_REGEX = r"/(inference\.GRPCInferenceService/(ModelInfer|ModelReady|ServerLive|ServerReady)|v2(/.*)?)"


def _access_log_filter() -> dict[str, Any]:
    return {"or_filter": {"filters": [
        {"header_filter": {"header": {"name": ":path", "string_match": {"safe_regex": {"regex": QUIET_PATHS_REGEX}},
                                      "invert_match": True}}},
        {"status_code_filter": {"comparison": {"op": "GE", "value": {"default_value": 400,
                                                                      "runtime_key": "mlmesh.unused"}}}},
        # a gRPC error comes with HTTP 200; the status filter alone would also match every REST call
        {"and_filter": {"filters": [
            {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"}}}},
            {"grpc_status_filter": {"statuses": ["OK"], "exclude": True}},
        ]}},
    ]}}


def _http_connection_manager(
    routes: list[dict[str, Any]], http_filters: list[dict[str, Any]], stream_idle_timeout_seconds: float
) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "front_door",
        # HTTP/1.1 and HTTP/2 (prior knowledge, i.e. h2c and native gRPC) on one port.
        "codec_type": "AUTO",
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        # No overall request timeout (a 10 GB upload may take long); a stream that moves
        # no bytes for this long is reset, and headers must arrive promptly.
        "stream_idle_timeout": _duration(stream_idle_timeout_seconds),
        "request_timeout": "0s",
        "request_headers_timeout": "10s",
        # HTTP/1.1 clients get gRPC trailers (grpc-status, grpc-message) as chunked trailers:
        # the only place a streamed download that fails after its first byte can say so.
        "http_protocol_options": {"enable_trailers": True},
        "common_http_protocol_options": {
            "idle_timeout": "600s",
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        "http2_protocol_options": {
            "max_concurrent_streams": 100,
            "initial_stream_window_size": _STREAM_WINDOW,
            "initial_connection_window_size": _CONNECTION_WINDOW,
        },
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "filter": _access_log_filter(),
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {"json_format": _ACCESS_LOG_FORMAT},
                },
            }
        ],
        "local_reply_config": _local_reply_config(),
        "route_config": {
            "name": "mlmesh",
            "virtual_hosts": [{"name": "mlmesh", "domains": ["*"], "routes": routes}],
        },
        "http_filters": http_filters,
    }


def render_envoy_config(
    *,
    upstreams: Mapping[str, tuple[str, int]],
    routes: Sequence[ServiceRoute] = DEFAULT_ROUTES,
    descriptor_path: Path = DEFAULT_DESCRIPTOR,
    default_upstream: str | None = None,
    listen_host: str = DEFAULT_LISTEN[0],
    listen_port: int = DEFAULT_LISTEN[1],
    admin_host: str = "127.0.0.1",
    admin_port: int = DEFAULT_ADMIN_PORT,
    jwks: Mapping[str, Any] | None = None,
    jwks_uri: str | None = None,
    jwks_file: str | None = None,
    issuer: str = identity.DEFAULT_ISSUER,
    audiences: Sequence[str] = (identity.DEFAULT_AUDIENCE,),
    org_claim: str = identity.ORG_CLAIM,
    ca_bundle: Path = DEFAULT_CA_BUNDLE,
    unary_timeout_seconds: float = 60.0,
    stream_idle_timeout_seconds: float = 300.0,
    max_connections: int = 10_000,
    upstream_tls: UpstreamTls | None = None,
    http_routes: Sequence[HttpRoute] = (),
) -> dict[str, Any]:
    """The Envoy bootstrap config of the front door, as a dict (`dump_yaml` writes it out).

    upstreams: upstream name -> (host, gRPC port), e.g. {"registry": ("127.0.0.1", 50051)};
        each becomes an HTTP/2 cluster.
    routes: the route table (`routes.MESH_ROUTES`, or `routes.select([...])` for some of its
        services; default: the Registry). Services not in it, and its INTERNAL rows, get no
        route and answer 404 / UNIMPLEMENTED.
    default_upstream: where rows without an upstream (health: no token needed; reflection)
        go; default: the first upstream.
    jwks / jwks_uri / jwks_file: exactly one. `jwks` (a dict, e.g. `identity.jwks(keys)`) is inlined for
        the embedded issuer; `jwks_uri` is an OIDC issuer's key endpoint (Keycloak:
        https://HOST/realms/REALM/protocol/openid-connect/certs), fetched and cached by Envoy;
        `jwks_file` a JWKS file path as Envoy sees it (mounted at deploy time), read at its start.
    upstream_tls: Envoy's mesh certificate; every upstream cluster is then mutual TLS and checks
        the server's certificate names it (spiffe://mlmesh/<upstream name>). None: plaintext h2c.
    http_routes: plain HTTP routes to servers' HTTP fronts (`routes.HTTP_ROUTES`), matched first;
        each needs its upstream `routes.http_upstream(server)` in `upstreams` (an HTTP/1.1 cluster).
    """
    if sum(x is not None for x in (jwks, jwks_uri, jwks_file)) != 1:
        raise ValueError("give exactly one of jwks (embedded issuer), jwks_uri (OIDC issuer) or jwks_file")
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    if not audiences:
        raise ValueError("at least one audience is needed")
    services = [row.service for row in routes]
    if len(set(services)) != len(services):
        raise ValueError(f"a service appears twice in the route table: {services}")

    descriptor_path = Path(descriptor_path).resolve()
    default_upstream = default_upstream or next(iter(upstreams))
    route_list = [_http_route(row, upstreams, unary_timeout_seconds) for row in http_routes]
    route_list += _routes(routes, descriptor_path, upstreams, default_upstream, unary_timeout_seconds)

    fronts = {row.upstream: row.server for row in http_routes}
    clusters = [_upstream_cluster(name, host, port, upstream_tls, fronts.get(name))
                for name, (host, port) in upstreams.items()]
    jwks_cluster = None
    if jwks_uri is not None:
        jwks_cluster, cluster = _jwks_cluster(jwks_uri, Path(ca_bundle))
        clusters.append(cluster)

    http_filters = [
        _header_strip_filter(),
        _jwt_filter(
            jwks=jwks,
            jwks_uri=jwks_uri,
            jwks_file=jwks_file,
            jwks_cluster=jwks_cluster,
            issuer=issuer,
            audiences=audiences,
            org_claim=org_claim,
            open_prefixes=[row.prefix for row in routes if row.routed and not row.jwt],
        ),
        _transcoder_filter(descriptor_path, [row.service for row in routes if row.exposure is Exposure.REST]),
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]
    hcm = _http_connection_manager(route_list, http_filters, stream_idle_timeout_seconds)

    return {
        "admin": {"address": _address(admin_host, admin_port)},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                        "downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": max_connections,
                    },
                }
            ]
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "front_door",
                    "address": _address(listen_host, listen_port),
                    "per_connection_buffer_limit_bytes": _BUFFER_LIMIT,
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ],
            "clusters": clusters,
        },
    }



class _PlainDumper(yaml.SafeDumper):
    """Writes repeated sub-dicts out in full: no YAML anchors/aliases in a file people read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(config: Mapping[str, Any]) -> str:
    return yaml.dump(dict(config), Dumper=_PlainDumper, sort_keys=False, width=120)


def write_envoy_config(
    path: Path,
    *,
    descriptor_path: Path = DEFAULT_DESCRIPTOR,
    merge_error_details: bool = True,
    **kwargs: Any,
) -> Path:
    """Render the config (see `render_envoy_config` for the keyword arguments) to `path` as YAML.

    With `merge_error_details`, the descriptor set Envoy reads is `<path stem>.binpb` next to
    the config: the buf-built one plus google/rpc/{status,error_details}.proto, so that error
    details (ErrorInfo, BadRequest, ...) in `grpc-status-details-bin` come out as JSON.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if merge_error_details:
        descriptor_path = build_descriptor_set(descriptor_path, path.with_suffix(".binpb"))
    config = render_envoy_config(descriptor_path=descriptor_path, **kwargs)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(
        "# Generated by servers/devstack/envoy -- do not edit; see envoy/README.md.\n" + dump_yaml(config)
    )
    tmp.replace(path)
    return path
