"""FLARE server records: the converters' round trip and the checks of a server's client names."""

from __future__ import annotations

import datetime as dt

import pytest

from servers.common import errors
from servers.federation.api.flare_converters import flare_server_from_proto, flare_server_to_proto
from servers.federation.domain.flare_servers import DEFAULT_CLIENTS, FlareServerRecord, ServerState, check_clients

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("state", list(ServerState))
def test_a_flare_server_round_trips(state) -> None:
    record = FlareServerRecord(flare_server_id="6f1c2a34-0000-4000-8000-000000000001", organization_id="org",
                               project_name="grid", client_names=("site-1", "site-2"), state=state, create_time=T0,
                               failure_reason="why" if state is ServerState.FAILED else "",
                               address="127.0.0.1:8002", stop_time=T0 + dt.timedelta(minutes=5))
    assert flare_server_from_proto(flare_server_to_proto(record)) == record


def test_client_names_default_and_are_checked() -> None:
    assert check_clients(()) == DEFAULT_CLIENTS
    assert check_clients(("hospital-a", "b2")) == ("hospital-a", "b2")
    for bad in (("localhost",), ("admin",), ("Site",), ("a_b",), ("x",) * 2, tuple(f"c{i}" for i in range(65))):
        with pytest.raises(errors.InvalidArgument, match="flare_server.client_names"):
            check_clients(bad)
