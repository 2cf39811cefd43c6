"""The seed's section 4.3 walk-through (Figure 19), over REST through Envoy with a JWT:
register the digits dataset, register the seed's CNN (Listing 1, adapted to 8x8) as a
recipe, watch it train, download it, prove it on the ledger; then a scikit-learn recipe as a
second framework. Each trained model is translated to ONNX, checked for parity, downloaded
and run in onnxruntime on the recipe's own test rows."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]


def watch_events(http: httpx.Client, job_id: str, headers: dict) -> Iterator[dict]:
    """Events of WatchTrainingJob as they arrive. Over REST a server stream is one JSON array
    sent piece by piece, so this decodes each element as soon as it is complete."""
    decoder = json.JSONDecoder()
    buffer = ""
    with http.stream("GET", f"/v1/trainingJobs/{job_id}:watch", headers=headers, timeout=None) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"watch failed: HTTP {resp.status_code} {resp.read().decode()}")
        for text in resp.iter_text():
            buffer += text
            while True:
                stripped = buffer.lstrip(" \n\r\t[,")
                if not stripped or stripped.startswith("]"):
                    buffer = stripped
                    break
                try:
                    event, end = decoder.raw_decode(stripped)
                except json.JSONDecodeError:
                    buffer = stripped
                    break
                buffer = stripped[end:]
                yield event


def train_recipe(http: httpx.Client, auth: dict, console: Console, say: Callable[[str], None], *,
                 org: str, dataset_id: str, recipe_dir: Path, name: str) -> dict | None:
    from clients.recipes import pack_recipe

    archive = pack_recipe(recipe_dir, Path(tempfile.mkdtemp()) / f"{recipe_dir.name}.tar.gz")
    say(f"register the model {name!r} with its recipe ({archive.stat().st_size:,} bytes) — POST /v1/models")
    params = {"organization_id": org, "developer_id": "demo-developer", "dataset_id": dataset_id,
              "display_name": name, "recipe_filename": archive.name}
    r = http.post("/v1/models", params=params, content=archive.read_bytes(),
                  headers={**auth, "content-type": "application/gzip"})
    if r.status_code != 200:
        console.print(f"[red]registration failed: HTTP {r.status_code}[/red] {r.text}")
        return None
    model = r.json()
    console.print(f"model {model['model_id']} {model['state']}; Model contract {model['contract_address']} "
                  f"records train_image_hash {model['training_source']['recipe']['md5']}")

    say(f"watch training job {model['training_job_id'][:8]} — GET /v1/trainingJobs/{{id}}:watch (streamed)")
    final = None
    recipe_metrics: dict = {}
    for event in watch_events(http, model["training_job_id"], auth):
        if "job" in event:
            final = event["job"]
            reason = f" — {final['failure_reason']}" if final.get("failure_reason") else ""
            console.print(f"[bold]{final['state'].removeprefix('STATE_')}[/bold]{reason}")
        else:
            text = event["log"]["text"]
            if text.startswith("metrics: "):
                recipe_metrics = json.loads(text.removeprefix("metrics: "))
            console.print(f"  [dim]{event['log']['stream']:>7}[/dim] {text}", highlight=False)
    if final is None or final["state"] != "STATE_SUCCEEDED":
        return None
    model = http.get(f"/v1/models/{model['model_id']}", headers=auth).json()

    say(f"download the trained model — GET /model/{model['model_id'][:8]}… (the seed's route)")
    blob = http.get(f"/model/{model['model_id']}", headers=auth)
    blob.raise_for_status()
    md5 = hashlib.md5(blob.content).hexdigest()
    meta = http.get(f"/model/{model['model_id']}/metadata", headers=auth).json()
    chain = meta["on_chain"]
    console.print(f"{len(blob.content):,} bytes, {model['framework']}")
    console.print(f"MD5 of the downloaded model   {md5}")
    console.print(f"res_hash in Model contract    {chain['res_hash']}  (verified: {chain['verified']})")
    console.print(f"dataset in the contract       {chain['dataset_id']}")
    console.print(f"recipe hash in the contract   {chain['train_image_hash']}")
    proven = md5 == chain["res_hash"] and chain["dataset_id"] == dataset_id and meta["consistent"]
    console.print("[bold green]the ledger alone proves which dataset and which recipe made these bytes[/bold green]"
                  if proven else "[bold red]NOT proven[/bold red]")
    return {**model, "recipe_metrics": recipe_metrics} if proven else None


def translate(http: httpx.Client, auth: dict, console: Console, say: Callable[[str], None], *, model: dict,
              csv: Path, work: Path) -> bool:
    say(f"translate it to ONNX — POST /translate/{model['model_id'][:8]}… (the seed's route)")
    r = http.post(f"/translate/{model['model_id']}", json={}, headers=auth, timeout=600)
    if r.status_code != 200:
        console.print(f"[red]translation failed: HTTP {r.status_code}[/red] {r.text}")
        return False
    t = r.json()
    parity = t["parity"]
    console.print(f"translation {t['translation_id']}: {t['converter']}, opset {t['opset']}, {int(t['size_bytes']):,} "
                  f"bytes; Translation contract {t['contract_address']}")
    console.print(f"parity on {parity['batch_source']}: max |Δ| {parity['max_abs_diff']:.2e}, max rel "
                  f"{parity['max_rel_diff']:.2e} (atol {parity['atol']:g}, rtol {parity['rtol']:g}) → "
                  + ("[green]passed[/green]" if parity["passed"] else "[red]FAILED[/red]"))

    say("download the ONNX file and run it in onnxruntime on the recipe's test rows")
    onnx = work / f"{model['model_id']}.onnx"
    with http.stream("GET", f"/v1/translations/{t['translation_id']}:download", headers=auth) as resp:
        resp.raise_for_status()
        with open(onnx, "wb") as f:
            for block in resp.iter_bytes():
                f.write(block)
    sha = hashlib.sha256(onnx.read_bytes()).hexdigest()
    start, stop = model["recipe_metrics"].get("test_rows", [1437, 1797])
    check = subprocess.run(
        [str(REPO / ".venv-ml/bin/python"), "-m", "servers.translator.worker", "--onnx-check", f"--model={onnx}",
         f"--signature={model['input_signature']}", f"--dataset={csv}", f"--rows={start}:{stop}",
         f"--report={work / 'onnx-check.json'}"],
        cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
    if check.returncode != 0:
        console.print(f"[red]onnxruntime check failed[/red]: {check.stderr.strip().splitlines()[-1:]}")
        return False
    accuracy = json.loads((work / "onnx-check.json").read_text())["accuracy"]["onnx"]
    source = model["recipe_metrics"].get("test_accuracy")
    console.print(f"SHA-256 of the ONNX file {sha} ({'= ledger' if sha == t['sha256'] else '[red]≠ ledger[/red]'})")
    console.print(f"test accuracy on rows {start}..{stop - 1}: {model['framework']} {source:.4f}  ·  "
                  f"onnxruntime {accuracy:.4f}")
    return sha == t["sha256"] and parity["passed"] and abs(accuracy - source) <= 0.01


def run_models_demo(http: httpx.Client, auth: dict, console: Console, say: Callable[[str], None], *,
                    org: str, work: Path) -> bool:
    say("register scikit-learn's bundled handwritten digits as a dataset (nothing is downloaded)")
    csv = work / "digits.csv"
    subprocess.run([str(REPO / ".venv-ml/bin/python"), str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)],
                   check=True, capture_output=True)
    r = http.post("/v1/datasets:upload", params={"organization_id": org, "display_name": "handwritten digits 8x8",
                                                 "samples_dimension": "(1797,65)", "filename": csv.name},
                  content=csv.read_bytes(), headers={**auth, "content-type": "text/csv"})
    if r.status_code != 200:
        console.print(f"[red]upload failed: HTTP {r.status_code}[/red] {r.text}")
        return False
    dataset_id = r.json()["dataset_id"]
    console.print(f"dataset {dataset_id}, contract {r.json()['contract_address']}")
    ok = True
    for recipe, name in (("digits-cnn", "digits CNN (seed Listing 1)"), ("digits-logreg", "digits logistic regression")):
        model = train_recipe(http, auth, console, say, org=org, dataset_id=dataset_id,
                             recipe_dir=REPO / "examples/recipes" / recipe, name=name)
        ok = ok and model is not None and translate(http, auth, console, say, model=model, csv=csv, work=work)
    return ok
