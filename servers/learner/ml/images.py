"""Images for the smart agriculture use case (seed 2.1.3.2: an image in, the prediction drawn onto it):
decoding, the statistics the drift monitor compares, the annotated answer, and synthetic plant-leaf
images standing in for a field dataset (nothing can be downloaded here).

Model inputs are RGB, float32 in 0..1, shape (3, size, size) (channels first, as torch expects).

Monitoring statistics (`STAT_COLUMNS`), per image, computed on the model input (after resizing):
``mean_red``, ``mean_green``, ``mean_blue`` (channel means, 0..1), ``contrast`` (standard deviation of
the luminance 0.299 R + 0.587 G + 0.114 B) and ``excess_green`` (mean of 2G - R - B, a vegetation
index: high for a healthy leaf, lower when spots or soil take its place). A reference dataset for an
image learner is a CSV with exactly these header names (other columns are ignored); write one with
`write_reference_csv`, or from the command line:

    .venv-ml/bin/python -m servers.learner.ml.images --n 200 --size 64 --seed 0 --out-dir /tmp/leaves

(writes leaf_0000_healthy.png, ... and reference.csv with the statistics at `--model-size` 16).
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from servers.common.errors import InvalidArgument

ACCEPTED_FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; larger inputs are refused before decoding
STAT_COLUMNS = ["mean_red", "mean_green", "mean_blue", "contrast", "excess_green"]
LEAF_CLASSES = ["healthy", "diseased"]
# frame colours by class index (green, red, blue, orange, purple, ... then repeating)
PALETTE = [(46, 160, 67), (214, 39, 40), (31, 119, 180), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def decode(data: bytes, what: str) -> Image.Image:
    """The decoded image in RGB, EXIF orientation applied. `what` names the input in errors
    (e.g. "observation 3"). Raises InvalidArgument for anything but a readable PNG or JPEG."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise InvalidArgument(f"{what}: the image is empty; send the bytes of a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(bytes(data)), formats=ACCEPTED_FORMATS) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise InvalidArgument(f"{what}: the image is {w}x{h} pixels; at most {MAX_PIXELS} pixels "
                                      "are accepted, send a smaller image")
            img.load()
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise InvalidArgument(f"{what}: the bytes are not a PNG or JPEG image ({len(data)} bytes starting "
                              f"{bytes(data[:8])!r})") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise InvalidArgument(f"{what}: the image cannot be decoded ({e}); send a complete PNG or JPEG") from None


def to_array(img: Image.Image, size: int) -> np.ndarray:
    """A decoded RGB image resized to size x size, float32 (3, size, size) in 0..1."""
    small = img.resize((size, size), Image.Resampling.BILINEAR)
    return (np.asarray(small, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()


def image_stats(X: np.ndarray) -> np.ndarray:
    """`STAT_COLUMNS` of a batch of model inputs (n, 3, H, W): float64 (n, 5)."""
    X = np.asarray(X, dtype=np.float64)
    red, green, blue = X[:, 0], X[:, 1], X[:, 2]
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    n = len(X)
    return np.stack([
        red.reshape(n, -1).mean(axis=1),
        green.reshape(n, -1).mean(axis=1),
        blue.reshape(n, -1).mean(axis=1),
        luminance.reshape(n, -1).std(axis=1),
        (2 * green - red - blue).reshape(n, -1).mean(axis=1),
    ], axis=1)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def annotate(img: Image.Image, text: str, colour: tuple[int, int, int]) -> bytes:
    """The image at its own size with a coloured frame and `text` on a label in the top-left corner,
    as PNG bytes."""
    out = img.convert("RGB")  # a copy
    w, h = out.size
    draw = ImageDraw.Draw(out)
    frame = max(1, round(min(w, h) / 40))
    draw.rectangle([0, 0, w - 1, h - 1], outline=colour, width=frame)
    font = _font(max(8, min(w, h) // 14))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(1, (bottom - top) // 5)
    draw.rectangle([frame, frame, frame + right - left + 2 * pad, frame + bottom - top + 2 * pad], fill=colour)
    ink = (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150 else (255, 255, 255)
    draw.text((frame + pad - left, frame + pad - top), text, fill=ink, font=font)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], spread: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)


def _leaf(rng: np.random.Generator, size: int, diseased: bool) -> bytes:
    """One synthetic leaf photo: a rotated green ellipse with a midrib on noisy soil; a diseased leaf
    has brown and yellow lesions and a slightly yellower blade."""
    big = 2 * size  # drawn at twice the size, then downsampled (smooth edges)
    soil = np.array(_jitter(rng, (112, 82, 54), 18), dtype=np.float64)
    background = soil + rng.normal(0.0, 14.0, (big, big, 1)) + rng.normal(0.0, 6.0, (big, big, 3))
    canvas = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")

    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy = big / 2 + rng.uniform(-0.08, 0.08) * big, big / 2 + rng.uniform(-0.08, 0.08) * big
    a, b = rng.uniform(0.30, 0.42) * big, rng.uniform(0.15, 0.24) * big
    blade = _jitter(rng, (70, 150, 50), 22)
    if diseased:  # chlorosis: the blade turns a little yellow
        blade = (min(255, blade[0] + int(rng.integers(15, 45))), blade[1], max(0, blade[2] - 10))
    draw.ellipse([cx - a, cy - b, cx + a, cy + b], fill=(*blade, 255))
    vein = tuple(min(255, c + 45) for c in blade)
    draw.line([cx - 0.95 * a, cy, cx + 0.95 * a, cy], fill=(*vein, 255), width=max(1, big // 48))
    if diseased:
        for _ in range(int(rng.integers(3, 9))):
            # a point inside the ellipse (polar, area-uniform)
            r, phi = np.sqrt(rng.uniform(0.0, 0.7)), rng.uniform(0, 2 * np.pi)
            px, py = cx + r * a * np.cos(phi), cy + r * b * np.sin(phi)
            radius = rng.uniform(0.03, 0.08) * big
            lesion = _jitter(rng, (125, 72, 30) if rng.random() < 0.6 else (205, 185, 60), 15)
            halo = tuple(max(0, c - 35) for c in lesion)
            draw.ellipse([px - radius * 1.3, py - radius * 1.3, px + radius * 1.3, py + radius * 1.3],
                         fill=(*halo, 255))
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=(*lesion, 255))
    layer = layer.rotate(float(rng.uniform(0, 180)), resample=Image.Resampling.BICUBIC, center=(cx, cy))
    canvas.paste(layer, (0, 0), layer)
    pixels = np.asarray(canvas, dtype=np.float64) + rng.normal(0.0, 5.0, (big, big, 3))  # sensor noise
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    photo = photo.resize((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    return buf.getvalue()


def generate_leaf_images(n: int, size: int = 64, seed: int = 0) -> list[tuple[bytes, int]]:
    """`n` synthetic leaf photos (PNG bytes, size x size RGB) with their class index in
    `LEAF_CLASSES` (0 healthy, 1 diseased), balanced and shuffled; the same seed gives the same bytes."""
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    return [(_leaf(rng, size, bool(label)), int(label)) for label in labels]


def write_reference_csv(path: str | Path, images: Iterable[bytes], size: int) -> int:
    """Writes the `STAT_COLUMNS` of each image (resized to the learner's `size`) as a reference CSV
    for an image learner's drift monitor; returns the number of rows."""
    rows = 0
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(STAT_COLUMNS)
        for i, data in enumerate(images):
            stats = image_stats(to_array(decode(data, f"image {i}"), size)[None])[0]
            writer.writerow([f"{v:.6f}" for v in stats])
            rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of images")
    parser.add_argument("--size", type=int, default=64, help="side of the written images in pixels")
    parser.add_argument("--model-size", type=int, default=16, help="the learner's `size` (for the statistics)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    leaves = generate_leaf_images(args.n, args.size, args.seed)
    for i, (png, label) in enumerate(leaves):
        (out / f"leaf_{i:04d}_{LEAF_CLASSES[label]}.png").write_bytes(png)
    rows = write_reference_csv(out / "reference.csv", (png for png, _ in leaves), args.model_size)
    print(f"wrote {len(leaves)} images and reference.csv ({rows} rows) to {out}")


if __name__ == "__main__":
    main()
