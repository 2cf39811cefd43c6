"""The Learner's records and its learner specification. Plain data: no grpc, no SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from servers.common import errors

BACKENDS = ("sklearn", "river", "vowpalwabbit", "pytorch", "tensorflow")
TRANSFORMERS = ("tabular", "power-forecast", "image")
REGRESSION_TASK, CLASSIFICATION_TASK = "regression", "classification"
TASKS = (REGRESSION_TASK, CLASSIFICATION_TASK)
EXPLAINERS = ("", "integrated_gradients", "deeplift")
READY, FAILED = "READY", "FAILED"
# The Registry's framework of a backend's starting model.
STARTING_FRAMEWORKS = {"sklearn": "sklearn", "river": "river", "vowpalwabbit": "vowpalwabbit",
                       "pytorch": "pytorch", "tensorflow": "tensorflow"}


@dataclass(frozen=True)
class SavePolicy:
    min_relative_improvement: float = 0.05
    validation_window: int = 256
    min_observations: int = 256
    disabled: bool = False


@dataclass(frozen=True)
class MonitoringSettings:
    window: int = 500
    every: int = 100
    drift_share: float = 0.5
    stattest_threshold: float = 0.05


@dataclass(frozen=True)
class Spec:
    backend: str
    task: str
    transformer: str
    backend_params: dict[str, Any] = field(default_factory=dict)
    transformer_params: dict[str, Any] = field(default_factory=dict)
    starting_model_id: str = ""
    reference_dataset_id: str = ""
    save_policy: SavePolicy = SavePolicy()
    micro_batch_size: int = 32
    explainer: str = ""
    monitoring: MonitoringSettings = MonitoringSettings()


def _bad(message: str, reason: str = "SPEC_INVALID") -> errors.InvalidArgument:
    return errors.InvalidArgument(message, reason=reason)


def validate_spec(spec: Spec) -> Spec:
    """Checks what can be checked without the ML libraries; fills defaults for zero values."""
    if spec.backend not in BACKENDS:
        raise _bad(f"spec.backend {spec.backend!r} is not one of {', '.join(BACKENDS)}")
    if spec.task not in TASKS:
        raise _bad(f"spec.task {spec.task!r} is not one of {', '.join(TASKS)}")
    if spec.transformer not in TRANSFORMERS:
        raise _bad(f"spec.transformer {spec.transformer!r} is not one of {', '.join(TRANSFORMERS)}")
    if spec.explainer not in EXPLAINERS:
        raise _bad(f"spec.explainer {spec.explainer!r} is not one of integrated_gradients, deeplift (or empty)")
    if not spec.reference_dataset_id:
        raise _bad("spec.reference_dataset_id is required: the monitoring compares recent inputs with it and saved "
                   "versions name it in their Model contract", reason="REFERENCE_DATASET_MISSING")
    batch = spec.micro_batch_size or 32
    if not 1 <= batch <= 10_000:
        raise _bad(f"spec.micro_batch_size must be 1..10000, got {batch}")
    p = spec.save_policy
    policy = SavePolicy(
        min_relative_improvement=p.min_relative_improvement or 0.05,
        validation_window=p.validation_window or 256, min_observations=p.min_observations or 256,
        disabled=p.disabled)
    if not 0 <= policy.min_relative_improvement < 1:
        raise _bad("spec.save_policy.min_relative_improvement must be in [0, 1), e.g. 0.05 for 5%")
    if not 1 <= policy.validation_window <= 1_000_000:
        raise _bad("spec.save_policy.validation_window must be 1..1000000")
    if not 1 <= policy.min_observations <= 100_000_000:
        raise _bad("spec.save_policy.min_observations must be at least 1")
    m = spec.monitoring
    window = m.window or 500
    monitoring = MonitoringSettings(window=window, every=m.every or min(100, window),
                                    drift_share=m.drift_share or 0.5, stattest_threshold=m.stattest_threshold or 0.05)
    return Spec(backend=spec.backend, task=spec.task, transformer=spec.transformer,
                backend_params=dict(spec.backend_params), transformer_params=dict(spec.transformer_params),
                starting_model_id=spec.starting_model_id.strip(),
                reference_dataset_id=spec.reference_dataset_id.strip(), save_policy=policy, micro_batch_size=batch,
                explainer=spec.explainer, monitoring=monitoring)


def spec_to_json(spec: Spec) -> dict[str, Any]:
    return {
        "backend": spec.backend, "task": spec.task, "transformer": spec.transformer,
        "backend_params": spec.backend_params, "transformer_params": spec.transformer_params,
        "starting_model_id": spec.starting_model_id, "reference_dataset_id": spec.reference_dataset_id,
        "save_policy": vars(spec.save_policy).copy(), "micro_batch_size": spec.micro_batch_size,
        "explainer": spec.explainer, "monitoring": vars(spec.monitoring).copy(),
    }


def spec_from_json(data: dict[str, Any]) -> Spec:
    data = dict(data)
    data["save_policy"] = SavePolicy(**data.get("save_policy", {}))
    data["monitoring"] = MonitoringSettings(**data.get("monitoring", {}))
    return Spec(**data)


@dataclass(frozen=True)
class LearnerRecord:
    """A learner as stored: what a restart resumes from."""

    learner_id: str
    display_name: str
    organization_id: str
    developer_id: str
    spec: Spec
    state: str
    failure_reason: str
    current_model_id: str
    version: int
    observations_learned: int
    saved_validation_loss: float | None
    transformer_state: dict[str, Any]
    create_time: dt.datetime
    save_time: dt.datetime | None
    # Position in the learn journal the saved version covers (docs/learner.md, "Durability").
    journal_seq: int = 0


@dataclass(frozen=True)
class JournalRow:
    """One row of a learner's learn journal: a Learn message ("observations": the pickled list of
    observations, and whether it asked to flush) or, at a save's position, the training pairs that
    were still waiting for a micro-batch ("pending": pickled (X, y))."""

    seq: int
    kind: str
    flush: bool
    payload: bytes


@dataclass(frozen=True)
class Page:
    items: list
    next_page_token: str
