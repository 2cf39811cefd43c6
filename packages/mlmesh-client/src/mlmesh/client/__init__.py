"""The mlmesh SDK: `Client` (blocking) here, `mlmesh.aio.Client` (asyncio) beside it."""

from mlmesh.client._client import Client
from mlmesh.client._transport import Retry, Timeouts
from mlmesh.client._version import __version__
from mlmesh.client.errors import IntegrityError, MlmeshError
from mlmesh.client.observations import observation

__all__ = ["Client", "IntegrityError", "MlmeshError", "Retry", "Timeouts", "__version__", "observation"]
