"""`python -m servers.ledger.main`: the Ledger gRPC server (settings from MLMESH_LEDGER_*)."""

from __future__ import annotations

import logging

from mlmesh.ledger.v1 import ledger_service_pb2 as pb
from prometheus_client import Gauge
from mlmesh.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from servers.common.errors import FailedPrecondition, Unavailable
from servers.common.server import MeshServer, serve
from servers.ledger.adapters.artifacts import ArtifactError
from servers.ledger.adapters.chain import EvmChain
from servers.ledger.adapters.signer import SignerKeyError
from servers.ledger.api.servicer import LedgerServicer
from servers.ledger.domain.ledger import Ledger
from servers.ledger.settings import LedgerSettings

log = logging.getLogger("mlmesh.ledger")


def build(settings: LedgerSettings) -> tuple[MeshServer, EvmChain]:
    """The Ledger server (not started) and its chain adapter, which the server closes on stop."""
    server = MeshServer("ledger", settings)
    try:
        chain = EvmChain(settings)
    except (SignerKeyError, ArtifactError) as exc:
        raise FailedPrecondition(str(exc), reason="LEDGER_MISCONFIGURED") from exc
    servicer = LedgerServicer(Ledger(chain))
    server.add_service(
        pb.DESCRIPTOR.services_by_name["LedgerService"],
        lambda s: pb_grpc.add_LedgerServiceServicer_to_server(servicer, s),
    )
    server.on_shutdown(chain.close)
    Gauge(
        "mlmesh_ledger_transactions_replayed",
        "Acknowledged transactions the chain node had lost and the Ledger sent again from its journal "
        "(since the Ledger started).",
        registry=server.metrics.registry,
    ).set_function(lambda: chain.replayed)
    return server, chain


async def build_checked(settings: LedgerSettings) -> MeshServer:
    """`build`, then one look at the chain node: a node not up yet is a warning (calls answer
    UNAVAILABLE until it is), not a startup failure."""
    server, chain = build(settings)
    log.info("ledger: chain node %s, signer %s (key %s)", settings.rpc_url, chain.signer_address,
             settings.signer_key_path)
    try:
        await chain.chain_info()
    except Unavailable as exc:
        log.warning("%s; calls answer UNAVAILABLE until it does", exc.message)
    except BaseException:
        await chain.close()
        raise
    return server


if __name__ == "__main__":
    serve(build_checked, LedgerSettings, "ledger")
