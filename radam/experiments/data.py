"""Datasets of the experiments: offline by default, real downloads only behind an explicit flag.

* Text: byte-level language modelling on the Python standard library's own ``*.py`` files (:func:`stdlib_corpus`),
  always present, no download. Opt in to the public *tiny Shakespeare* corpus with :func:`shakespeare_corpus`.
* Images: scikit-learn's bundled handwritten digits (8x8 greyscale, 1797 images, shipped inside scikit-learn), resized
  for a small residual CNN (:func:`digits_dataset`). Opt in to CIFAR-10, read from its on-disk python-pickle format
  (``cifar-10-batches-py/data_batch_1`` ...) with :func:`cifar10_dataset`.

Downloads use ``urllib`` only, and only when the caller passes ``download=True``.
"""

from __future__ import annotations

import hashlib
import pickle
import sysconfig
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from radam.atomic import atomic_open

__all__ = [
    "TextCorpus",
    "ImageDataset",
    "stdlib_corpus",
    "shakespeare_corpus",
    "digits_dataset",
    "cifar10_dataset",
    "read_cifar10",
    "sample_windows",
    "eval_windows",
    "CIFAR10_URL",
    "SHAKESPEARE_URL",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
_CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR10_TEST = ["test_batch"]
_CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class TextCorpus:
    """A byte-level corpus: ``train`` and ``valid`` are uint8 tensors of byte values (vocabulary size 256)."""

    name: str
    train: torch.Tensor
    valid: torch.Tensor
    description: str

    vocab_size: int = 256


@dataclass(frozen=True)
class ImageDataset:
    """Normalised images ``(N, C, H, W)`` float32 and int64 labels, split into train and test."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    description: str


def _split_documents(name: str, documents: list[bytes], description: str, valid_every: int = 10) -> TextCorpus:
    """Every ``valid_every``-th document (0, 10, 20, ...) goes to validation, the rest to training."""
    if len(documents) < 2:
        raise ValueError(f"the {name} corpus needs at least 2 documents, got {len(documents)}")
    valid = [d for i, d in enumerate(documents) if i % valid_every == 0]
    train = [d for i, d in enumerate(documents) if i % valid_every != 0]
    as_tensor = lambda docs: torch.frombuffer(bytearray(b"\n".join(docs)), dtype=torch.uint8).clone()  # noqa: E731
    return TextCorpus(name=name, train=as_tensor(train), valid=as_tensor(valid), description=description)


def stdlib_corpus(max_bytes: int | None = None, directory: str | Path | None = None) -> TextCorpus:
    """The top-level ``*.py`` files of the running Python's standard library, as one byte stream per split.

    Files are taken in sorted order of their names; every tenth file (the 1st, 11th, ...) is the validation split.
    ``max_bytes`` truncates each split to at most that many bytes (training) and a tenth of it (validation). The
    text therefore depends on the Python version (3.11's standard library is not 3.12's); the provenance of every
    result records that version.
    """
    root = Path(directory) if directory is not None else Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no *.py files in the standard-library directory {root}")
    if max_bytes is not None and max_bytes < 2:
        raise ValueError(f"max_bytes must be at least 2, got {max_bytes}")
    documents: list[bytes] = []
    sizes = [0, 0]  # validation, training bytes read so far
    for i, path in enumerate(files):
        if max_bytes is not None and sizes[1] > max_bytes and sizes[0] > max(max_bytes // 10, 2):
            break  # both truncated splits are complete: the remaining files cannot change them
        documents.append(path.read_bytes())
        sizes[i % 10 != 0] += len(documents[-1]) + 1
    corpus = _split_documents("stdlib", documents, f"{len(files)} *.py files of {root}")
    if max_bytes is not None:
        corpus = TextCorpus(
            name=corpus.name,
            train=corpus.train[:max_bytes],
            valid=corpus.valid[: max(max_bytes // 10, 2)],
            description=corpus.description + f", truncated to {max_bytes} training bytes",
        )
    return corpus


def _download(url: str, destination: Path) -> None:
    """Fetch ``url`` to ``destination`` through a temporary file in the same folder (no half-written files)."""
    with atomic_open(destination, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
        while chunk := response.read(1 << 20):
            out.write(chunk)


def shakespeare_corpus(root: str | Path, download: bool = False) -> TextCorpus:
    """Karpathy's *tiny Shakespeare* (about 1.1 MB of plays) from ``root/tinyshakespeare/input.txt``.

    The text is cut into documents at blank lines (speeches); every tenth speech is validation. With
    ``download=True`` a missing file is fetched from ``SHAKESPEARE_URL``; otherwise a missing file is an error.
    """
    path = Path(root) / "tinyshakespeare" / "input.txt"
    if not path.exists():
        if not download:
            raise FileNotFoundError(
                f"{path} does not exist; pass download=True (--download) to fetch {SHAKESPEARE_URL}"
            )
        _download(SHAKESPEARE_URL, path)
    documents = [d for d in path.read_bytes().split(b"\n\n") if d.strip()]
    return _split_documents("shakespeare", documents, f"tiny Shakespeare from {path}")


def sample_windows(data: Tensor, batch_size: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A batch of random windows: inputs ``data[i : i+length]`` and next-byte targets ``data[i+1 : i+length+1]``."""
    if data.numel() < length + 1:
        raise ValueError(f"the corpus split has {data.numel()} bytes, fewer than a window of {length + 1}")
    starts = torch.randint(0, data.numel() - length, (batch_size,), generator=generator)  # every start 0 .. N-length-1
    index = starts[:, None] + torch.arange(length + 1)
    windows = data[index].long()
    return windows[:, :-1], windows[:, 1:]


def eval_windows(data: Tensor, count: int, length: int) -> tuple[Tensor, Tensor]:
    """``count`` evenly spaced windows covering the split (deterministic: the same for every run)."""
    if data.numel() < length + 1:
        raise ValueError(f"the corpus split has {data.numel()} bytes, fewer than a window of {length + 1}")
    starts = torch.linspace(0, data.numel() - length - 1, count).long()
    index = starts[:, None] + torch.arange(length + 1)
    windows = data[index].long()
    return windows[:, :-1], windows[:, 1:]


def _normalise(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def digits_dataset(size: int = 16, test_fraction: float = 0.25) -> ImageDataset:
    """scikit-learn's 8x8 handwritten digits, resized to ``size`` x ``size`` (bilinear) and standardised.

    The split is stratified by class and fixed (the last ``test_fraction`` of each class, in the bundled order), so
    every run and every machine sees the same train and test sets. Pixel values 0..16 are standardised with the
    training set's mean and standard deviation.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits dataset ships with scikit-learn, which radam does not require: "
            "pip install scikit-learn (or the package's extra, radam[experiments])"
        ) from None

    if size < 8:
        raise ValueError(f"size must be at least 8 (the digits are 8x8), got {size}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32)[:, None]
    labels = torch.tensor(bunch.target, dtype=torch.long)
    if size != 8:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        n_test = int(round(len(idx) * test_fraction))
        test_mask[idx[len(idx) - n_test :]] = True
    train_x, test_x = images[~test_mask], images[test_mask]
    mean, std = train_x.mean().reshape(1), train_x.std().reshape(1)
    return ImageDataset(
        name="digits",
        train_images=_normalise(train_x, mean, std),
        train_labels=labels[~test_mask],
        test_images=_normalise(test_x, mean, std),
        test_labels=labels[test_mask],
        num_classes=10,
        description=f"scikit-learn digits resized to {size}x{size}: {int((~test_mask).sum())} train, "
        f"{int(test_mask.sum())} test",
    )


def read_cifar10(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the CIFAR-10 python-pickle batches in ``folder`` (``cifar-10-batches-py``) with numpy.

    Each batch file is a pickled dict with ``b"data"`` (uint8, ``N x 3072``, row-major ``3 x 32 x 32``) and
    ``b"labels"`` (N ints). Returns ``(train_x, train_y, test_x, test_y)`` with images as uint8 ``N x 3 x 32 x 32``.
    A missing or malformed batch is an error naming the file.
    """
    folder = Path(folder)

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            path = folder / name
            if not path.exists():
                raise FileNotFoundError(f"CIFAR-10 batch {path} is missing")
            try:
                with path.open("rb") as f:
                    batch = pickle.load(f, encoding="bytes")  # noqa: S301 - the dataset's own format
                data = np.asarray(batch[b"data"])
                labels = np.asarray(batch[b"labels"])
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path} is not a CIFAR-10 python batch: {error!r}") from error
            if data.dtype != np.uint8:  # the real batches are uint8; a cast would wrap or truncate other values
                raise ValueError(f"{path}: expected uint8 pixel data, got {data.dtype}")
            if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != 3072 or labels.shape != (len(data),):
                raise ValueError(
                    f"{path}: expected data N x 3072 (N > 0) and N labels, got {data.shape} and {labels.shape}"
                )
            if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
                raise ValueError(f"{path}: labels must be integers in 0..9")
            labels = labels.astype(np.int64)
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(labels)
        return np.concatenate(xs), np.concatenate(ys)

    train_x, train_y = read(_CIFAR10_TRAIN)
    test_x, test_y = read(_CIFAR10_TEST)
    return train_x, train_y, test_x, test_y


def cifar10_dataset(root: str | Path, download: bool = False) -> ImageDataset:
    """CIFAR-10 from ``root/cifar-10-batches-py``, standardised per channel with the usual CIFAR-10 statistics.

    With ``download=True`` a missing folder is fetched from ``CIFAR10_URL`` (about 170 MB), its MD5 checked and
    the tarball extracted into ``root``; without it a missing folder is an error.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    if not folder.exists():
        if not download:
            raise FileNotFoundError(f"{folder} does not exist; pass download=True (--download) to fetch {CIFAR10_URL}")
        archive = root / "cifar-10-python.tar.gz"
        if not archive.exists():
            _download(CIFAR10_URL, archive)
        digest = hashlib.md5(archive.read_bytes()).hexdigest()  # noqa: S324 - the published checksum is MD5
        if digest != CIFAR10_MD5:
            raise ValueError(f"{archive} has MD5 {digest}, expected {CIFAR10_MD5}; delete it and download again")
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    train_x, train_y, test_x, test_y = read_cifar10(folder)
    mean, std = torch.tensor(_CIFAR10_MEAN), torch.tensor(_CIFAR10_STD)
    to_float = lambda x: torch.from_numpy(x).float() / 255.0  # noqa: E731
    return ImageDataset(
        name="cifar10",
        train_images=_normalise(to_float(train_x), mean, std),
        train_labels=torch.from_numpy(train_y),
        test_images=_normalise(to_float(test_x), mean, std),
        test_labels=torch.from_numpy(test_y),
        num_classes=10,
        description=f"CIFAR-10 from {folder}: {len(train_y)} train, {len(test_y)} test",
    )
