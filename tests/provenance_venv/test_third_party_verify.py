"""The mesh's exported attestations as a third party checks them, with the in-toto project's own
libraries only: securesystemslib's DSSE envelope verification and in-toto-attestation's Statement v1
validation. The key id is computed here from the published public key (SHA-256 of its DER
SubjectPublicKeyInfo, as docs/provenance.md says), not read from the envelopes."""

import base64
import copy
import hashlib
import json

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


def test_every_envelope_verifies_and_holds_a_valid_slsa_statement(envelopes, public_key_pem):
    key = _key(public_key_pem)
    for raw in envelopes:
        envelope = Envelope.from_dict(copy.deepcopy(raw))
        accepted = envelope.verify([key], 1)
        assert list(accepted) == [key.keyid]
        statement = _statement(envelope)
        assert statement.pb.predicate_type == "https://slsa.dev/provenance/v1"
        predicate = json_format.MessageToDict(statement.pb.predicate)
        assert predicate["buildDefinition"]["resolvedDependencies"]
        assert predicate["runDetails"]["builder"]["id"].startswith("https://mlmesh.dev/builders/")


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
