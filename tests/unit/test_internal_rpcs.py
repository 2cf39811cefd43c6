"""The table of internal RPCs (servers/common/internal.py) against the contracts and the front door:
it names exactly the mesh RPCs without a REST binding (which Envoy does not route) plus every RPC of
the services Envoy never routes, and each row names mesh components that exist."""

from __future__ import annotations

import pytest

from servers.common import errors
from servers.common.caller import JWT_PAYLOAD_HEADER, ORG_HEADER
from servers.common.internal import INTERNAL_RPCS, check_internal_call, internal_callers
from servers.common.tls import COMPONENTS
from servers.devstack.envoy.descriptors import DEFAULT_DESCRIPTOR, read_services
from servers.devstack.envoy.routes import MESH_ROUTES, Exposure


def test_the_table_names_exactly_the_rpcs_envoy_does_not_route():
    services = read_services(DEFAULT_DESCRIPTOR)  # committed with gen/; `make gen` rebuilds it
    exposure = {row.service: row.exposure for row in MESH_ROUTES}
    not_routed = {
        m.path for name, methods in services.items() if name.startswith("mlmesh.")
        for m in methods if exposure.get(name) is Exposure.INTERNAL or not m.public
    }
    internal = {m.path for methods in services.values() for m in methods if internal_callers(m.path) is not None}
    assert not_routed, "the descriptor set has no internal RPC"
    assert internal == not_routed


def test_every_row_names_existing_rpcs_and_components():
    services = read_services(DEFAULT_DESCRIPTOR)
    for row in INTERNAL_RPCS:
        assert row.service in services, row
        assert set(row.methods) <= {m.name for m in services[row.service]}, row
        assert row.callers and row.callers <= set(COMPONENTS) - {"envoy", "client"}, row


@pytest.mark.parametrize("metadata", [((ORG_HEADER, "smart-energy-ll"),), ((JWT_PAYLOAD_HEADER, "e30"),)])
def test_a_call_for_a_user_is_refused_whoever_the_peer(metadata):
    path = "/mlmesh.registry.v1.RegistryService/ReportTrainingStatus"
    for peer in (None, "trainer"):
        with pytest.raises(errors.PermissionDenied) as info:
            check_internal_call(path, internal_callers(path), metadata, peer)
        assert info.value.reason == "INTERNAL_RPC"


def test_the_peer_is_checked_when_known():
    path = "/mlmesh.ledger.v1.LedgerService/GetChainInfo"
    callers = internal_callers(path)
    check_internal_call(path, callers, (), "registry")
    check_internal_call(path, callers, (), "translator")
    check_internal_call(path, callers, (), None)  # plaintext: the peer is unknown, only headers count
    with pytest.raises(errors.PermissionDenied, match="only registry, translator may call, not learner"):
        check_internal_call(path, callers, (), "learner")
    assert internal_callers("/mlmesh.registry.v1.RegistryService/GetDataset") is None


def test_only_the_registry_writes_and_reads_the_access_log():
    for method in ("RecordAccessEvent", "ListAccessEntries"):
        path = f"/mlmesh.ledger.v1.LedgerService/{method}"
        callers = internal_callers(path)
        check_internal_call(path, callers, (), "registry")
        with pytest.raises(errors.PermissionDenied, match="only registry may call, not translator"):
            check_internal_call(path, callers, (), "translator")
