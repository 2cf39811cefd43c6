"""mlmesh: the Python client of the mlmesh service mesh, and the namespace of its generated stubs.

    import mlmesh
    client = mlmesh.Client("127.0.0.1:8080", token="eyJ...")   # or MLMESH_TOKEN
    for ds in client.datasets.list():
        print(ds.dataset_id, ds.display_name)

`mlmesh.aio.Client` is the asyncio twin. The generated messages and stubs live beside the SDK
(`mlmesh.registry.v1`, `mlmesh.learner.v1`, ...); this package is pkgutil-style so that a source
checkout, where the stubs sit in another directory (gen/mlmesh), extends it. The SDK is imported
lazily: `import mlmesh.registry.v1.dataset_pb2` pulls in no client code.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

_EXPORTS = {
    "Client": "mlmesh.client",
    "Timeouts": "mlmesh.client",
    "Retry": "mlmesh.client",
    "MlmeshError": "mlmesh.client.errors",
    "IntegrityError": "mlmesh.client.errors",
    "__version__": "mlmesh.client._version",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    import importlib

    if name == "aio":
        return importlib.import_module("mlmesh.aio")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlmesh' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
