"""What the front door reads from the descriptor set `make gen` builds: the RPCs of a service
(with their streaming shape and whether they have a REST binding), and the merged descriptor
set Envoy's transcoder reads (ours plus google.rpc's status and error details)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DESCRIPTOR = REPO_ROOT / "gen" / "descriptors" / "mlmesh.binpb"

# google.rpc types the transcoder needs to print `grpc-status-details-bin` as JSON
# (google.rpc.Status and its ErrorInfo/BadRequest/... details). They are merged into the
# descriptor set Envoy reads when the buf-built one lacks them.
ERROR_DETAIL_FILES = ("google/rpc/status.proto", "google/rpc/error_details.proto")


@dataclass(frozen=True)
class Method:
    """One RPC of a service, as the descriptor set declares it."""

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


def read_services(descriptor_path: Path) -> dict[str, list[Method]]:
    """Every service in the descriptor set (full name -> its RPCs, in declaration order)."""
    from google.api import annotations_pb2

    services: dict[str, list[Method]] = {}
    for file in _load_descriptor_set(descriptor_path).file:
        for svc in file.service:
            full = f"{file.package}.{svc.name}" if file.package else svc.name
            services[full] = [
                Method(full, m.name, bool(m.client_streaming), bool(m.server_streaming),
                       public=m.options.HasExtension(annotations_pb2.http))
                for m in svc.method
            ]
    return services


def read_methods(descriptor_path: Path, services: Sequence[str]) -> list[Method]:
    """The RPCs of `services` (full names) in the descriptor set; ValueError if one is missing."""
    found = read_services(descriptor_path)
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
