"""FedPATE's data and models, shared by the ServerApp and the ClientApp (plain numpy and PyTorch).

The data is a CSV file with a header, numeric feature columns and an integer class column (the
`target-column`). In simulation every node reads the same file and takes its own part of it, chosen
by the run's `seed`: the server's public split (`server-fraction` of the rows) and the teachers'
private shards (the rest, IID or by a Dirichlet split over the labels). A node started with its own
`data-path` in its node config trains on that whole file instead (a client with its own data).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fedpate import archive

# The models are tiny and a node may run several ClientApp processes at once: intra-op threads only
# contend (measured: 40 teachers of a node took minutes with 2 threads each on a loaded 2-core box).
torch.set_num_threads(1)


@dataclass(frozen=True)
class Table:
    header: list[str]
    lines: Sequence[str]  # each row as it appears in the file (no line end)
    features: np.ndarray  # float32, rows x features
    labels: np.ndarray  # int64
    feature_columns: tuple[int, ...]  # indices of the feature columns in the file
    source: str = "csv"  # or "cifar-archive"


def read_cifar_archive(path: str | Path) -> Table:
    """The CIFAR-10 python archive format (`archive.py`) as a Table."""
    found = archive.read_cifar_archive(path)
    return Table(header=found.header, lines=found.lines, features=found.pixels.astype(np.float32),
                 labels=found.labels, feature_columns=tuple(range(found.pixels.shape[1])), source="cifar-archive")


def read_table(path: str | Path, target_column: str) -> Table:
    """A CSV with a header and a `target_column`, or a CIFAR-10 python archive (gzip: the label is
    the archive's own)."""
    if archive.is_archive(path):
        return read_cifar_archive(path)
    text = Path(path).read_text()
    raw_lines = [line for line in text.splitlines() if line.strip()]
    if len(raw_lines) < 2:
        raise ValueError(f"{path}: a CSV with a header and at least one row is needed")
    rows = list(csv.reader(io.StringIO("\n".join(raw_lines))))
    header = rows[0]
    if target_column not in header:
        raise ValueError(f"the target column {target_column!r} is not in the CSV's header ({', '.join(header[:20])})")
    target = header.index(target_column)
    feature_columns = tuple(i for i in range(len(header)) if i != target)
    try:
        values = np.array([[float(v) for v in row] for row in rows[1:]], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"every value of the CSV must be a number ({exc})") from None
    labels = values[:, target]
    if not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise ValueError(f"the target column {target_column!r} must hold class numbers 0, 1, 2, ...")
    return Table(header=header, lines=raw_lines[1:], features=values[:, feature_columns].astype(np.float32),
                 labels=labels.astype(np.int64), feature_columns=feature_columns)


def split(rows: int, server_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the server's public rows, the teachers' rows), a seeded permutation of all rows."""
    order = np.random.default_rng(seed).permutation(rows)
    server_rows = max(1, int(round(rows * server_fraction)))
    return order[:server_rows], order[server_rows:]


def partition(rows: np.ndarray, labels: np.ndarray, parts: int, how: str, alpha: float, seed: int
              ) -> list[np.ndarray]:
    """`rows` over `parts` teachers: IID (equal shares of a shuffle) or Dirichlet(alpha) per class.
    Every part gets at least one row (a Dirichlet draw that leaves one empty is drawn again)."""
    if len(rows) < parts:
        raise ValueError(f"{len(rows)} rows cannot be split over {parts} teachers")
    rng = np.random.default_rng(seed + 1)
    if how == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(rows), parts)]
    if how != "dirichlet" or not alpha > 0:
        raise ValueError(f"unknown partition {how!r} (iid, or dirichlet with dirichlet-alpha > 0)")
    for _attempt in range(100):
        shares: list[list[int]] = [[] for _ in range(parts)]
        for label in np.unique(labels[rows]):
            members = rng.permutation(rows[labels[rows] == label])
            cuts = (np.cumsum(rng.dirichlet([alpha] * parts)) * len(members)).astype(int)[:-1]
            for i, piece in enumerate(np.split(members, cuts)):
                shares[i].extend(piece.tolist())
        if all(shares):
            return [np.sort(np.array(s, dtype=np.int64)) for s in shares]
    raise ValueError(f"a Dirichlet split with alpha {alpha} left a teacher without data 100 times; raise alpha")


def commitment(table: Table, rows: np.ndarray) -> tuple[str, int]:
    """SHA-256 of the shard as a CSV file (the header, then its rows as they appear in the data,
    each ending in a newline) and its number of samples."""
    digest = hashlib.sha256((",".join(table.header) + "\n").encode())
    for row in rows:
        digest.update((table.lines[int(row)] + "\n").encode())
    return digest.hexdigest(), len(rows)


def standardisation(features: np.ndarray, pseudo_count: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean, and per-feature variance shrunk towards the variance pooled over all
    features with `pseudo_count` pseudo-samples: a teacher with a dozen rows gets nearly the pooled
    scale (a pixel that is almost always 0 in its shard would otherwise be blown up), one with
    thousands of rows its own per-feature scale."""
    n = len(features)
    mean = features.mean(axis=0)
    var = features.var(axis=0)
    shrunk = (n * var + pseudo_count * var.mean()) / (n + pseudo_count)
    return mean, np.sqrt(shrunk)


class Net(nn.Module):
    """Standardises its input with fixed statistics, then an MLP or, for square inputs, a small CNN."""

    def __init__(self, kind: str, features: int, classes: int, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))
        self.channels, self.side = archive.image_shape(features) if kind == "cnn" else (0, 0)
        if kind == "cnn":
            if not self.side:
                raise ValueError(f"net cnn needs an image: s*s (grey) or 3*s*s (colour) features, got {features}")
            # The seed's CNN (D3.4 Listing 1: 16 and 32 3x3 convolutions, each with ReLU and a 2x2
            # max-pool, then 1024 -> 512 -> classes), padded so that 8x8 digits fit too.
            flat = 32 * (self.side // 4) ** 2
            self.body = nn.Sequential(
                nn.Conv2d(self.channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(flat, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, classes))
        elif kind == "mlp":
            self.body = nn.Sequential(nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, classes))
        else:
            raise ValueError(f"unknown net {kind!r} (mlp, cnn)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.side:
            x = x.reshape(-1, self.channels, self.side, self.side)
        return self.body(x)


def net_kind(name: str, features: int = 0) -> str:
    """`name`, or for "" / "auto": the seed's CNN for colour images (3*s*s features, such as a
    CIFAR-10 archive's 3072), an MLP otherwise."""
    if name not in ("", "auto"):
        return name
    return "cnn" if archive.is_colour_image(features) else "mlp"


def make_net(name: str, features: np.ndarray, classes: int) -> Net:
    mean, std = standardisation(features)
    return Net(net_kind(name, features.shape[1]), features.shape[1], classes, mean, std)


def node_count(teachers: int, per_node: int) -> int:
    """How many nodes host `teachers` at `per_node` teachers each (the last may host fewer)."""
    if per_node < 1:
        raise ValueError(f"teachers-per-node must be >= 1, got {per_node}")
    return -(-teachers // per_node)


def teachers_of(part: int, parts: int, teachers: int) -> range:
    """The teachers node `part` of `parts` hosts: `teachers` dealt out as evenly as possible."""
    base, extra = divmod(teachers, parts)
    first = part * base + min(part, extra)
    return range(first, first + base + (1 if part < extra else 0))


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int
        ) -> tuple[float, float]:
    """Trains with Adam and cross-entropy; returns the last epoch's mean loss and accuracy."""
    generator = torch.Generator().manual_seed(seed)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    loss_sum, correct = 0.0, 0
    for _epoch in range(epochs):
        loss_sum, correct = 0.0, 0
        for batch in torch.randperm(len(xs), generator=generator).split(batch_size):
            optimizer.zero_grad()
            out = model(xs[batch])
            loss = loss_fn(out, ys[batch])
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(batch)
            correct += int((out.argmax(1) == ys[batch]).sum())
    return loss_sum / max(1, len(xs)), correct / max(1, len(xs))


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    model.eval()
    out = model(torch.from_numpy(x))
    return float(nn.functional.cross_entropy(out, torch.from_numpy(y))), float((out.argmax(1).numpy() == y).mean())


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(x)).argmax(1).numpy().astype(np.int64)


def vote_counts(votes: np.ndarray, classes: int) -> np.ndarray:
    """The vote histogram of each query (queries x classes) from `votes` (teachers x queries);
    votes outside 0..classes-1 are not counted."""
    counts = np.zeros((votes.shape[1], classes))
    for teacher in votes:
        ok = (teacher >= 0) & (teacher < classes)
        np.add.at(counts, (np.nonzero(ok)[0], teacher[ok]), 1)
    return counts


def noisy_argmax(votes: np.ndarray, classes: int, noise: str, epsilon: float, sigma: float,
                 rng: np.random.Generator) -> np.ndarray:
    """PATE's aggregation: per query, the class with the most teacher votes after noise is added
    to every count — Laplace of scale 1/epsilon (LNMax) or Gaussian of standard deviation sigma
    (GNMax). `votes` is teachers x queries; votes outside 0..classes-1 are not counted."""
    return noisy_argmax_counts(vote_counts(votes, classes), noise, epsilon, sigma, rng)


def noisy_argmax_counts(counts: np.ndarray, noise: str, epsilon: float, sigma: float,
                        rng: np.random.Generator) -> np.ndarray:
    """`noisy_argmax` on vote histograms (queries x classes)."""
    counts = np.array(counts, dtype=float)
    if noise == "laplacian":
        counts += rng.laplace(0.0, 1.0 / epsilon, counts.shape)
    elif noise == "gaussian":
        counts += rng.normal(0.0, sigma, counts.shape)
    elif noise != "none":
        raise ValueError(f"unknown noise {noise!r} (laplacian, gaussian)")
    return counts.argmax(1).astype(np.int64)


def noisy_threshold(counts: np.ndarray, threshold: float, sigma_threshold: float, rng: np.random.Generator
                    ) -> np.ndarray:
    """Confident-GNMax's first step (Papernot et al. 2018): a query is answered only when its top
    vote count plus N(0, sigma_threshold²) reaches `threshold` (the teachers agree enough)."""
    if not sigma_threshold > 0:
        raise ValueError(f"sigma-threshold must be > 0 with a threshold, got {sigma_threshold}")
    return counts.max(axis=1) + rng.normal(0.0, sigma_threshold, len(counts)) >= threshold


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.maximum((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :], 0.0)


def representatives(features: np.ndarray, k: int, seed: int, iterations: int = 30) -> np.ndarray:
    """Indices of up to `k` rows that represent `features`: k-means (seeded Lloyd's iterations from
    k random rows), then the row nearest each centre. Public rows only: choosing them costs no
    privacy; typical rows are the ones a teacher ensemble agrees on."""
    if k >= len(features):
        return np.arange(len(features))
    rng = np.random.default_rng(seed + 11)
    x = features.astype(np.float64)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iterations):
        nearest = _squared_distances(x, centres).argmin(1)
        for j in range(k):
            members = x[nearest == j]
            if len(members):
                centres[j] = members.mean(0)
    return np.unique(_squared_distances(x, centres).argmin(0))


def label_spreading(features: np.ndarray, labelled: np.ndarray, labels: np.ndarray, classes: int, *,
                    neighbours: int = 5, alpha: float = 0.9, iterations: int = 100) -> np.ndarray:
    """Label spreading (Zhou et al. 2004) over a symmetric k-nearest-neighbour graph of `features`
    (Gaussian weights, squared distances scaled by their median): each row's class scores after
    `iterations` of F <- alpha S F + (1 - alpha) Y, where `labels` are known at rows `labelled`.
    Rows x classes; a row the labels never reach scores 0 everywhere. Works on the public rows'
    features and the already released labels only: post-processing, no privacy cost."""
    n = len(features)
    distances = _squared_distances(features, features)
    np.fill_diagonal(distances, np.inf)
    k = min(neighbours, n - 1)
    if k < 1:
        raise ValueError("label spreading needs at least 2 rows")
    near = np.argpartition(distances, k - 1, axis=1)[:, :k]
    rows = np.arange(n)[:, None]
    scale = float(np.median(distances[rows, near])) or 1.0
    weights = np.zeros((n, n))
    weights[rows, near] = np.exp(-distances[rows, near] / scale)
    weights = np.maximum(weights, weights.T)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(weights.sum(1), 1e-12))
    s = weights * inv_sqrt[:, None] * inv_sqrt[None, :]
    y = np.zeros((n, classes))
    y[labelled, labels] = 1.0
    f = y.copy()
    for _ in range(iterations):
        f = alpha * (s @ f) + (1 - alpha) * y
    return f
