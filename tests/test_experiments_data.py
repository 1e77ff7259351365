"""The experiments' datasets, offline: stdlib text, digits, and the opt-in CIFAR-10 / Shakespeare loaders on tiny
fixtures written in the real on-disk formats. Network access is blocked for every test here."""

import io
import pickle
import tarfile
import urllib.request

import numpy as np
import pytest
import torch

from radam.experiments import data


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_stdlib_corpus_is_deterministic_and_split_by_file(tmp_path):
    for i in range(12):
        (tmp_path / f"m{i:02d}.py").write_bytes(f"# file {i}\n".encode())
    (tmp_path / "notes.txt").write_bytes(b"not python")
    corpus = data.stdlib_corpus(directory=tmp_path)
    assert corpus.valid.dtype == torch.uint8
    assert bytes(corpus.valid.tolist()) == b"# file 0\n\n# file 10\n"  # files 0 and 10 (every tenth) validate
    assert b"# file 1\n" in bytes(corpus.train.tolist()) and b"not python" not in bytes(corpus.train.tolist())
    again = data.stdlib_corpus(directory=tmp_path)
    assert torch.equal(corpus.train, again.train)
    short = data.stdlib_corpus(max_bytes=20, directory=tmp_path)
    assert short.train.numel() == 20


def test_real_stdlib_corpus_has_python_source():
    corpus = data.stdlib_corpus(max_bytes=100_000)
    assert corpus.train.numel() == 100_000 and b"import" in bytes(corpus.train.tolist())


def test_windows_targets_are_inputs_shifted_by_one():
    stream = torch.arange(100, dtype=torch.uint8)
    x, y = data.sample_windows(stream, 5, 8, torch.Generator().manual_seed(0))
    assert x.shape == (5, 8) and torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y - x, torch.ones_like(x))
    ex, ey = data.eval_windows(stream, 3, 8)
    assert ex[0, 0] == 0 and ey[-1, -1] == 99
    with pytest.raises(ValueError, match="fewer than a window"):
        data.sample_windows(stream[:5], 1, 8, torch.Generator())


def test_every_window_start_is_drawn_and_the_last_byte_is_a_target():
    """A split of N bytes holds N - length windows (starts 0 .. N-length-1); a split of exactly one window works."""
    stream = torch.arange(11, dtype=torch.uint8)
    x, y = data.sample_windows(stream, 400, 8, torch.Generator().manual_seed(0))
    assert sorted(set(x[:, 0].tolist())) == [0, 1, 2] and int(y.max()) == 10
    x, y = data.sample_windows(stream[:9], 2, 8, torch.Generator())
    assert torch.equal(y[0], torch.arange(1, 9)) and data.eval_windows(stream[:9], 1, 8)[1][0, -1] == 8
    with pytest.raises(ValueError, match="8 bytes, fewer than a window of 9"):
        data.sample_windows(stream[:8], 1, 8, torch.Generator())


def test_shakespeare_loader_reads_fixture_and_refuses_to_download_silently(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        data.shakespeare_corpus(tmp_path)
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    speeches = [f"SPEAKER {i}:\nline {i}".encode() for i in range(20)]
    (folder / "input.txt").write_bytes(b"\n\n".join(speeches))
    corpus = data.shakespeare_corpus(tmp_path)
    assert bytes(corpus.valid.tolist()) == speeches[0] + b"\n" + speeches[10]


def test_digits_dataset_shapes_standardised_and_stratified():
    ds = data.digits_dataset(size=16)
    assert ds.train_images.shape[1:] == (1, 16, 16) and len(ds.train_images) + len(ds.test_images) == 1797
    assert abs(float(ds.train_images.mean())) < 1e-4 and abs(float(ds.train_images.std()) - 1) < 1e-3
    counts = torch.bincount(ds.test_labels, minlength=10)
    assert counts.min() >= 44 and counts.max() <= 46  # a quarter of each class (174..183 images per class)
    with pytest.raises(ValueError, match="size"):
        data.digits_dataset(size=4)


def _write_cifar_fixture(folder, n=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": images,
            b"filenames": [f"img{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        batches[name] = (images, labels)
    return batches


def test_read_cifar10_fixture_in_the_pickle_format(tmp_path):
    batches = _write_cifar_fixture(tmp_path / "cifar-10-batches-py")
    train_x, train_y, test_x, test_y = data.read_cifar10(tmp_path / "cifar-10-batches-py")
    assert train_x.shape == (20, 3, 32, 32) and test_x.shape == (4, 3, 32, 32) and train_x.dtype == np.uint8
    raw, labels = batches["data_batch_2"]
    # row-major 3x32x32: the green channel's pixel (row 5, column 7) of data_batch_2's first image
    assert train_x[4, 1, 5, 7] == raw[0, 1024 + 5 * 32 + 7]
    assert train_y[4:8].tolist() == labels
    ds = data.cifar10_dataset(tmp_path)
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.train_images.dtype == torch.float32


def test_cifar10_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        data.cifar10_dataset(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_fixture(folder)
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="data_batch_3"):
        data.read_cifar10(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        data.read_cifar10(folder)


@pytest.mark.parametrize(
    "batch, message",
    [
        ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "N > 0"),
        ({b"data": np.full((2, 3072), 300), b"labels": [0, 1]}, "uint8"),
        ({b"data": np.full((2, 3072), 0.5), b"labels": [0, 1]}, "uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, "0..9"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.5, 1.0]}, "integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "N labels"),
    ],
)
def test_a_malformed_cifar10_batch_is_an_error_naming_the_file(tmp_path, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_fixture(folder)
    with (folder / "test_batch").open("wb") as file:
        pickle.dump(batch, file)
    with pytest.raises(ValueError, match=message) as info:
        data.read_cifar10(folder)
    assert "test_batch" in str(info.value)


def test_cifar10_download_path_checks_and_extracts_the_tarball(tmp_path, monkeypatch):
    source = tmp_path / "source"
    _write_cifar_fixture(source / "cifar-10-batches-py")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    payload = buffer.getvalue()
    fetched = []

    def fake_download(url, destination):
        fetched.append(url)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(payload)

    monkeypatch.setattr(data, "_download", fake_download)
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="MD5"):
        data.cifar10_dataset(root, download=True)
    import hashlib

    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(payload).hexdigest())
    ds = data.cifar10_dataset(root, download=True)
    assert fetched == [data.CIFAR10_URL] and len(ds.test_labels) == 4
