"""The `mlmesh` command line: tokens, datasets, the local mesh's demo."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from clients import session

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
err = session.err  # one stderr console for progress bars and error lines


@contextlib.contextmanager
def _client(kind, org: str | None):
    """A `clients.sdk` client (`kind`) of the front door carrying `org`'s token (default MLMESH_ORG); a
    gRPC call failing inside the block prints its status and exits 1 (`session.fail`)."""
    s = session.load_settings()
    with kind(s.front_door, token=session.bearer_token(s, org or s.org)) as client, session.rpc_errors():
        yield client


def _registry(org: str | None):
    from clients.sdk import Registry

    return _client(Registry, org)


def _trainer(org: str | None):
    from clients.sdk import Trainer

    return _client(Trainer, org)


def _translator(org: str | None):
    from clients.sdk import Translator

    return _client(Translator, org)


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
    s = session.load_settings()
    print(session.mint(s, org or s.org, ttl))


@datasets.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: file name).")] = None,
    org: OrgOpt = None,
    samples_dimension: Annotated[str, typer.Option(help='e.g. "(8,8)"')] = "",
    content_type: Annotated[str, typer.Option(help="Content type of the file.")] = "application/octet-stream",
) -> None:
    """Upload a dataset (streamed; hashed; anchored on the ledger)."""
    org = org or session.load_settings().org
    size = path.stat().st_size
    with _registry(org) as reg, _bar() as bar:
        task = bar.add_task(f"upload {path.name}", total=size)
        ds = reg.upload_file(path, organization_id=org, display_name=name, samples_dimension=samples_dimension,
                             content_type=content_type, progress=lambda n: bar.advance(task, n))
    _print_dataset(ds)


@datasets.command("list")
def list_(
    org: Annotated[str, typer.Option("--org", help="Only this organization's datasets.")] = "",
    page_size: Annotated[int, typer.Option(help="Datasets per request.")] = 100,
) -> None:
    """List datasets, newest first."""
    table = Table()
    table.add_column("dataset_id", no_wrap=True, min_width=36)
    for name in ("name", "organization"):
        table.add_column(name, overflow="fold", min_width=10)
    table.add_column("bytes", justify="right", no_wrap=True)
    with _registry(org) as reg:
        for ds in reg.iter_all(organization_id=org, page_size=page_size):
            table.add_row(ds.dataset_id, ds.display_name, ds.organization_id, f"{ds.size_bytes:,}")
    console.print(table)


@datasets.command("show")
def show(dataset_id: str, org: OrgOpt = None) -> None:
    """Show a dataset's metadata."""
    with _registry(org) as reg:
        _print_dataset(reg.get(dataset_id))


@datasets.command("download")
def download(
    dataset_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    org: OrgOpt = None,
) -> None:
    """Download a dataset (resumes a partial download; checks its SHA-256)."""
    _download("dataset", dataset_id, output, org)


def _download(kind: str, ident: str, output: Path, org: str | None) -> None:
    """Downloads dataset or model `ident` to `output` under a progress bar; a hash mismatch exits 1
    with DATA_LOSS."""
    from clients.sdk import IntegrityError

    with _registry(org) as reg:
        get, fetch = (reg.get, reg.download_file) if kind == "dataset" else (reg.get_model, reg.download_model)
        size = get(ident).size_bytes
        try:
            with _bar() as bar:
                task = bar.add_task(f"download {ident[:8]}", total=size)
                fetch(ident, output, progress=lambda n: bar.advance(task, n))
        except IntegrityError as exc:
            err.print(f"[red]DATA_LOSS[/red]: {exc}")
            raise typer.Exit(1) from None
    console.print(f"wrote {output} ({size:,} bytes, sha256 verified)")


def _print_checks(title: str, checks) -> None:
    table = Table("check", "result", "detail", title=title)
    for c in checks:
        table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]", c.detail)
    console.print(table)


@datasets.command("verify")
def verify(dataset_id: str, org: OrgOpt = None) -> None:
    """Compare stored bytes, database and ledger; exit 1 unless they agree."""
    with _registry(org) as reg:
        prov = reg.provenance(dataset_id)
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


# -- sharing -----------------------------------------------------------------------------------------

WithOpt = Annotated[list[str] | None, typer.Option("--with", help="Organization to share with (repeatable).")]
PublicOpt = Annotated[bool, typer.Option("--public", help="Every organization.")]


def _grantees(with_: list[str] | None, public: bool) -> list[str]:
    if not with_ and not public:
        err.print("[red]name an organization with --with ORG (repeatable) or give --public[/red]")
        raise typer.Exit(2)
    return list(with_ or [])


def _print_policy(policy) -> None:
    """An access policy: owner, public, grants, then the history table."""
    from mlmesh.registry.v1 import access_pb2

    console.print(f"{policy.resource}: owner {policy.owner_organization_id}; public: "
                  + ("[yellow]yes[/yellow]" if policy.public else "no"))
    grants = Table(title="shared with")
    for name in ("organization", "since", "granted by"):
        grants.add_column(name, overflow="fold")
    for g in policy.grants:
        grants.add_row(g.organization_id, g.grant_time.ToDatetime().isoformat(timespec="seconds") + "Z",
                       g.granted_by or "-")
    console.print(grants if policy.grants else "shared with no organization by name")
    history = Table(title="history")
    for name in ("when", "action", "grantee", "by", "changed"):
        history.add_column(name, overflow="fold")
    for e in policy.history:
        history.add_row(e.event_time.ToDatetime().isoformat(timespec="seconds") + "Z",
                        access_pb2.AccessEvent.Action.Name(e.action).removeprefix("ACTION_").lower(), "everyone" if e.public else e.organization_id,
                        f"{e.actor or '-'} ({e.actor_organization_id or 'mesh'})", "yes" if e.changed else "no")
    console.print(history)


@datasets.command("share")
def datasets_share(dataset_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None) -> None:
    """Let other organizations (or everyone) read, download and train on a dataset you own."""
    orgs = _grantees(with_, public)
    with _registry(org) as reg:
        _print_policy(reg.share(dataset_id, organization_ids=orgs, public=public))


@datasets.command("unshare")
def datasets_unshare(dataset_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None) -> None:
    """Revoke grants of a dataset you own (effective from the grantee's next call)."""
    orgs = _grantees(with_, public)
    with _registry(org) as reg:
        _print_policy(reg.unshare(dataset_id, organization_ids=orgs, public=public))


@datasets.command("access")
def datasets_access(dataset_id: str, org: OrgOpt = None) -> None:
    """Who may read a dataset you own, and every share and unshare so far."""
    with _registry(org) as reg:
        _print_policy(reg.access_policy(dataset_id))


@datasets.command("usages")
def datasets_usages(dataset_id: str, org: OrgOpt = None) -> None:
    """Models registered on a dataset you own, by any organization (newest first)."""
    table = Table()
    table.add_column("model_id", no_wrap=True, min_width=36)
    table.add_column("organization", overflow="fold")
    table.add_column("registered", no_wrap=True)
    with _registry(org) as reg:
        for u in reg.usages(dataset_id):
            table.add_row(u.model_id, u.organization_id,
                          u.create_time.ToDatetime().isoformat(timespec="seconds") + "Z")
    console.print(table)


@models.command("share")
def models_share(model_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None) -> None:
    """Let other organizations (or everyone) download, translate, serve or continue a model you own."""
    orgs = _grantees(with_, public)
    with _registry(org) as reg:
        _print_policy(reg.share_model(model_id, organization_ids=orgs, public=public))


@models.command("unshare")
def models_unshare(model_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None) -> None:
    """Revoke grants of a model you own."""
    orgs = _grantees(with_, public)
    with _registry(org) as reg:
        _print_policy(reg.unshare_model(model_id, organization_ids=orgs, public=public))


@models.command("access")
def models_access(model_id: str, org: OrgOpt = None) -> None:
    """Who may read a model you own, and every share and unshare so far."""
    with _registry(org) as reg:
        _print_policy(reg.model_access_policy(model_id))


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
    org = org or session.load_settings().org
    if recipe is not None and recipe.is_dir():
        from clients.recipes import pack_recipe

        recipe = pack_recipe(recipe, Path(tempfile.mkdtemp()) / f"{recipe.resolve().name}.tar.gz")
    with _registry(org) as reg:
        model = reg.create_model(organization_id=org, developer_id=developer, dataset_id=dataset_id,
                                 display_name=name, recipe=recipe, image_reference=image, image_digest=digest,
                                 time_limit_seconds=time_limit)
    _print_message(model)


@models.command("list")
def models_list(
    org: Annotated[str, typer.Option("--org", help="Only this organization's models.")] = "",
    dataset_id: Annotated[str, typer.Option("--dataset", help="Only models trained on this dataset.")] = "",
) -> None:
    """List models, newest first."""
    from mlmesh.registry.v1 import model_pb2

    table = Table()
    table.add_column("model_id", no_wrap=True, min_width=36)
    table.add_column("name", overflow="fold", min_width=10)
    table.add_column("state", no_wrap=True)
    table.add_column("res_hash (MD5)", overflow="fold")
    with _registry(org) as reg:
        for m in reg.iter_models(organization_id=org, dataset_id=dataset_id):
            table.add_row(m.model_id, m.display_name,
                          model_pb2.Model.State.Name(m.state).removeprefix("STATE_"), m.res_md5 or "-")
    console.print(table)


@models.command("show")
def models_show(model_id: str, org: OrgOpt = None) -> None:
    """Show a model's metadata and state."""
    with _registry(org) as reg:
        _print_message(reg.get_model(model_id))


@models.command("download")
def models_download(
    model_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    org: OrgOpt = None,
) -> None:
    """Download a trained model (checked against res_hash on the ledger)."""
    _download("model", model_id, output, org)


@models.command("verify")
def models_verify(model_id: str, org: OrgOpt = None) -> None:
    """Compare the stored model, database and its ledger contract; exit 1 unless they agree."""
    with _registry(org) as reg:
        prov = reg.model_provenance(model_id)
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
    with _translator(org) as tr:
        t = tr.translate(model_id)
        if output is not None:
            tr.download_file(t.translation_id, output)
    p = t.parity
    console.print(f"translation {t.translation_id}: {t.converter}, opset {t.opset}, {t.size_bytes:,} bytes, "
                  f"contract {t.contract_address}")
    console.print(f"parity on {p.batch_source}: max |Δ| {p.max_abs_diff:.2e}, max rel {p.max_rel_diff:.2e} "
                  f"(atol {p.atol:g}, rtol {p.rtol:g}) → " + ("passed" if p.passed else "FAILED"))
    if output is not None:
        console.print(f"wrote {output} (sha256 verified)")


def job_state(job) -> str:
    from mlmesh.trainer.v1 import trainer_service_pb2

    return trainer_service_pb2.TrainingJob.State.Name(job.state).removeprefix("STATE_")


@jobs.command("watch")
def jobs_watch(job_id: str, org: OrgOpt = None) -> None:
    """Stream a training job's state changes and log lines until it ends; exit 1 unless it succeeded."""
    last = None
    with _trainer(org) as trainer:
        for event in trainer.watch(job_id):
            if event.WhichOneof("event") == "job":
                last = event.job
                reason = f": {last.failure_reason}" if last.failure_reason else ""
                console.print(f"[bold]job {job_id[:8]} {job_state(last)}[/bold]{reason}")
            else:
                console.print(f"  [dim]{event.log.stream}[/dim] {event.log.text}", highlight=False)
    if last is None or job_state(last) != "SUCCEEDED":
        raise typer.Exit(1)


@jobs.command("list")
def jobs_list(model_id: Annotated[str, typer.Option("--model", help="Only this model's jobs.")] = "",
              org: OrgOpt = None) -> None:
    """List training jobs, newest first."""
    table = Table("job_id", "model_id", "state", "failure")
    with _trainer(org) as trainer:
        for job in trainer.list(model_id=model_id, page_size=100).training_jobs:
            table.add_row(job.job_id, job.model_id, job_state(job), job.failure_reason[:60])
    console.print(table)


@jobs.command("cancel")
def jobs_cancel(job_id: str, org: OrgOpt = None) -> None:
    """Cancel a queued or running training job."""
    with _trainer(org) as trainer:
        _print_message(trainer.cancel(job_id))


def _print_message(message) -> None:
    console.print_json(json_format.MessageToJson(message, preserving_proto_field_name=True))


@app.command()
def demo() -> None:
    """Walk a dataset through the local mesh over REST via Envoy (run `make up` first)."""
    from clients.demo import run_demo

    sys.exit(run_demo(session.load_settings(), console))


@app.command("demo-learner")
def demo_learner() -> None:
    """A forecaster learning from a streamed smart meter, with explanations and drift (run `make up` first)."""
    from clients.demo_learner import run_demo_learner

    settings = session.load_settings()
    sys.exit(run_demo_learner(settings, console, session.bearer_token(settings, settings.org)))


def _register_sensors() -> None:
    from clients.sensors import sensors_app

    app.add_typer(sensors_app, name="sensors")


_register_sensors()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
