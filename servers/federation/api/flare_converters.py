"""FLARE server resources, proto <-> domain (pure functions; round trip in tests/unit)."""

from __future__ import annotations

from mlmesh.federation.v1 import federation_service_pb2 as pb

from servers.common import timestamps
from servers.federation.api.converters import _time
from servers.federation.domain.flare_servers import FlareServerRecord, ServerState

_STATE_PB = {
    ServerState.STARTING: pb.FlareServer.STATE_STARTING,
    ServerState.RUNNING: pb.FlareServer.STATE_RUNNING,
    ServerState.STOPPED: pb.FlareServer.STATE_STOPPED,
    ServerState.FAILED: pb.FlareServer.STATE_FAILED,
}
_STATE = {v: k for k, v in _STATE_PB.items()}


def flare_server_to_proto(s: FlareServerRecord) -> pb.FlareServer:
    return pb.FlareServer(flare_server_id=s.flare_server_id, organization_id=s.organization_id,
                          project_name=s.project_name, client_names=list(s.client_names), state=_STATE_PB[s.state],
                          failure_reason=s.failure_reason, address=s.address, create_time=_time(s.create_time),
                          stop_time=_time(s.stop_time))


def flare_server_from_proto(m: pb.FlareServer) -> FlareServerRecord:
    return FlareServerRecord(
        flare_server_id=m.flare_server_id, organization_id=m.organization_id, project_name=m.project_name,
        client_names=tuple(m.client_names), state=_STATE[m.state], failure_reason=m.failure_reason,
        address=m.address, create_time=timestamps.timestamp_from_proto(m.create_time),
        stop_time=timestamps.timestamp_from_proto(m.stop_time) if m.HasField("stop_time") else None)
