"""Every service of every server, read from the descriptor set `make gen` builds
(gen/descriptors/mlmesh.binpb), so a server added to the contracts is fuzzed without touching
these tests. Message classes come from the generated modules (the default descriptor pool), the
same ones the servers use."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "gen" / "descriptors" / "mlmesh.binpb"


@dataclass(frozen=True)
class Rpc:
    service: str  # "mlmesh.registry.v1.RegistryService"
    name: str  # "UploadDataset"
    input_type: str  # full message name
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def shape(self) -> str:
        return {(False, False): "unary", (True, False): "client-stream", (False, True): "server-stream",
                (True, True): "bidi"}[(self.client_streaming, self.server_streaming)]

    def __str__(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}.{self.name}"


@functools.cache
def _file_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())


@functools.cache
def rpcs() -> tuple[Rpc, ...]:
    """Every RPC of every service in the descriptor set, in file order."""
    out = []
    for file in _file_set().file:
        if not file.service:
            continue
        importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")
        for service in file.service:
            full = f"{file.package}.{service.name}" if file.package else service.name
            for method in service.method:
                out.append(Rpc(full, method.name, method.input_type.lstrip("."), method.client_streaming,
                               method.server_streaming))
    return tuple(out)


def message_class(full_name: str):
    rpcs()  # imports every generated module that has a service
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


def request_types() -> dict[str, type]:
    """Every RPC's request message class, by the RPC's path."""
    return {rpc.path: message_class(rpc.input_type) for rpc in rpcs()}
