"""Checks a CreateFederatedJob before anything is stored and fills in the defaults. A refusal is
INVALID_ARGUMENT naming the field as the caller wrote it (`fedpate.noise_data`) in the message
and in the error's `field` metadata."""

from __future__ import annotations

import dataclasses
import math
import re

from servers.common import errors, ids
from servers.federation.domain import privacy
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
    TffSpec,
)

NET_NAMES = ("cnn", "mlp")
MAX_CLIENTS = 64  # clients (FedPATE: SuperNodes) of one job
MAX_TEACHERS = 10_000  # FedPATE teachers of one job, hosted `teachers_per_node` to a SuperNode
MAX_ROUNDS = 1000
MAX_EPOCHS = 1000
MAX_BATCH = 65536
MAX_QUERIES = 1_000_000
MAX_NAME = 200
# The FedPATE app's cap on the public rows k-means and label spreading work on (MAX_POOL in
# servers/federation/apps/fedpate/fedpate/server_app.py; a unit test keeps the two equal).
MAX_POOL = 4000
SSH_EC_PUBLIC_KEY = re.compile(r"^ecdsa-sha2-nistp(256|384|521) [A-Za-z0-9+/]+={0,2}( [^\x00-\x1f]*)?$")


def _bad(field: str, message: str) -> errors.InvalidArgument:
    reason = field.split(".")[-1].upper() + "_INVALID"
    return errors.InvalidArgument(f"{field}: {message}", reason=reason, metadata={"field": field})


def _int_in(field: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise _bad(field, f"must be between {low} and {high}, got {value}")
    return value


def _positive(field: str, value: float, *, high: float = math.inf) -> float:
    if not (math.isfinite(value) and 0 < value <= high):
        raise _bad(field, f"must be a number > 0{'' if high == math.inf else f' and <= {high:g}'}, got {value}")
    return value


def _or_default(value: float, default: float) -> float:
    return default if value == 0 else value


def _delta(field: str, value: float) -> float:
    value = _or_default(value, privacy.DEFAULT_DELTA)
    if not (math.isfinite(value) and 0 < value < 1):
        raise _bad(field, f"must be in (0, 1), got {value}")
    return value


def check_data(data: FederatedData, *, prefix: str = "data") -> FederatedData:
    dataset_id = ids.parse_id(data.dataset_id, "dataset_id")
    target = data.target_column or "target"
    if len(target) > MAX_NAME:
        raise _bad(f"{prefix}.target_column", f"at most {MAX_NAME} characters")
    alpha = data.dirichlet_alpha
    if data.partition is Partition.DIRICHLET:
        _positive(f"{prefix}.dirichlet_alpha", alpha, high=1e6)
    elif alpha != 0:
        raise _bad(f"{prefix}.dirichlet_alpha", "is only for partition PARTITION_DIRICHLET")
    fraction = _or_default(data.server_fraction, 0.3)
    if not (math.isfinite(fraction) and 0 < fraction < 1):
        raise _bad(f"{prefix}.server_fraction", f"must be in (0, 1), got {fraction}")
    if data.seed < 0:
        raise _bad(f"{prefix}.seed", f"must be >= 0, got {data.seed}")
    return dataclasses.replace(data, dataset_id=dataset_id, target_column=target, server_fraction=fraction)


def check_fedpate(spec: FedPateSpec, *, prefix: str = "fedpate") -> FedPateSpec:
    f = lambda name: f"{prefix}.{name}"  # noqa: E731
    net = spec.net_name.lower()
    if net and net not in NET_NAMES:
        raise _bad(f("net_name"), f"must be one of {', '.join(NET_NAMES)} (or empty: chosen from the data), "
                   f"got {spec.net_name[:40]!r}")
    teachers = _int_in(f("num_teachers"), spec.num_teachers, 1, MAX_TEACHERS)
    per_node = 1 if spec.teachers_per_node is None else spec.teachers_per_node
    if not 1 <= per_node <= teachers:
        raise _bad(f("teachers_per_node"), f"must be between 1 and num_teachers ({teachers}), got {per_node} "
                   "(leave it unset for one teacher per client)")
    nodes = -(-teachers // per_node)
    if nodes > MAX_CLIENTS:
        raise _bad(f("num_teachers"), f"{teachers} teachers at {per_node} per node need {nodes} SuperNodes, more "
                   f"than {MAX_CLIENTS}; raise teachers_per_node")
    rounds = _int_in(f("num_rounds"), spec.num_rounds or 1, 1, MAX_ROUNDS)
    _int_in(f("teacher_epochs"), spec.teacher_epochs, 1, MAX_EPOCHS)
    _int_in(f("student_epochs"), spec.student_epochs, 1, MAX_EPOCHS)
    _int_in(f("batch_size"), spec.batch_size, 1, MAX_BATCH)
    lr = _positive(f("learning_rate"), _or_default(spec.learning_rate, 0.001), high=10.0)
    if spec.noise is Noise.LAPLACIAN:
        _positive(f("epsilon"), spec.epsilon, high=1e6)
    else:
        _positive(f("sigma"), spec.sigma, high=1e6)
    _int_in(f("num_queries"), spec.num_queries, 2, MAX_QUERIES)
    if not 1 <= spec.noise_data < spec.num_queries:
        raise _bad(f("noise_data"), f"must be at least 1 and less than num_queries ({spec.num_queries}), "
                   f"got {spec.noise_data}")
    _check_fedpate_options(spec, f)
    return dataclasses.replace(spec, net_name=net, num_rounds=rounds, learning_rate=lr,
                               delta=_delta(f("delta"), spec.delta), teachers_per_node=per_node)


def _check_fedpate_options(spec: FedPateSpec, f) -> None:
    """The accuracy options, with the app's own limits, so a job the app would refuse is refused here."""
    for name in ("query_selection", "teacher_semi_supervised", "student_semi_supervised"):
        value, kind = getattr(spec, name), QuerySelection if name == "query_selection" else SemiSupervised
        if not isinstance(value, kind):
            raise _bad(f(name), f"must be one of {', '.join(v.value for v in kind)}, got {str(value)[:40]!r}")
    pooled = [name for name, on in (("query_selection", spec.query_selection is QuerySelection.REPRESENTATIVE),
                                    ("student_semi_supervised",
                                     spec.student_semi_supervised is SemiSupervised.LABEL_SPREADING)) if on]
    if pooled and spec.noise_data > MAX_POOL:
        raise _bad(f("noise_data"), f"at most {MAX_POOL} with {f(pooled[0])} {getattr(spec, pooled[0]).value} "
                   f"(it works on at most {MAX_POOL} public rows), got {spec.noise_data}")
    threshold, sigma_threshold = spec.threshold, spec.sigma_threshold
    for name, value in (("threshold", threshold), ("sigma_threshold", sigma_threshold)):
        if not (math.isfinite(value) and value >= 0):
            raise _bad(f(name), f"must be a number >= 0 (0: unset), got {value}")
    if (threshold > 0) != (sigma_threshold > 0):
        missing, given = ("sigma_threshold", "threshold") if threshold > 0 else ("threshold", "sigma_threshold")
        raise _bad(f(missing), f"Confident-GNMax needs threshold and sigma_threshold together: {given} is set, "
                   f"{missing} is not")
    if threshold > 0:
        if spec.noise is not Noise.GAUSSIAN:
            raise _bad(f("threshold"), "Confident-GNMax needs noise NOISE_GAUSSIAN (the threshold check is Gaussian)")
        if threshold > spec.num_teachers:
            raise _bad(f("threshold"), f"must be at most num_teachers ({spec.num_teachers}): a top vote count never "
                       f"exceeds it, got {threshold:g}")
        _positive(f("sigma_threshold"), sigma_threshold, high=1e6)


def check_fedpate_real(spec: FedPateSpec, data: FederatedData) -> None:
    """Real mode: each client owner's SuperNode hosts exactly `teachers_per_node` teachers on its own
    data, so they must divide `num_teachers`; nothing is partitioned (the job's dataset is the
    server's public data only)."""
    per_node = spec.teachers_per_node or 1
    if spec.num_teachers % per_node:
        raise _bad("fedpate.teachers_per_node", f"in MODE_REAL it must divide num_teachers ({spec.num_teachers}): "
                   f"every SuperNode hosts the same number of teachers, got {per_node}")
    keys = spec.supernode_public_keys
    if keys:
        nodes = spec.num_teachers // per_node
        if len(keys) != nodes:
            raise _bad("fedpate.supernode_public_keys", f"one per SuperNode: {nodes} wanted (num_teachers / "
                       f"teachers_per_node), got {len(keys)}")
        for i, key in enumerate(keys):
            if not SSH_EC_PUBLIC_KEY.match(key):
                raise _bad("fedpate.supernode_public_keys", f"[{i}] is not an OpenSSH NIST EC public key "
                           "(\"ecdsa-sha2-nistp384 AAAA...\", e.g. from ssh-keygen -t ecdsa -b 384)")
        if len({k.split()[1] for k in keys}) != len(keys):
            raise _bad("fedpate.supernode_public_keys", "each SuperNode needs its own key: two are the same")
    if data.partition is Partition.DIRICHLET:
        raise _bad("data.partition", "MODE_REAL partitions nothing (each client trains on its own data, the job's "
                   "dataset is the server's public data): leave it unset")


def check_tff(spec: TffSpec, *, prefix: str = "tff") -> TffSpec:
    f = lambda name: f"{prefix}.{name}"  # noqa: E731
    _positive(f("imb_parameter"), spec.imb_parameter, high=1e6)
    if not (math.isfinite(spec.dp_parameter) and spec.dp_parameter >= 0):
        raise _bad(f("dp_parameter"), f"must be a number >= 0 (the noise multiplier), got {spec.dp_parameter}")
    clients = _int_in(f("n_clients"), spec.n_clients, 1, MAX_CLIENTS)
    _int_in(f("n_samples"), spec.n_samples, 1, 10_000_000)
    per_round = _int_in(f("clients_per_round"), spec.clients_per_round or clients, 1, clients)
    return dataclasses.replace(
        spec,
        num_rounds=_int_in(f("num_rounds"), spec.num_rounds or 1, 1, MAX_ROUNDS),
        epochs=_int_in(f("epochs"), spec.epochs or 1, 1, MAX_EPOCHS),
        batch_size=_int_in(f("batch_size"), spec.batch_size or 32, 1, MAX_BATCH),
        clients_per_round=per_round,
        clip_norm=_positive(f("clip_norm"), _or_default(spec.clip_norm, 1.0), high=1e6),
        delta=_delta(f("delta"), spec.delta))


def check_flare(spec: FlareSpec, *, prefix: str = "flare") -> FlareSpec:
    f = lambda name: f"{prefix}.{name}"  # noqa: E731
    _int_in(f("epochs"), spec.epochs, 1, MAX_EPOCHS)
    _int_in(f("batch_size"), spec.batch_size, 1, MAX_BATCH)
    _int_in(f("num_clients"), spec.num_clients, 1, MAX_CLIENTS)
    _int_in(f("num_rounds"), spec.num_rounds, 1, MAX_ROUNDS)
    lr = _positive(f("learning_rate"), _or_default(spec.learning_rate, 0.001), high=10.0)
    if spec.privacy_filter is PrivacyFilter.SVT:
        _positive(f("svt_epsilon"), spec.svt_epsilon, high=1e6)
    elif spec.svt_epsilon != 0:
        raise _bad(f("svt_epsilon"), "is only for privacy_filter PRIVACY_FILTER_SVT")
    if spec.homomorphic_encryption and spec.privacy_filter is not PrivacyFilter.NONE:
        raise _bad(f("homomorphic_encryption"), f"cannot be combined with privacy_filter {spec.privacy_filter.value}: "
                   "FLARE's HE FedAvg encrypts the clients' full weights and runs no DP filter (its filters work on "
                   "plaintext weight differences); choose one")
    server = ids.parse_id(spec.flare_server_id, "flare_server_id") if spec.flare_server_id else ""
    return dataclasses.replace(spec, learning_rate=lr, flare_server_id=server)


def check_request(request: JobRequest) -> JobRequest:
    """`request` with its defaults filled in, or InvalidArgument naming the first bad field."""
    spec = request.spec
    if spec is None:
        raise _bad("spec", "name a framework: one of fedpate, tff, flare (or POST the seed's body to /fp/, "
                   "/tff/ or /nv/)")
    if len(request.display_name) > MAX_NAME:
        raise _bad("display_name", f"at most {MAX_NAME} characters")
    if isinstance(spec, FedPateSpec):
        spec = check_fedpate(spec)
        if request.mode is Mode.REAL:
            check_fedpate_real(spec, request.data)
        elif spec.supernode_public_keys:
            raise _bad("fedpate.supernode_public_keys", "only for MODE_REAL (a simulated job starts its own "
                       "SuperNodes)")
    elif isinstance(spec, TffSpec):
        spec = check_tff(spec)
    else:
        spec = check_flare(spec)
    data = request.data
    if isinstance(spec, TffSpec) and spec.target_label and data.target_column and spec.target_label != data.target_column:
        raise _bad("tff.target_label", f"differs from data.target_column ({data.target_column[:40]!r}): set one")
    if isinstance(spec, TffSpec) and spec.target_label:
        data = dataclasses.replace(data, target_column=spec.target_label)
    if request.time_limit_seconds < 0:
        raise _bad("time_limit_seconds", f"must be >= 0, got {request.time_limit_seconds}")
    if request.memory_limit_bytes < 0:
        raise _bad("memory_limit_bytes", f"must be >= 0, got {request.memory_limit_bytes}")
    return dataclasses.replace(request, spec=spec, data=check_data(data))
