"""Federated jobs: the record, its state machine and its JSON form in the database. Plain data
and rules: no grpc, no generated code, no SQL.

    QUEUED -> PREPARING -> RUNNING -> REGISTERING -> SUCCEEDED
       \\          \\           \\            \\
        +----------+-----------+------------+--> FAILED | CANCELLED

SUCCEEDED, FAILED and CANCELLED are final: nothing leaves them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from dataclasses import dataclass, replace
from typing import Any

from servers.common import errors
from servers.federation.domain.privacy import PrivacyReport
from servers.federation.domain.records import (
    FRAMEWORK_OF,
    FederatedData,
    Framework,
    JobRequest,
    Mode,
    Noise,
    Partition,
    PrivacyFilter,
    QuerySelection,
    SemiSupervised,
    Spec,
)


class State(enum.StrEnum):
    QUEUED = "QUEUED"
    PREPARING = "PREPARING"
    RUNNING = "RUNNING"
    REGISTERING = "REGISTERING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
LIVE = frozenset(State) - FINAL
_NEXT: dict[State, State | None] = {State.QUEUED: State.PREPARING, State.PREPARING: State.RUNNING,
                                    State.RUNNING: State.REGISTERING, State.REGISTERING: State.SUCCEEDED}

RESTART_REASON = "the Federation server restarted while the job was running; its processes were stopped"
CANCEL_REASON = "the federated job was cancelled"
LOG_STREAMS = ("stdout", "stderr", "federation")


def can_move(old: State, new: State) -> bool:
    """The one step forward, or an ending from any live state."""
    if old in FINAL:
        return False
    return new in (State.FAILED, State.CANCELLED) or _NEXT.get(old) is new


def job_not_found(job_id: str) -> errors.NotFound:
    """Unknown, or another organization's: the same answer (docs/security.md)."""
    return errors.NotFound(f"federated job {job_id} does not exist", reason="FEDERATED_JOB_NOT_FOUND",
                           metadata={"job_id": job_id})


@dataclass(frozen=True)
class ClientMetrics:
    client_id: str
    loss: float = 0.0
    accuracy: float = 0.0
    num_examples: int = 0


@dataclass(frozen=True)
class RoundMetrics:
    round: int
    clients: tuple[ClientMetrics, ...] = ()
    loss: float = math.nan
    accuracy: float = math.nan
    privacy: PrivacyReport | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ClientCommitment:
    """What a client committed to about its data: SHA-256 (hex) and sample count."""

    client_id: str
    sha256: str
    sample_count: int


@dataclass(frozen=True)
class FlowerJoin:
    """How SuperNodes join a real-mode FedPATE job's SuperLink (TLS, the job's own CA)."""

    superlink_address: str
    supernodes_expected: int
    teachers_per_node: int
    root_certificates_pem: str  # the CA certificate (public; its key stays with the SuperLink)
    join_deadline: dt.datetime
    supernode_command: str
    supernodes_joined: int = 0  # online at the SuperLink, as the launcher last saw
    supernode_auth: bool = False  # only SuperNodes with a registered key join

    @property
    def root_certificates_sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.root_certificates_pem.encode()).hexdigest()


@dataclass(frozen=True)
class Job:
    job_id: str
    organization_id: str
    request: JobRequest  # checked, defaults filled in
    state: State
    executor: str
    time_limit_seconds: int
    memory_limit_bytes: int
    create_time: dt.datetime
    failure_reason: str = ""
    framework_version: str = ""
    rounds: tuple[RoundMetrics, ...] = ()
    privacy: PrivacyReport | None = None
    commitments: tuple[ClientCommitment, ...] = ()
    result_model_id: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    flower_join: FlowerJoin | None = None  # real-mode FedPATE, once its SuperLink listens

    @property
    def framework(self) -> Framework:
        assert self.request.spec is not None
        return FRAMEWORK_OF[type(self.request.spec)]

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def moved(self, state: State, *, now: dt.datetime, failure_reason: str = "", **changes: Any) -> Job:
        if not can_move(self.state, state):
            what = "has already ended" if self.final else "is not ready for that"
            raise errors.FailedPrecondition(
                f"federated job {self.job_id} {what} ({self.state}); it cannot become {state}",
                reason="JOB_STATE_CONFLICT", metadata={"job_id": self.job_id, "state": str(self.state)})
        start = self.start_time or (now if state is State.PREPARING else None)
        end = now if state in FINAL else None
        return replace(self, state=state, failure_reason=failure_reason or self.failure_reason,
                       start_time=start, end_time=end, **changes)


@dataclass(frozen=True)
class LogLine:
    sequence: int
    time: dt.datetime
    stream: str
    text: str


@dataclass(frozen=True)
class Page:
    items: list[Job]
    next_page_token: str


@dataclass(frozen=True)
class Limits:
    default_time_limit_seconds: int
    max_time_limit_seconds: int
    default_memory_limit_bytes: int
    max_memory_limit_bytes: int

    def resolve(self, time_limit_seconds: int, memory_limit_bytes: int) -> tuple[int, int]:
        """The job's limits (0: the default); InvalidArgument naming the field above the maximum."""
        for name, value, high in (("time_limit_seconds", time_limit_seconds, self.max_time_limit_seconds),
                                  ("memory_limit_bytes", memory_limit_bytes, self.max_memory_limit_bytes)):
            if not 0 <= value <= high:
                raise errors.InvalidArgument(f"{name}: must be between 0 (the default) and {high}, got {value}",
                                             reason=name.upper() + "_INVALID", metadata={"field": name})
        return (time_limit_seconds or self.default_time_limit_seconds,
                memory_limit_bytes or self.default_memory_limit_bytes)


# -- the JSON form (the database's jsonb columns) ---------------------------------------------

_SPEC_TYPES: dict[str, type] = {str(f): t for t, f in FRAMEWORK_OF.items()}
_ENUMS: dict[str, type[enum.Enum]] = {"noise": Noise, "partition": Partition, "privacy_filter": PrivacyFilter,
                                      "mode": Mode, "query_selection": QuerySelection,
                                      "teacher_semi_supervised": SemiSupervised,
                                      "student_semi_supervised": SemiSupervised}


def _plain(value: Any) -> Any:
    """JSON-safe: enums by value, infinities and NaN as strings (jsonb has neither)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _number(value: Any) -> float:
    return float(value) if isinstance(value, str) else value


def _build(cls: type, values: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            v = tuple(v) if isinstance(v, list) else v  # JSON arrays are the records' tuples
            kwargs[f.name] = _ENUMS[f.name](v) if f.name in _ENUMS else v
    return cls(**kwargs)


def request_to_json(request: JobRequest) -> dict[str, Any]:
    assert request.spec is not None
    out = _plain(dataclasses.asdict(request))
    out["framework"] = str(FRAMEWORK_OF[type(request.spec)])
    return out


def request_from_json(data: dict[str, Any]) -> JobRequest:
    spec: Spec = _build(_SPEC_TYPES[data["framework"]], data["spec"])
    return JobRequest(spec=spec, data=_build(FederatedData, data["data"]), display_name=data.get("display_name", ""),
                      developer_id=data.get("developer_id", ""), mode=Mode(data.get("mode", "simulation")),
                      time_limit_seconds=data.get("time_limit_seconds", 0),
                      memory_limit_bytes=data.get("memory_limit_bytes", 0))


def privacy_to_json(report: PrivacyReport | None) -> dict[str, Any] | None:
    return None if report is None else _plain(dataclasses.asdict(report))


def privacy_from_json(data: dict[str, Any] | None) -> PrivacyReport | None:
    if data is None:
        return None
    return PrivacyReport(**{**data, "epsilon": _number(data["epsilon"]), "delta": _number(data["delta"])})


def rounds_to_json(rounds: tuple[RoundMetrics, ...]) -> list[dict[str, Any]]:
    return [{**_plain({k: v for k, v in dataclasses.asdict(r).items() if k != "privacy"}),
             "privacy": privacy_to_json(r.privacy)} for r in rounds]


def rounds_from_json(data: list[dict[str, Any]]) -> tuple[RoundMetrics, ...]:
    return tuple(RoundMetrics(round=r["round"], clients=tuple(ClientMetrics(**c) for c in r["clients"]),
                              loss=_number(r["loss"]), accuracy=_number(r["accuracy"]),
                              privacy=privacy_from_json(r.get("privacy")), seconds=r.get("seconds", 0.0))
                 for r in data)


def commitments_to_json(items: tuple[ClientCommitment, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(c) for c in items]


def commitments_from_json(data: list[dict[str, Any]]) -> tuple[ClientCommitment, ...]:
    return tuple(ClientCommitment(**c) for c in data)



def flower_join_to_json(join: FlowerJoin | None) -> dict[str, Any] | None:
    if join is None:
        return None
    return {**dataclasses.asdict(join), "join_deadline": join.join_deadline.isoformat()}


def flower_join_from_json(data: dict[str, Any] | None) -> FlowerJoin | None:
    if data is None:
        return None
    return FlowerJoin(**{**data, "join_deadline": dt.datetime.fromisoformat(data["join_deadline"])})
