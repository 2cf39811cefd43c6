"""The HTTP fronts' pure parts: the seed's multipart metadata and contract JSON (servers/registry/api/forms.py),
and how Envoy's config routes plain HTTP to a server's HTTP front (routes.HTTP_ROUTES)."""

from __future__ import annotations

import json

import pytest

from servers.common import errors
from servers.common.endpoints import HTTP_PORTS, PORTS
from servers.devstack.envoy.render import UpstreamTls, render_envoy_config
from servers.devstack.envoy.routes import HTTP_ROUTES, MESH_ROUTES, HttpRoute, http_upstream, upstreams_of
from servers.registry.api import forms
from servers.registry.domain.ports import DatasetContractFields, ModelContractFields

SEED_MODEL_METADATA = b"""{
    "model_params": {
      "developer_id": "dd8fca81-a999-40f5-81f0-68627e303a27",
      "organization_id": "5d066d58-06de-47ab-a2f6-c8f413e21947",
    },
    "data_params": {
      "dataset_id": "b2a30898-b72c-4b08-802b-7786425d01f9"
    }
  }"""


def test_the_seeds_model_metadata_parses_despite_its_trailing_comma():
    form = forms.parse_metadata(SEED_MODEL_METADATA, forms.ModelForm, forms.MODEL_EXAMPLE)
    create = forms.create_model_from_form(form, train_image="registry.example/img")
    assert create.organization_id == "5d066d58-06de-47ab-a2f6-c8f413e21947"
    assert create.developer_id == "dd8fca81-a999-40f5-81f0-68627e303a27"
    assert create.dataset_id == "b2a30898-b72c-4b08-802b-7786425d01f9"
    assert create.display_name == create.image_reference == "registry.example/img"


@pytest.mark.parametrize("text, expected", [
    ('{"a": [1, 2, ], }', {"a": [1, 2]}),
    ('{"a": ",}", "b": "x\\",]"}', {"a": ",}", "b": 'x",]'}),  # commas inside strings stay
    ('{"a": 1}', {"a": 1}),
])
def test_trailing_commas_only_are_tolerated(text, expected):
    assert json.loads(forms._strip_trailing_commas(text)) == expected


@pytest.mark.parametrize("raw, reason", [
    (b"{oops", "METADATA_NOT_JSON"),
    (b"[1, 2]", "METADATA_NOT_JSON"),
    (b"\xff\xfe", "METADATA_NOT_JSON"),
    (b'{"organization_id": 7}', "METADATA_INVALID"),
    (b'{"organisation_id": "x"}', "METADATA_INVALID"),
    (b'{"a": ,}', "METADATA_NOT_JSON"),  # a comma with nothing before it is still not JSON
])
def test_bad_dataset_metadata_is_invalid_argument(raw, reason):
    with pytest.raises(errors.InvalidArgument) as caught:
        forms.parse_metadata(raw, forms.DatasetForm, forms.DATASET_EXAMPLE)
    assert caught.value.reason == reason
    assert len(caught.value.message) < 500


def test_bad_metadata_message_does_not_echo_unbounded_input():
    with pytest.raises(errors.InvalidArgument) as caught:
        forms.parse_metadata(b'{"' + b"k" * 100_000 + b'": "v"}', forms.DatasetForm, forms.DATASET_EXAMPLE)
    assert len(caught.value.message) < 500


def test_dataset_without_a_name_takes_the_files():
    meta = forms.upload_metadata_from_form(forms.DatasetForm(samples_dimension="(1,32,32)"),
                                           filename="mnist-original.mat", content_type="application/octet-stream")
    assert (meta.display_name, meta.filename, meta.content_type) == (
        "mnist-original.mat", "mnist-original.mat", "application/octet-stream")
    named = forms.upload_metadata_from_form(forms.DatasetForm(display_name="digits", content_type="text/csv"),
                                            filename="d.csv", content_type="application/octet-stream")
    assert (named.display_name, named.content_type) == ("digits", "text/csv")


def test_contract_json_is_the_seeds():
    dataset = DatasetContractFields(contract_address="0x1", chain_id=1, dataset_id="d", organization_id="o",
                                    samples_dimension="(1,32,32)", size_bytes=55, md5="m" * 32, sha256="s" * 64,
                                    block_number=3)
    assert forms.dataset_contract_json(dataset) == {"organization_id": "o", "samples_dimension": "(1,32,32)",
                                                    "size_bytes": 55, "hash": "m" * 32}
    model = ModelContractFields(contract_address="0x2", chain_id=1, model_id="m", organization_id="o",
                                developer_id="dev", dataset_id="d", train_image_hash="t" * 32,
                                train_image_sha256="u" * 64, res_hash="r" * 32, res_sha256="q" * 64, verified=True,
                                block_number=4)
    assert forms.model_contract_json(model) == {
        "model_params": {"developer_id": "dev", "organization_id": "o", "train_image_hash": "t" * 32,
                         "res_hash": "r" * 32},
        "data_params": {"dataset_id": "d"}}


# -- Envoy ----------------------------------------------------------------------------------------

def _config(tls: UpstreamTls | None = None):
    upstreams = {name: ("127.0.0.1", PORTS[name].grpc) for name in upstreams_of(MESH_ROUTES)}
    upstreams.update({http_upstream(s): ("127.0.0.1", HTTP_PORTS[s]) for s in {r.server for r in HTTP_ROUTES}})
    config = render_envoy_config(upstreams=upstreams, routes=MESH_ROUTES, http_routes=HTTP_ROUTES,
                                 jwks={"keys": []}, upstream_tls=tls)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return config, hcm


def test_http_routes_come_first_untranscoded_and_only_for_their_methods():
    _, hcm = _config()
    table = hcm["route_config"]["virtual_hosts"][0]["routes"]
    http = table[:len(HTTP_ROUTES)]
    assert all("grpc" not in r["match"] for r in http) and all("grpc" in r["match"] for r in table[len(HTTP_ROUTES):])
    for route in http:
        assert route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
        assert route["match"]["headers"][0]["name"] == ":method"
    dataset = next(r for r in http if r["match"].get("path") == "/dataset")
    assert dataset["route"] == {"cluster": "upstream_registry-http", "timeout": "0s"}
    assert {"name": "content-type", "string_match": {"prefix": "multipart/form-data", "ignore_case": True}} in \
        dataset["match"]["headers"]


def test_http_front_clusters_are_http1_with_the_servers_identity(tmp_path):
    tls = UpstreamTls(tmp_path / "ca.pem", tmp_path / "envoy.pem", tmp_path / "envoy-key.pem")
    config, _ = _config(tls)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    front = clusters["upstream_registry-http"]
    options = front["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["explicit_http_config"] == {"http_protocol_options": {}}
    context = front["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["alpn_protocols"] == ["http/1.1"]
    assert context["validation_context"]["match_typed_subject_alt_names"][0]["matcher"] == {
        "exact": "spiffe://mlmesh/registry"}
    grpc_cluster = clusters["upstream_registry"]["transport_socket"]["typed_config"]["common_tls_context"]
    assert grpc_cluster["alpn_protocols"] == ["h2"]


def test_an_http_route_needs_its_upstream_and_one_matcher():
    with pytest.raises(ValueError, match="exactly one"):
        HttpRoute("registry", ("GET",), path="/a", prefix="/b")
    with pytest.raises(ValueError, match="no upstream"):
        render_envoy_config(upstreams={"registry": ("127.0.0.1", 1)}, jwks={"keys": []},
                            http_routes=(HttpRoute("registry", ("GET",), path="/x"),))


def test_hot_prediction_paths_are_access_logged_only_when_they_fail():
    import re

    from servers.devstack.envoy.render import QUIET_PATHS_REGEX

    _, hcm = _config()
    log_filter = hcm["access_log"][0]["filter"]["or_filter"]["filters"]
    assert log_filter[0]["header_filter"]["header"]["invert_match"] is True
    quiet = re.compile(QUIET_PATHS_REGEX)  # Envoy's safe_regex matches the whole path, as fullmatch does
    for path in ("/inference.GRPCInferenceService/ModelInfer", "/v2/models/m/infer", "/v2/health/ready", "/v2"):
        assert quiet.fullmatch(path), path
    for path in ("/v1/datasets", "/inference.GRPCInferenceService/ModelMetadata", "/dataset", "/v2x"):
        assert not quiet.fullmatch(path), path


def test_verified_tokens_are_cached():
    _, hcm = _config()
    jwt = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")["typed_config"]
    assert jwt["providers"]["mlmesh"]["jwt_cache_config"]["jwt_cache_size"] > 0
