"""Real-mode FedPATE's rules without a server: teachers_per_node's checks, the SuperLink's port from
the operator's range (taken ports skipped, a useless address named), and the privacy report's
unit with several teachers per node. The whole path runs in
tests/integration/test_federation_flower_real.py."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from servers.common import errors
from servers.federation.domain import specs
from servers.federation.domain.jobs import Limits
from servers.federation.domain.records import FederatedData, FedPateSpec, JobRequest, Mode, Noise, Partition
from servers.federation.domain.service import (
    CoreOptions,
    FederationCore,
    FlowerReal,
    StepFailed,
    supernode_command,
)

SPEC = FedPateSpec(num_teachers=4, teacher_epochs=1, student_epochs=1, batch_size=16, noise=Noise.GAUSSIAN,
                   sigma=2.0, num_queries=40, noise_data=20)
DATA = FederatedData(dataset_id="6f1b7a52-3c1e-4d2a-9a9e-0c2f4b1d8e7a")


def request(mode: Mode = Mode.REAL, data: FederatedData = DATA, **spec) -> JobRequest:
    return JobRequest(spec=dataclasses.replace(SPEC, **spec), data=data, mode=mode)


def core(real: FlowerReal) -> FederationCore:
    return FederationCore(None, None, None, None, CoreOptions(work_root=Path("/nonexistent"),  # type: ignore[arg-type]
                                                              limits=Limits(1, 1, 1, 1), flower_real=real))


@pytest.mark.parametrize(("changes", "mode", "field", "text"), [
    ({"teachers_per_node": 0}, Mode.SIMULATION, "fedpate.teachers_per_node", "between 1 and num_teachers (4)"),
    ({"teachers_per_node": 5}, Mode.SIMULATION, "fedpate.teachers_per_node", "got 5"),
    ({"teachers_per_node": 3}, Mode.REAL, "fedpate.teachers_per_node", "must divide num_teachers (4)"),
    ({"num_teachers": 65}, Mode.SIMULATION, "fedpate.num_teachers", "65 SuperNodes"),
    ({"num_teachers": 10_001, "teachers_per_node": 500}, Mode.SIMULATION, "fedpate.num_teachers", "10000"),
])
def test_teachers_per_node_is_checked_naming_the_field(changes, mode, field, text) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        specs.check_request(request(mode, **changes))
    assert info.value.metadata["field"] == field and text in info.value.message, info.value.message


def test_teachers_per_node_defaults_to_one_and_may_leave_a_smaller_last_node_in_simulation() -> None:
    assert specs.check_request(request(Mode.SIMULATION)).spec.teachers_per_node == 1
    assert specs.check_request(request(Mode.SIMULATION, teachers_per_node=3)).spec.teachers_per_node == 3
    assert specs.check_request(request(Mode.REAL, teachers_per_node=2)).spec.teachers_per_node == 2
    assert specs.check_request(request(Mode.REAL, num_teachers=200, teachers_per_node=40)).spec.num_teachers == 200


def test_real_mode_partitions_nothing() -> None:
    dirichlet = dataclasses.replace(DATA, partition=Partition.DIRICHLET, dirichlet_alpha=0.5)
    with pytest.raises(errors.InvalidArgument) as info:
        specs.check_request(request(Mode.REAL, data=dirichlet))
    assert info.value.metadata["field"] == "data.partition"
    specs.check_request(request(Mode.SIMULATION, data=dirichlet))  # simulation splits by it


def test_the_superlink_port_is_the_first_free_one_of_the_range_and_kept_per_job() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        c = core(FlowerReal(port_min=port, port_max=port + 3))
        first, second = c._superlink_port("a"), c._superlink_port("b")
        assert port < first < second <= port + 3  # the bound port is skipped, then the first job's
        assert c._superlink_ports == {"a": first, "b": second}


def test_no_free_port_names_the_settings_and_the_cause() -> None:
    c = core(FlowerReal(host="192.0.2.250", port_min=9200, port_max=9201))  # an address this machine lacks
    with pytest.raises(StepFailed) as info:
        c._superlink_port("a")
    assert "flower_real_host" in str(info.value) and "binding port 9201" in str(info.value)


def test_several_teachers_per_node_is_reported_teacher_level() -> None:
    one = FederationCore.final_privacy(specs.check_request(request(teachers_per_node=1)))
    two = FederationCore.final_privacy(specs.check_request(request(teachers_per_node=2)))
    assert one.explanation.startswith("client-level") and "teachers_per_node" not in one.parameters
    assert two.explanation.startswith("teacher-level") and two.parameters["teachers_per_node"] == "2"
    assert two.epsilon == one.epsilon  # the same computation; only its unit differs


def test_the_supernode_command_parses_as_the_sites_will_run_it() -> None:
    import shlex

    argv = shlex.split(supernode_command("superlink.example:9200", 2))
    assert argv[:5] == ["flower-supernode", "--superlink", "superlink.example:9200", "--root-certificates", "ca.pem"]
    assert argv[5:] == ["--node-config", 'data-path="<your CSV>" client-id="<your name>" num-teachers=2']


KEY = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ= site-a"
OTHER = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= site-b"


@pytest.mark.parametrize(("mode", "keys", "text"), [
    (Mode.SIMULATION, (KEY, OTHER), "only for MODE_REAL"),
    (Mode.REAL, (KEY,), "2 wanted"),
    (Mode.REAL, (KEY, "ssh-ed25519 AAAAC3Nza site-b"), "[1] is not an OpenSSH NIST EC public key"),
    (Mode.REAL, (KEY, KEY.replace("site-a", "site-b")), "its own key"),
    (Mode.REAL, (KEY, OTHER + "\nssh-rsa AAAA"), "[1] is not"),
])
def test_supernode_public_keys_are_one_nist_ec_key_per_supernode_in_real_mode(mode, keys, text) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        specs.check_request(request(mode, teachers_per_node=2, supernode_public_keys=keys))
    assert info.value.metadata["field"] == "fedpate.supernode_public_keys" and text in info.value.message


def test_with_keys_the_supernode_command_names_the_private_key() -> None:
    import shlex

    checked = specs.check_request(request(Mode.REAL, teachers_per_node=2, supernode_public_keys=(KEY, OTHER)))
    assert checked.spec.supernode_public_keys == (KEY, OTHER)
    argv = shlex.split(supernode_command("127.0.0.1:9200", 2, auth=True))
    assert argv[argv.index("--auth-supernode-private-key") + 1] == "<your-private-key-file>"
