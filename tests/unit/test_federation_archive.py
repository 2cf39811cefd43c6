"""The federated apps' image-archive reader (servers/federation/apps/fedpate/fedpate/archive.py,
plain numpy, shared by FedPATE, FLARE and TFF): what it reads, and that anything else is a
ValueError naming the problem -- never another exception, and never code run from a pickle."""

from __future__ import annotations

import gzip
import io
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.federation import cifar_archive

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "servers" / "federation" / "apps" / "fedpate"))
from fedpate import archive  # noqa: E402


def test_the_archive_reads_as_the_csv_it_would_be(tmp_path) -> None:
    path = cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches=2, per_batch=5)
    found = archive.read_cifar_archive(path)
    assert archive.is_archive(path) and found.pixels.shape == (10, 3072) and found.pixels.dtype == np.uint8
    assert found.header[-1] == "target" and len(found.header) == 3073
    assert found.lines[3] == ",".join(str(v) for v in found.pixels[3]) + f",{found.labels[3]}"
    assert archive.is_colour_image(3072) and not archive.is_colour_image(64) and archive.image_shape(64) == (1, 8)


def member(tmp_path: Path, blob: bytes, name: str = "cifar-10-batches-py/data_batch_1") -> Path:
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    return path


def test_what_is_not_an_archive_is_a_value_error(tmp_path) -> None:
    whole = cifar_archive(tmp_path / "whole.tar.gz").read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    not_tar = tmp_path / "not-tar.gz"
    not_tar.write_bytes(gzip.compress(b"a,b,target\n1,2,0\n"))
    cases = {
        truncated: "not a readable CIFAR-10 python archive",
        not_tar: "not a readable CIFAR-10 python archive",
        member(tmp_path, b"\x80\x02garbage"): "not a readable pickle",
        member(tmp_path, pickle.dumps([1, 2])): "a dict with b'data' and b'labels'",
        member(tmp_path, pickle.dumps({b"data": np.zeros((2, 4), np.float32), b"labels": [0, 1]})): "must be uint8",
        member(tmp_path, pickle.dumps({b"data": 1}), name="x/test_batch"): "no data_batch_<n> member",
    }
    for path, reason in cases.items():
        with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace("[", r"\[")):
            archive.read_cifar_archive(path)


def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path) -> None:
    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(ValueError, match="only arrays, lists and dicts are read"):
        archive.read_cifar_archive(member(tmp_path, pickle.dumps({b"data": Hostile(), b"labels": [0]})))
    assert not marker.exists()
