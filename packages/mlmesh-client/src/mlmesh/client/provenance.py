"""Offline verification of the mesh's provenance attestations: no mlmesh server, no gRPC.

    from mlmesh.client import provenance
    report = provenance.verify_file("model.intoto.jsonl", public_key_pem=open("mesh.pub.pem").read(),
                                    artifact="model.pt", rpc_url="http://127.0.0.1:8545")
    assert report.ok, report.failed()

What is checked, each as a named check in the report:
* every line is a DSSE envelope whose signature verifies with the given public key over DSSE's
  pre-authentication encoding (ECDSA P-256 / SHA-256; needs the `cryptography` package:
  `pip install "mlmesh-client[provenance]"`), and whose payload is an in-toto Statement v1 with an
  SLSA Provenance v1 predicate, or with mlmesh's reproduction predicate, whose verdict must agree
  with its digests (IDENTICAL: the reproduced digest is the subject's; DIFFERENT: it is not, and
  outputs were compared on at least one row);
* the artifact's SHA-256 (read once, streamed) is the subject digest of one statement;
* given any EVM JSON-RPC endpoint, each statement's ledger anchor: the contract named in its
  `ledger-anchor` byproduct is read with `eth_call` and the hashes it holds must equal the
  statement's subject digests (for a model, also the recipe/dataset the statement names).
The standard library does the rest (urllib for JSON-RPC, a small ABI decoder below).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
REPRODUCTION_PREDICATE = "https://mlmesh.dev/attestations/reproduction/v1"
# keccak256(signature)[:4] of the anchoring contracts' read functions (contracts/*.sol);
# tests/unit/test_provenance_offline.py recomputes them.
SELECTORS = {"get_model_params()": "f44c4c75", "get_dataset_params()": "8bf62d6a",
             "get_translation_params()": "2894f211"}
# Return types of those functions, in order (a Solidity struct is one dynamic tuple).
RETURNS = {
    "get_model_params()": ("string",) * 8 + ("bool",),
    "get_dataset_params()": ("string", "string", "string", "int256", "string", "string"),
    "get_translation_params()": (("string", "string", "address", "string", "string", "string", "string", "uint256",
                                  "string", "string", "string", "string", "bool"),),
}


class VerificationError(Exception):
    """An attestation file that cannot be read at all (not JSON lines, no cryptography package)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    statements: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding (what the signature covers)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _public_key(pem: str | bytes):
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - depends on the installation
        raise VerificationError('verifying signatures needs the cryptography package: '
                                'pip install "mlmesh-client[provenance]"') from None
    return serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)


def _signature_ok(key, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def read_envelopes(path: str | os.PathLike) -> list[dict]:
    """The DSSE envelopes of a .intoto.jsonl file (one JSON object per non-empty line)."""
    envelopes = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise VerificationError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise VerificationError(f"{path}:{number}: not a DSSE envelope (a JSON object)")
        envelopes.append(value)
    return envelopes


def sha256_file(path: str | os.PathLike, chunk: int = 8 << 20) -> str:
    """SHA-256 of a file, read once in large chunks."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_envelopes(envelopes: list[dict], public_key_pem: str | bytes, report: Report | None = None) -> Report:
    """Checks each envelope's signature and statement shape; collects the statements that verify."""
    report = report or Report()
    key = _public_key(public_key_pem)
    for i, env in enumerate(envelopes, start=1):
        where = f"envelope {i}"
        try:
            payload = base64.b64decode(env["payload"], validate=True)
            signatures = env["signatures"]
            payload_type = env["payloadType"]
        except (KeyError, TypeError, ValueError) as exc:
            report.add(f"{where}: DSSE envelope well-formed", False, f"{type(exc).__name__}: {exc}")
            continue
        if not report.add(f"{where}: payloadType is in-toto", payload_type == PAYLOAD_TYPE, str(payload_type)):
            continue
        good = False
        for sig in signatures if isinstance(signatures, list) else []:
            try:
                raw = base64.b64decode(sig["sig"], validate=True)
            except (KeyError, TypeError, ValueError):
                continue
            good = good or _signature_ok(key, raw, pae(payload_type, payload))
        if not report.add(f"{where}: DSSE signature verifies with the given key", good,
                          "" if good else "no signature of this key over this payload"):
            continue
        try:
            statement = json.loads(payload)
        except ValueError as exc:
            report.add(f"{where}: payload is JSON", False, str(exc))
            continue
        shape = (isinstance(statement, dict) and statement.get("_type") == STATEMENT_TYPE
                 and statement.get("predicateType") in (SLSA_PROVENANCE, REPRODUCTION_PREDICATE)
                 and isinstance(statement.get("predicate"), dict) and isinstance(statement.get("subject"), list)
                 and bool(statement["subject"])
                 and all(isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get("sha256")
                         for s in statement["subject"]))
        if not report.add(f"{where}: in-toto Statement v1 with an SLSA Provenance v1 or mlmesh reproduction "
                          "predicate", shape):
            continue
        if statement["predicateType"] == REPRODUCTION_PREDICATE:
            ok, detail = reproduction_consistent(statement)
            if not report.add(f"{where}: reproduction verdict agrees with its digests", ok, detail):
                continue
        report.statements.append(statement)
    return report


def reproduction_consistent(statement: dict) -> tuple[bool, str]:
    """Whether a reproduction statement's verdict agrees with what it states (signature aside): the
    original is the subject; IDENTICAL means the reproduced bytes are the subject's and no output
    difference; DIFFERENT means other bytes, compared on some rows with a finite difference."""
    p = statement["predicate"]
    try:
        subject = statement["subject"][0]["digest"]["sha256"]
        original = p["original"]["digest"]["sha256"]
        reproduced = p["reproduced"]["digest"]["sha256"]
        verdict = p["verdict"]
        diff = float(p["comparison"]["maxAbsDiff"])
        rows = int(p["comparison"]["comparedSamples"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return False, f"malformed reproduction predicate ({type(exc).__name__}: {exc})"
    if original != subject:
        return False, f"original {original} is not the subject {subject}"
    if verdict == "IDENTICAL":
        ok = reproduced == subject and diff == 0.0
        return ok, "" if ok else f"IDENTICAL but reproduced {reproduced}, max difference {diff!r}"
    if verdict == "DIFFERENT":
        ok = reproduced != subject and rows > 0 and 0.0 <= diff < float("inf")
        return ok, "" if ok else f"DIFFERENT but reproduced {reproduced}, {rows} rows compared, max difference {diff!r}"
    return False, f"verdict {verdict!r} is neither IDENTICAL nor DIFFERENT"


def subject_digests(statement: dict) -> list[dict]:
    return [s["digest"] for s in statement.get("subject", [])]


def anchor_of(statement: dict) -> dict:
    if statement.get("predicateType") == REPRODUCTION_PREDICATE:  # the original model's anchor
        return statement.get("predicate", {}).get("original", {}).get("ledger", {})
    for product in statement.get("predicate", {}).get("runDetails", {}).get("byproducts", []):
        if product.get("name") == "ledger-anchor":
            return product.get("annotations", {})
    return {}


# -- reading the ledger with eth_call ---------------------------------------------------------------


def _word(data: bytes, offset: int) -> int:
    if offset + 32 > len(data):
        raise ValueError("ABI data ends early")
    return int.from_bytes(data[offset:offset + 32], "big")


def _decode(types, data: bytes, base: int = 0) -> list:
    """ABI-decodes a tuple of `types` (string, bool, address, uint256, int256, or a nested tuple) laid
    out at `base`."""
    values = []
    for i, kind in enumerate(types):
        head = base + 32 * i
        if isinstance(kind, tuple):
            values.append(_decode(kind, data, base + _word(data, head)))
        elif kind == "string":
            start = base + _word(data, head)
            length = _word(data, start)
            if start + 32 + length > len(data):
                raise ValueError("ABI string runs past the data")
            values.append(data[start + 32:start + 32 + length].decode())
        elif kind == "bool":
            values.append(bool(_word(data, head)))
        elif kind == "address":
            values.append("0x" + data[head + 12:head + 32].hex())
        elif kind == "int256":
            value = _word(data, head)
            values.append(value - (1 << 256) if value >> 255 else value)
        else:
            values.append(_word(data, head))
    return values


def eth_call(rpc_url: str, address: str, function: str, *, timeout: float = 30.0) -> list:
    """Calls a read function of a contract through any EVM JSON-RPC endpoint; the decoded values."""
    if function not in SELECTORS:
        raise ValueError(f"unknown anchor function {function!r}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                       "params": [{"to": address, "data": "0x" + SELECTORS[function]}, "latest"]}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's endpoint
        answer = json.load(response)
    if "error" in answer:
        raise ValueError(f"eth_call failed: {answer['error']}")
    raw = bytes.fromhex(answer.get("result", "0x")[2:])
    if not raw:
        raise ValueError(f"no contract at {address} (empty eth_call result)")
    return _decode(RETURNS[function], raw)


def chain_id(rpc_url: str, *, timeout: float = 30.0) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return int(json.load(response)["result"], 16)


def anchored_digests(function: str, values: list) -> dict[str, str]:
    """The result hashes a contract anchors, by algorithm."""
    if function == "get_model_params()":
        return {"md5": values[6], "sha256": values[7]}
    if function == "get_dataset_params()":
        return {"md5": values[4], "sha256": values[5]}
    params = values[0]
    return {"md5": params[4], "sha256": params[5]}


def verify_anchors(report: Report, rpc_url: str) -> Report:
    """Reads each statement's anchoring contract and compares its hashes with the subject's."""
    try:
        node_chain = chain_id(rpc_url)
    except (OSError, ValueError, KeyError) as exc:
        report.add(f"ledger reachable at {rpc_url}", False, str(exc))
        return report
    for i, statement in enumerate(report.statements, start=1):
        anchor = anchor_of(statement)
        name = statement["subject"][0].get("name", f"statement {i}")
        if not anchor.get("contractAddress") or anchor.get("function") not in SELECTORS:
            report.add(f"{name}: ledger anchor named", False, "the statement names no anchoring contract")
            continue
        report.add(f"{name}: anchor chain id = the endpoint's chain id", anchor.get("chainId") == node_chain,
                   f"{anchor.get('chainId')} != {node_chain}")
        try:
            values = eth_call(rpc_url, anchor["contractAddress"], anchor["function"])
        except (OSError, ValueError) as exc:
            report.add(f"{name}: anchoring contract readable", False, str(exc))
            continue
        on_chain = anchored_digests(anchor["function"], values)
        digest = statement["subject"][0]["digest"]
        for algorithm in ("sha256", "md5"):
            if algorithm in digest:
                report.add(f"{name}: subject {algorithm} = chain {algorithm}", digest[algorithm] == on_chain[algorithm],
                           f"{digest[algorithm]} != {on_chain[algorithm]}")
    return report


def verify_file(path: str | os.PathLike, *, public_key_pem: str | bytes, artifact: str | os.PathLike | None = None,
                rpc_url: str | None = None) -> Report:
    """Everything above for one .intoto.jsonl file: signatures, the artifact's digest, the anchors."""
    report = verify_envelopes(read_envelopes(path), public_key_pem)
    if artifact is not None:
        digest = sha256_file(artifact)
        named = [s for s in report.statements if any(d.get("sha256") == digest for d in subject_digests(s))]
        report.add(f"{Path(artifact).name}: sha256 {digest[:16]}… is the subject of a verified statement",
                   bool(named), "" if named else "no verified statement has this artifact as its subject")
    if rpc_url:
        verify_anchors(report, rpc_url)
    return report
