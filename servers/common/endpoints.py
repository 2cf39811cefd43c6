"""The one table of the mesh's well-known ports: each server's gRPC and Prometheus port in the
embedded default (`make up`), and the address a server dials to reach another. Settings classes,
the devstack and the docs read it from here; every value stays overridable by its setting
(`MLMESH_<SERVER>_PORT`, `MLMESH_<SERVER>_METRICS_PORT`, `MLMESH_<CALLER>_<SERVER>_TARGET`)."""

from __future__ import annotations

from typing import NamedTuple


class Ports(NamedTuple):
    grpc: int
    metrics: int


PORTS: dict[str, Ports] = {
    "registry": Ports(50051, 9101),
    "ledger": Ports(50052, 9102),
    "trainer": Ports(50053, 9103),
    "translator": Ports(50054, 9104),
    "learner": Ports(50055, 9105),
    "federation": Ports(50056, 9106),
    "optimizer": Ports(50057, 9107),
}
# HTTP fronts beside the gRPC port (servers.common.http), behind Envoy like it: the Registry's serves the
# seed's multipart forms and GET /contract/{address}; the Learner's the Open Inference Protocol's REST half.
HTTP_PORTS: dict[str, int] = {
    "registry": 8091,
    "learner": 8095,
}
ENVOY_PORT = 8080
ENVOY_ADMIN_PORT = 9901
POSTGRES_PORT = 5433
ANVIL_PORT = 8545


def local_target(server: str) -> str:
    """host:port of `server`'s gRPC in the embedded default."""
    return f"127.0.0.1:{PORTS[server].grpc}"
