"""Federation messages <-> domain records: pure function pairs, nothing else.

The seed's bodies (`POST /fp/`, `/tff/`, `/nv/`) become the same `JobRequest` as the AIP form;
their MinIO fields (`bucket_name`, `domain_name`, `minio_repo`, `access_key`, `secret_key`) are
read by nobody: no function here copies them anywhere.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from mlmesh.federation.v1 import federation_service_pb2 as pb

from servers.common import errors, timestamps
from servers.federation.domain import privacy
from servers.federation.domain.jobs import (
    ClientCommitment,
    ClientMetrics,
    FlowerJoin,
    Job,
    LogLine,
    RoundMetrics,
    State,
)
from servers.federation.domain.records import (
    FederatedData,
    FedPateSpec,
    FlareSpec,
    JobRequest,
    Mode,
    Noise,
    Partition,
    PrivacyFilter,
    QuerySelection,
    SemiSupervised,
    Spec,
    TffSpec,
)

_PARTITION = {pb.FederatedData.PARTITION_UNSPECIFIED: Partition.IID, pb.FederatedData.PARTITION_IID: Partition.IID,
              pb.FederatedData.PARTITION_DIRICHLET: Partition.DIRICHLET}
_PARTITION_PB = {Partition.IID: pb.FederatedData.PARTITION_IID, Partition.DIRICHLET: pb.FederatedData.PARTITION_DIRICHLET}
_NOISE = {pb.FedPateSpec.NOISE_UNSPECIFIED: Noise.LAPLACIAN, pb.FedPateSpec.NOISE_LAPLACIAN: Noise.LAPLACIAN,
          pb.FedPateSpec.NOISE_GAUSSIAN: Noise.GAUSSIAN}
_NOISE_PB = {Noise.LAPLACIAN: pb.FedPateSpec.NOISE_LAPLACIAN, Noise.GAUSSIAN: pb.FedPateSpec.NOISE_GAUSSIAN}
_QUERIES = {pb.FedPateSpec.QUERY_SELECTION_UNSPECIFIED: QuerySelection.FIRST,
            pb.FedPateSpec.QUERY_SELECTION_FIRST: QuerySelection.FIRST,
            pb.FedPateSpec.QUERY_SELECTION_REPRESENTATIVE: QuerySelection.REPRESENTATIVE}
_QUERIES_PB = {QuerySelection.FIRST: pb.FedPateSpec.QUERY_SELECTION_FIRST,
               QuerySelection.REPRESENTATIVE: pb.FedPateSpec.QUERY_SELECTION_REPRESENTATIVE}
_SEMI = {pb.FedPateSpec.SEMI_SUPERVISED_UNSPECIFIED: SemiSupervised.NONE,
         pb.FedPateSpec.SEMI_SUPERVISED_NONE: SemiSupervised.NONE,
         pb.FedPateSpec.SEMI_SUPERVISED_LABEL_SPREADING: SemiSupervised.LABEL_SPREADING}
_SEMI_PB = {SemiSupervised.NONE: pb.FedPateSpec.SEMI_SUPERVISED_NONE,
            SemiSupervised.LABEL_SPREADING: pb.FedPateSpec.SEMI_SUPERVISED_LABEL_SPREADING}
_FILTER = {pb.FlareSpec.PRIVACY_FILTER_UNSPECIFIED: PrivacyFilter.NONE, pb.FlareSpec.PRIVACY_FILTER_NONE: PrivacyFilter.NONE,
           pb.FlareSpec.PRIVACY_FILTER_SVT: PrivacyFilter.SVT,
           pb.FlareSpec.PRIVACY_FILTER_PERCENTILE: PrivacyFilter.PERCENTILE}
_FILTER_PB = {PrivacyFilter.NONE: pb.FlareSpec.PRIVACY_FILTER_NONE, PrivacyFilter.SVT: pb.FlareSpec.PRIVACY_FILTER_SVT,
              PrivacyFilter.PERCENTILE: pb.FlareSpec.PRIVACY_FILTER_PERCENTILE}
_MODE = {pb.FederatedJob.MODE_UNSPECIFIED: Mode.SIMULATION, pb.FederatedJob.MODE_SIMULATION: Mode.SIMULATION,
         pb.FederatedJob.MODE_REAL: Mode.REAL}
_MODE_PB = {Mode.SIMULATION: pb.FederatedJob.MODE_SIMULATION, Mode.REAL: pb.FederatedJob.MODE_REAL}


def _enum(table: dict, value: int, field: str):
    try:
        return table[value]
    except KeyError:
        raise errors.InvalidArgument(f"{field}: unknown value {value}", reason=field.split(".")[-1].upper() + "_INVALID",
                                     metadata={"field": field}) from None


def data_from_proto(m: pb.FederatedData) -> FederatedData:
    return FederatedData(dataset_id=m.dataset_id, target_column=m.target_column,
                         partition=_enum(_PARTITION, m.partition, "data.partition"),
                         dirichlet_alpha=m.dirichlet_alpha, server_fraction=m.server_fraction, seed=m.seed)


def data_to_proto(d: FederatedData) -> pb.FederatedData:
    return pb.FederatedData(dataset_id=d.dataset_id, target_column=d.target_column, partition=_PARTITION_PB[d.partition],
                            dirichlet_alpha=d.dirichlet_alpha, server_fraction=d.server_fraction, seed=d.seed)


def fedpate_from_proto(m: pb.FedPateSpec) -> FedPateSpec:
    return FedPateSpec(net_name=m.net_name, num_rounds=m.num_rounds, num_teachers=m.num_teachers,
                       teacher_epochs=m.teacher_epochs, student_epochs=m.student_epochs, batch_size=m.batch_size,
                       learning_rate=m.learning_rate, noise=_enum(_NOISE, m.noise, "fedpate.noise"),
                       epsilon=m.epsilon, sigma=m.sigma, num_queries=m.num_queries, noise_data=m.noise_data,
                       delta=m.delta,
                       teachers_per_node=m.teachers_per_node if m.HasField("teachers_per_node") else None,
                       supernode_public_keys=tuple(m.supernode_public_keys),
                       query_selection=_enum(_QUERIES, m.query_selection, "fedpate.query_selection"),
                       teacher_semi_supervised=_enum(_SEMI, m.teacher_semi_supervised,
                                                     "fedpate.teacher_semi_supervised"),
                       student_semi_supervised=_enum(_SEMI, m.student_semi_supervised,
                                                     "fedpate.student_semi_supervised"),
                       threshold=m.threshold, sigma_threshold=m.sigma_threshold)


def fedpate_to_proto(s: FedPateSpec) -> pb.FedPateSpec:
    return pb.FedPateSpec(net_name=s.net_name, num_rounds=s.num_rounds, num_teachers=s.num_teachers,
                          teacher_epochs=s.teacher_epochs, student_epochs=s.student_epochs, batch_size=s.batch_size,
                          learning_rate=s.learning_rate, noise=_NOISE_PB[s.noise], epsilon=s.epsilon, sigma=s.sigma,
                          num_queries=s.num_queries, noise_data=s.noise_data, delta=s.delta,
                          teachers_per_node=s.teachers_per_node, supernode_public_keys=list(s.supernode_public_keys),
                          query_selection=_QUERIES_PB[s.query_selection],
                          teacher_semi_supervised=_SEMI_PB[s.teacher_semi_supervised],
                          student_semi_supervised=_SEMI_PB[s.student_semi_supervised],
                          threshold=s.threshold, sigma_threshold=s.sigma_threshold)


def tff_from_proto(m: pb.TffSpec) -> TffSpec:
    return TffSpec(imb_parameter=m.imb_parameter, dp_parameter=m.dp_parameter, n_clients=m.n_clients,
                   n_samples=m.n_samples, target_label=m.target_label, num_rounds=m.num_rounds, epochs=m.epochs,
                   batch_size=m.batch_size, clients_per_round=m.clients_per_round, clip_norm=m.clip_norm, delta=m.delta)


def tff_to_proto(s: TffSpec) -> pb.TffSpec:
    return pb.TffSpec(imb_parameter=s.imb_parameter, dp_parameter=s.dp_parameter, n_clients=s.n_clients,
                      n_samples=s.n_samples, target_label=s.target_label, num_rounds=s.num_rounds, epochs=s.epochs,
                      batch_size=s.batch_size, clients_per_round=s.clients_per_round, clip_norm=s.clip_norm,
                      delta=s.delta)


def flare_from_proto(m: pb.FlareSpec) -> FlareSpec:
    return FlareSpec(epochs=m.epochs, batch_size=m.batch_size, num_clients=m.num_clients, num_rounds=m.num_rounds,
                     learning_rate=m.learning_rate, privacy_filter=_enum(_FILTER, m.privacy_filter, "flare.privacy_filter"),
                     svt_epsilon=m.svt_epsilon, homomorphic_encryption=m.homomorphic_encryption,
                     flare_server_id=m.flare_server_id)


def flare_to_proto(s: FlareSpec) -> pb.FlareSpec:
    return pb.FlareSpec(epochs=s.epochs, batch_size=s.batch_size, num_clients=s.num_clients, num_rounds=s.num_rounds,
                        learning_rate=s.learning_rate, privacy_filter=_FILTER_PB[s.privacy_filter],
                        svt_epsilon=s.svt_epsilon, homomorphic_encryption=s.homomorphic_encryption,
                        flare_server_id=s.flare_server_id)


def spec_from_job(m: pb.FederatedJob) -> Spec | None:
    which = m.WhichOneof("spec")
    if which == "fedpate":
        return fedpate_from_proto(m.fedpate)
    if which == "tff":
        return tff_from_proto(m.tff)
    if which == "flare":
        return flare_from_proto(m.flare)
    return None


def spec_into_job(spec: Spec, job: pb.FederatedJob) -> None:
    if isinstance(spec, FedPateSpec):
        job.fedpate.CopyFrom(fedpate_to_proto(spec))
    elif isinstance(spec, TffSpec):
        job.tff.CopyFrom(tff_to_proto(spec))
    else:
        job.flare.CopyFrom(flare_to_proto(spec))


def _seed_noise(value: str) -> Noise:
    try:
        return Noise(value.strip().lower() or Noise.LAPLACIAN)
    except ValueError:
        raise errors.InvalidArgument(f"fp.noise: must be 'laplacian' or 'gaussian', got {value[:40]!r}",
                                     reason="NOISE_INVALID", metadata={"field": "fp.noise"}) from None


def _seed_option(kind: type, value: str, default, field: str):
    try:
        return kind(value.strip().lower() or default)
    except ValueError:
        raise errors.InvalidArgument(f"{field}: must be one of {', '.join(repr(v.value) for v in kind)}, got "
                                     f"{value[:40]!r}", reason=field.split(".")[-1].upper() + "_INVALID",
                                     metadata={"field": field}) from None


def fedpate_from_seed(b: pb.FedPateSeedBody) -> FedPateSpec:
    return FedPateSpec(net_name=b.net_name, num_rounds=b.num_rounds, num_teachers=b.num_teachers,
                       teacher_epochs=b.teacher_epochs, student_epochs=b.student_epochs, batch_size=b.batch_size,
                       learning_rate=b.learning_rate, noise=_seed_noise(b.noise), epsilon=b.epsilon, sigma=b.sigma,
                       num_queries=b.num_queries, noise_data=b.noise_data,
                       teachers_per_node=b.teachers_per_node if b.HasField("teachers_per_node") else None,
                       query_selection=_seed_option(QuerySelection, b.query_selection, QuerySelection.FIRST,
                                                    "fp.query_selection"),
                       teacher_semi_supervised=_seed_option(SemiSupervised, b.teacher_semi_supervised,
                                                            SemiSupervised.NONE, "fp.teacher_semi_supervised"),
                       student_semi_supervised=_seed_option(SemiSupervised, b.student_semi_supervised,
                                                            SemiSupervised.NONE, "fp.student_semi_supervised"),
                       threshold=b.threshold, sigma_threshold=b.sigma_threshold)


def tff_from_seed(b: pb.TffSeedBody) -> TffSpec:
    return TffSpec(imb_parameter=b.imb_parameter, dp_parameter=b.dp_parameter, n_clients=b.n_clients,
                   n_samples=b.n_samples, target_label=b.target_label)


def flare_from_seed(b: pb.FlareSeedBody) -> FlareSpec:
    return FlareSpec(epochs=b.epochs, batch_size=b.batch_size, num_clients=b.num_clients, num_rounds=b.num_rounds)


def request_from_proto(m: pb.CreateFederatedJobRequest) -> JobRequest:
    """The AIP form (`job`) or exactly one seed body (`fp`, `tff`, `nv`, with `dataset_id`)."""
    forms = [name for name in ("job", "fp", "tff", "nv") if m.HasField(name)]
    if len(forms) != 1:
        raise errors.InvalidArgument(
            "send exactly one of job (POST /v1/federatedJobs) or a seed body (POST /fp/, /tff/, /nv/), got "
            + (", ".join(forms) or "none"), reason="JOB_MISSING" if not forms else "JOB_AMBIGUOUS",
            metadata={"field": "job"})
    if m.HasField("job"):
        job = m.job
        return JobRequest(spec=spec_from_job(job), data=data_from_proto(job.data), display_name=job.display_name,
                          developer_id=job.developer_id, mode=_enum(_MODE, job.mode, "job.mode"),
                          time_limit_seconds=job.time_limit_seconds, memory_limit_bytes=job.memory_limit_bytes)
    spec: Spec
    if m.HasField("fp"):
        spec = fedpate_from_seed(m.fp)
    elif m.HasField("tff"):
        spec = tff_from_seed(m.tff)
    else:
        spec = flare_from_seed(m.nv)
    return JobRequest(spec=spec, data=FederatedData(dataset_id=m.dataset_id, target_column=m.target_column),
                      display_name=m.display_name)


def privacy_to_proto(r: privacy.PrivacyReport) -> pb.PrivacyReport:
    return pb.PrivacyReport(formal_guarantee=r.formal_guarantee, epsilon=r.epsilon, delta=r.delta, mechanism=r.mechanism,
                            accountant=r.accountant, compositions=r.compositions, parameters=dict(r.parameters),
                            explanation=r.explanation)


def privacy_from_proto(m: pb.PrivacyReport) -> privacy.PrivacyReport:
    return privacy.PrivacyReport(formal_guarantee=m.formal_guarantee, epsilon=m.epsilon, delta=m.delta,
                                 mechanism=m.mechanism, accountant=m.accountant, compositions=m.compositions,
                                 parameters=dict(m.parameters), explanation=m.explanation)



# -- jobs and their events --------------------------------------------------------------------

_STATE_PB = {
    State.QUEUED: pb.FederatedJob.STATE_QUEUED, State.PREPARING: pb.FederatedJob.STATE_PREPARING,
    State.RUNNING: pb.FederatedJob.STATE_RUNNING, State.REGISTERING: pb.FederatedJob.STATE_REGISTERING,
    State.SUCCEEDED: pb.FederatedJob.STATE_SUCCEEDED, State.FAILED: pb.FederatedJob.STATE_FAILED,
    State.CANCELLED: pb.FederatedJob.STATE_CANCELLED,
}
_STATE = {v: k for k, v in _STATE_PB.items()}


def _time(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if value is None else timestamps.timestamp_to_proto(value)


def _time_from(message: pb.FederatedJob, name: str) -> dt.datetime | None:
    return timestamps.timestamp_from_proto(getattr(message, name)) if message.HasField(name) else None


def round_to_proto(r: RoundMetrics) -> pb.RoundMetrics:
    return pb.RoundMetrics(
        round=r.round, loss=r.loss, accuracy=r.accuracy, seconds=r.seconds,
        clients=[pb.RoundMetrics.ClientMetrics(client_id=c.client_id, loss=c.loss, accuracy=c.accuracy,
                                               num_examples=c.num_examples) for c in r.clients],
        privacy=None if r.privacy is None else privacy_to_proto(r.privacy))


def round_from_proto(m: pb.RoundMetrics) -> RoundMetrics:
    return RoundMetrics(
        round=m.round, loss=m.loss, accuracy=m.accuracy, seconds=m.seconds,
        clients=tuple(ClientMetrics(client_id=c.client_id, loss=c.loss, accuracy=c.accuracy,
                                    num_examples=c.num_examples) for c in m.clients),
        privacy=privacy_from_proto(m.privacy) if m.HasField("privacy") else None)


def job_to_proto(job: Job) -> pb.FederatedJob:
    request = job.request
    message = pb.FederatedJob(
        job_id=job.job_id, display_name=request.display_name, organization_id=job.organization_id,
        developer_id=request.developer_id, mode=_MODE_PB[request.mode], data=data_to_proto(request.data),
        state=_STATE_PB[job.state], failure_reason=job.failure_reason, framework_version=job.framework_version,
        executor=job.executor, time_limit_seconds=job.time_limit_seconds, memory_limit_bytes=job.memory_limit_bytes,
        rounds=[round_to_proto(r) for r in job.rounds],
        privacy=None if job.privacy is None else privacy_to_proto(job.privacy),
        client_commitments=[pb.ClientDataCommitment(client_id=c.client_id, sha256=c.sha256,
                                                    sample_count=c.sample_count) for c in job.commitments],
        result_model_id=job.result_model_id, create_time=_time(job.create_time), start_time=_time(job.start_time),
        end_time=_time(job.end_time), flower_join=flower_join_to_proto(job.flower_join))
    assert request.spec is not None
    spec_into_job(request.spec, message)
    return message


def job_from_proto(m: pb.FederatedJob) -> Job:
    """The inverse of `job_to_proto` (clients and tests)."""
    request = JobRequest(spec=spec_from_job(m), data=data_from_proto(m.data), display_name=m.display_name,
                         developer_id=m.developer_id, mode=_MODE[m.mode], time_limit_seconds=m.time_limit_seconds,
                         memory_limit_bytes=m.memory_limit_bytes)
    return Job(
        job_id=m.job_id, organization_id=m.organization_id, request=request, state=_STATE[m.state],
        executor=m.executor, time_limit_seconds=m.time_limit_seconds, memory_limit_bytes=m.memory_limit_bytes,
        create_time=timestamps.timestamp_from_proto(m.create_time), failure_reason=m.failure_reason,
        framework_version=m.framework_version, rounds=tuple(round_from_proto(r) for r in m.rounds),
        privacy=privacy_from_proto(m.privacy) if m.HasField("privacy") else None,
        commitments=tuple(ClientCommitment(client_id=c.client_id, sha256=c.sha256, sample_count=c.sample_count)
                          for c in m.client_commitments),
        result_model_id=m.result_model_id, start_time=_time_from(m, "start_time"), end_time=_time_from(m, "end_time"),
        flower_join=None)  # the CA's PEM is not in the message (DownloadFlowerRootCertificates streams it)


def flower_join_to_proto(join: FlowerJoin | None) -> pb.FlowerJoin | None:
    if join is None:
        return None
    return pb.FlowerJoin(superlink_address=join.superlink_address, supernodes_expected=join.supernodes_expected,
                         teachers_per_node=join.teachers_per_node,
                         root_certificates_sha256=join.root_certificates_sha256,
                         join_deadline=_time(join.join_deadline), supernode_command=join.supernode_command,
                         supernodes_joined=join.supernodes_joined, supernode_auth=join.supernode_auth)


def log_to_proto(line: LogLine) -> pb.LogLine:
    return pb.LogLine(sequence=line.sequence, time=timestamps.timestamp_to_proto(line.time), stream=line.stream,
                      text=line.text)


def log_from_proto(m: pb.LogLine) -> LogLine:
    return LogLine(sequence=m.sequence, time=timestamps.timestamp_from_proto(m.time), stream=m.stream, text=m.text)


def event_to_proto(event: Job | RoundMetrics | LogLine) -> pb.FederatedJobEvent:
    if isinstance(event, Job):
        return pb.FederatedJobEvent(job=job_to_proto(event))
    if isinstance(event, RoundMetrics):
        return pb.FederatedJobEvent(round=round_to_proto(event))
    return pb.FederatedJobEvent(log=log_to_proto(event))
