"""A server's HTTP front: a second transport beside its gRPC servicers, over the same domain core
(MLServer's dataplane pattern; docs/architecture.md). It carries what Envoy's gRPC-JSON transcoder
cannot: multipart forms (the seed's own curl commands, on the Registry) and protocols with their
own JSON (the Open Inference Protocol's REST half, on the Learner).

    front = HttpFront("registry", settings.http_port, settings)
    front.add_routes([web.post("/dataset", handler), ...])
    server.add_http(front)            # MeshServer starts and stops it with the gRPC server

What it shares with the gRPC port, so neither front can disagree with the other:

* mutual TLS with the same mesh certificate (`settings.tls`): only mesh components (Envoy) reach it;
  without TLS it serves plaintext, as the gRPC port does in tests;
* the caller's organization from the same Envoy headers (`http_caller_org`, servers.common.caller);
* domain errors through the same table (`grpc_errors.status_code_for`): the HTTP status and a
  `google.rpc.Status` JSON body `{"code", "message", "details": [ErrorInfo]}`, the shape the
  transcoder gives for the gRPC routes; anything else is a 500 with a request id, no traceback;
* the request id (Envoy's `x-request-id`) in the log lines and the response;
* the request validation's rules (servers.common.validation): every query parameter and path
  segment is checked before the handler runs (no control character, at most 256 characters, as
  an unannotated proto string); handlers check what maps onto a proto field with
  `validation.check_fields` and parse JSON bodies with `loads_json` (no NaN, no Infinity, no
  number that overflows to one); a body past `client_max_size` is a 413;
* metrics in the server's registry (`mlmesh_http_requests_total`, `mlmesh_http_request_duration_seconds`
  by route pattern, method and status), as the gRPC interceptor counts RPCs.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

import json
import grpc
from aiohttp import web

from servers.common import errors, validation
from servers.common.caller import org_from_headers
from servers.common.grpc_errors import status_code_for
from servers.common.observability import request_id_var
from servers.common.settings import ServerSettings

log = logging.getLogger("mlmesh.access")

# google.rpc.Code -> HTTP status, as google/rpc/code.proto documents it (and Envoy's transcoder uses).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
# A message is cut to this many characters: error bodies never echo unbounded input.
MAX_MESSAGE_CHARS = 400


def error_body(exc: errors.MeshError, domain: str) -> tuple[int, dict]:
    """(HTTP status, google.rpc.Status as JSON) for a domain error."""
    code = status_code_for(exc)
    message = exc.message if len(exc.message) <= MAX_MESSAGE_CHARS else exc.message[:MAX_MESSAGE_CHARS] + "..."
    info = {"@type": _ERROR_INFO_TYPE, "reason": exc.reason, "domain": domain, "metadata": dict(exc.metadata)}
    return HTTP_STATUS.get(code, 500), {"code": code.value[0], "message": message, "details": [info]}


def _refuse_constant(name: str):
    raise errors.InvalidArgument(f"the JSON body holds {name}, which is not a number here; send finite numbers",
                                 reason="JSON_NOT_FINITE")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise errors.InvalidArgument(f"the JSON body holds the number {text[:40]}, too large for a 64-bit float",
                                     reason="JSON_NOT_FINITE")
    return value


# Arrays and objects a request body may nest. The protocols need a handful; the limit is checked
# before parsing because CPython's json decoder recurses on the C stack, and where the interpreter's
# recursion limit has been raised (some libraries do) a deep enough body crashes the process instead
# of raising RecursionError.
MAX_JSON_DEPTH = 64
_JSON_STRUCTURE = re.compile(rb'\\.|["\[\]{}]', re.S)


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    depth, in_string = 0, False
    for match in _JSON_STRUCTURE.finditer(raw):
        token = match.group()
        if in_string:
            in_string = token != b'"'  # escapes (\\.) are one token, so \" does not end a string
        elif token == b'"':
            in_string = True
        elif token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def loads_json(raw: bytes | str, what: str = "the request body"):
    """`raw` as JSON, with NaN, Infinity and numbers overflowing to infinity refused (Python's json
    takes them; the validation layer refuses non-finite floats on gRPC), and nesting deeper than
    MAX_JSON_DEPTH refused before parsing; InvalidArgument otherwise."""
    if json_too_deep(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw):
        raise errors.InvalidArgument(f"{what} is not JSON this server accepts: nested more than {MAX_JSON_DEPTH} "
                                     "levels deep", reason="REQUEST_NOT_JSON")
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise errors.InvalidArgument(f"{what} is not JSON: {detail}", reason="REQUEST_NOT_JSON") from None


def check_request_text(request: web.Request) -> None:
    """The validation layer's string rules on every query parameter (name and value) and path segment."""
    for key, value in request.query.items():
        validation.check_text("query parameter name", key)
        validation.check_text(f"query parameter {key}", value)
    for key, value in request.match_info.items():
        validation.check_text(key, value)


def peer_common_name(request: web.Request) -> str | None:
    """The CN of the client certificate on this connection (its mesh component), None without TLS."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def http_caller_org(request: web.Request) -> str | None:
    """The caller's organization from Envoy's headers, as `caller.caller_org` reads it on gRPC."""
    return org_from_headers(request.headers.items(), peer_common_name(request))


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpFront:
    """One aiohttp server on its own port, with the mesh's TLS, error mapping and access log."""

    def __init__(self, name: str, port: int, settings: ServerSettings, *,
                 quiet_paths: Iterable[str] = (), client_max_size: int = 1 << 20, error_key: str | None = None):
        """`quiet_paths`: path prefixes on a hot path (per-prediction calls) logged at DEBUG when they
        succeed. `client_max_size`: the largest body a handler may read whole (`request.read()`,
        `.json()`); streamed bodies (multipart) are not bound by it. `error_key`: error bodies also
        carry the message under this key (the Open Inference Protocol's REST errors are {"error": …})."""
        self.name, self.settings = name, settings
        self.domain = f"{name}.mlmesh"
        self.requested_port = port
        self.port = 0
        self.quiet_paths = tuple(quiet_paths)
        self.error_key = error_key
        self.client_max_size = client_max_size
        self.metrics = None  # the server's servers.common.observability.Metrics (MeshServer.add_http)
        self.app = web.Application(middlewares=[self._middleware], client_max_size=client_max_size,
                                   handler_args={"access_log": None})
        self._runner: web.AppRunner | None = None

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        self.app.add_routes(list(routes))

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self.settings.tls
        if not tls.enabled:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca_file))
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        context.verify_mode = ssl.CERT_REQUIRED  # a client certificate from the mesh CA, as on the gRPC port
        return context

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        context = self._ssl_context()
        site = web.TCPSite(self._runner, self.settings.host, self.requested_port, ssl_context=context,
                           reuse_port=False)
        await site.start()
        server = site._server  # the asyncio.Server: the bound port when 0 was asked for
        self.port = server.sockets[0].getsockname()[1] if server and server.sockets else self.requested_port
        log.info("%s serving HTTP%s on %s:%s", self.name, " (mutual TLS)" if context else "", self.settings.host,
                 self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else None
        route = f"{request.method} {pattern or request.path[:80]}"
        labels = (request.method if request.method in _METHODS else "OTHER", pattern or "(no route)")
        try:
            try:
                check_request_text(request)
                response = await handler(request)
            except errors.MeshError as exc:
                status, body = error_body(exc, self.domain)
                if self.error_key:
                    body[self.error_key] = body["message"]
                self._log(labels, route, status, started, f"reason={exc.reason} message={body['message']!r}")
                return web.json_response(body, status=status, headers={"x-request-id": request_id})
            except web.HTTPException as exc:
                # aiohttp's own answers (no such route, method not allowed, body too large) as Status JSON.
                code = {404: 5, 405: 12, 413: 8}.get(exc.status, 3 if exc.status < 500 else 13)
                self._log(labels, route, exc.status, started, exc.reason or "")
                message = exc.reason or ""
                if exc.status == 413:
                    message = (f"the request body is larger than the {self.client_max_size} bytes this "
                               "endpoint takes; send a smaller one")
                body = {"code": code, "message": message, "details": []}
                if self.error_key:
                    body[self.error_key] = body["message"]
                return web.json_response(body, status=exc.status, headers={"x-request-id": request_id})
            except Exception:  # noqa: BLE001 - a bug: logged with its traceback, never shown to the client
                log.exception("[%s] unexpected error", route)
                body = {"code": 13, "message": f"internal error; the server log has the details under request id "
                        f"{request_id}", "details": [{"@type": _ERROR_INFO_TYPE, "reason": "INTERNAL",
                                                      "domain": self.domain,
                                                      "metadata": {"request_id": request_id}}]}
                self._log(labels, route, 500, started, "")
                return web.json_response(body, status=500, headers={"x-request-id": request_id})
            if not response.prepared:
                response.headers["x-request-id"] = request_id
            quiet = response.status < 400 and request.path.startswith(self.quiet_paths) if self.quiet_paths else False
            self._log(labels, route, response.status, started, "", quiet=quiet)
            return response
        finally:
            request_id_var.reset(token)

    def _log(self, labels: tuple[str, str], route: str, status: int, started: float, note: str, *,
             quiet: bool = False) -> None:
        if self.metrics is not None:
            method, pattern = labels
            self.metrics.http_handled.labels(self.name, method, pattern, str(status)).inc()
            self.metrics.http_latency.labels(self.name, method, pattern).observe(time.perf_counter() - started)
        level = logging.DEBUG if quiet else (logging.ERROR if status >= 500 else logging.INFO)
        if log.isEnabledFor(level):
            log.log(level, "[%s http %s] status=%d %.1fms%s", self.name, route, status,
                    (time.perf_counter() - started) * 1000, f" {note}" if note else "")
