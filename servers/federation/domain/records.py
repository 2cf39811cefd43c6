"""What a federated job asks for: the data and one framework's spec, with the seed's parameter
names and meanings (D3.4 Table 6 and section 5.3.3). Plain values; `servers.federation.domain.
specs` checks them and fills in the defaults."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Framework(enum.StrEnum):
    FEDPATE = "fedpate"
    TFF = "tff"
    FLARE = "flare"


# Names a caller may use for a framework: ours and the seed's route names.
FRAMEWORK_NAMES: dict[str, Framework] = {
    "fedpate": Framework.FEDPATE, "fp": Framework.FEDPATE,
    "tff": Framework.TFF,
    "flare": Framework.FLARE, "nv": Framework.FLARE,
}


class Mode(enum.StrEnum):
    SIMULATION = "simulation"
    REAL = "real"


class Partition(enum.StrEnum):
    IID = "iid"
    DIRICHLET = "dirichlet"


class Noise(enum.StrEnum):
    LAPLACIAN = "laplacian"
    GAUSSIAN = "gaussian"


class QuerySelection(enum.StrEnum):
    """FedPATE: which public rows the teachers label (the app's `query-selection`)."""

    FIRST = "first"
    REPRESENTATIVE = "representative"


class SemiSupervised(enum.StrEnum):
    """FedPATE: semi-supervised learning on the public rows (the app's `*-semi-supervised`)."""

    NONE = "none"
    LABEL_SPREADING = "label-spreading"


class PrivacyFilter(enum.StrEnum):
    NONE = "none"
    SVT = "svt"
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class FederatedData:
    """Registry data the clients train on. Zero values mean "default"."""

    dataset_id: str = ""
    target_column: str = ""
    partition: Partition = Partition.IID
    dirichlet_alpha: float = 0.0
    server_fraction: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class FedPateSpec:
    """The seed's FedPATE parameters (`POST /fp/`). Zero values mean "default" where one exists."""

    net_name: str = ""
    num_rounds: int = 0
    num_teachers: int = 0
    teacher_epochs: int = 0
    student_epochs: int = 0
    batch_size: int = 0
    learning_rate: float = 0.0
    noise: Noise = Noise.LAPLACIAN
    epsilon: float = 0.0
    sigma: float = 0.0
    num_queries: int = 0
    noise_data: int = 0
    delta: float = 0.0
    # Teachers each SuperNode hosts; None: unset (1). Checked: 1 <= k <= num_teachers.
    teachers_per_node: int | None = None
    # MODE_REAL: the SuperNodes' public keys (OpenSSH form); () lets any SuperNode join.
    supernode_public_keys: tuple[str, ...] = ()
    # Accuracy options (docs/federation.md, FedPATE privacy): off by default.
    query_selection: QuerySelection = QuerySelection.FIRST
    teacher_semi_supervised: SemiSupervised = SemiSupervised.NONE
    student_semi_supervised: SemiSupervised = SemiSupervised.NONE
    # Confident-GNMax: both 0 (every query answered) or both > 0 (gaussian noise only).
    threshold: float = 0.0
    sigma_threshold: float = 0.0


@dataclass(frozen=True)
class TffSpec:
    """The seed's TFF parameters (`POST /tff/`) plus rounds, epochs and the DP aggregator's."""

    imb_parameter: float = 0.0
    dp_parameter: float = 0.0
    n_clients: int = 0
    n_samples: int = 0
    target_label: str = ""
    num_rounds: int = 0
    epochs: int = 0
    batch_size: int = 0
    clients_per_round: int = 0
    clip_norm: float = 0.0
    delta: float = 0.0


@dataclass(frozen=True)
class FlareSpec:
    """The seed's NVIDIA FLARE training parameters (`POST /nv/`) plus its privacy options."""

    epochs: int = 0
    batch_size: int = 0
    num_clients: int = 0
    num_rounds: int = 0
    learning_rate: float = 0.0
    privacy_filter: PrivacyFilter = PrivacyFilter.NONE
    svt_epsilon: float = 0.0
    homomorphic_encryption: bool = False
    flare_server_id: str = ""


Spec = FedPateSpec | TffSpec | FlareSpec

FRAMEWORK_OF: dict[type, Framework] = {FedPateSpec: Framework.FEDPATE, TffSpec: Framework.TFF,
                                       FlareSpec: Framework.FLARE}


@dataclass(frozen=True)
class JobRequest:
    """A CreateFederatedJob as the core receives it (the seed's MinIO fields never get here)."""

    spec: Spec | None
    data: FederatedData
    display_name: str = ""
    developer_id: str = ""
    mode: Mode = Mode.SIMULATION
    time_limit_seconds: int = 0
    memory_limit_bytes: int = 0

    @property
    def framework(self) -> Framework | None:
        return None if self.spec is None else FRAMEWORK_OF[type(self.spec)]
