"""TFF DP-FedAvg pieces that need no TensorFlow: the privacy the server reports for a TFF job (per
round and final, our accountant), and the app's data split (servers/federation/apps/tff/data.py,
plain numpy: Dirichlet shares per class, n_samples per client at most, commitments)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from servers.federation.domain import privacy, specs
from servers.federation.domain.records import FederatedData, JobRequest, TffSpec
from servers.federation.domain.service import FederationCore, _privacy_so_far

APP_DATA = Path(__file__).resolve().parents[2] / "servers" / "federation" / "apps" / "tff" / "data.py"


def tff_data():
    """The app's data module, loaded from its file (the app is not a package of the mesh)."""
    if "tff_app_data" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tff_app_data", APP_DATA)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules["tff_app_data"]


def request(**spec) -> JobRequest:
    values = dict(imb_parameter=0.5, dp_parameter=1.1, n_clients=10, n_samples=100, num_rounds=20,
                  clients_per_round=3)
    values.update(spec)
    return specs.check_request(JobRequest(spec=TffSpec(**values),
                                          data=FederatedData(dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947")))


def test_a_tff_job_reports_subsampled_gaussian_rdp_for_its_rounds() -> None:
    job = request()
    final = FederationCore.final_privacy(job)
    expected = privacy.dp_fedavg(1.1, 0.3, 20, delta=1e-5)
    assert final == expected and final.formal_guarantee and final.compositions == 20
    assert final.mechanism == "poisson-subsampled gaussian (DP-FedAvg)"
    # Per round: the rounds done so far, never more than the spec's
    assert _privacy_so_far(job, 0, 5) == privacy.dp_fedavg(1.1, 0.3, 5, delta=1e-5)
    assert _privacy_so_far(job, 0, 500) == final
    assert _privacy_so_far(job, 0, 5).epsilon < final.epsilon


def test_full_participation_is_the_plain_gaussian_and_no_noise_no_guarantee() -> None:
    full = FederationCore.final_privacy(request(n_clients=2, clients_per_round=0, num_rounds=1, dp_parameter=1.0))
    assert full.mechanism == "gaussian" and full.parameters["sampling_rate"] == "1"
    # One Gaussian of noise multiplier 1 at delta 1e-5: its exact epsilon (Balle and Wang 2018) is
    # about 4.4; RDP's conversion is an upper bound of it and not far above.
    assert 4.3 < full.epsilon < 5.5
    none = FederationCore.final_privacy(request(dp_parameter=0.0))
    assert not none.formal_guarantee and none.epsilon == float("inf") and "dp_parameter" in none.explanation


def test_the_dirichlet_split_caps_each_client_at_n_samples_and_commits_to_its_rows(tmp_path) -> None:
    data = tff_data()
    rng = np.random.default_rng(1)
    lines = ["f0,f1,label"] + [f"{rng.normal():.3f},{rng.normal():.3f},{i % 4}" for i in range(400)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    table = data.load(tmp_path / "d.csv", "label")
    test, train = data.holdout(len(table.labels), 0.25, seed=4)
    assert len(test) == 100 and len(set(test) | set(train)) == 400
    shards = data.dirichlet_split(train, table.labels, 5, 0.3, 40, seed=4)
    assert len(shards) == 5 and all(0 < len(s) <= 40 for s in shards)
    assert not set(np.concatenate(shards)) & set(test)  # no client holds a held-out row
    assert [s.tolist() for s in shards] == [s.tolist() for s in data.dirichlet_split(train, table.labels, 5, 0.3, 40,
                                                                                    seed=4)]
    # Small alpha: clients are skewed towards a few classes; a large one is close to IID
    skew = lambda alpha: np.mean([np.bincount(table.labels[s], minlength=4).max() / len(s)  # noqa: E731
                                  for s in data.dirichlet_split(train, table.labels, 5, alpha, 1000, seed=4)])
    assert skew(0.1) > skew(1000.0) + 0.2
    # The commitment is the SHA-256 of the client's rows written out as a CSV file
    sha, count = data.commitment(table, shards[0])
    text = "f0,f1,label\n" + "".join(lines[1 + int(r)] + "\n" for r in shards[0])
    assert (sha, count) == (hashlib.sha256(text.encode()).hexdigest(), len(shards[0]))


@pytest.mark.parametrize("csv, target, message", [
    ("a,b\n1,2\n", "label", "target_label 'label' is not a column"),
    ("a,label\n1,x\n", "label", "must be a number"),
    ("a,label\n1,0.5\n", "label", "class numbers"),
    ("a,label\n", "label", "at least one row"),
])
def test_the_app_says_what_is_wrong_with_the_data(tmp_path, csv, target, message) -> None:
    (tmp_path / "d.csv").write_text(csv)
    with pytest.raises(ValueError, match=message):
        tff_data().load(tmp_path / "d.csv", target)


def test_the_tff_launch_runs_the_app_in_its_own_network_namespace_unless_told_otherwise(tmp_path) -> None:
    from servers.federation.adapters import tff

    python = tmp_path / "python"
    assert "make tff-venv" in tff.unavailable(python)  # no environment: refused, saying how to make it
    python.touch()
    plain = tff.launch(python, tmp_path / "job", "none")
    assert plain.argv == [str(python), str(tff.APP), str(tmp_path / "job" / "job.json")]
    command, why_not = tff._unshare()
    if why_not:  # where namespaces are not permitted, netns jobs are refused with the way out
        assert "MLMESH_FEDERATION_TFF_ISOLATION=none" in tff.unavailable(python, "netns")
        assert tff.unavailable(python, "none") == ""
    else:
        assert tff.unavailable(python, "netns") == ""
        assert tff.launch(python, tmp_path / "job").argv == [command, "--net", "--", *plain.argv]
