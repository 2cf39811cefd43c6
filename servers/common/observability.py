"""Request ids, access logs and Prometheus metrics for every server.

One aio interceptor wraps every handler: it gives the call a request id (from the
caller's `x-request-id`, which Envoy sets, or a new one), logs one access line per
call, counts RPCs, times them, tracks in-flight streams and bytes streamed, refuses
internal RPCs to anyone but their mesh callers (`servers.common.internal`), and maps
domain errors to gRPC statuses through `servers.common.grpc_errors`.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from servers.common import errors
from servers.common.caller import peer_component
from servers.common.grpc_errors import internal_status, status_code_for, to_status
from servers.common.internal import check_internal_call, internal_callers

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
log = logging.getLogger("mlmesh.access")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str, server: str) -> None:
    """One line per event: time, level, server, request id, logger, message."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {server} rid=%(request_id)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class Metrics:
    """The Prometheus series of one server, in its own registry."""

    def __init__(self, server: str):
        self.registry = CollectorRegistry()
        labels = ["grpc_service", "grpc_method"]
        self.handled = Counter(
            "mlmesh_rpc_handled_total", "RPCs completed, by status code.", [*labels, "grpc_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlmesh_rpc_duration_seconds", "Time from call start to status.", labels,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "mlmesh_rpc_in_flight_streams", "Streaming RPCs now open.", labels, registry=self.registry
        )
        self.bytes = Counter(
            "mlmesh_rpc_stream_bytes_total", "Serialized message bytes of streaming RPCs.",
            [*labels, "direction"], registry=self.registry,
        )
        # The HTTP fronts (servers.common.http) beside the RPCs: route is the route's pattern
        # (`/v2/models/{name}/infer`), never the raw path, so the series stay bounded.
        self.http_handled = Counter(
            "mlmesh_http_requests_total", "HTTP front requests completed, by status.", ["front", "method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "mlmesh_http_request_duration_seconds", "HTTP front requests: time from request to response.",
            ["front", "method", "route"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=self.registry,
        )
        self.server = server


def _split(method: str) -> tuple[str, str]:
    # "/mlmesh.registry.v1.RegistryService/UploadDataset" -> ("mlmesh.registry.v1.RegistryService", "UploadDataset")
    _, service, name = method.split("/", 2)
    return service, name


class MeshInterceptor(grpc.aio.ServerInterceptor):
    """Request id, access log, metrics and error mapping around every handler."""

    def __init__(self, server: str, metrics: Metrics, quiet_methods: frozenset[str] = frozenset()):
        self.domain = f"{server}.mlmesh"
        self.metrics = metrics
        self.quiet_methods = quiet_methods
        # Per method: the handler it wrapped and the wrapper, built once, not on every call (grpc.aio
        # asks the interceptors for the handler of every call); and the method's labelled series.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._series: dict[tuple[str, str], _MethodSeries] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(details.method, handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def series(self, service: str, method: str) -> _MethodSeries:
        found = self._series.get((service, method))
        if found is None:
            found = self._series[(service, method)] = _MethodSeries(
                self.metrics, service, method, f"/{service}/{method}" in self.quiet_methods)
        return found

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` with the request id, access log, metrics and error mapping around it (what
        `intercept_service` returns for a call, applied once: `MeshServer` wraps its services'
        handlers at registration instead of installing this as an aio interceptor)."""
        return self._wrap(full_method, handler)

    def _wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, method = _split(full_method)
        if service.startswith("grpc.reflection") or service.startswith("grpc.health"):
            return handler
        streaming = not handler.unary_unary
        deserialize, serialize = handler.request_deserializer, handler.response_serializer
        if streaming:
            deserialize, serialize = self._counting(service, method, deserialize, serialize)
        callers = internal_callers(full_method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, service, method, False, callers), deserialize, serialize)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, service, method, True, callers), deserialize, serialize)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, service, method, callers), deserialize, serialize)
        return grpc.stream_stream_rpc_method_handler(
            self._stream(handler.stream_stream, service, method, callers), deserialize, serialize)

    # -- wrappers -------------------------------------------------------------------------------

    def _counting(self, service: str, method: str, deserialize, serialize):
        """(De)serializers of a streaming RPC that count the wire bytes they see: len() of what is
        already there, instead of asking each decoded message its size (which costs a pass over it)."""
        bytes_in = self.metrics.bytes.labels(service, method, "in")
        bytes_out = self.metrics.bytes.labels(service, method, "out")

        def counted_deserialize(raw: bytes):
            bytes_in.inc(len(raw))
            return deserialize(raw) if deserialize else raw

        def counted_serialize(message) -> bytes:
            raw = serialize(message) if serialize else message
            bytes_out.inc(len(raw))
            return raw

        return counted_deserialize, counted_serialize

    def _unary(self, behavior, service: str, method: str, streaming_in: bool, callers: frozenset[str] | None):
        async def wrapper(request, context: grpc.aio.ServicerContext):
            call = _Call(self, service, method, context, streaming=streaming_in)
            await call.begin()
            try:
                if callers is not None:
                    _check_internal(service, method, callers, context)
                response = await behavior(request, context)
            except BaseException as exc:  # noqa: BLE001 - mapped, logged, re-raised as a status
                await call.fail(exc)
                raise
            call.end("OK")
            return response

        return wrapper

    def _stream(self, behavior, service: str, method: str, callers: frozenset[str] | None):
        async def wrapper(request, context: grpc.aio.ServicerContext):
            call = _Call(self, service, method, context, streaming=True)
            await call.begin()
            try:
                if callers is not None:
                    _check_internal(service, method, callers, context)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        yield response
                else:
                    await result
            except BaseException as exc:  # noqa: BLE001
                await call.fail(exc)
                raise
            call.end("OK")

        return wrapper


def _check_internal(service: str, method: str, callers: frozenset[str], context: grpc.aio.ServicerContext) -> None:
    check_internal_call(f"/{service}/{method}", callers, context.invocation_metadata() or (), peer_component(context))


class _MethodSeries:
    """One method's labelled Prometheus series, looked up once (`labels()` costs microseconds a call)."""

    __slots__ = ("handled", "latency", "in_flight", "quiet", "_metrics", "_labels")

    def __init__(self, metrics: Metrics, service: str, method: str, quiet: bool):
        self._metrics, self._labels, self.quiet = metrics, (service, method), quiet
        self.latency = metrics.latency.labels(service, method)
        self.in_flight = metrics.in_flight.labels(service, method)
        self.handled: dict[str, Any] = {}

    def handled_with(self, code: str):
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = self._metrics.handled.labels(*self._labels, code)
        return child


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return value
    return ""


class _Call:
    """Book-keeping of one RPC."""

    __slots__ = ("ic", "service", "method", "context", "streaming", "request_id", "started", "token", "series")

    def __init__(self, ic: MeshInterceptor, service: str, method: str, context: grpc.aio.ServicerContext, *,
                 streaming: bool):
        self.ic, self.service, self.method, self.context, self.streaming = ic, service, method, context, streaming
        self.request_id = _request_id(context) or uuid.uuid4().hex
        self.started = time.perf_counter()
        self.token: contextvars.Token | None = None
        self.series = ic.series(service, method)

    @property
    def short(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}.{self.method}"

    async def begin(self) -> None:
        self.token = request_id_var.set(self.request_id)
        if self.streaming:
            self.series.in_flight.inc()
        # Trailers, not headers: handlers stay free to send their own initial metadata.
        self.context.set_trailing_metadata((("x-request-id", self.request_id),))

    def end(self, code: str, note: str = "") -> None:
        elapsed = time.perf_counter() - self.started
        series = self.series
        series.handled_with(code).inc()
        series.latency.observe(elapsed)
        if self.streaming:
            series.in_flight.dec()
        if code == "OK" and series.quiet:
            level = logging.DEBUG
        else:
            level = logging.INFO if code in ("OK", "CANCELLED") or not code.startswith("INTERNAL") else logging.ERROR
        if not log.isEnabledFor(level):
            return
        log.log(level, "[%s] code=%s %.1fms%s", self.short, code, elapsed * 1000, f" {note}" if note else "")

    async def fail(self, exc: BaseException) -> None:
        """Maps `exc` to a status and aborts; AbortError from context.abort propagates."""
        import asyncio

        if isinstance(exc, errors.MeshError):
            code = status_code_for(exc)
            self.end(code.name, f"reason={exc.reason} message={exc.message!r}")
            status = to_status(exc, self.ic.domain)
            await self.context.abort(status.code, status.details, self._trailers(status))
        elif isinstance(exc, asyncio.CancelledError):
            self.end("CANCELLED", "client cancelled or went away")
        elif isinstance(exc, grpc.aio.AbortError) or type(exc).__name__ == "AbortError":
            code = self.context.code() if hasattr(self.context, "code") else None
            self.end(getattr(code, "name", str(code)) if code else "ABORTED_BY_HANDLER")
        else:
            logging.getLogger("mlmesh.errors").exception("[%s] unhandled error", self.short)
            self.end("INTERNAL", f"{type(exc).__name__}")
            status = internal_status(self.request_id, self.ic.domain)
            await self.context.abort(status.code, status.details, self._trailers(status))

    def _trailers(self, status: grpc.Status) -> tuple:
        return (*status.trailing_metadata, ("x-request-id", self.request_id))
