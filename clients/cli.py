"""The `mlmesh` command line, on top of the SDK (`mlmesh.Client`) only: tokens, datasets, models,
training jobs, translations, learners, sensors, and the local mesh's demos.

Every command takes `--json` (machine-readable output on stdout: the messages in their JSON form
with the proto's field names, lists as arrays; errors as {"error": {...}} on stderr) and `--org`
(the organization acting: whose token is minted from the local identity unless MLMESH_TOKEN is set).
Exit codes: see clients/session.py (0 ok, 1 failed, 2 usage, 3 mesh unreachable). Shell completion:
`mlmesh --install-completion`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.table import Table

from clients import session

EPILOG = ("Exit codes: 0 ok; 1 the mesh refused or failed the request, or a check failed; 2 usage (bad "
          "arguments, missing file, no local identity); 3 the mesh did not answer (UNAVAILABLE, DEADLINE_EXCEEDED).")
app = typer.Typer(help="mlmesh: an MLOps mesh for IoT. Datasets are hashed and anchored on an EVM ledger.",
                  no_args_is_help=True, epilog=EPILOG)
datasets = typer.Typer(help="Register, list, download, verify and share datasets.", no_args_is_help=True,
                       epilog=EPILOG)
models = typer.Typer(help="Register models against datasets, follow their training, download, verify and share "
                          "them.", no_args_is_help=True, epilog=EPILOG)
jobs = typer.Typer(help="Training jobs: follow their state and logs, cancel them.", no_args_is_help=True,
                   epilog=EPILOG)
translations = typer.Typer(help="ONNX translations of trained models and their parity reports.",
                           no_args_is_help=True, epilog=EPILOG)
learners = typer.Typer(help="Online learners: create, stream data in, predict, explain, monitor drift.",
                       no_args_is_help=True, epilog=EPILOG)
for _group, _name in ((datasets, "datasets"), (models, "models"), (jobs, "jobs"), (translations, "translations"),
                      (learners, "learners")):
    app.add_typer(_group, name=_name)
console = Console()
err = session.err  # one stderr console for progress bars and error lines

OrgOpt = Annotated[str | None, typer.Option("--org", help="Organization acting (default: MLMESH_ORG).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
OwnerOpt = Annotated[str, typer.Option("--owner", help="Only this organization's (yours, or what it shared with "
                                                       "you or made public).")]


@contextlib.contextmanager
def _client(org: str | None, as_json: bool = False):
    """An `mlmesh.Client` of the front door carrying `org`'s token; a call failing inside the block
    prints its status and exits (`session.fail`)."""
    with session.client(org) as client, session.mesh_errors(as_json=as_json):
        yield client


def _dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _emit(value, as_json: bool) -> None:
    """Prints a message (or a list of them) as JSON: on stdout for --json, pretty otherwise."""
    data = [_dict(m) for m in value] if isinstance(value, list) else _dict(value)
    if as_json:
        print(json.dumps(data))
    else:
        console.print_json(json.dumps(data))


def _table(columns: Iterable[str], rows: Iterable[Iterable[Any]], title: str | None = None) -> Table:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(str(x) for x in row))
    return table


def _bar(as_json: bool = False, *, transfer: bool = True) -> Progress:
    columns = ([BarColumn(), DownloadColumn(), TransferSpeedColumn()] if transfer
               else [BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}")])
    return Progress("[progress.description]{task.description}", *columns, TimeRemainingColumn(), console=err,
                    disable=as_json)


def _when(ts) -> str:
    return ts.ToDatetime().isoformat(timespec="seconds") + "Z" if ts.seconds else "-"


def _state(message, enum_field: str = "state") -> str:
    return message.DESCRIPTOR.fields_by_name[enum_field].enum_type.values_by_number[
        getattr(message, enum_field)].name.removeprefix("STATE_")


@app.command()
def token(
    org: OrgOpt = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
    as_json: JsonOpt = False,
) -> None:
    """Print a JWT the local Envoy accepts (signed with the embedded identity's key)."""
    s = session.load_settings()
    minted = session.mint(s, org or s.org, ttl)
    print(json.dumps({"token": minted}) if as_json else minted)


# -- datasets ------------------------------------------------------------------------------------------

@datasets.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: file name).")] = None,
    org: OrgOpt = None,
    samples_dimension: Annotated[str, typer.Option(help='e.g. "(8,8)"')] = "",
    content_type: Annotated[str, typer.Option(help="Content type of the file.")] = "application/octet-stream",
    as_json: JsonOpt = False,
) -> None:
    """Upload a dataset (streamed; hashed; anchored on the ledger)."""
    with _client(org, as_json) as client, _bar(as_json) as bar:
        task = bar.add_task(f"upload {path.name}", total=path.stat().st_size)
        ds = client.datasets.upload(path, display_name=name, samples_dimension=samples_dimension,
                                    content_type=content_type, progress=lambda n: bar.advance(task, n))
    _emit(ds, as_json)


@datasets.command("list")
def list_(
    owner: OwnerOpt = "",
    org: OrgOpt = None,
    page_size: Annotated[int, typer.Option(help="Datasets per request.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List the datasets you may see (your own, shared with you, public), newest first."""
    with _client(org, as_json) as client:
        found = list(client.datasets.list(owner=owner, page_size=page_size))
    if as_json:
        return _emit(found, True)
    table = Table()
    table.add_column("dataset_id", no_wrap=True, min_width=36)
    for name in ("name", "organization"):
        table.add_column(name, overflow="fold", min_width=10)
    table.add_column("bytes", justify="right", no_wrap=True)
    for ds in found:
        table.add_row(ds.dataset_id, ds.display_name, ds.organization_id, f"{ds.size_bytes:,}")
    console.print(table)


@datasets.command("show")
def show(dataset_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Show a dataset's metadata."""
    with _client(org, as_json) as client:
        _emit(client.datasets.get(dataset_id), as_json)


def _download(service, ident: str, output: Path, org: str | None, as_json: bool, what: str) -> None:
    """Downloads `ident` with `client.<service>.download` under a progress bar; a hash mismatch is
    DATA_LOSS (exit 1)."""
    with _client(org, as_json) as client:
        svc = getattr(client, service)
        with _bar(as_json) as bar:
            task = bar.add_task(f"download {ident[:8]}", total=None)

            def progress(n: int) -> None:
                bar.advance(task, n)

            svc.download(ident, output, progress=progress)
    size = output.stat().st_size
    if as_json:
        print(json.dumps({what: ident, "path": str(output), "size_bytes": size, "sha256_verified": True}))
    else:
        console.print(f"wrote {output} ({size:,} bytes, sha256 verified)")


@datasets.command("download")
def download(
    dataset_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a dataset (resumes a partial download; checks its SHA-256)."""
    _download("datasets", dataset_id, output, org, as_json, "dataset_id")


def _print_checks(title: str, checks) -> None:
    table = Table("check", "result", "detail", title=title)
    for c in checks:
        table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]", c.detail)
    console.print(table)


@datasets.command("verify")
def verify(dataset_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Compare stored bytes, database and ledger; exit 1 unless they agree."""
    with _client(org, as_json) as client:
        prov = client.datasets.provenance(dataset_id)
    if as_json:
        _emit(prov, True)
    else:
        print_provenance(prov)
    if not prov.consistent:
        raise typer.Exit(session.EXIT_FAILED)


def print_provenance(prov) -> None:
    _print_checks(f"provenance of {prov.dataset.dataset_id}", prov.checks)
    console.print(f"contract {prov.on_chain.contract_address} on chain {prov.on_chain.chain_id}, "
                  f"block {prov.on_chain.block_number}: "
                  + ("[green]consistent[/green]" if prov.consistent else "[red]INCONSISTENT[/red]"))


# -- sharing -----------------------------------------------------------------------------------------

WithOpt = Annotated[list[str] | None, typer.Option("--with", help="Organization to share with (repeatable).")]
PublicOpt = Annotated[bool, typer.Option("--public", help="Every organization.")]


def _grantees(with_: list[str] | None, public: bool) -> list[str]:
    if not with_ and not public:
        err.print("[red]name an organization with --with ORG (repeatable) or give --public[/red]")
        raise typer.Exit(session.EXIT_USAGE)
    return list(with_ or [])


def _print_policy(policy, as_json: bool) -> None:
    """An access policy: owner, public, grants, then the history table."""
    if as_json:
        return _emit(policy, True)
    from mlmesh.registry.v1 import access_pb2

    console.print(f"{policy.resource}: owner {policy.owner_organization_id}; public: "
                  + ("[yellow]yes[/yellow]" if policy.public else "no"))
    grants = _table(("organization", "since", "granted by"),
                    ((g.organization_id, _when(g.grant_time), g.granted_by or "-") for g in policy.grants),
                    title="shared with")
    console.print(grants if policy.grants else "shared with no organization by name")
    console.print(_table(
        ("when", "action", "grantee", "by", "changed"),
        ((_when(e.event_time), access_pb2.AccessEvent.Action.Name(e.action).removeprefix("ACTION_").lower(),
          "everyone" if e.public else e.organization_id, f"{e.actor or '-'} ({e.actor_organization_id or 'mesh'})",
          "yes" if e.changed else "no") for e in policy.history), title="history"))


def _share(service: str, verb: str, ident: str, with_, public: bool, org, as_json: bool) -> None:
    orgs = _grantees(with_, public)
    with _client(org, as_json) as client:
        _print_policy(getattr(getattr(client, service), verb)(ident, orgs, public=public), as_json)


@datasets.command("share")
def datasets_share(dataset_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Let other organizations (or everyone) read, download and train on a dataset you own."""
    _share("datasets", "share", dataset_id, with_, public, org, as_json)


@datasets.command("unshare")
def datasets_unshare(dataset_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None,
                     as_json: JsonOpt = False) -> None:
    """Revoke grants of a dataset you own (effective from the grantee's next call)."""
    _share("datasets", "unshare", dataset_id, with_, public, org, as_json)


@datasets.command("access")
def datasets_access(dataset_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Who may read a dataset you own, and every share and unshare so far."""
    with _client(org, as_json) as client:
        _print_policy(client.datasets.access_policy(dataset_id), as_json)


@datasets.command("usages")
def datasets_usages(dataset_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Models registered on a dataset you own, by any organization (newest first)."""
    with _client(org, as_json) as client:
        found = list(client.datasets.usages(dataset_id))
    if as_json:
        return _emit(found, True)
    table = Table()
    table.add_column("model_id", no_wrap=True, min_width=36)
    table.add_column("organization", overflow="fold")
    table.add_column("registered", no_wrap=True)
    for u in found:
        table.add_row(u.model_id, u.organization_id, _when(u.create_time))
    console.print(table)


# -- models --------------------------------------------------------------------------------------------

@models.command("share")
def models_share(model_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Let other organizations (or everyone) download, translate, serve or continue a model you own."""
    _share("models", "share", model_id, with_, public, org, as_json)


@models.command("unshare")
def models_unshare(model_id: str, with_: WithOpt = None, public: PublicOpt = False, org: OrgOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Revoke grants of a model you own."""
    _share("models", "unshare", model_id, with_, public, org, as_json)


@models.command("access")
def models_access(model_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Who may read a model you own, and every share and unshare so far."""
    with _client(org, as_json) as client:
        _print_policy(client.models.access_policy(model_id), as_json)


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
    as_json: JsonOpt = False,
) -> None:
    """Register a model and schedule its training."""
    with _client(org, as_json) as client:
        model = client.models.create(dataset_id=dataset_id, display_name=name, recipe=recipe, image_reference=image,
                                     image_digest=digest, developer_id=developer, time_limit_seconds=time_limit)
    _emit(model, as_json)


@models.command("list")
def models_list(
    owner: OwnerOpt = "",
    dataset_id: Annotated[str, typer.Option("--dataset", help="Only models trained on this dataset.")] = "",
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the models you may see, newest first."""
    with _client(org, as_json) as client:
        found = list(client.models.list(owner=owner, dataset_id=dataset_id))
    if as_json:
        return _emit(found, True)
    table = Table()
    table.add_column("model_id", no_wrap=True, min_width=36)
    table.add_column("name", overflow="fold", min_width=10)
    table.add_column("state", no_wrap=True)
    table.add_column("res_hash (MD5)", overflow="fold")
    for m in found:
        table.add_row(m.model_id, m.display_name, _state(m), m.res_md5 or "-")
    console.print(table)


@models.command("show")
def models_show(model_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Show a model's metadata and state."""
    with _client(org, as_json) as client:
        _emit(client.models.get(model_id), as_json)


@models.command("download")
def models_download(
    model_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a trained model (checked against res_hash on the ledger)."""
    _download("models", model_id, output, org, as_json, "model_id")


@models.command("verify")
def models_verify(model_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Compare the stored model, database and its ledger contract; exit 1 unless they agree."""
    with _client(org, as_json) as client:
        prov = client.models.provenance(model_id)
    if as_json:
        _emit(prov, True)
    else:
        _print_checks(f"provenance of model {model_id}", prov.checks)
        chain = prov.on_chain
        console.print(f"contract {chain.contract_address}: dataset {chain.dataset_id}, train_image_hash "
                      f"{chain.train_image_hash}, res_hash {chain.res_hash or '(not verified yet)'}")
    if not prov.consistent:
        raise typer.Exit(session.EXIT_FAILED)


def _print_translation(t, as_json: bool) -> None:
    if as_json:
        return _emit(t, True)
    p = t.parity
    console.print(f"translation {t.translation_id}: {t.converter}, opset {t.opset}, {t.size_bytes:,} bytes, "
                  f"contract {t.contract_address}")
    console.print(f"parity on {p.batch_source}: max |Δ| {p.max_abs_diff:.2e}, max rel {p.max_rel_diff:.2e} "
                  f"(atol {p.atol:g}, rtol {p.rtol:g}) → " + ("passed" if p.passed else "FAILED"))


@models.command("translate")
def models_translate(model_id: str, org: OrgOpt = None,
                     output: Annotated[Path | None, typer.Option("-o", "--output", help="Also download the .onnx "
                                                                 "file here.")] = None,
                     as_json: JsonOpt = False) -> None:
    """Translate a trained model to ONNX; print the parity report (and download the file)."""
    with _client(org, as_json) as client:
        t = client.translations.translate(model_id)
        if output is not None:
            client.translations.download(t.translation_id, output)
    _print_translation(t, as_json)
    if output is not None and not as_json:
        console.print(f"wrote {output} (sha256 verified)")


@models.command("reproduce")
def models_reproduce(model_id: str, org: OrgOpt = None,
                     wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the job until it ends "
                                                        "(default) or print it queued.")] = True,
                     as_json: JsonOpt = False) -> None:
    """Retrain a trained model from its pinned recipe on its dataset and compare with the ledger's
    result: IDENTICAL (same bytes) or DIFFERENT with the measured max output difference. Exit 1
    unless the reproduction job succeeded."""
    with _client(org, as_json) as client:
        job = client.jobs.reproduce(model_id)
        if wait:
            for event in client.jobs.watch(job.job_id):
                if event.WhichOneof("event") == "job":
                    job = event.job
                elif not as_json:
                    console.print(f"  [dim]{event.log.stream}[/dim] {event.log.text}", highlight=False)
    if as_json:
        _emit(job, True)
    else:
        reason = f": {job.failure_reason}" if job.failure_reason else ""
        console.print(f"[bold]reproduction job {job.job_id} {job_state(job)}[/bold]{reason}")
        if job.HasField("reproduction"):
            r = job.reproduction
            if r.outcome == r.OUTCOME_IDENTICAL:
                console.print(f"IDENTICAL: sha256 {r.reproduced_sha256} = the ledger's res_sha256")
            else:
                agree = f", top-1 agreement {r.top1_agreement:.2%}" if r.top1_agreement >= 0 else ""
                console.print(f"DIFFERENT: sha256 {r.reproduced_sha256} != the ledger's {r.ledger_res_sha256}; "
                              f"max |original - reproduced| {r.max_abs_diff:.3e} over {r.compared_samples} "
                              f"rows{agree}")
    if wait and job_state(job) != "SUCCEEDED":
        raise typer.Exit(session.EXIT_FAILED)


# -- training jobs -------------------------------------------------------------------------------------

def job_state(job) -> str:
    return _state(job)


@jobs.command("watch")
def jobs_watch(job_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Stream a training job's state changes and log lines until it ends; exit 1 unless it succeeded.
    With --json: one event per line (JSON lines)."""
    last = None
    with _client(org, as_json) as client:
        for event in client.jobs.watch(job_id):
            if event.WhichOneof("event") == "job":
                last = event.job
            if as_json:
                print(json.dumps(_dict(event)), flush=True)
            elif last is event.job:
                reason = f": {last.failure_reason}" if last.failure_reason else ""
                console.print(f"[bold]job {job_id[:8]} {job_state(last)}[/bold]{reason}")
            else:
                console.print(f"  [dim]{event.log.stream}[/dim] {event.log.text}", highlight=False)
    if last is None or job_state(last) != "SUCCEEDED":
        raise typer.Exit(session.EXIT_FAILED)


@jobs.command("list")
def jobs_list(model_id: Annotated[str, typer.Option("--model", help="Only this model's jobs.")] = "",
              org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """List training jobs, newest first."""
    with _client(org, as_json) as client:
        found = list(client.jobs.list(model_id=model_id))
    if as_json:
        return _emit(found, True)
    console.print(_table(("job_id", "model_id", "state", "failure"),
                         ((j.job_id, j.model_id, job_state(j), j.failure_reason[:60]) for j in found)))


@jobs.command("show")
def jobs_show(job_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Show a training job."""
    with _client(org, as_json) as client:
        _emit(client.jobs.get(job_id), as_json)


@jobs.command("cancel")
def jobs_cancel(job_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a queued or running training job."""
    with _client(org, as_json) as client:
        _emit(client.jobs.cancel(job_id), as_json)


# -- translations --------------------------------------------------------------------------------------

@translations.command("list")
def translations_list(model_id: Annotated[str, typer.Option("--model", help="Only this model's translations.")
                                          ] = "", org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """List translations: of one model you may read, or all of yours."""
    with _client(org, as_json) as client:
        found = list(client.translations.list(model_id=model_id))
    if as_json:
        return _emit(found, True)
    console.print(_table(("translation_id", "model_id", "converter", "opset", "bytes", "parity"),
                         ((t.translation_id, t.model_id, t.converter, t.opset, f"{t.size_bytes:,}",
                           "passed" if t.parity.passed else "FAILED") for t in found)))


@translations.command("show")
def translations_show(translation_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Show a translation and its parity report."""
    with _client(org, as_json) as client:
        t = client.translations.get(translation_id)
    _print_translation(t, as_json)


@translations.command("download")
def translations_download(
    translation_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the .onnx file.")],
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a translation's ONNX file (checks its SHA-256)."""
    _download("translations", translation_id, output, org, as_json, "translation_id")


# -- learners ------------------------------------------------------------------------------------------

def _params(pairs: list[str] | None, option: str) -> dict:
    """KEY=VALUE pairs, each VALUE JSON if it parses (numbers, true, lists), else a string."""
    params = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


ParamOpt = Annotated[list[str] | None, typer.Option(help="KEY=VALUE (repeatable; VALUE as JSON when it parses).")]


@learners.command("create")
def learners_create(
    name: Annotated[str, typer.Option("--name", help="Display name (unique in your organization).")],
    backend: Annotated[str, typer.Option(help="sklearn, river, vw, pytorch or tensorflow.")] = "sklearn",
    task: Annotated[str, typer.Option(help="regression or classification.")] = "regression",
    transformer: Annotated[str, typer.Option(help="tabular, power-forecast or image.")] = "tabular",
    backend_param: ParamOpt = None,
    transformer_param: ParamOpt = None,
    reference_dataset: Annotated[str, typer.Option(help="Dataset the drift is measured against.")] = "",
    starting_model: Annotated[str, typer.Option(help="TRAINED model to continue from.")] = "",
    micro_batch: Annotated[int, typer.Option(help="Observations per training step (0: default).")] = 0,
    save_min_observations: Annotated[int, typer.Option(help="Save policy: observations before a save.")] = 0,
    save_window: Annotated[int, typer.Option(help="Save policy: validation window.")] = 0,
    save_min_improvement: Annotated[float, typer.Option(help="Save policy: relative improvement to save.")] = 0.0,
    monitor_window: Annotated[int, typer.Option(help="Monitoring: readings per drift window.")] = 0,
    monitor_every: Annotated[int, typer.Option(help="Monitoring: compute drift every N observations.")] = 0,
    spec: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="A LearnerSpec as JSON (overrides "
                                              "the options above).")] = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an online learner (docs/learner.md: backends, transformers, their parameters)."""
    from mlmesh.learner.v1 import learner_service_pb2 as lpb

    full_spec = json_format.Parse(spec.read_text(), lpb.LearnerSpec()) if spec else None
    with _client(org, as_json) as client:
        learner = client.learners.create(
            display_name=name, backend=backend, task=task, transformer=transformer,
            backend_params=_params(backend_param, "--backend-param"),
            transformer_params=_params(transformer_param, "--transformer-param"),
            reference_dataset_id=reference_dataset, starting_model_id=starting_model, micro_batch_size=micro_batch,
            save_policy=_nonzero(min_observations=save_min_observations, validation_window=save_window,
                                 min_relative_improvement=save_min_improvement),
            monitoring=_nonzero(window=monitor_window, every=monitor_every), spec=full_spec)
    _emit(learner, as_json)


def _nonzero(**fields) -> dict | None:
    """The fields given a value, or None (the server's defaults) when none was."""
    given = {k: v for k, v in fields.items() if v}
    return given or None


def _print_learners(found, as_json: bool) -> None:
    if as_json:
        return _emit(found, True)
    console.print(_table(
        ("learner_id", "name", "backend", "state", "version", "learned", "validation loss"),
        ((x.learner_id, x.display_name, x.spec.backend, _state(x), x.version, x.observations_learned,
          f"{x.validation_loss:.6g}") for x in found)))


@learners.command("list")
def learners_list(org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """List your organization's learners."""
    with _client(org, as_json) as client:
        _print_learners(list(client.learners.list()), as_json)


@learners.command("show")
def learners_show(learner_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Show a learner: spec, version, current model, losses."""
    with _client(org, as_json) as client:
        _emit(client.learners.get(learner_id), as_json)


@learners.command("delete")
def learners_delete(learner_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a learner (the versions it saved stay in the Registry)."""
    with _client(org, as_json) as client:
        client.learners.delete(learner_id)
    print(json.dumps({"deleted": learner_id}) if as_json else f"deleted learner {learner_id}")


def _csv_observations(path: Path, target: str | None, time_column: str, value_column: str, sensor_id: str
                      ) -> list:
    """Observations from a CSV: with `target`, feature rows (every other column) with that target;
    else sensor readings from the time and value columns."""
    from mlmesh.client import observation

    from clients.sensorformat import CsvError, read_rows

    if target is None:
        try:
            return [observation(sensor_id=sensor_id, time=r.time, value=r.value)
                    for r in read_rows(path, time_column, value_column)]
        except CsvError as exc:
            err.print(f"[red]bad CSV[/red]: {exc}")
            raise typer.Exit(session.EXIT_USAGE) from None
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if target not in (reader.fieldnames or []):
            err.print(f"[red]bad CSV[/red]: {path} has no column {target!r} (columns: {reader.fieldnames})")
            raise typer.Exit(session.EXIT_USAGE)
        try:
            return [observation([float(v) for k, v in row.items() if k != target], target=float(row[target]))
                    for row in reader]
        except ValueError as exc:
            err.print(f"[red]bad CSV[/red]: {path} line {reader.line_num}: {exc}")
            raise typer.Exit(session.EXIT_USAGE) from None


TargetOpt = Annotated[str | None, typer.Option("--target", help="Tabular CSV: the column to learn; every other "
                                               "column is a feature. Without it: sensor readings.")]
TimeColOpt = Annotated[str, typer.Option(help="Sensor CSV: column of the times (ISO 8601).")]
ValueColOpt = Annotated[str, typer.Option(help="Sensor CSV: column of the values.")]
SensorOpt = Annotated[str | None, typer.Option("--sensor-id", help="Sensor id (default: the file name without "
                                               "extension).")]


@learners.command("learn")
def learners_learn(
    learner_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV of observations.")],
    target: TargetOpt = None,
    sensor_id: SensorOpt = None,
    time_column: TimeColOpt = "timestamp",
    value_column: ValueColOpt = "power_kw",
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Observations per Learn message.")] = 96,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stream a CSV into a learner over one Learn stream, flat out (`mlmesh sensors replay` paces it);
    print what it learned and the versions it saved."""
    observations = _csv_observations(file, target, time_column, value_column, sensor_id or file.stem)
    last, saved = None, []
    with _client(org, as_json) as client, _bar(as_json, transfer=False) as bar:
        task = bar.add_task(f"learn {file.name}", total=len(observations), status="")
        for ack in client.learners.learn(learner_id, observations, batch_size=batch, flush=True):
            bar.update(task, completed=ack.observations_received,
                       status=f"learned {ack.observations_learned}, running loss {ack.running_loss:.4g}")
            last = ack
            if ack.HasField("saved"):
                saved.append(ack.saved)
    if last is None:
        err.print("no acknowledgement received")
        raise typer.Exit(session.EXIT_FAILED)
    if as_json:
        print(json.dumps({"last": _dict(last), "saved": [_dict(v) for v in saved]}))
        return
    console.print(f"sent {last.observations_received} observations; learner: {last.observations_learned} learned, "
                  f"{last.pending} pending; running loss {last.running_loss:.6g}, validation loss "
                  f"{last.validation_loss:.6g}")
    if saved:
        console.print(_table(("version", "model_id", "validation loss", "parent"),
                             ((v.version, v.model_id, f"{v.validation_loss:.6g}", v.parent_model_id or "-")
                              for v in saved), title="saved versions"))
    else:
        console.print("no model version saved")


def _rows(values: list[str] | None) -> list[list[float]]:
    rows = []
    for text in values or ():
        try:
            rows.append([float(x) for x in text.split(",")])
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint="--values") from None
    return rows


ValuesOpt = Annotated[list[str] | None, typer.Option("--values", help="A feature row, comma-separated (repeatable).")]


@learners.command("predict")
def learners_predict(
    learner_id: str,
    values: ValuesOpt = None,
    sensor_id: Annotated[str, typer.Option("--sensor-id", help="Forecast from this sensor's latest readings.")] = "",
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict for feature rows (--values, repeatable) or from a sensor's latest readings (--sensor-id)."""
    rows = _rows(values)
    if not rows and not sensor_id:
        raise typer.BadParameter("give --values ROW (repeatable) or --sensor-id ID", param_hint="--values")
    with _client(org, as_json) as client:
        response = client.learners.predict(learner_id, rows, sensor_id=sensor_id)
    if as_json:
        return _emit(response, True)
    console.print(_table(("#", "values", "label", "for time"),
                         ((i, ", ".join(f"{v:.6g}" for v in p.values), p.label or "-", _when(p.target_time))
                          for i, p in enumerate(response.predictions)),
                         title=f"model {response.model_id or '(live, not saved yet)'}"))


@learners.command("explain")
def learners_explain(
    learner_id: str,
    values: Annotated[str | None, typer.Option("--values", help="The feature row, comma-separated.")] = None,
    sensor_id: Annotated[str, typer.Option("--sensor-id", help="Explain the forecast from this sensor's latest "
                                           "readings.")] = "",
    method: Annotated[str, typer.Option(help="Captum method (default: the learner's).")] = "",
    top: Annotated[int, typer.Option(help="Show the N largest attributions.")] = 10,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Feature attributions of one prediction (Captum)."""
    row = _rows([values] if values else None)
    if not row and not sensor_id:
        raise typer.BadParameter("give --values ROW or --sensor-id ID", param_hint="--values")
    with _client(org, as_json) as client:
        explanation = client.learners.explain(learner_id, row[0] if row else None, sensor_id=sensor_id, method=method)
    if as_json:
        return _emit(explanation, True)
    console.print(f"method {explanation.method}, prediction {explanation.prediction:.6g} (baseline "
                  f"{explanation.baseline_prediction:.6g}), convergence delta {explanation.convergence_delta:.2e}"
                  + (f"; {explanation.note}" if explanation.note else ""))
    ranked = sorted(explanation.attributions, key=lambda a: -abs(a.attribution))[:top]
    console.print(_table(("feature", "value", "attribution"),
                         ((a.name, f"{a.value:.6g}", f"{a.attribution:+.6g}") for a in ranked)))


@learners.command("monitor")
def learners_monitor(
    learner_id: str,
    refresh: Annotated[bool, typer.Option(help="Compute drift and errors now.")] = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift per feature against the reference dataset, and the error metrics."""
    with _client(org, as_json) as client:
        report = client.learners.monitoring(learner_id, refresh=refresh)
    if as_json:
        return _emit(report, True)
    d, e = report.drift, report.errors
    console.print(f"drift: {'[red]yes[/red]' if d.dataset_drift else 'no'}, {d.drifted_features}/{d.feature_count} "
                  f"features ({100 * d.drift_share:.0f}%), window {d.window_size}, reference {report.reference_size}")
    console.print(f"errors over {e.count}: ME {e.me:+.4g}, MAE {e.mae:.4g}, MAPE {e.mape:.4g}%, over-estimated "
                  f"{100 * e.over_estimation_share:.0f}%, under-estimated {100 * e.under_estimation_share:.0f}%")
    drifted = [f for f in d.features if f.drifted]
    if drifted:
        console.print(_table(("feature", "method", "score", "threshold"),
                             ((f.name, f.method, f"{f.score:.4g}", f"{f.threshold:.4g}") for f in drifted),
                             title="drifted features"))


def _events(stream: Iterator, limit: int | None, seconds: float | None) -> Iterator:
    """At most `limit` events, and none after `seconds` (checked as events arrive)."""
    deadline = time.monotonic() + seconds if seconds else None
    for count, event in enumerate(stream, 1):
        yield event
        if (limit and count >= limit) or (deadline and time.monotonic() > deadline):
            return


@contextlib.contextmanager
def _quiet_deadline(expected: bool, error: type[Exception]):
    try:
        yield
    except error:
        if not expected:
            raise


@learners.command("events")
def learners_events(
    learner_id: str,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after N events.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow a learner's events (drift detected/cleared, versions saved) as they happen; Ctrl-C ends.
    With --json: one event per line."""
    from mlmesh.client.errors import DeadlineExceeded
    from mlmesh.learner.v1 import learner_service_pb2 as lpb

    with _client(org, as_json) as client:
        # --timeout is the stream's deadline too: reaching it is the end asked for, not an error
        with contextlib.suppress(KeyboardInterrupt), _quiet_deadline(timeout is not None, DeadlineExceeded):
            for event in _events(client.learners.watch(learner_id, timeout=timeout), limit, timeout):
                if as_json:
                    print(json.dumps(_dict(event)), flush=True)
                    continue
                kind = lpb.LearnerEvent.Kind.Name(event.kind).removeprefix("KIND_").lower().replace("_", " ")
                detail = (f"v{event.saved.version} {event.saved.model_id}" if event.HasField("saved") else
                          f"{event.drift.drifted_features}/{event.drift.feature_count} features drifted")
                console.print(f"{_when(event.time)} {kind}: {detail}", highlight=False)


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


def _register_provenance() -> None:
    from clients.provenance import register

    register(app, models)


_register_provenance()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
