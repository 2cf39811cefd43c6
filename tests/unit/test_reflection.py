"""Reflection for the whole public mesh (servers.common.reflection), from the descriptor set."""

from servers.common.internal import INTERNAL_RPCS
from servers.common.reflection import internal_services, public_pool
from servers.devstack.envoy.routes import MESH_ROUTES, Exposure


def test_every_routed_service_is_public_and_no_internal_one():
    pool, names = public_pool()
    routed = {r.service for r in MESH_ROUTES if r.exposure is not Exposure.INTERNAL and r.upstream is not None}
    assert routed <= set(names)
    never_routed = {r.service for r in MESH_ROUTES if r.exposure is Exposure.INTERNAL}
    assert never_routed == internal_services(INTERNAL_RPCS)
    assert not never_routed & set(names)
    for name in names:
        assert pool.FindServiceByName(name).full_name == name


def test_internal_services_are_not_in_the_pool_at_all():
    pool, _ = public_pool()
    for name in internal_services():
        try:
            pool.FindServiceByName(name)
        except KeyError:
            continue
        raise AssertionError(f"{name} is describable through reflection")
    # messages of public services and the standard services resolve
    assert pool.FindMessageTypeByName("inference.ModelInferRequest")
    assert pool.FindServiceByName("grpc.health.v1.Health")
