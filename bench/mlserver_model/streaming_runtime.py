"""MLServer's scikit-learn runtime, answering ModelStreamInfer once per request.

The stock `mlserver_sklearn.SKLearnModel` inherits MLModel.predict_stream, which answers
the first request of a stream and then ends it. This subclass predicts every request of
the stream in turn, like the Learner's PredictStream, so the streaming path has an MLServer
baseline too. Its unary predict is SKLearnModel's, unchanged. make_model.py copies this
file next to the model's `model-settings.json`, where MLServer imports it from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel


class StreamingSKLearnModel(SKLearnModel):
    async def predict_stream(self, payloads: AsyncIterator[InferenceRequest]) -> AsyncIterator[InferenceResponse]:
        async for payload in payloads:
            yield await self.predict(payload)
