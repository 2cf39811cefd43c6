"""The mesh's exported attestations as a third party checks them, with the in-toto project's own
libraries only: securesystemslib's DSSE envelope verification and in-toto-attestation's Statement v1
validation; and the model's OpenSSF model_signing signature with model_signing's own verifier. The key
id is computed here from the published public key (SHA-256 of its DER SubjectPublicKeyInfo, as
docs/provenance.md says), not read from the envelopes."""

import base64
import copy
import hashlib
import json

import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def _key(pem: bytes) -> SSlibKey:
    public = serialization.load_pem_public_key(pem)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SSlibKey.from_crypto(public, keyid=hashlib.sha256(der).hexdigest(), scheme="ecdsa-sha2-nistp256")


@pytest.fixture(scope="module")
def envelopes(attestations):
    lines = [line for line in attestations.read_text().splitlines() if line.strip()]
    assert lines, "the export holds no envelope"
    return [json.loads(line) for line in lines]


def _statement(envelope: Envelope) -> Statement:
    proto = json_format.Parse(envelope.payload, statement_pb2.Statement())
    statement = Statement.copy_from_pb(proto)
    statement.validate()
    return statement


SLSA = "https://slsa.dev/provenance/v1"
REPRODUCTION = "https://mlmesh.dev/attestations/reproduction/v1"


def test_every_envelope_verifies_and_holds_a_valid_statement(envelopes, public_key_pem):
    key = _key(public_key_pem)
    kinds = []
    for raw in envelopes:
        envelope = Envelope.from_dict(copy.deepcopy(raw))
        accepted = envelope.verify([key], 1)
        assert list(accepted) == [key.keyid]
        statement = _statement(envelope)
        kinds.append(statement.pb.predicate_type)
        predicate = json_format.MessageToDict(statement.pb.predicate)
        if statement.pb.predicate_type == SLSA:
            assert predicate["buildDefinition"]["resolvedDependencies"]
            assert predicate["runDetails"]["builder"]["id"].startswith("https://mlmesh.dev/builders/")
        else:
            assert statement.pb.predicate_type == REPRODUCTION
    assert SLSA in kinds and REPRODUCTION in kinds  # the export of a reproduced model holds both


def test_the_reproduction_names_the_artifact_its_inputs_and_its_verdict(envelopes, public_key_pem, artifact):
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    [statement] = [s for raw in envelopes
                   if (s := _statement(Envelope.from_dict(copy.deepcopy(raw)))).pb.predicate_type == REPRODUCTION]
    predicate = json_format.MessageToDict(statement.pb.predicate)
    assert statement.pb.subject[0].digest["sha256"] == digest == predicate["original"]["digest"]["sha256"]
    assert predicate["verdict"] == "IDENTICAL" and predicate["reproduced"]["digest"]["sha256"] == digest
    assert predicate["recipe"]["digest"]["sha256"] and predicate["datasets"][0]["digest"]["sha256"]
    assert predicate["original"]["ledger"]["contractAddress"].startswith("0x")


def test_an_edited_reproduction_verdict_fails_verification(envelopes, public_key_pem):
    [raw] = [copy.deepcopy(r) for r in envelopes if REPRODUCTION.encode() in base64.b64decode(r["payload"])]
    statement = json.loads(base64.b64decode(raw["payload"]))
    statement["predicate"]["verdict"] = "DIFFERENT"
    raw["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(raw).verify([_key(public_key_pem)], 1)


def _model_signing_verify(model, signature, public_key_pem: bytes, tmp_path) -> None:
    key = tmp_path / "key.pub.pem"
    key.write_bytes(public_key_pem)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key).verify(model, signature)


def test_model_signing_verifies_the_model_file(artifact, model_signature, public_key_pem, tmp_path):
    _model_signing_verify(artifact, model_signature, public_key_pem, tmp_path)  # raises if it does not verify


def test_model_signing_fails_on_a_flipped_byte(artifact, model_signature, public_key_pem, tmp_path):
    flipped = tmp_path / artifact.name
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="Signature mismatch"):
        _model_signing_verify(flipped, model_signature, public_key_pem, tmp_path)


def test_model_signing_fails_with_another_key(artifact, model_signature, tmp_path):
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError):
        _model_signing_verify(artifact, model_signature, other, tmp_path)


def test_the_downloaded_artifact_is_a_subject(envelopes, public_key_pem, artifact):
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    subjects = [s.digest["sha256"] for raw in envelopes for s in _statement(Envelope.from_dict(copy.deepcopy(raw))).pb.subject]
    assert digest in subjects


def test_a_flipped_byte_is_no_subject(envelopes, artifact):
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    digest = hashlib.sha256(bytes(data)).hexdigest()
    subjects = [s.digest["sha256"] for raw in envelopes for s in _statement(Envelope.from_dict(copy.deepcopy(raw))).pb.subject]
    assert digest not in subjects


def test_an_edited_predicate_fails_verification(envelopes, public_key_pem):
    raw = copy.deepcopy(envelopes[0])
    statement = json.loads(base64.b64decode(raw["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["modelId"] = "someone-else"
    raw["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(raw).verify([_key(public_key_pem)], 1)


def test_another_key_fails_verification(envelopes):
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(VerificationError):
        Envelope.from_dict(copy.deepcopy(envelopes[0])).verify([_key(other)], 1)
