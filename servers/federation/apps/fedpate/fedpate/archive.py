"""The seed's image data as the federated apps read it, in plain numpy (no PyTorch, no TensorFlow):
FedPATE and FLARE (PyTorch) and TFF (TensorFlow, another virtualenv) all read it from here, so a
client's data commitment is the same whichever framework trains on it.

The CIFAR-10 python archive format (`cifar-10-python.tar.gz`): pickled dicts in members named
`data_batch_<n>` (in the order of n), each with b'data' (uint8, images x 3072: the red, green then
blue 32x32 planes) and b'labels'. The test batch is not read: a job's held-out rows come from the
training batches like any dataset's. The pickles are read by an unpickler that admits arrays and
plain containers only: a dataset never runs code.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"


def is_archive(path: str | Path) -> bool:
    """Whether `path` is gzip-compressed (an image archive) rather than a CSV file."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


class ArchiveRows(Sequence):
    """An image archive's rows as the CSV lines they would be (pixels, then the label), made on
    demand: a data commitment hashes them like a CSV shard without holding 50,000 lines of text."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray):
        self.pixels, self.labels = pixels, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):  # noqa: ANN001 - Sequence's signature
        return ",".join(map(str, self.pixels[i].tolist())) + f",{int(self.labels[i])}"


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a dataset's pickle never runs code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}  # protocol-2 pickles (the CIFAR-10 files') rebuild bytes with it

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) not in self.ALLOWED:
            raise ValueError(f"the archive's pickle refers to {module}.{name}; only arrays, lists and dicts are read")
        if module.startswith("numpy._core.") and importlib.util.find_spec("numpy._core") is None:
            module = "numpy.core." + module.removeprefix("numpy._core.")  # a numpy 2 pickle read by numpy 1 (TFF's)
        return super().find_class(module, name)


def _load(raw, name: str):  # noqa: ANN001 - a tar member's file object
    try:
        return _ArraysOnly(raw, encoding="bytes").load()
    except ValueError:
        raise
    except (pickle.UnpicklingError, EOFError, ImportError, AttributeError, TypeError, IndexError) as exc:
        raise ValueError(f"{name}: not a readable pickle of the CIFAR-10 python format ({exc})") from None


@dataclass(frozen=True)
class Archive:
    header: list[str]  # p0 .. p<n-1>, target: the CSV the rows would be
    lines: ArchiveRows
    pixels: np.ndarray  # uint8, images x pixels
    labels: np.ndarray  # int64 classes 0..K-1


def read_cifar_archive(path: str | Path) -> Archive:
    """The archive at `path`; ValueError saying what is wrong."""
    try:
        return _read(path)
    except (tarfile.TarError, EOFError, OSError) as exc:  # not a tar, truncated, corrupt gzip
        raise ValueError(f"the dataset is gzip-compressed but not a readable CIFAR-10 python archive ({exc})") from None


def _read(path: str | Path) -> Archive:
    pixels, labels = [], []
    with tarfile.open(path, "r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and re.fullmatch(r"data_batch_\d+",
                                                                                   Path(m.name).name)]
        if not members:
            raise ValueError("the archive has no data_batch_<n> member (the CIFAR-10 python format)")
        for member in sorted(members, key=lambda m: int(Path(m.name).name.rsplit("_", 1)[1])):
            raw = archive.extractfile(member)
            assert raw is not None
            batch = _load(raw, member.name)
            if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
                raise ValueError(f"{member.name}: a dict with b'data' and b'labels' is needed")
            data, batch_labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[0] != len(batch_labels):
                raise ValueError(f"{member.name}: b'data' must be uint8 images x pixels with one label each, got "
                                 f"{data.dtype} {data.shape} for {len(batch_labels)} labels")
            pixels.append(data)
            labels.append(batch_labels)
    features = np.concatenate(pixels)
    y = np.concatenate(labels)
    if len({p.shape[1] for p in pixels}) != 1 or y.min() < 0:
        raise ValueError("every batch must have the same number of pixels and labels 0, 1, 2, ...")
    header = [f"p{i}" for i in range(features.shape[1])] + ["target"]
    return Archive(header=header, lines=ArchiveRows(features, y), pixels=features, labels=y)


def image_shape(features: int) -> tuple[int, int]:
    """(channels, side) of an image flattened to `features` values (colour first), or (0, 0)."""
    for channels in (3, 1):
        side = math.isqrt(features // channels)
        if features % channels == 0 and side * side * channels == features and side >= 4:
            return channels, side
    return 0, 0


def is_colour_image(features: int) -> bool:
    """Whether `features` values are a colour image (3*s*s, such as a CIFAR-10 archive's 3072): the
    apps' "auto" model is then the seed's CNN, else an MLP."""
    return image_shape(features)[0] == 3
