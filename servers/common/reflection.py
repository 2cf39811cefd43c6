"""Server reflection for the whole public mesh, from any one server.

Envoy routes reflection to one server (its default upstream), yet a user reaches every public
service through that one port, so every `MeshServer` answers reflection for every public service of
the contracts, not just its own: `grpcurl … list` / `describe` through the front door show the
Registry, Trainer, Translator, Learner, the Open Inference Protocol and health alike.

The descriptors come from the descriptor set `make gen` builds (gen/descriptors/mlmesh.binpb, the
file Envoy's transcoder reads), in a pool of their own. Public means: not a wholly internal
service in `servers.common.internal`; the Ledger is neither listed nor in the pool, so `describe`
does not know it either. Internal RPCs of public services
(e.g. RegistryService.ReportTrainingStatus) stay visible in `describe`: they are part of the
service's descriptor, Envoy never routes them, and the servers refuse them to users.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from servers.common.internal import INTERNAL_RPCS, InternalRpcs

log = logging.getLogger("mlmesh.reflection")

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "gen" / "descriptors" / "mlmesh.binpb"


def internal_services(table: Iterable[InternalRpcs] = INTERNAL_RPCS) -> frozenset[str]:
    """Services every RPC of which is internal."""
    return frozenset(row.service for row in table if not row.methods)


@functools.cache
def public_pool(path: Path = DESCRIPTOR_SET) -> tuple[descriptor_pool.DescriptorPool, tuple[str, ...]]:
    """(a pool with every file of the descriptor set plus health and reflection, the full names of
    the public services in it). Without the descriptor set: an empty pool and no names."""
    pool = descriptor_pool.DescriptorPool()
    try:
        file_set = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    except OSError as exc:
        log.warning("no descriptor set at %s (%s): reflection lists this server's own services only", path, exc)
        return pool, ()
    hidden = internal_services()
    names, roots = [], set()
    for file in file_set.file:
        for service in file.service:
            full = f"{file.package}.{service.name}" if file.package else service.name
            if full not in hidden:
                names.append(full)
                roots.add(file.name)
    # Only the files public services need: an internal service's file (the Ledger's) stays out,
    # so `describe` cannot show it either.
    by_name = {file.name: file for file in file_set.file}
    needed, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in needed and name in by_name:
            needed.add(name)
            todo.extend(by_name[name].dependency)
    for file in file_set.file:  # buf writes dependencies first
        if file.name in needed:
            pool.Add(file)
    for module in (health_pb2, reflection_pb2):
        extra = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        try:
            pool.FindFileByName(extra.name)
        except KeyError:
            pool.Add(extra)
    return pool, tuple(names)


def enable(server, own_services: Iterable[str], health_service: str) -> None:
    """Registers reflection on `server` for its own services and every public one of the mesh."""
    pool, public = public_pool()
    own = list(own_services)
    names = list(dict.fromkeys([*public, *own, health_service, reflection.SERVICE_NAME]))
    if any(_missing(pool, name) for name in own):
        # a service outside the descriptor set (tests' stand-ins): the process's own pool knows it
        reflection.enable_server_reflection([*own, health_service, reflection.SERVICE_NAME], server)
        return
    reflection.enable_server_reflection(names, server, pool=pool)


def _missing(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        pool.FindServiceByName(name)
    except KeyError:
        return True
    return False
