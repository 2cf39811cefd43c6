from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Agent(_message.Message):
    __slots__ = ("agent_id", "organization_id", "display_name", "grid", "algorithm", "hyperparameters", "total_timesteps", "seed", "train_days", "eval_days", "shiftable_loads", "actions_per_day", "time_limit_seconds", "memory_limit_bytes", "state", "failure_reason", "timesteps_done", "episodes_done", "evaluation", "model_id", "grid_sha256", "profiles_sha256", "create_time", "start_time", "end_time", "reward", "last_episode_return")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Agent.State]
        STATE_QUEUED: _ClassVar[Agent.State]
        STATE_TRAINING: _ClassVar[Agent.State]
        STATE_EVALUATING: _ClassVar[Agent.State]
        STATE_STORING: _ClassVar[Agent.State]
        STATE_SUCCEEDED: _ClassVar[Agent.State]
        STATE_FAILED: _ClassVar[Agent.State]
        STATE_CANCELLED: _ClassVar[Agent.State]
    STATE_UNSPECIFIED: Agent.State
    STATE_QUEUED: Agent.State
    STATE_TRAINING: Agent.State
    STATE_EVALUATING: Agent.State
    STATE_STORING: Agent.State
    STATE_SUCCEEDED: Agent.State
    STATE_FAILED: Agent.State
    STATE_CANCELLED: Agent.State
    class Algorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ALGORITHM_UNSPECIFIED: _ClassVar[Agent.Algorithm]
        ALGORITHM_DQN: _ClassVar[Agent.Algorithm]
        ALGORITHM_PPO: _ClassVar[Agent.Algorithm]
        ALGORITHM_A2C: _ClassVar[Agent.Algorithm]
        ALGORITHM_DOUBLE_DQN: _ClassVar[Agent.Algorithm]
        ALGORITHM_DUELING_DQN: _ClassVar[Agent.Algorithm]
        ALGORITHM_REINFORCE: _ClassVar[Agent.Algorithm]
    ALGORITHM_UNSPECIFIED: Agent.Algorithm
    ALGORITHM_DQN: Agent.Algorithm
    ALGORITHM_PPO: Agent.Algorithm
    ALGORITHM_A2C: Agent.Algorithm
    ALGORITHM_DOUBLE_DQN: Agent.Algorithm
    ALGORITHM_DUELING_DQN: Agent.Algorithm
    ALGORITHM_REINFORCE: Agent.Algorithm
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIMESTEPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TRAIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    EVAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    SHIFTABLE_LOADS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTEPS_DONE_FIELD_NUMBER: _ClassVar[int]
    EPISODES_DONE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_SHA256_FIELD_NUMBER: _ClassVar[int]
    PROFILES_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    LAST_EPISODE_RETURN_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    organization_id: str
    display_name: str
    grid: GridSource
    algorithm: Agent.Algorithm
    hyperparameters: _containers.ScalarMap[str, float]
    total_timesteps: int
    seed: int
    train_days: DayRange
    eval_days: DayRange
    shiftable_loads: int
    actions_per_day: int
    time_limit_seconds: int
    memory_limit_bytes: int
    state: Agent.State
    failure_reason: str
    timesteps_done: int
    episodes_done: int
    evaluation: Evaluation
    model_id: str
    grid_sha256: str
    profiles_sha256: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    reward: str
    last_episode_return: float
    def __init__(self, agent_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., display_name: _Optional[str] = ..., grid: _Optional[_Union[GridSource, _Mapping]] = ..., algorithm: _Optional[_Union[Agent.Algorithm, str]] = ..., hyperparameters: _Optional[_Mapping[str, float]] = ..., total_timesteps: _Optional[int] = ..., seed: _Optional[int] = ..., train_days: _Optional[_Union[DayRange, _Mapping]] = ..., eval_days: _Optional[_Union[DayRange, _Mapping]] = ..., shiftable_loads: _Optional[int] = ..., actions_per_day: _Optional[int] = ..., time_limit_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., state: _Optional[_Union[Agent.State, str]] = ..., failure_reason: _Optional[str] = ..., timesteps_done: _Optional[int] = ..., episodes_done: _Optional[int] = ..., evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., model_id: _Optional[str] = ..., grid_sha256: _Optional[str] = ..., profiles_sha256: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., reward: _Optional[str] = ..., last_episode_return: _Optional[float] = ...) -> None: ...

class GridSource(_message.Message):
    __slots__ = ("simbench_code", "registered")
    SIMBENCH_CODE_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    simbench_code: str
    registered: RegisteredGrid
    def __init__(self, simbench_code: _Optional[str] = ..., registered: _Optional[_Union[RegisteredGrid, _Mapping]] = ...) -> None: ...

class RegisteredGrid(_message.Message):
    __slots__ = ("grid_dataset_id", "profiles_dataset_id")
    GRID_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILES_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    grid_dataset_id: str
    profiles_dataset_id: str
    def __init__(self, grid_dataset_id: _Optional[str] = ..., profiles_dataset_id: _Optional[str] = ...) -> None: ...

class DayRange(_message.Message):
    __slots__ = ("first", "last")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    first: int
    last: int
    def __init__(self, first: _Optional[int] = ..., last: _Optional[int] = ...) -> None: ...

class Statistic(_message.Message):
    __slots__ = ("mean", "std")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    mean: float
    std: float
    def __init__(self, mean: _Optional[float] = ..., std: _Optional[float] = ...) -> None: ...

class PolicyFigures(_message.Message):
    __slots__ = ("policy", "episodes", "episode_return", "reward", "scr", "ssr", "violations")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    EPISODE_RETURN_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    SCR_FIELD_NUMBER: _ClassVar[int]
    SSR_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    episodes: int
    episode_return: Statistic
    reward: Statistic
    scr: Statistic
    ssr: Statistic
    violations: Statistic
    def __init__(self, policy: _Optional[str] = ..., episodes: _Optional[int] = ..., episode_return: _Optional[_Union[Statistic, _Mapping]] = ..., reward: _Optional[_Union[Statistic, _Mapping]] = ..., scr: _Optional[_Union[Statistic, _Mapping]] = ..., ssr: _Optional[_Union[Statistic, _Mapping]] = ..., violations: _Optional[_Union[Statistic, _Mapping]] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("days", "policies")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    days: DayRange
    policies: _containers.RepeatedCompositeFieldContainer[PolicyFigures]
    def __init__(self, days: _Optional[_Union[DayRange, _Mapping]] = ..., policies: _Optional[_Iterable[_Union[PolicyFigures, _Mapping]]] = ...) -> None: ...

class EpisodeProgress(_message.Message):
    __slots__ = ("episode", "timesteps", "episode_return", "scr", "ssr", "violations")
    EPISODE_FIELD_NUMBER: _ClassVar[int]
    TIMESTEPS_FIELD_NUMBER: _ClassVar[int]
    EPISODE_RETURN_FIELD_NUMBER: _ClassVar[int]
    SCR_FIELD_NUMBER: _ClassVar[int]
    SSR_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    episode: int
    timesteps: int
    episode_return: float
    scr: float
    ssr: float
    violations: int
    def __init__(self, episode: _Optional[int] = ..., timesteps: _Optional[int] = ..., episode_return: _Optional[float] = ..., scr: _Optional[float] = ..., ssr: _Optional[float] = ..., violations: _Optional[int] = ...) -> None: ...

class AgentEvent(_message.Message):
    __slots__ = ("agent", "episode")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    EPISODE_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    episode: EpisodeProgress
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ..., episode: _Optional[_Union[EpisodeProgress, _Mapping]] = ...) -> None: ...

class CreateAgentRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "next_page_token")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    next_page_token: str
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class DeleteAgentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CancelAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class WatchAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class OptimizeDayRequest(_message.Message):
    __slots__ = ("agent_id", "day", "forecast_csv", "forecast_dataset_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    FORECAST_CSV_FIELD_NUMBER: _ClassVar[int]
    FORECAST_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    day: int
    forecast_csv: str
    forecast_dataset_id: str
    def __init__(self, agent_id: _Optional[str] = ..., day: _Optional[int] = ..., forecast_csv: _Optional[str] = ..., forecast_dataset_id: _Optional[str] = ...) -> None: ...

class Shift(_message.Message):
    __slots__ = ("load_index", "from_hour", "to_hour", "fraction", "energy_mwh")
    LOAD_INDEX_FIELD_NUMBER: _ClassVar[int]
    FROM_HOUR_FIELD_NUMBER: _ClassVar[int]
    TO_HOUR_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    ENERGY_MWH_FIELD_NUMBER: _ClassVar[int]
    load_index: int
    from_hour: int
    to_hour: int
    fraction: float
    energy_mwh: float
    def __init__(self, load_index: _Optional[int] = ..., from_hour: _Optional[int] = ..., to_hour: _Optional[int] = ..., fraction: _Optional[float] = ..., energy_mwh: _Optional[float] = ...) -> None: ...

class DayFigures(_message.Message):
    __slots__ = ("scr", "ssr", "reward", "power_flow_status", "violations")
    SCR_FIELD_NUMBER: _ClassVar[int]
    SSR_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    POWER_FLOW_STATUS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    scr: float
    ssr: float
    reward: float
    power_flow_status: str
    violations: int
    def __init__(self, scr: _Optional[float] = ..., ssr: _Optional[float] = ..., reward: _Optional[float] = ..., power_flow_status: _Optional[str] = ..., violations: _Optional[int] = ...) -> None: ...

class LoadProfile(_message.Message):
    __slots__ = ("load_index", "hourly_mwh_before", "hourly_mwh_after")
    LOAD_INDEX_FIELD_NUMBER: _ClassVar[int]
    HOURLY_MWH_BEFORE_FIELD_NUMBER: _ClassVar[int]
    HOURLY_MWH_AFTER_FIELD_NUMBER: _ClassVar[int]
    load_index: int
    hourly_mwh_before: _containers.RepeatedScalarFieldContainer[float]
    hourly_mwh_after: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, load_index: _Optional[int] = ..., hourly_mwh_before: _Optional[_Iterable[float]] = ..., hourly_mwh_after: _Optional[_Iterable[float]] = ...) -> None: ...

class OptimizeDayResponse(_message.Message):
    __slots__ = ("day", "shifts", "before", "after", "greedy", "loads", "model_id", "source", "forecast_sha256")
    DAY_FIELD_NUMBER: _ClassVar[int]
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    GREEDY_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FORECAST_SHA256_FIELD_NUMBER: _ClassVar[int]
    day: int
    shifts: _containers.RepeatedCompositeFieldContainer[Shift]
    before: DayFigures
    after: DayFigures
    greedy: DayFigures
    loads: _containers.RepeatedCompositeFieldContainer[LoadProfile]
    model_id: str
    source: str
    forecast_sha256: str
    def __init__(self, day: _Optional[int] = ..., shifts: _Optional[_Iterable[_Union[Shift, _Mapping]]] = ..., before: _Optional[_Union[DayFigures, _Mapping]] = ..., after: _Optional[_Union[DayFigures, _Mapping]] = ..., greedy: _Optional[_Union[DayFigures, _Mapping]] = ..., loads: _Optional[_Iterable[_Union[LoadProfile, _Mapping]]] = ..., model_id: _Optional[str] = ..., source: _Optional[str] = ..., forecast_sha256: _Optional[str] = ...) -> None: ...

class EvaluateAgentRequest(_message.Message):
    __slots__ = ("agent_id", "days")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    days: DayRange
    def __init__(self, agent_id: _Optional[str] = ..., days: _Optional[_Union[DayRange, _Mapping]] = ...) -> None: ...

class EvaluateAgentResponse(_message.Message):
    __slots__ = ("evaluation", "model_id")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    model_id: str
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., model_id: _Optional[str] = ...) -> None: ...
