"""`mlmesh models lineage` and `mlmesh provenance export|verify`.

    mlmesh models lineage $MODEL                        # the tree, every node's ledger check
    mlmesh provenance export $MODEL -o model.intoto.jsonl [--key-out mesh.pub.pem]
    mlmesh provenance verify model.intoto.jsonl --key mesh.pub.pem --artifact model.pt [--rpc URL]

`verify` needs no mesh: signatures, the artifact's digest and (with --rpc, any EVM JSON-RPC
endpoint) the ledger anchors, by `mlmesh.client.provenance` (docs/provenance.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.tree import Tree

from clients import session

console = Console()
provenance_app = typer.Typer(help="Signed in-toto/SLSA provenance: export it from the mesh, verify it offline.",
                             no_args_is_help=True)
OrgOpt = Annotated[str | None, typer.Option("--org", help="Organization acting (default: MLMESH_ORG).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]

_STATUS = {"VERIFIED": "[green]verified[/green]", "MISMATCH": "[red]MISMATCH[/red]",
           "NOT_ANCHORED": "[yellow]not anchored[/yellow]", "UNAVAILABLE": "[yellow]unavailable[/yellow]",
           "HIDDEN": "[dim]not visible to you[/dim]"}


def node_label(node) -> str:
    from mlmesh.registry.v1 import lineage_pb2

    kind = lineage_pb2.LineageNode.Kind.Name(node.kind).removeprefix("KIND_").lower().replace("_", " ")
    status = _STATUS[lineage_pb2.LineageNode.CheckStatus.Name(node.check_status).removeprefix("CHECK_STATUS_")]
    if not node.visible:
        return f"{kind}: {status}"
    parts = [f"[bold]{kind}[/bold]"]
    if node.version:
        parts.append(f"v{node.version}")
    parts.append(node.display_name or node.resource_id)
    if node.resource_id and node.resource_id != node.display_name:
        parts.append(f"[dim]{node.resource_id}[/dim]")
    if node.sha256:
        parts.append(f"sha256 {node.sha256[:16]}…")
    attrs = node.attributes
    if "parity.max_abs_diff" in attrs:
        parts.append(f"parity max|Δ| {float(attrs['parity.max_abs_diff']):.3g} "
                     f"({'passed' if attrs.get('parity.passed') == 'True' else 'FAILED'})")
    if "state" in attrs:
        parts.append(attrs["state"].lower())
    if "verdict" in attrs:  # a reproduction
        parts.append(f"[bold]{attrs['verdict']}[/bold]" + (f" max|Δ| {float(attrs['max_abs_diff']):.3g} over "
                                                            f"{attrs.get('compared_samples', '?')} rows"
                                                            if attrs["verdict"] == "DIFFERENT" else ""))
    if node.dead_branch:
        parts.append("[magenta]dead branch[/magenta]")
    if "sample_count" in attrs:  # a federated client's data commitment
        parts.append(f"{attrs['sample_count']} samples [dim](a commitment, not a Registry dataset)[/dim]")
    parts.append(status)
    failed = [c for c in node.checks if not c.ok]
    label = " ".join(parts)
    for c in failed:
        label += f"\n  [red]✗ {c.name}[/red]: {c.detail}"
    return label


def draw(lineage) -> Tree:
    """The lineage as a rich Tree (a forest under one title)."""
    tree = Tree(f"lineage of model {lineage.model_id} (chain {lineage.chain_id}): "
                + ("[green]consistent[/green]" if lineage.consistent else "[red]INCONSISTENT[/red]"))
    branches = {"": tree}
    for node in lineage.nodes:  # parents come before their children
        parent = branches.get(node.parent_node_id, tree)
        branches[node.node_id] = parent.add(node_label(node))
    return tree


def lineage(model_id: str, org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Draw a model's lineage: dataset → recipe/image → job → model → translations and versions, each node
    checked against the ledger now; exit 1 if any check failed."""
    from google.protobuf import json_format

    with session.client(org) as client, session.mesh_errors(as_json=as_json):
        found = client.models.lineage(model_id)
    if as_json:
        print(json.dumps(json_format.MessageToDict(found, preserving_proto_field_name=True)))
    else:
        console.print(draw(found))
    if not found.consistent:
        raise typer.Exit(session.EXIT_FAILED)


@provenance_app.command("export")
def export(model_id: str,
           output: Annotated[Path, typer.Option("-o", "--output", help="The .intoto.jsonl file to write.")],
           key_out: Annotated[Path | None, typer.Option("--key-out", help="Also write the mesh's public key "
                                                                          "(PEM) here.")] = None,
           model_signature: Annotated[Path | None, typer.Option(
               "--model-signature", help="Also write an OpenSSF model_signing signature of the model's artifact "
                                         "here (model.sig; verify with `model_signing verify key`).")] = None,
           org: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Write a model's signed in-toto/SLSA attestations (DSSE envelopes, one per line)."""
    with session.client(org) as client, session.mesh_errors(as_json=as_json):
        exported = client.models.attestations(model_id)
        signed = client.models.model_signature(model_id) if model_signature is not None else None
    output.write_text("".join(line + "\n" for line in exported.envelopes))
    if key_out is not None:
        key_out.write_text(exported.signing_key.public_key_pem)
    if signed is not None:
        model_signature.write_text(signed.bundle)
    summary = {"output": str(output), "envelopes": len(exported.envelopes), "key_id": exported.signing_key.key_id}
    if signed is not None:
        summary["model_signature"] = str(model_signature)
    if as_json:
        print(json.dumps(summary))
    else:
        console.print(f"{len(exported.envelopes)} attestations → {output} (key {exported.signing_key.key_id[:16]}…)")


@provenance_app.command("verify")
def verify(path: Path,
           key: Annotated[Path, typer.Option("--key", help="The mesh's public key, PEM (GET /v1/signingKey, "
                                                          "or <data dir>/provenance/signing-key.pub.pem).")],
           artifact: Annotated[Path | None, typer.Option("--artifact", help="The downloaded artifact whose "
                                                                           "SHA-256 must be a subject.")] = None,
           rpc: Annotated[str | None, typer.Option("--rpc", help="An EVM JSON-RPC URL: check the ledger "
                                                                 "anchors too.")] = None,
           as_json: JsonOpt = False) -> None:
    """Verify attestations offline (no mesh): signatures, the artifact's digest, the ledger anchors."""
    from mlmesh.client import provenance

    for given in (path, key, artifact):
        if given is not None and not given.is_file():
            session.err.print(f"[red]{given}: no such file[/red]")
            raise typer.Exit(session.EXIT_USAGE)
    try:
        report = provenance.verify_file(path, public_key_pem=key.read_bytes(), artifact=artifact, rpc_url=rpc)
    except (provenance.VerificationError, ValueError) as exc:
        session.err.print(f"[red]{exc}[/red]")
        raise typer.Exit(session.EXIT_FAILED) from None
    if as_json:
        print(json.dumps({"ok": report.ok, "checks": [c.__dict__ for c in report.checks]}))
    else:
        for c in report.checks:
            console.print(("[green]✓[/green] " if c.ok else "[red]✗[/red] ") + c.name
                          + ("" if c.ok or not c.detail else f" [dim]({c.detail})[/dim]"))
        console.print("[green]verified[/green]" if report.ok else "[red]NOT VERIFIED[/red]")
    if not report.ok:
        raise typer.Exit(session.EXIT_FAILED)


def register(app: typer.Typer, models: typer.Typer) -> None:
    models.command("lineage")(lineage)
    app.add_typer(provenance_app, name="provenance")
