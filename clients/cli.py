"""The `mlmesh` command line: tokens, datasets, the local mesh's demo."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from clients.settings import ClientSettings

app = typer.Typer(help="mlmesh: an MLOps mesh for IoT. Datasets are hashed and anchored on an EVM ledger.",
                  no_args_is_help=True)
datasets = typer.Typer(help="Register, list, download and verify datasets.", no_args_is_help=True)
app.add_typer(datasets, name="datasets")
models = typer.Typer(help="Register models against datasets, follow their training, download and verify them.",
                     no_args_is_help=True)
app.add_typer(models, name="models")
jobs = typer.Typer(help="Training jobs: follow their state and logs, cancel them.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")
console = Console()
err = Console(stderr=True)


def _settings() -> ClientSettings:
    return ClientSettings()


def mint(settings: ClientSettings, org: str, ttl: int = 3600) -> str:
    from servers.common.identity import ensure_keys, mint_token

    keys_dir = settings.data_dir.resolve() / "identity"
    if not keys_dir.exists():
        err.print(f"[red]no local identity at {keys_dir}[/red]: run `make up` first, or set MLMESH_TOKEN")
        raise typer.Exit(2)
    keys = ensure_keys(keys_dir)
    return mint_token(keys, organization_id=org, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                      ttl_seconds=ttl)


def _token(settings: ClientSettings, org: str) -> str:
    return settings.token or mint(settings, org)


def _registry(org: str):
    from clients.sdk import Registry

    s = _settings()
    return Registry(s.front_door, token=_token(s, org))


def _fail(exc: grpc.RpcError) -> typer.Exit:
    err.print(f"[red]{exc.code().name}[/red]: {exc.details()}")
    if exc.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (exc.details() or ""):
        err.print(f"is the mesh running at {_settings().front_door}? `make up` starts it (MLMESH_TARGET points "
                  "elsewhere)")
    elif exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        err.print("the front door refused the token: unset MLMESH_TOKEN to mint one from the local identity, or "
                  "get a fresh one")
    return typer.Exit(1)


def _bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err)


OrgOpt = Annotated[str | None, typer.Option("--org", help="Organization (default: MLMESH_ORG).")]


@app.command()
def token(
    org: OrgOpt = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a JWT the local Envoy accepts (signed with the embedded identity's key)."""
    s = _settings()
    print(mint(s, org or s.org, ttl))


@datasets.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: file name).")] = None,
    org: OrgOpt = None,
    samples_dimension: Annotated[str, typer.Option(help='e.g. "(8,8)"')] = "",
    content_type: Annotated[str, typer.Option(help="Content type of the file.")] = "application/octet-stream",
) -> None:
    """Upload a dataset (streamed; hashed; anchored on the ledger)."""
    s = _settings()
    org = org or s.org
    size = path.stat().st_size
    with _registry(org) as reg, _bar() as bar:
        task = bar.add_task(f"upload {path.name}", total=size)
        try:
            ds = reg.upload_file(path, organization_id=org, display_name=name, samples_dimension=samples_dimension,
                                 content_type=content_type, progress=lambda n: bar.advance(task, n))
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    _print_dataset(ds)


@datasets.command("list")
def list_(
    org: Annotated[str, typer.Option("--org", help="Only this organization's datasets.")] = "",
    page_size: Annotated[int, typer.Option(help="Datasets per request.")] = 100,
) -> None:
    """List datasets, newest first."""
    s = _settings()
    table = Table()
    table.add_column("dataset_id", no_wrap=True, min_width=36)
    for name in ("name", "organization"):
        table.add_column(name, overflow="fold", min_width=10)
    table.add_column("bytes", justify="right", no_wrap=True)
    with _registry(org or s.org) as reg:
        try:
            for ds in reg.iter_all(organization_id=org, page_size=page_size):
                table.add_row(ds.dataset_id, ds.display_name, ds.organization_id, f"{ds.size_bytes:,}")
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    console.print(table)


@datasets.command("show")
def show(dataset_id: str, org: OrgOpt = None) -> None:
    """Show a dataset's metadata."""
    s = _settings()
    with _registry(org or s.org) as reg:
        try:
            _print_dataset(reg.get(dataset_id))
        except grpc.RpcError as exc:
            raise _fail(exc) from None


@datasets.command("download")
def download(
    dataset_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    org: OrgOpt = None,
) -> None:
    """Download a dataset (resumes a partial download; checks its SHA-256)."""
    s = _settings()
    with _registry(org or s.org) as reg:
        try:
            size = reg.get(dataset_id).size_bytes
            _download_with_bar(dataset_id, size, lambda progress: reg.download_file(dataset_id, output,
                                                                                    progress=progress))
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    console.print(f"wrote {output} ({size:,} bytes, sha256 verified)")


def _download_with_bar(ident: str, size: int, download) -> None:
    """Runs `download(progress)` under a progress bar; a hash mismatch exits 1 with DATA_LOSS."""
    from clients.sdk import IntegrityError

    try:
        with _bar() as bar:
            task = bar.add_task(f"download {ident[:8]}", total=size)
            download(lambda n: bar.advance(task, n))
    except IntegrityError as exc:
        err.print(f"[red]DATA_LOSS[/red]: {exc}")
        raise typer.Exit(1) from None


def _print_checks(title: str, checks) -> None:
    table = Table("check", "result", "detail", title=title)
    for c in checks:
        table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]", c.detail)
    console.print(table)


@datasets.command("verify")
def verify(dataset_id: str, org: OrgOpt = None) -> None:
    """Compare stored bytes, database and ledger; exit 1 unless they agree."""
    s = _settings()
    with _registry(org or s.org) as reg:
        try:
            prov = reg.provenance(dataset_id)
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    print_provenance(prov)
    if not prov.consistent:
        raise typer.Exit(1)


def print_provenance(prov) -> None:
    _print_checks(f"provenance of {prov.dataset.dataset_id}", prov.checks)
    console.print(f"contract {prov.on_chain.contract_address} on chain {prov.on_chain.chain_id}, "
                  f"block {prov.on_chain.block_number}: "
                  + ("[green]consistent[/green]" if prov.consistent else "[red]INCONSISTENT[/red]"))


def _print_dataset(ds) -> None:
    _print_message(ds)


@models.command("create")
def models_create(
    dataset_id: Annotated[str, typer.Option("--dataset", help="Registered dataset to train on.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    recipe: Annotated[Path | None, typer.Option(help="Recipe directory (packed reproducibly) or archive "
                                                     "(.tar.gz/.tgz/.zip).", exists=True)] = None,
    image: Annotated[str, typer.Option(help="Container image reference, instead of a recipe.")] = "",
    digest: Annotated[str, typer.Option(help="Image digest sha256:<hex>, with --image.")] = "",
    developer: Annotated[str, typer.Option(help="Developer id.")] = "mlmesh-cli",
    org: OrgOpt = None,
    time_limit: Annotated[int, typer.Option(help="Training time limit in seconds (0: default).")] = 0,
) -> None:
    """Register a model and schedule its training."""
    s = _settings()
    org = org or s.org
    if recipe is not None and recipe.is_dir():
        from clients.recipes import pack_recipe

        recipe = pack_recipe(recipe, Path(tempfile.mkdtemp()) / f"{recipe.resolve().name}.tar.gz")
    with _registry(org) as reg:
        try:
            model = reg.create_model(organization_id=org, developer_id=developer, dataset_id=dataset_id,
                                     display_name=name, recipe=recipe, image_reference=image, image_digest=digest,
                                     time_limit_seconds=time_limit)
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    _print_message(model)


@models.command("list")
def models_list(
    org: Annotated[str, typer.Option("--org", help="Only this organization's models.")] = "",
    dataset_id: Annotated[str, typer.Option("--dataset", help="Only models trained on this dataset.")] = "",
) -> None:
    """List models, newest first."""
    from mlmesh.registry.v1 import model_pb2

    s = _settings()
    table = Table()
    table.add_column("model_id", no_wrap=True, min_width=36)
    table.add_column("name", overflow="fold", min_width=10)
    table.add_column("state", no_wrap=True)
    table.add_column("res_hash (MD5)", overflow="fold")
    with _registry(org or s.org) as reg:
        try:
            for m in reg.iter_models(organization_id=org, dataset_id=dataset_id):
                table.add_row(m.model_id, m.display_name,
                              model_pb2.Model.State.Name(m.state).removeprefix("STATE_"), m.res_md5 or "-")
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    console.print(table)


@models.command("show")
def models_show(model_id: str, org: OrgOpt = None) -> None:
    """Show a model's metadata and state."""
    s = _settings()
    with _registry(org or s.org) as reg:
        try:
            _print_message(reg.get_model(model_id))
        except grpc.RpcError as exc:
            raise _fail(exc) from None


@models.command("download")
def models_download(
    model_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    org: OrgOpt = None,
) -> None:
    """Download a trained model (checked against res_hash on the ledger)."""
    s = _settings()
    with _registry(org or s.org) as reg:
        try:
            size = reg.get_model(model_id).size_bytes
            _download_with_bar(model_id, size, lambda progress: reg.download_model(model_id, output,
                                                                                   progress=progress))
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    console.print(f"wrote {output} ({size:,} bytes, sha256 verified)")


@models.command("verify")
def models_verify(model_id: str, org: OrgOpt = None) -> None:
    """Compare the stored model, database and its ledger contract; exit 1 unless they agree."""
    s = _settings()
    with _registry(org or s.org) as reg:
        try:
            prov = reg.model_provenance(model_id)
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    _print_checks(f"provenance of model {model_id}", prov.checks)
    chain = prov.on_chain
    console.print(f"contract {chain.contract_address}: dataset {chain.dataset_id}, train_image_hash "
                  f"{chain.train_image_hash}, res_hash {chain.res_hash or '(not verified yet)'}")
    if not prov.consistent:
        raise typer.Exit(1)


@models.command("translate")
def models_translate(model_id: str, org: OrgOpt = None,
                     output: Annotated[Path | None, typer.Option("-o", "--output", help="Also download the .onnx "
                                                                 "file here.")] = None) -> None:
    """Translate a trained model to ONNX; print the parity report (and download the file)."""
    from clients.sdk import Translator

    s = _settings()
    with Translator(s.front_door, token=_token(s, org or s.org)) as tr:
        try:
            t = tr.translate(model_id)
            if output is not None:
                tr.download_file(t.translation_id, output)
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    p = t.parity
    console.print(f"translation {t.translation_id}: {t.converter}, opset {t.opset}, {t.size_bytes:,} bytes, "
                  f"contract {t.contract_address}")
    console.print(f"parity on {p.batch_source}: max |Δ| {p.max_abs_diff:.2e}, max rel {p.max_rel_diff:.2e} "
                  f"(atol {p.atol:g}, rtol {p.rtol:g}) → " + ("passed" if p.passed else "FAILED"))
    if output is not None:
        console.print(f"wrote {output} (sha256 verified)")


def _trainer(org: str):
    from clients.sdk import Trainer

    s = _settings()
    return Trainer(s.front_door, token=_token(s, org))


def job_state(job) -> str:
    from mlmesh.trainer.v1 import trainer_service_pb2

    return trainer_service_pb2.TrainingJob.State.Name(job.state).removeprefix("STATE_")


@jobs.command("watch")
def jobs_watch(job_id: str, org: OrgOpt = None) -> None:
    """Stream a training job's state changes and log lines until it ends; exit 1 unless it succeeded."""
    s = _settings()
    last = None
    with _trainer(org or s.org) as trainer:
        try:
            for event in trainer.watch(job_id):
                if event.WhichOneof("event") == "job":
                    last = event.job
                    reason = f": {last.failure_reason}" if last.failure_reason else ""
                    console.print(f"[bold]job {job_id[:8]} {job_state(last)}[/bold]{reason}")
                else:
                    console.print(f"  [dim]{event.log.stream}[/dim] {event.log.text}", highlight=False)
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    if last is None or job_state(last) != "SUCCEEDED":
        raise typer.Exit(1)


@jobs.command("list")
def jobs_list(model_id: Annotated[str, typer.Option("--model", help="Only this model's jobs.")] = "",
              org: OrgOpt = None) -> None:
    """List training jobs, newest first."""
    s = _settings()
    table = Table("job_id", "model_id", "state", "failure")
    with _trainer(org or s.org) as trainer:
        try:
            for job in trainer.list(model_id=model_id, page_size=100).training_jobs:
                table.add_row(job.job_id, job.model_id, job_state(job), job.failure_reason[:60])
        except grpc.RpcError as exc:
            raise _fail(exc) from None
    console.print(table)


@jobs.command("cancel")
def jobs_cancel(job_id: str, org: OrgOpt = None) -> None:
    """Cancel a queued or running training job."""
    s = _settings()
    with _trainer(org or s.org) as trainer:
        try:
            _print_message(trainer.cancel(job_id))
        except grpc.RpcError as exc:
            raise _fail(exc) from None


def _print_message(message) -> None:
    console.print_json(json_format.MessageToJson(message, preserving_proto_field_name=True))


@app.command()
def demo() -> None:
    """Walk a dataset through the local mesh over REST via Envoy (run `make up` first)."""
    from clients.demo import run_demo

    sys.exit(run_demo(_settings(), console))


@app.command("demo-learner")
def demo_learner() -> None:
    """A forecaster learning from a streamed smart meter, with explanations and drift (run `make up` first)."""
    from clients.demo_learner import run_demo_learner

    settings = _settings()
    sys.exit(run_demo_learner(settings, console, _token(settings, settings.org)))


def _register_sensors() -> None:
    from clients.sensors import sensors_app

    app.add_typer(sensors_app, name="sensors")


_register_sensors()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
