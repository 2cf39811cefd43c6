"""`mlmesh.aio.Client`: the asyncio twin of `mlmesh.Client`, with the same services and methods.

    async with mlmesh.aio.Client("127.0.0.1:8080", token=...) as client:
        ds = await client.datasets.get(dataset_id)
        async for job in client.jobs.list():
            ...
        async for ack in client.learners.learn(learner_id, observations):   # sync or async iterable
            ...

Unary methods return awaitables; lists, watches and streams return async iterators. A token
callable may be a coroutine function.
"""

from __future__ import annotations

import grpc
import grpc.aio

from mlmesh.client._client import _ClientBase
from mlmesh.client._transport import AsyncTransport, Retry, Timeouts
from mlmesh.client.errors import IntegrityError, MlmeshError

__all__ = ["Client", "IntegrityError", "MlmeshError", "Retry", "Timeouts"]


class Client(_ClientBase):
    """The mesh through its front door, asyncio calls; arguments as `mlmesh.Client`."""

    _transport_class = AsyncTransport
    _grpc = grpc.aio

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
