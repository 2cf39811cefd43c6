"""The Envoy front door: one declarative route table, a renderer that turns it into Envoy's
config, and the code that runs Envoy on that config.

  routes.py       the route table: per gRPC service, its upstream, REST / native / internal,
                  and whether it needs a token (`MESH_ROUTES`; adding a server is a row there)
  descriptors.py  the RPCs of a service from the descriptor set `make gen` builds
  render.py       route table + upstreams + identity -> Envoy bootstrap config (dict / YAML)
  process.py      start Envoy on a config and wait until it serves
  __main__.py     `python -m servers.devstack.envoy ...`: print or write a config

`envoy/README.md` explains the config filter by filter.
"""

from servers.devstack.envoy.descriptors import DEFAULT_DESCRIPTOR, Method, build_descriptor_set, read_methods
from servers.devstack.envoy.process import EnvoyProc, admin_ready, envoy_binary, start_envoy
from servers.devstack.envoy.render import dump_yaml, render_envoy_config, write_envoy_config
from servers.devstack.envoy.routes import MESH_ROUTES, Exposure, ServiceRoute, select

__all__ = [
    "DEFAULT_DESCRIPTOR",
    "MESH_ROUTES",
    "EnvoyProc",
    "Exposure",
    "Method",
    "ServiceRoute",
    "admin_ready",
    "build_descriptor_set",
    "dump_yaml",
    "envoy_binary",
    "read_methods",
    "render_envoy_config",
    "select",
    "start_envoy",
    "write_envoy_config",
]
