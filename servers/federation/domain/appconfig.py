"""The one mapping of a job's spec to its app's configuration: the flat key/value table a
framework's app reads (Flower: `[tool.flwr.app.config]`, passed as `flwr run --run-config`).
Keys are Flower's kebab-case; values are int, float, str or bool only, so the app needs nothing
of mlmesh to read them, and a user can run the same app with `flwr run` and these values alone."""

from __future__ import annotations

from pathlib import Path

from servers.federation.domain.records import FedPateSpec, FlareSpec, JobRequest, TffSpec

ConfigValue = int | float | str | bool


def app_config(request: JobRequest, *, data_path: Path, output_dir: Path) -> dict[str, ConfigValue]:
    """`request` (checked, defaults filled in) as its app's run configuration."""
    data = request.data
    config: dict[str, ConfigValue] = {
        "framework": str(request.framework),
        "data-path": str(data_path),
        "output-dir": str(output_dir),
        "target-column": data.target_column,
        "partition": data.partition.value,
        "dirichlet-alpha": float(data.dirichlet_alpha),
        "server-fraction": float(data.server_fraction),
        "seed": int(data.seed),
    }
    spec = request.spec
    if isinstance(spec, FedPateSpec):
        config.update({
            "net-name": spec.net_name or "auto",
            "num-server-rounds": spec.num_rounds,
            "num-teachers": spec.num_teachers,
            "teacher-epochs": spec.teacher_epochs,
            "student-epochs": spec.student_epochs,
            "batch-size": spec.batch_size,
            "learning-rate": float(spec.learning_rate),
            "noise": spec.noise.value,
            # The seed's meanings: Laplace scale 1/epsilon, Gaussian standard deviation sigma.
            "epsilon": float(spec.epsilon),
            "sigma": float(spec.sigma),
            "num-queries": spec.num_queries,
            "noise-data": spec.noise_data,
            "teachers-per-node": spec.teachers_per_node or 1,
            # The accuracy options (the app's defaults when off: first rows, none, none, 0, 0).
            "query-selection": spec.query_selection.value,
            "teacher-semi-supervised": spec.teacher_semi_supervised.value,
            "student-semi-supervised": spec.student_semi_supervised.value,
            "threshold": float(spec.threshold),
            "sigma-threshold": float(spec.sigma_threshold),
        })
    elif isinstance(spec, TffSpec):
        config.update({"imb-parameter": float(spec.imb_parameter), "dp-parameter": float(spec.dp_parameter),
                       "n-clients": spec.n_clients, "n-samples": spec.n_samples, "num-rounds": spec.num_rounds,
                       "epochs": spec.epochs, "batch-size": spec.batch_size,
                       "clients-per-round": spec.clients_per_round, "clip-norm": float(spec.clip_norm)})
    elif isinstance(spec, FlareSpec):
        config.update({"epochs": spec.epochs, "batch-size": spec.batch_size, "num-clients": spec.num_clients,
                       "num-rounds": spec.num_rounds, "learning-rate": float(spec.learning_rate),
                       "privacy-filter": spec.privacy_filter.value, "svt-epsilon": float(spec.svt_epsilon),
                       "homomorphic-encryption": spec.homomorphic_encryption})
    return config
