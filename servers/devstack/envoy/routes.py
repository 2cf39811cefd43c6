"""The front door's route table: one row per gRPC service saying who serves it and how Envoy
exposes it. Everything Envoy routes, transcodes or lets through without a token follows from
this table (and, for REST services, from the descriptor set); adding a server is adding its
rows to `MESH_ROUTES`.

  REST      routed and transcoded: REST/JSON and native gRPC, one exact route per RPC that
            has a google.api.http binding. RPCs without one are internal (server to server,
            e.g. the Registry's ReportTrainingStatus) and get no route.
  NATIVE    routed as native gRPC only, no transcoding (health, reflection, the Open
            Inference Protocol): one prefix route for the service, or exact routes to the
            listed methods.
  INTERNAL  never routed (the Ledger): native gRPC gets UNIMPLEMENTED, REST gets 404.

Every routed service needs a token unless its row says `jwt=False` (only health does).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A route timeout of 0 is "none": streams (uploads and downloads of large files, Watch...)
# have no overall deadline; the stream idle timeout still ends a stalled one.
NO_TIMEOUT = 0.0


class Exposure(enum.Enum):
    REST = "rest"
    NATIVE = "native"
    INTERNAL = "internal"


@dataclass(frozen=True)
class ServiceRoute:
    """One row of the route table."""

    service: str  # full gRPC name, e.g. "mlmesh.registry.v1.RegistryService"
    # The upstream (server) that serves it; None: the front door's default upstream (the
    # first one configured), for services every server has (health, reflection).
    upstream: str | None
    exposure: Exposure
    jwt: bool = True  # False: no token needed
    # NATIVE only. Empty: one prefix route for the whole service with `timeout`; otherwise
    # exact routes to just these (method, timeout) pairs.
    methods: tuple[tuple[str, float], ...] = ()
    # NATIVE prefix routes: seconds, NO_TIMEOUT for streaming services, None for the unary
    # default. (REST routes take theirs from the descriptor set: streaming RPCs have none.)
    timeout: float | None = None
    # REST rows: unary RPCs that do their work within the call (a worker process, minutes on a
    # loaded machine), with their own route timeout in seconds instead of the unary default.
    slow: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.exposure is not Exposure.NATIVE and (self.methods or self.timeout is not None):
            raise ValueError(f"{self.service}: methods and timeout are for NATIVE rows only")
        if self.exposure is Exposure.INTERNAL and not self.jwt:
            raise ValueError(f"{self.service}: an internal service is never routed, so jwt=False means nothing")

    @property
    def routed(self) -> bool:
        return self.exposure is not Exposure.INTERNAL

    @property
    def prefix(self) -> str:
        return f"/{self.service}/"


# Rows every front door has, whatever servers sit behind it.
FRONT_DOOR: tuple[ServiceRoute, ...] = (
    ServiceRoute("grpc.health.v1.Health", None, Exposure.NATIVE, jwt=False,
                 methods=(("Check", 10.0), ("Watch", NO_TIMEOUT))),
    ServiceRoute("grpc.reflection.v1.ServerReflection", None, Exposure.NATIVE, timeout=NO_TIMEOUT),
    ServiceRoute("grpc.reflection.v1alpha.ServerReflection", None, Exposure.NATIVE, timeout=NO_TIMEOUT),
)

# The mesh's services, one row each.
MESH_ROUTES: tuple[ServiceRoute, ...] = (
    *FRONT_DOOR,
    ServiceRoute("mlmesh.registry.v1.RegistryService", "registry", Exposure.REST),
    ServiceRoute("mlmesh.ledger.v1.LedgerService", "ledger", Exposure.INTERNAL),
    ServiceRoute("mlmesh.trainer.v1.TrainerService", "trainer", Exposure.REST),
    ServiceRoute("mlmesh.translator.v1.TranslatorService", "translator", Exposure.REST),
    ServiceRoute("mlmesh.learner.v1.LearnerService", "learner", Exposure.REST),
    ServiceRoute("mlmesh.federation.v1.FederationService", "federation", Exposure.REST),
    ServiceRoute("mlmesh.optimizer.v1.OptimizerService", "optimizer", Exposure.REST,
                 slow=(("OptimizeDay", 600.0), ("EvaluateAgent", 1800.0))),
    # The Open Inference Protocol (KServe V2) on the Learner: third-party API, no REST here.
    ServiceRoute("inference.GRPCInferenceService", "learner", Exposure.NATIVE),
)

DEFAULT_SERVICES: tuple[str, ...] = ("mlmesh.registry.v1.RegistryService",)


def http_upstream(server: str) -> str:
    """The upstream name of `server`'s HTTP front (servers.common.http)."""
    return f"{server}-http"


@dataclass(frozen=True)
class HttpRoute:
    """A plain HTTP route (not gRPC) to a server's HTTP front: what the gRPC-JSON transcoder cannot
    express, such as multipart forms (the seed's curl commands) or another protocol's own JSON (the
    Open Inference Protocol's REST half). Matched before the gRPC routes, with the transcoder switched
    off on it; the JWT rules are the same as everywhere (a token unless `jwt=False`)."""

    server: str  # its HTTP front is the upstream http_upstream(server)
    methods: tuple[str, ...]  # HTTP methods it takes
    path: str = ""  # exactly one of: an exact path,
    prefix: str = ""  # a path prefix,
    regex: str = ""  # or a RE2 regex the whole path matches
    content_type: str = ""  # a content-type prefix the request must carry ("" any), case-insensitive
    timeout: float | None = None  # None: the unary default; NO_TIMEOUT for uploads
    jwt: bool = True

    def __post_init__(self) -> None:
        if sum(bool(x) for x in (self.path, self.prefix, self.regex)) != 1:
            raise ValueError(f"{self}: give exactly one of path, prefix, regex")
        if not self.methods:
            raise ValueError(f"{self}: give the HTTP methods it takes")

    @property
    def upstream(self) -> str:
        return http_upstream(self.server)


HTTP_ROUTES: tuple[HttpRoute, ...] = (
    # The seed's multipart forms (seed 4.3); the raw-body forms of the same paths stay transcoded.
    HttpRoute("registry", ("POST",), path="/dataset", content_type="multipart/form-data", timeout=NO_TIMEOUT),
    HttpRoute("registry", ("POST",), regex="/model/?", content_type="multipart/form-data", timeout=NO_TIMEOUT),
    # The seed's contract read (seed 7.2.2, Table 15), read-only: deploy and verify stay internal.
    HttpRoute("registry", ("GET",), regex="/contract/[^/]+"),
    # The Open Inference Protocol's REST half (KServe V2) on the Learner.
    HttpRoute("learner", ("GET",), regex="/v2/health/(live|ready)"),
    HttpRoute("learner", ("GET",), path="/v2"),
    HttpRoute("learner", ("GET", "POST"), prefix="/v2/models/"),
)


def select(services: Iterable[str], table: Sequence[ServiceRoute] = MESH_ROUTES) -> tuple[ServiceRoute, ...]:
    """The front door's own rows plus the rows of `services` (full names), in that order."""
    rows = {row.service: row for row in table}
    wanted = list(services)
    unknown = [s for s in wanted if s not in rows]
    if unknown:
        raise ValueError(f"services {unknown} are not in the route table; known: {sorted(rows)}")
    own = tuple(row for row in FRONT_DOOR if row.service not in wanted)
    return own + tuple(rows[s] for s in wanted)


def upstreams_of(table: Sequence[ServiceRoute]) -> list[str]:
    """The named upstreams the routed rows need, in table order."""
    return list(dict.fromkeys(r.upstream for r in table if r.routed and r.upstream is not None))
