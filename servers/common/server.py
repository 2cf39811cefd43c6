"""The server bootstrap every mlmesh server uses.

    server = MeshServer("registry", settings)
    server.add_service(pb.DESCRIPTOR.services_by_name["RegistryService"],
                       lambda s: pb_grpc.add_RegistryServiceServicer_to_server(servicer, s))
    server.on_shutdown(close_pool)
    await server.serve_forever()      # or: port = await server.start(); ...; await server.stop()

It registers the standard health service (aio) and server reflection (for every public
service of the mesh: servers.common.reflection), installs the
layers every handler is wrapped in at registration (request id, access log, metrics, error
mapping; the request validation of `servers.common.validation`: every field of every request
message against the contract's rules), serves mutual TLS when
`settings.tls` is set (plaintext with a warning otherwise), serves Prometheus
metrics on their own port, and on SIGTERM/SIGINT shuts down gracefully: health goes
NOT_SERVING first, then in-flight calls get `grace_seconds` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import start_http_server

from servers.common import reflection as mesh_reflection
from servers.common import tls
from servers.common.observability import MeshInterceptor, Metrics, configure_logging
from servers.common.settings import ServerSettings
from servers.common.validation import checking_handler

log = logging.getLogger("mlmesh.server")
S = TypeVar("S", bound=ServerSettings)


class MeshServer:
    """One gRPC server with the mesh's cross-cutting concerns."""

    def __init__(self, name: str, settings: ServerSettings, *, configure_logs: bool = False,
                 quiet_methods: frozenset[str] = frozenset()):
        """`quiet_methods`: "/pkg.Service/Method" paths on a hot path (per-prediction calls) whose
        successful calls are access-logged at DEBUG; their errors, metrics and request ids stay."""
        self.name = name
        self.quiet_methods = frozenset(quiet_methods)
        self.settings = settings
        if configure_logs:
            configure_logging(settings.log_level, name)
        self.metrics = Metrics(name)
        self._services: list[tuple[str, Callable[[grpc.aio.Server], None]]] = []
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._metrics_httpd = None
        self._http_fronts: list = []
        self.port: int = 0
        self.metrics_port: int = -1

    def add_service(self, descriptor: ServiceDescriptor, add: Callable[[grpc.aio.Server], None]) -> None:
        self._services.append((descriptor.full_name, add))

    def add_http(self, front) -> None:
        """An HTTP front over the same core (servers.common.http.HttpFront): started after the gRPC
        server, stopped with it; its requests are counted in this server's metrics registry."""
        front.metrics = self.metrics
        self._http_fronts.append(front)

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        """`hook` runs after the gRPC server has stopped (close pools, clients)."""
        self._shutdown_hooks.append(hook)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> int:
        s = self.settings
        options = [
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.aio.server(options=options)
        wrap = mesh_layers(self.name, self.metrics, self.quiet_methods)
        for _, add in self._services:
            add(WrappingServer(server, wrap))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [full_name for full_name, _ in self._services]
        mesh_reflection.enable(server, names, health.SERVICE_NAME)
        files = s.tls.files()
        if files is not None:
            self.port = server.add_secure_port(f"{s.host}:{s.port}", tls.server_credentials(files))
        else:
            log.warning(
                "%s serves PLAINTEXT gRPC without client certificates: anyone who can reach %s:%s can claim to be "
                "any organization (x-mlmesh-org). Only for tests and development; set MLMESH_TLS_CA_FILE, "
                "MLMESH_TLS_CERT_FILE and MLMESH_TLS_KEY_FILE (docs/security.md).", self.name, s.host, s.port)
            self.port = server.add_insecure_port(f"{s.host}:{s.port}")
        if self.port == 0:
            raise OSError(f"{self.name}: cannot bind {s.host}:{s.port} (in use?)")
        await server.start()
        self._server = server
        for front in self._http_fronts:
            await front.start()
        for full_name in ["", *names]:
            await self._health.set(full_name, health_pb2.HealthCheckResponse.SERVING)
        if s.metrics_port >= 0:
            httpd, _thread = start_http_server(s.metrics_port, s.metrics_host, registry=self.metrics.registry)
            self._metrics_httpd = httpd
            self.metrics_port = httpd.server_port
        log.info(
            "%s serving gRPC%s on %s (metrics %s)", self.name, " (mutual TLS)" if files else "", self.address,
            f"http://{s.metrics_host}:{self.metrics_port}/metrics" if self.metrics_port >= 0 else "off",
        )
        return self.port

    async def stop(self, grace: float | None = None, *, drain: float | None = None) -> None:
        """Health NOT_SERVING, keep serving for `drain` seconds, then close the listener and give
        in-flight calls `grace` seconds to finish (defaults from the settings)."""
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()
        drain = self.settings.drain_seconds if drain is None else drain
        if drain > 0:
            await asyncio.sleep(drain)
        await self._server.stop(self.settings.grace_seconds if grace is None else grace)
        self._server = None
        for front in self._http_fronts:
            await front.stop()
        for hook in reversed(self._shutdown_hooks):
            try:
                await hook()
            except Exception:  # noqa: BLE001 - shutdown goes on; the log says what failed
                log.exception("%s: shutdown hook failed", self.name)
        if self._metrics_httpd is not None:
            self._metrics_httpd.shutdown()
            self._metrics_httpd.server_close()
            self._metrics_httpd = None
        log.info("%s stopped", self.name)

    async def serve_forever(self) -> None:
        """Start, wait for SIGTERM or SIGINT, then stop gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=self.settings.io_threads, thread_name_prefix=f"{self.name}-io")
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("%s: signal received; draining for up to %.0fs", self.name, self.settings.grace_seconds)
        await self.stop()


def serve(build: Callable[[S], Awaitable[MeshServer | tuple[MeshServer, Any]]], settings_class: type[S],
          name: str) -> None:
    """Entry point of a server's `main.py`: settings from the environment (`settings_class()`),
    logging for `name`, `await build(settings)` (a MeshServer, or a tuple whose first item is
    one), then serve until SIGTERM/SIGINT; a startup error is one line and exit status 1 (`run`).

        if __name__ == "__main__":
            serve(build, RegistrySettings, "registry")
    """
    async def main() -> None:
        settings = settings_class()
        configure_logging(settings.log_level, name)
        built = await build(settings)
        server = built[0] if isinstance(built, tuple) else built
        await server.serve_forever()

    run(main)


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Entry point of a server's `main.py`: runs `main`; a startup error prints one clear line
    (no traceback) and exits with status 1."""
    import sys

    from servers.common.errors import MeshError

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except (MeshError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        raise SystemExit(1) from None


def mesh_layers(name: str, metrics: Metrics, quiet_methods: frozenset[str] = frozenset()
                ) -> Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]:
    """`wrap(full_method, handler)`: the handler inside the mesh's layers. The outer one (request id,
    access log, metrics, error mapping) maps the InvalidArgument of a request the contract's field
    rules refuse (the inner one, servers.common.validation) like any domain error."""
    mesh = MeshInterceptor(name, metrics, quiet_methods)

    def wrap(full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return mesh.wrap(full_method, checking_handler(full_method, handler))

    return wrap


class _WrappedService(grpc.GenericRpcHandler):
    """A service's generic handler whose method handlers come out wrapped (`wrap(full_method,
    handler)`), each built once. The wrapping is what aio interceptors would do, without them:
    grpc.aio runs an interceptor chain as coroutines on every call, which cost ~35 µs of server CPU
    per unary call here for two no-op interceptors (bench/grpc_layers.py, docs/performance.md)."""

    def __init__(self, inner: grpc.GenericRpcHandler,
                 wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]):
        self._inner, self._wrap = inner, wrap
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class WrappingServer:
    """What the generated `add_<Service>Servicer_to_server` functions register on: the aio server,
    with every handler they add wrapped by the mesh's layers."""

    def __init__(self, server: grpc.aio.Server,
                 wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]):
        self._server, self._wrap = server, wrap

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(tuple(_WrappedService(h, self._wrap) for h in handlers))

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict) -> None:
        self._server.add_registered_method_handlers(service_name, {
            name: self._wrap(f"/{service_name}/{name}", handler) for name, handler in method_handlers.items()})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
