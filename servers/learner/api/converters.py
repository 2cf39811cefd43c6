"""Messages of mlmesh.learner.v1 to and from the Learner's plain types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2
from mlmesh.learner.v1 import learner_service_pb2 as pb

from servers.common import errors
from servers.common.timestamps import timestamp_from_proto, timestamp_to_proto
from servers.learner.domain.live import Event, LiveLearner, Prediction, SavedVersion
from servers.learner.domain.records import READY, LearnerRecord, MonitoringSettings, SavePolicy, Spec
from servers.learner.ml.base import Obs, Output, Reading

_STATES = {READY: pb.Learner.STATE_READY, "FAILED": pb.Learner.STATE_FAILED}
_EVENT_KINDS = {"drift_detected": pb.LearnerEvent.KIND_DRIFT_DETECTED,
                "drift_cleared": pb.LearnerEvent.KIND_DRIFT_CLEARED,
                "version_saved": pb.LearnerEvent.KIND_VERSION_SAVED}


def _plain(value: Any) -> Any:
    """Struct numbers are doubles: 32.0 comes back as 32, so integer parameters stay integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return _plain(json_format.MessageToDict(struct))


def dict_to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def spec_from_proto(s: pb.LearnerSpec) -> Spec:
    p, m = s.save_policy, s.monitoring
    return Spec(
        backend=s.backend, task=s.task, transformer=s.transformer, backend_params=struct_to_dict(s.backend_params),
        transformer_params=struct_to_dict(s.transformer_params), starting_model_id=s.starting_model_id,
        reference_dataset_id=s.reference_dataset_id,
        save_policy=SavePolicy(min_relative_improvement=p.min_relative_improvement,
                               validation_window=p.validation_window, min_observations=p.min_observations,
                               disabled=p.disabled),
        micro_batch_size=s.micro_batch_size, explainer=s.explainer,
        monitoring=MonitoringSettings(window=m.window, every=m.every, drift_share=m.drift_share,
                                      stattest_threshold=m.stattest_threshold))


def spec_to_proto(s: Spec) -> pb.LearnerSpec:
    return pb.LearnerSpec(
        backend=s.backend, task=s.task, transformer=s.transformer, backend_params=dict_to_struct(s.backend_params),
        transformer_params=dict_to_struct(s.transformer_params), starting_model_id=s.starting_model_id,
        reference_dataset_id=s.reference_dataset_id,
        save_policy=pb.SavePolicy(**dataclasses.asdict(s.save_policy)), micro_batch_size=s.micro_batch_size,
        explainer=s.explainer, monitoring=pb.MonitoringPolicy(**dataclasses.asdict(s.monitoring)))


def learner_to_proto(r: LearnerRecord, live: LiveLearner | None) -> pb.Learner:
    message = pb.Learner(
        learner_id=r.learner_id, display_name=r.display_name, organization_id=r.organization_id,
        developer_id=r.developer_id, spec=spec_to_proto(r.spec), state=_STATES.get(r.state, 0),
        failure_reason=r.failure_reason, current_model_id=r.current_model_id, version=r.version,
        observations_learned=r.observations_learned, create_time=timestamp_to_proto(r.create_time),
        saved_validation_loss=_finite(r.saved_validation_loss))
    if r.save_time:
        message.save_time.CopyFrom(timestamp_to_proto(r.save_time))
    if live is not None:
        c = live.counters
        message.observations_learned = c.observations_learned
        message.predictions_served = c.predictions_served
        message.running_loss = c.running_loss
        message.validation_loss = live.validation_loss()
        message.feature_names.extend(live.transformer.feature_names)
    return message


def _finite(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.nan


def observation_from_proto(o: pb.Observation, index: int) -> Obs:
    kind = o.WhichOneof("kind")
    target = o.target if o.HasField("target") else None
    if kind == "row":
        return Obs(row=np.asarray(o.row.values, dtype=np.float64), target=target)
    if kind == "reading":
        r = o.reading
        if not r.HasField("time"):
            raise errors.InvalidArgument(f"observation {index}: reading.time is required", reason="READING_TIME")
        return Obs(reading=Reading(sensor_id=r.sensor_id, time=timestamp_from_proto(r.time), value=r.value),
                   target=target)
    if kind == "image":
        return Obs(image=o.image.data, target=target)
    raise errors.InvalidArgument(f"observation {index} is empty: set row, reading or image",
                                 reason="OBSERVATION_EMPTY")


def observations_from_proto(items, limit: int) -> list[Obs]:
    if len(items) > limit:
        raise errors.ResourceExhausted(f"{len(items)} observations in one message; at most {limit} "
                                       "(MLMESH_LEARNER_MAX_OBSERVATIONS_PER_MESSAGE): split them over several",
                                       reason="TOO_MANY_OBSERVATIONS")
    return [observation_from_proto(o, i) for i, o in enumerate(items)]


def output_to_proto(o: Output) -> pb.Prediction:
    p = pb.Prediction(values=o.values, class_index=o.class_index, label=o.label,
                      annotated_image=o.annotated_image)
    if o.target_time is not None:
        p.target_time.CopyFrom(timestamp_to_proto(o.target_time))
    return p


def prediction_to_proto(p: Prediction) -> pb.PredictResponse:
    return pb.PredictResponse(predictions=[output_to_proto(o) for o in p.outputs], model_id=p.model_id,
                              observations_learned=p.observations_learned)


def saved_to_proto(s: SavedVersion | None) -> pb.SavedVersion | None:
    if s is None:
        return None
    return pb.SavedVersion(model_id=s.model_id, version=s.version, parent_model_id=s.parent_model_id,
                           validation_loss=s.validation_loss, res_sha256=s.res_sha256)


def _fill(message, obj) -> None:
    """Copies a monitoring dataclass into the message of the same shape (fields by name)."""
    for f in message.DESCRIPTOR.fields:
        if not hasattr(obj, f.name):
            continue
        value = getattr(obj, f.name)
        if value is None:
            continue
        if f.is_repeated:
            target = getattr(message, f.name)
            for item in value:
                if f.message_type is not None:
                    _fill(target.add(), item)
                else:
                    target.append(item)
        elif isinstance(value, dt.datetime):
            getattr(message, f.name).CopyFrom(timestamp_to_proto(value))
        elif f.message_type is not None:
            _fill(getattr(message, f.name), value)
        else:
            setattr(message, f.name, value)


def monitoring_to_proto(report) -> pb.MonitoringReport:
    message = pb.MonitoringReport()
    _fill(message, report)
    return message


def drift_to_proto(drift) -> pb.DataDrift:
    message = pb.DataDrift()
    if drift is not None:
        _fill(message, drift)
    return message


def event_to_proto(e: Event) -> pb.LearnerEvent:
    message = pb.LearnerEvent(learner_id=e.learner_id, kind=_EVENT_KINDS[e.kind], time=timestamp_to_proto(e.time))
    if e.drift is not None:
        message.drift.CopyFrom(drift_to_proto(e.drift))
    if e.saved is not None:
        message.saved.CopyFrom(saved_to_proto(e.saved))
    return message


def explanation_to_proto(result, feature_names: list[str], x: np.ndarray | None = None) -> pb.Explanation:
    values = np.asarray(getattr(result, "inputs", x if x is not None else []), dtype=np.float64).reshape(-1)
    attributions = np.asarray(result.attributions, dtype=np.float64).reshape(-1)
    names = list(feature_names) or [f"x{i}" for i in range(len(attributions))]
    return pb.Explanation(
        method=result.method, convergence_delta=float(result.convergence_delta),
        prediction=float(result.prediction), baseline_prediction=float(result.baseline_prediction),
        note=result.note or "",
        attributions=[pb.FeatureAttribution(name=names[i] if i < len(names) else f"x{i}",
                                            value=float(values[i]) if i < len(values) else 0.0,
                                            attribution=float(a)) for i, a in enumerate(attributions)])
