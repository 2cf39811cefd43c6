"""The mesh certificate generator (servers/common/tls.py), the TLS settings and Envoy's upstream TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from servers.common import tls
from servers.common.settings import TlsSettings


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_leaf_names_its_component_every_way_and_is_signed_by_the_ca(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path, ["registry"])

    cert, ca = _cert(certs.cert_file("registry")), _cert(certs.ca_file)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "registry"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://mlmesh/registry"]
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["localhost", "mlmesh-registry"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    cert.verify_directly_issued_by(ca)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3600)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_every_file_is_private_and_no_temporary_is_left(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path / "mtls", tls.COMPONENTS)

    names = sorted(p.name for p in certs.dir.iterdir())
    expected = {"ca.pem", "ca-key.pem", *(f"{c}.pem" for c in tls.COMPONENTS), *(f"{c}-key.pem" for c in tls.COMPONENTS)}
    assert set(names) == expected
    for path in certs.dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(certs.dir.stat().st_mode) == 0o700


def test_a_second_call_reuses_everything(tmp_path):
    first = tls.ensure_mesh_certs(tmp_path, ["envoy", "ledger"])
    before = {p.name: p.read_bytes() for p in first.dir.iterdir()}

    tls.ensure_mesh_certs(tmp_path, ["envoy", "ledger"])

    assert {p.name: p.read_bytes() for p in first.dir.iterdir()} == before


def test_a_new_component_joins_the_existing_ca(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path, ["envoy"])
    ca = certs.ca_file.read_bytes()

    tls.ensure_mesh_certs(tmp_path, ["envoy", "learner"])

    assert certs.ca_file.read_bytes() == ca
    _cert(certs.cert_file("learner")).verify_directly_issued_by(_cert(certs.ca_file))


def test_a_leaf_expiring_within_30_days_is_renewed_and_the_ca_kept(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path, ["trainer"])
    ca, old = certs.ca_file.read_bytes(), _cert(certs.cert_file("trainer"))

    # 340 days later the leaf (365 days) has 25 left: renew; the CA (10 years) stays.
    tls.ensure_mesh_certs(tmp_path, ["trainer"], now=dt.datetime.now(dt.UTC) + dt.timedelta(days=340))

    new = _cert(certs.cert_file("trainer"))
    assert certs.ca_file.read_bytes() == ca
    assert new.serial_number != old.serial_number
    assert new.not_valid_after_utc > old.not_valid_after_utc
    new.verify_directly_issued_by(_cert(certs.ca_file))


def test_a_leaf_with_more_than_30_days_left_is_kept(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path, ["trainer"])
    old = certs.cert_file("trainer").read_bytes()

    tls.ensure_mesh_certs(tmp_path, ["trainer"], now=dt.datetime.now(dt.UTC) + dt.timedelta(days=300))

    assert certs.cert_file("trainer").read_bytes() == old


def test_an_expiring_ca_is_renewed_with_every_leaf(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path, ["registry"])
    old_ca = _cert(certs.ca_file)
    later = old_ca.not_valid_after_utc - dt.timedelta(days=10)

    tls.ensure_mesh_certs(tmp_path, ["registry"], now=later)

    new_ca = _cert(certs.ca_file)
    assert new_ca.serial_number != old_ca.serial_number
    _cert(certs.cert_file("registry")).verify_directly_issued_by(new_ca)


def test_a_leaf_from_another_ca_or_a_damaged_file_is_replaced(tmp_path):
    certs = tls.ensure_mesh_certs(tmp_path / "a", ["ledger"])
    other = tls.ensure_mesh_certs(tmp_path / "b", ["ledger"])
    certs.cert_file("ledger").write_bytes(other.cert_file("ledger").read_bytes())
    certs.key_file("ledger").write_bytes(other.key_file("ledger").read_bytes())
    certs.key_file("ledger").chmod(0o644)

    tls.ensure_mesh_certs(tmp_path / "a", ["ledger"])
    _cert(certs.cert_file("ledger")).verify_directly_issued_by(_cert(certs.ca_file))

    certs.cert_file("ledger").write_text("not a certificate")
    tls.ensure_mesh_certs(tmp_path / "a", ["ledger"])
    _cert(certs.cert_file("ledger")).verify_directly_issued_by(_cert(certs.ca_file))
    assert stat.S_IMODE(certs.key_file("ledger").stat().st_mode) == 0o600


@pytest.mark.parametrize("bad", ["", "../x", "a b", "-x", "x" * 64])
def test_a_bad_component_name_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="component name"):
        tls.ensure_mesh_certs(tmp_path, [bad])


def test_tls_settings_are_all_or_nothing(tmp_path, monkeypatch):
    for name in ("CA_FILE", "CERT_FILE", "KEY_FILE"):
        monkeypatch.delenv(f"MLMESH_TLS_{name}", raising=False)
    assert not TlsSettings().enabled
    assert TlsSettings().files() is None
    with pytest.raises(ValidationError, match="missing cert_file, key_file"):
        TlsSettings(ca_file=tmp_path / "ca.pem")


def test_a_server_prefix_overrides_one_mesh_wide_tls_field(tmp_path, monkeypatch):
    from servers.ledger.settings import LedgerSettings

    monkeypatch.setenv("MLMESH_TLS_CA_FILE", "/mesh/ca.pem")
    monkeypatch.setenv("MLMESH_TLS_CERT_FILE", "/mesh/any.pem")
    monkeypatch.setenv("MLMESH_TLS_KEY_FILE", "/mesh/any-key.pem")
    monkeypatch.setenv("MLMESH_LEDGER_TLS__CERT_FILE", "/mesh/ledger.pem")

    s = LedgerSettings()

    assert (str(s.tls.ca_file), str(s.tls.cert_file), str(s.tls.key_file)) == (
        "/mesh/ca.pem", "/mesh/ledger.pem", "/mesh/any-key.pem")


def test_envoy_upstreams_are_mutual_tls_checking_the_servers_spiffe_id(tmp_path):
    from servers.devstack.envoy.render import UpstreamTls, render_envoy_config
    from servers.devstack.envoy.routes import MESH_ROUTES, upstreams_of

    upstreams = {name: ("127.0.0.1", 50000 + i) for i, name in enumerate(upstreams_of(MESH_ROUTES))}
    tls_files = UpstreamTls(ca_file=tmp_path / "ca.pem", cert_file=tmp_path / "envoy.pem",
                            key_file=tmp_path / "envoy-key.pem")

    config = render_envoy_config(upstreams=upstreams, routes=MESH_ROUTES, jwks={"keys": []}, upstream_tls=tls_files)
    plain = render_envoy_config(upstreams=upstreams, routes=MESH_ROUTES, jwks={"keys": []})

    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for name in upstreams:
        socket = clusters[f"upstream_{name}"]["transport_socket"]["typed_config"]
        common = socket["common_tls_context"]
        assert socket["sni"] == f"mlmesh-{name}"
        assert common["alpn_protocols"] == ["h2"]
        assert common["tls_certificates"] == [{"certificate_chain": {"filename": str(tmp_path / "envoy.pem")},
                                               "private_key": {"filename": str(tmp_path / "envoy-key.pem")}}]
        assert common["validation_context"]["trusted_ca"] == {"filename": str(tmp_path / "ca.pem")}
        assert common["validation_context"]["match_typed_subject_alt_names"] == [
            {"san_type": "URI", "matcher": {"exact": f"spiffe://mlmesh/{name}"}}]
    assert all("transport_socket" not in c for c in plain["static_resources"]["clusters"])
