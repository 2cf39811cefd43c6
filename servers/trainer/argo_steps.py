"""The Argo executor's step commands: pre-train and post-train as processes, for the Argo
WorkflowTemplate (k8s/argo/training-workflowtemplate.yaml) whose containers run them in the
Trainer's image, outside the Trainer server:

    python -m servers.trainer.argo_steps pre-train  --model-id=M --job-id=J --registry=host:port --work=/work
    python -m servers.trainer.argo_steps post-train --model-id=M --job-id=J --registry=host:port --work=/work

pre-train writes what the train step needs as files under <work>/out/ (the template turns them
into output parameters); post-train streams the artifact to the Registry. The steps themselves
are servers/trainer/domain/steps.py, which the local executor runs inside the Trainer; this
module only gives them a command line. Exit status 1 with one line on stderr on failure (Argo
shows it as the step's message).

The Registry serves only mutual TLS in a cluster: the steps dial it with the mesh identity of
`MLMESH_TLS_CA_FILE` / `MLMESH_TLS_CERT_FILE` / `MLMESH_TLS_KEY_FILE` (TlsSettings; the template
mounts the Trainer's certificate and sets them), plaintext when none is set (development).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

from pydantic import ValidationError

from servers.common import errors
from servers.common.settings import TlsSettings
from servers.trainer.adapters.registry_client import RegistryClient
from servers.trainer.domain import jobs as J
from servers.trainer.domain.recipe import ARTIFACT_NAMES, ArchiveLimits, load_recipe, parse_recipe_toml
from servers.trainer.domain.steps import (
    StepFailed,
    dataset_file_name,
    fetch,
    fetch_dataset_info,
    post_train,
    pre_train,
    read_model,
)


def _job(args) -> J.Job:
    return J.Job(job_id=args.job_id, model_id=args.model_id, state=J.PRE_TRAINING, executor="argo",
                 time_limit_seconds=1, memory_limit_bytes=1, create_time=dt.datetime.now(dt.UTC))


async def _note(text: str) -> None:
    print(text, flush=True)


async def run_pre_train(args) -> None:
    work = Path(args.work)
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    (work / "output").mkdir(exist_ok=True)
    registry = RegistryClient(args.registry)
    try:
        model = await read_model(registry, args.model_id, grace_seconds=10)
        if model.recipe_sha256:
            prepared = await pre_train(registry, _job(args), work, _note, archive_limits=ArchiveLimits(),
                                       model_grace_seconds=10)
            values = {
                "entrypoint": prepared.spec.entrypoint, "work-dir": str(prepared.recipe_root),
                "dataset-path": str(prepared.dataset_path), "content-type": prepared.dataset.content_type,
                "output-path": str(work / "output" / prepared.spec.artifact_name),
                "params": prepared.spec.params_json(),
            }
        else:  # a container image: only the dataset is fetched, on behalf of the model's owner
            org = model.organization_id or None
            dataset = await fetch_dataset_info(registry, model.dataset_id, org)
            path = work / "input" / dataset_file_name(dataset)
            await fetch(registry.download_dataset(dataset.dataset_id, on_behalf_of=org), path,
                        sha256=dataset.sha256, what=f"dataset {dataset.dataset_id}")
            values = {"entrypoint": "", "work-dir": str(work), "dataset-path": str(path),
                      "content-type": dataset.content_type, "output-path": str(work / "output"), "params": "{}"}
        for name, value in values.items():
            (out / name).write_text(value)
    finally:
        await registry.close()


async def run_post_train(args) -> None:
    work = Path(args.work)
    registry = RegistryClient(args.registry)
    try:
        declared = work / "output" / "recipe.toml"  # an image declares its framework and input here
        if declared.is_file():
            spec = parse_recipe_toml(declared.read_bytes())
        else:
            root = Path((work / "out" / "work-dir").read_text())
            spec = load_recipe(root)
        artifact = work / "output" / ARTIFACT_NAMES[spec.framework]
        await post_train(registry, _job(args), spec, artifact, _note)
    finally:
        await registry.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servers.trainer.argo_steps")
    parser.add_argument("step", choices=["pre-train", "post-train"])
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--registry", required=True, help="host:port of the Registry")
    parser.add_argument("--work", required=True, help="the job's shared directory")
    args = parser.parse_args(argv)
    try:  # the client (servers.common.peer) loads the same settings; a bad one fails here with one line
        TlsSettings().files()
    except (ValidationError, OSError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        print(f"error: the mesh certificate (MLMESH_TLS_*): {reason}", file=sys.stderr)
        return 1
    step = run_pre_train if args.step == "pre-train" else run_post_train
    try:
        asyncio.run(step(args))
    except StepFailed as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 1
    except errors.MeshError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
