"""The Learner's use-case transformers (seed 2.1: "each OL service will encompass a different
Transformer"): observations in, training pairs and model inputs out; model outputs in, answers out.

* ``tabular``: rows of features as given.
* ``power-forecast`` (seed 2.1.3.1, UC9/UC10, Table 2): one window of recent power readings per sensor
  (meter) predicts the value a horizon ahead, min-max scaled.
* ``image`` (seed 2.1.3.2, smart agriculture): a PNG/JPEG in, class probabilities and the image with
  the prediction drawn onto it out.

`make_transformer(name, task, params)` builds one; params are checked by each transformer (unknown keys
fail). One module per transformer, as `ml/backends/` has one per backend; `_common` holds their shared checks.
"""

from __future__ import annotations

from typing import Any

from servers.common.errors import InvalidArgument
from servers.learner.ml.base import Transformer
from servers.learner.ml.transformers.image import ImageTransformer
from servers.learner.ml.transformers.power_forecast import PowerForecastTransformer
from servers.learner.ml.transformers.tabular import TabularTransformer

TRANSFORMERS: dict[str, type[Transformer]] = {
    TabularTransformer.name: TabularTransformer,
    PowerForecastTransformer.name: PowerForecastTransformer,
    ImageTransformer.name: ImageTransformer,
}

def make_transformer(name: str, task: str, params: dict[str, Any] | None) -> Transformer:
    """The named use-case transformer. Raises InvalidArgument for an unknown name, a task it does not
    serve, or bad params (naming the key)."""
    cls = TRANSFORMERS.get(name)
    if cls is None:
        raise InvalidArgument(f"transformer must be one of {', '.join(TRANSFORMERS)}, got {name!r}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidArgument(f"transformer_params must be an object, got {type(params).__name__}")
    return cls(task, dict(params))


__all__ = ["TRANSFORMERS", "ImageTransformer", "PowerForecastTransformer", "TabularTransformer",
           "make_transformer"]
