"""Packing a recipe directory: the SDK's `mlmesh.client.recipes`, named here for the CLI, the
benchmarks and the tests that import it from `clients`."""

from mlmesh.client.recipes import SKIP, pack_recipe

__all__ = ["SKIP", "pack_recipe"]
