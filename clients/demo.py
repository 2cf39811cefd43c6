"""`mlmesh demo`: a dataset's life through the front door, over REST with a JWT.

1. mint a token for an organization (the embedded identity provider)
2. upload a smart-energy CSV (15 days of 15-minute power readings, generated here:
   nothing can be downloaded on these machines) as a raw streamed request body
3. show it, 4. list it, 5. download it and check its MD5 against the ledger's `hash`,
6. show its provenance (stored bytes vs database vs chain), 7. read the contract straight
   from the chain node, 8. show what the front door does with a request without a token;
then the models walk-through (clients/demo_models.py) and sharing: the digits dataset shared with
a second organization, which trains on it; the owner sees the usage; a stranger gets 404.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import httpx
from rich.console import Console

from clients import session
from clients.settings import ClientSettings

REPO = Path(__file__).resolve().parents[1]


def make_power_csv(path: Path, days: int = 15, seed: int = 7) -> Path:
    """15-minute active power of a building with a daily cycle and noise (kW)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("timestamp,meter_id,active_power_kw\n")
        for i in range(days * 96):
            hour = (i % 96) / 4
            kw = 40 + 25 * math.sin((hour - 7) / 24 * 2 * math.pi) + rng.gauss(0, 3)
            day, minute = divmod(i * 15, 24 * 60)
            f.write(f"2026-06-{day + 1:02d}T{minute // 60:02d}:{minute % 60:02d}:00Z,meter-7,{kw:.3f}\n")
    return path


def _file_chunks(path: Path, size: int = 64 * 1024):
    with open(path, "rb") as f:
        while block := f.read(size):
            yield block


def read_dataset_contract(settings: ClientSettings, address: str) -> tuple | None:
    """get_dataset_params() of a Dataset contract, read straight from the chain node with the
    ABI committed under contracts/build/ (what any third party can do)."""
    from web3 import Web3

    endpoints = settings.data_dir.resolve() / "run" / "endpoints.json"
    if not endpoints.exists():
        return None
    rpc_url = json.loads(endpoints.read_text())["rpc_url"]
    abi = json.loads((REPO / "contracts" / "build" / "Dataset.json").read_text())["abi"]
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
    return tuple(contract.functions.get_dataset_params().call())


def run_demo(settings: ClientSettings, console: Console) -> int:
    base = f"http://{settings.front_door}"
    org = settings.org
    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        console.rule(f"[bold]{step}. {text}")

    say(f"mint a JWT for organization {org!r} (embedded identity; Envoy checks it)")
    token = session.bearer_token(settings, org)
    console.print(f"{token[:40]}…")
    auth = {"authorization": f"Bearer {token}"}
    work = settings.data_dir.resolve() / "demo"
    csv = make_power_csv(work / "meter-7-power.csv")
    local_md5 = hashlib.md5(csv.read_bytes()).hexdigest()

    with httpx.Client(base_url=base, timeout=120) as http:
        say(f"upload {csv.name} ({csv.stat().st_size:,} bytes) — POST /v1/datasets:upload, raw body, streamed")
        params = {"organization_id": org, "display_name": "meter 7 active power, 15 days",
                  "samples_dimension": "(1440,3)", "filename": csv.name}
        r = http.post("/v1/datasets:upload", params=params, content=_file_chunks(csv),
                      headers={**auth, "content-type": "text/csv"})
        if r.status_code != 200:
            console.print(f"[red]upload failed: HTTP {r.status_code}[/red] {r.text}")
            return 1
        ds = r.json()
        console.print_json(json.dumps(ds))
        dataset_id = ds["dataset_id"]

        say(f"show it — GET /v1/datasets/{dataset_id}")
        r = http.get(f"/v1/datasets/{dataset_id}", headers=auth)
        r.raise_for_status()
        console.print(f"{r.json()['display_name']}: {r.json()['size_bytes']} bytes, contract "
                      f"{r.json()['contract_address']}")

        say(f"list the organization's datasets — GET /v1/datasets?organization_id={org}&page_size=5")
        r = http.get("/v1/datasets", params={"organization_id": org, "page_size": 5}, headers=auth)
        r.raise_for_status()
        for d in r.json().get("datasets", []):
            console.print(f"  {d['dataset_id']}  {d['display_name']}  {d['size_bytes']} bytes")

        say(f"download it — GET /v1/datasets/{dataset_id}:download (streamed)")
        out = work / "downloaded.csv"
        md5 = hashlib.md5()
        with http.stream("GET", f"/v1/datasets/{dataset_id}:download", headers=auth) as resp:
            if resp.status_code != 200:
                console.print(f"[red]download failed: HTTP {resp.status_code}[/red] {resp.read().decode()}")
                return 1
            with open(out, "wb") as f:
                for block in resp.iter_bytes():
                    f.write(block)
                    md5.update(block)
        console.print(f"content-type {resp.headers.get('content-type')}; wrote {out}")

        say("verify it against the ledger — GET /v1/datasets/{id}/provenance")
        r = http.get(f"/v1/datasets/{dataset_id}/provenance", headers=auth)
        r.raise_for_status()
        prov = r.json()
        chain = prov["on_chain"]
        console.print(f"MD5 of the file we uploaded     {local_md5}")
        console.print(f"MD5 of the bytes we downloaded  {md5.hexdigest()}")
        console.print(f"`hash` in contract {chain['contract_address']} (chain {chain['chain_id']}, block "
                      f"{chain['block_number']}): {chain['md5']}")
        for check in prov["checks"]:
            mark = "[green]ok[/green]" if check.get("ok") else f"[red]MISMATCH[/red] {check.get('detail', '')}"
            console.print(f"  {check['name']:<55} {mark}")
        consistent = bool(prov.get("consistent")) and md5.hexdigest() == chain["md5"] == local_md5
        console.print("[bold green]verified: bytes, database and ledger agree[/bold green]" if consistent
                      else "[bold red]NOT verified[/bold red]")

        say("check it on the chain yourself — eth_call to the contract, no mlmesh server involved")
        on_chain = read_dataset_contract(settings, chain["contract_address"])
        if on_chain is None:
            console.print("(no local chain endpoint recorded; skipped)")
        else:
            console.print(f"get_dataset_params() = {on_chain}")
            independent = on_chain[4] == md5.hexdigest() and on_chain[0] == dataset_id
            console.print("[bold green]the ledger alone proves these bytes are the registered dataset[/bold green]"
                          if independent else "[bold red]the chain disagrees[/bold red]")
            consistent = consistent and independent

        say("the front door without a token — GET /v1/datasets")
        r = http.get("/v1/datasets")
        console.print(f"HTTP {r.status_code}: {r.text.strip()[:120]}")
        consistent = consistent and r.status_code == 401

        from clients.demo_models import run_models_demo

        models_ok = run_models_demo(http, auth, console, say, org=org, work=work)
        sharing_ok = models_ok and run_sharing_demo(http, settings, auth, console, say, org=org)
        return 0 if consistent and models_ok and sharing_ok else 1


PARTNER = "grid-analytics-ll"  # the organization the demo shares the digits dataset with
STRANGER = "curious-stranger-ll"  # an organization nobody shares anything with


def run_sharing_demo(http: httpx.Client, settings: ClientSettings, auth: dict, console: Console, say, *,
                     org: str) -> bool:
    """Sharing (docs/security.md): `org` shares its digits dataset with PARTNER, which trains the
    logistic-regression recipe on it through the front door; `org` sees the usage but not the model;
    a stranger gets 404 for all of it; a revoke holds from the next call."""
    from clients.demo_models import train_recipe

    partner = {"authorization": f"Bearer {session.mint(settings, PARTNER)}"}
    stranger = {"authorization": f"Bearer {session.mint(settings, STRANGER)}"}
    listed = http.get("/v1/datasets", params={"organization_id": org, "page_size": 20}, headers=auth).json()
    digits = next((d for d in listed.get("datasets", []) if d["display_name"] == "handwritten digits 8x8"), None)
    if digits is None:
        console.print("[red]the digits dataset is not listed[/red]")
        return False
    dataset_id = digits["dataset_id"]
    ok = True

    def expect(what: str, status: int, wanted: int) -> None:
        nonlocal ok
        mark = "[green]as it should[/green]" if status == wanted else f"[red]expected HTTP {wanted}[/red]"
        console.print(f"{what}: HTTP {status} ({mark})")
        ok = ok and status == wanted

    say(f"private by default — {PARTNER} asks for {org}'s digits dataset")
    expect(f"{PARTNER}: GET /v1/datasets/{dataset_id[:8]}…", http.get(f"/v1/datasets/{dataset_id}",
                                                                      headers=partner).status_code, 404)

    say(f"{org} shares it with {PARTNER} — POST /v1/datasets/{{id}}:share")
    r = http.post(f"/v1/datasets/{dataset_id}:share", json={"organization_ids": [PARTNER]}, headers=auth)
    if r.status_code != 200:
        console.print(f"[red]share failed: HTTP {r.status_code}[/red] {r.text}")
        return False
    console.print(f"shared with: {', '.join(g['organization_id'] for g in r.json().get('grants', []))}")

    model = train_recipe(http, partner, console, say, org=PARTNER, dataset_id=dataset_id,
                         recipe_dir=REPO / "examples/recipes" / "digits-logreg",
                         name=f"{PARTNER}'s digits logistic regression")
    if model is None:
        return False
    console.print(f"the model belongs to {model['organization_id']}")
    ok = ok and model["organization_id"] == PARTNER

    say(f"{org} sees who used its dataset — GET /v1/datasets/{{id}}/usages")
    usages = http.get(f"/v1/datasets/{dataset_id}/usages", headers=auth).json().get("usages", [])
    for u in usages:
        console.print(f"  model {u['model_id']}  by {u['organization_id']}  at {u['create_time']}")
    used = any(u["model_id"] == model["model_id"] and u["organization_id"] == PARTNER for u in usages)
    console.print(f"[bold green]{org} sees that {PARTNER} trained a model on its dataset[/bold green]" if used
                  else "[bold red]the usage is missing[/bold red]")
    ok = ok and used
    expect(f"{org}: GET {PARTNER}'s model (not shared with it)",
           http.get(f"/v1/models/{model['model_id']}", headers=auth).status_code, 404)

    say(f"a stranger ({STRANGER}) gets nothing")
    expect(f"{STRANGER}: GET /v1/datasets/{dataset_id[:8]}…", http.get(f"/v1/datasets/{dataset_id}",
                                                                       headers=stranger).status_code, 404)
    expect(f"{STRANGER}: GET /dataset/{dataset_id[:8]}… (the seed's route)",
           http.get(f"/dataset/{dataset_id}", headers=stranger).status_code, 404)
    expect(f"{STRANGER}: GET /model/{model['model_id'][:8]}…",
           http.get(f"/model/{model['model_id']}", headers=stranger).status_code, 404)
    seen = http.get("/v1/datasets", params={"organization_id": org}, headers=stranger).json().get("datasets", [])
    console.print(f"{STRANGER}: GET /v1/datasets?organization_id={org} lists {len(seen)} datasets")
    ok = ok and not seen

    say(f"{org} revokes the grant and reads the audit log — POST :unshare, GET /accessPolicy")
    http.post(f"/v1/datasets/{dataset_id}:unshare", json={"organization_ids": [PARTNER]}, headers=auth)
    expect(f"{PARTNER}: GET /v1/datasets/{dataset_id[:8]}… after the revoke",
           http.get(f"/v1/datasets/{dataset_id}", headers=partner).status_code, 404)
    policy = http.get(f"/v1/datasets/{dataset_id}/accessPolicy", headers=auth).json()
    for e in policy.get("history", []):
        console.print(f"  {e['event_time']}  {e['action'].removeprefix('ACTION_').lower():<7} "
                      f"{e.get('organization_id') or 'everyone'}  by {e.get('actor') or '-'} "
                      f"({e.get('actor_organization_id', '')})")
    console.print("[bold green]shared on purpose, used, revoked, and a stranger saw nothing[/bold green]" if ok
                  else "[bold red]sharing did not behave[/bold red]")
    return ok
