"""Training jobs: the records, the state machine and the limits. Plain data and rules:
no grpc, no generated code, no SQL.

A job walks the seed's three steps (D3.4 Figure 49):

    QUEUED -> PRE_TRAINING -> TRAINING -> POST_TRAINING -> SUCCEEDED
       \\            \\              \\             \\
        +------------+--------------+--------------+--> FAILED | CANCELLED

SUCCEEDED, FAILED and CANCELLED are final: nothing leaves them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from servers.common import errors

QUEUED = "QUEUED"
PRE_TRAINING = "PRE_TRAINING"
TRAINING = "TRAINING"
POST_TRAINING = "POST_TRAINING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

STATES = (QUEUED, PRE_TRAINING, TRAINING, POST_TRAINING, SUCCEEDED, FAILED, CANCELLED)
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
LIVE_STATES = frozenset(STATES) - FINAL_STATES
RUNNING_STATES = frozenset({PRE_TRAINING, TRAINING, POST_TRAINING})

_ENDINGS = {FAILED, CANCELLED}
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({PRE_TRAINING, *_ENDINGS}),
    PRE_TRAINING: frozenset({TRAINING, *_ENDINGS}),
    TRAINING: frozenset({POST_TRAINING, *_ENDINGS}),
    POST_TRAINING: frozenset({SUCCEEDED, *_ENDINGS}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}

EXECUTORS = ("local", "argo")

# What the Trainer writes when it finds a job it was running after a restart.
RESTART_REASON = "the Trainer restarted while the job was running"
CANCEL_REASON = "the training job was cancelled"

LOG_STREAMS = ("stdout", "stderr", "trainer")

# Why a job runs: TRAINING stores its result in the Registry; REPRODUCTION retrains a trained model
# on behalf of a caller and only compares its result with the ledger's (nothing is stored).
TRAINING_PURPOSE = "TRAINING"
REPRODUCTION = "REPRODUCTION"
PURPOSES = (TRAINING_PURPOSE, REPRODUCTION)
IDENTICAL = "IDENTICAL"
DIFFERENT = "DIFFERENT"


def can_transition(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def check_transition(job_id: str, old: str, new: str) -> None:
    """FailedPrecondition unless a job may go from `old` to `new`."""
    if old not in TRANSITIONS or new not in TRANSITIONS:
        raise ValueError(f"unknown job state {old!r} or {new!r}")
    if not can_transition(old, new):
        if old in FINAL_STATES:
            msg = f"training job {job_id} has already ended ({old}); it cannot become {new}"
        else:
            msg = f"training job {job_id} cannot go from {old} to {new}"
        raise errors.FailedPrecondition(msg, reason="JOB_STATE_CONFLICT", metadata={"job_id": job_id, "state": old})


def job_not_found(job_id: str) -> errors.NotFound:
    """The answer for a job that does not exist, or that the caller may not see: the same, so a
    stranger learns nothing (servers/common/access.py)."""
    return errors.NotFound(f"training job {job_id} does not exist", reason="JOB_NOT_FOUND",
                           metadata={"job_id": job_id})


@dataclass(frozen=True)
class Reproduction:
    """How a reproduced artifact compares with the original the ledger verified. IDENTICAL only
    when the bytes are (SHA-256 equal); DIFFERENT carries the measured output difference."""

    outcome: str  # IDENTICAL | DIFFERENT
    ledger_res_sha256: str
    ledger_res_hash: str
    reproduced_sha256: str
    max_abs_diff: float = 0.0
    compared_samples: int = 0
    top1_agreement: float = -1.0  # -1: not a classifier, or nothing was run
    method: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, doc: dict) -> Reproduction:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


@dataclass(frozen=True)
class Job:
    """A training job as the Trainer records it."""

    job_id: str
    model_id: str
    state: str
    executor: str
    time_limit_seconds: int
    memory_limit_bytes: int
    create_time: dt.datetime
    dataset_id: str = ""
    failure_reason: str = ""
    framework: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    organization_id: str = ""  # the model's owner, who owns the job ("" only for jobs from before it was recorded)
    # REPRODUCTION jobs belong to the organization that asked (a grantee of the model may reproduce it).
    purpose: str = TRAINING_PURPOSE
    reproduction: Reproduction | None = None

    @property
    def reproducing(self) -> bool:
        return self.purpose == REPRODUCTION

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def moved(self, state: str, *, now: dt.datetime, failure_reason: str = "", **changes) -> Job:
        """This job in `state` (checked against the state machine), with its times set."""
        check_transition(self.job_id, self.state, state)
        start = self.start_time
        if state == PRE_TRAINING and start is None:
            start = now
        end = now if state in FINAL_STATES else self.end_time
        return replace(self, state=state, failure_reason=failure_reason or self.failure_reason,
                       start_time=start, end_time=end, **changes)


@dataclass(frozen=True)
class LogLine:
    """One line a job wrote (stdout, stderr) or the Trainer wrote about it (trainer)."""

    sequence: int
    time: dt.datetime
    stream: str
    text: str


@dataclass(frozen=True)
class Page:
    items: list
    next_page_token: str


@dataclass(frozen=True)
class Limits:
    """The Trainer's limits: what a job gets unless it asks, and the most it may ask for."""

    default_time_limit_seconds: int
    max_time_limit_seconds: int
    default_memory_limit_bytes: int
    max_memory_limit_bytes: int

    def resolve(self, time_limit_seconds: int, memory_limit_bytes: int) -> tuple[int, int]:
        """The limits of a job that asked for these (0 = the default). InvalidArgument when
        negative or above the maximum."""
        if time_limit_seconds < 0:
            raise errors.InvalidArgument(
                f"time_limit_seconds {time_limit_seconds} is negative", reason="TIME_LIMIT_INVALID")
        if memory_limit_bytes < 0:
            raise errors.InvalidArgument(
                f"memory_limit_bytes {memory_limit_bytes} is negative", reason="MEMORY_LIMIT_INVALID")
        if time_limit_seconds > self.max_time_limit_seconds:
            raise errors.InvalidArgument(
                f"time_limit_seconds {time_limit_seconds} is above this Trainer's maximum of "
                f"{self.max_time_limit_seconds} s", reason="TIME_LIMIT_TOO_HIGH")
        if memory_limit_bytes > self.max_memory_limit_bytes:
            raise errors.InvalidArgument(
                f"memory_limit_bytes {memory_limit_bytes} is above this Trainer's maximum of "
                f"{self.max_memory_limit_bytes} bytes", reason="MEMORY_LIMIT_TOO_HIGH")
        return (time_limit_seconds or self.default_time_limit_seconds,
                memory_limit_bytes or self.default_memory_limit_bytes)
