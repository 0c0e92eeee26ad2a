"""Sparse-parity sampler, digit sources, IDX reader and digit-parity tuples."""

import gzip
import math

import numpy as np
import pytest
import torch

from parity_learning.data import (
    DigitParityTask,
    DigitSource,
    SparseParityTask,
    digit_parity_tuples,
    draw_subset,
    load_digits,
    read_idx,
    sample_sparse_parity,
)
from parity_learning.seeding import torch_generator

# --------------------------------------------------------------------------
# Sparse parity


def big_sample(structured_fraction=0.5, n=20, k=3, count=20_000):
    generator = torch_generator(0, "test-parity")
    return sample_sparse_parity(
        n, k, count, generator, structured_fraction=structured_fraction,
        dtype=torch.float64,
    )


def correlation_bound(count: int) -> float:
    """Five standard deviations of a sample correlation of independent signs.

    For independent uniform signs u, v the products u * v are uniform signs,
    so the sample mean of count of them has standard deviation 1/sqrt(count).
    With 20 single coordinates and 190 pairs tested, a 5-sigma bound fails by chance with
    probability below 1e-4 for the whole test.
    """
    return 5.0 / math.sqrt(count)


def test_labels_are_parity_of_subset():
    sample = big_sample()
    index = list(sample.subset)
    assert torch.equal(sample.y, sample.X[:, index].prod(dim=1))
    assert set(sample.X.unique().tolist()) == {-1.0, 1.0}


def test_uniform_part_has_no_low_order_correlation():
    sample = big_sample()
    X, y = sample.X[~sample.structured], sample.y[~sample.structured]
    count = len(y)
    bound = correlation_bound(count)
    singles = (X * y[:, None]).mean(dim=0)  # (n,)
    assert singles.abs().max() < bound, singles
    n = X.shape[1]
    for i in range(n - 1):
        pairs = (X[:, i : i + 1] * X[:, i + 1 :] * y[:, None]).mean(dim=0)
        assert pairs.abs().max() < bound, (i, pairs)


def test_uniform_part_sees_the_full_parity():
    sample = big_sample()
    X, y = sample.X[~sample.structured], sample.y[~sample.structured]
    # The k-th order product over A is the label itself: correlation 1.
    assert torch.equal(X[:, list(sample.subset)].prod(dim=1), y)


def test_structured_part_agrees_on_subset():
    sample = big_sample()
    on_subset = sample.X[sample.structured][:, list(sample.subset)]
    assert torch.all(on_subset == on_subset[:, :1])
    # For odd k the label is the common sign, so single coordinates of A
    # correlate with the label there.
    y = sample.y[sample.structured]
    assert torch.equal(on_subset[:, 0], y)


def test_structured_part_leaves_other_coordinates_uniform():
    sample = big_sample()
    others = [i for i in range(20) if i not in sample.subset]
    X = sample.X[sample.structured][:, others]
    bound = correlation_bound(len(X))
    assert X.mean(dim=0).abs().max() < bound


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0])
def test_mixture_weight_is_respected(fraction):
    sample = big_sample(structured_fraction=fraction)
    share = sample.structured.double().mean().item()
    assert abs(share - fraction) < correlation_bound(20_000)


def test_given_subset_is_used():
    sample = sample_sparse_parity(10, 2, 50, torch_generator(0, "x"), subset=(7, 1))
    assert sample.subset == (1, 7)
    assert torch.equal(sample.y, sample.X[:, 1] * sample.X[:, 7])


def test_subset_drawn_from_seed():
    first = draw_subset(30, 5, torch_generator(3, "subset"))
    again = draw_subset(30, 5, torch_generator(3, "subset"))
    other = draw_subset(30, 5, torch_generator(4, "subset"))
    assert first == again
    assert first != other
    assert len(set(first)) == 5


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(n=5, k=6), ValueError, r"k must be in \[1, n=5\], got k=6"),
        (dict(n=5, k=0), ValueError, r"k must be in \[1, n=5\], got k=0"),
        (dict(n=0, k=1), ValueError, "n must be a positive integer, got 0"),
        (dict(n=-3, k=1), ValueError, "n must be a positive integer, got -3"),
        (dict(num_samples=0), ValueError, "num_samples must be a positive integer, got 0"),
        (dict(num_samples=2.5), TypeError, "num_samples must be a positive integer"),
        (dict(structured_fraction=1.5), ValueError, r"structured_fraction must be in \[0, 1\]"),
        (dict(subset=(0, 0, 1)), ValueError, "distinct indices"),
        (dict(subset=(0, 1, 9)), ValueError, r"lie in \[0, n=5\)"),
        (dict(dtype="float16"), ValueError, "dtype must be one of"),
    ],
)
def test_sampler_rejects_bad_input(kwargs, error, message):
    arguments = dict(n=5, k=3, num_samples=10)
    arguments.update(kwargs)
    n, k, num = arguments.pop("n"), arguments.pop("k"), arguments.pop("num_samples")
    with pytest.raises(error, match=message):
        sample_sparse_parity(n, k, num, torch_generator(0, "x"), **arguments)


def test_task_rejects_non_positive_sizes():
    with pytest.raises(ValueError, match="num_test must be a positive integer, got 0"):
        SparseParityTask(10, 3, num_train=10, num_test=0, seed=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        SparseParityTask(10, 3, num_train=10, num_test=10, seed=-1)


def test_task_streams_are_independent():
    task = SparseParityTask(12, 3, 100, 100, seed=0, num_validation=100)
    X_train, _ = task.training_set(1)
    X_test = task.evaluation_sets["test"].X
    X_val = task.evaluation_sets["validation"].X
    assert not torch.equal(X_train, X_test)
    assert not torch.equal(X_test, X_val)
    parts = task.evaluation_sets["test"].parts
    assert torch.equal(parts["uniform"], ~parts["structured"])


# --------------------------------------------------------------------------
# IDX files and digit sources


def write_idx(path, array, type_code=0x08, gz=False):
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(">u1" if type_code == 0x08 else array.dtype).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as handle:
        handle.write(payload)
    return path


def write_mnist_dir(directory, gz, train=12, test=6, size=4):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    images = {s: rng.integers(0, 256, (c, size, size)).astype(np.uint8)
              for s, c in (("train", train), ("t10k", test))}
    labels = {s: (np.arange(c) % 10).astype(np.uint8) for s, c in (("train", train), ("t10k", test))}
    for split in ("train", "t10k"):
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images[split], gz=gz)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels[split], gz=gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), array, gz=gz)
    assert np.array_equal(read_idx(path), array)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_loads(tmp_path, gz):
    images, labels = write_mnist_dir(tmp_path, gz)
    source = load_digits(str(tmp_path))
    assert source.image_shape == (4, 4)
    assert torch.allclose(source.train_images, torch.from_numpy(images["train"] / 255.0).float())
    assert torch.equal(source.test_labels, torch.from_numpy(labels["t10k"].astype(np.int64)))


def test_idx_directory_by_bare_name(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    images, _ = write_mnist_dir(tmp_path / "mnist", gz=False)
    monkeypatch.chdir(tmp_path)
    source = load_digits("mnist")
    assert source.train_images.shape == images["train"].shape


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="IDX file not found: .*nothing.idx"):
        read_idx(tmp_path / "nothing.idx")


def test_idx_truncated(tmp_path):
    array = np.zeros((3, 4, 4), dtype=np.uint8)
    path = write_idx(tmp_path / "t.idx", array)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"t.idx is truncated or padded: header shape \(3, 4, 4\)"):
        read_idx(path)


def test_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "t.idx.gz", np.zeros((30, 4, 4), dtype=np.uint8), gz=True)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match="t.idx.gz"):
        read_idx(path)


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="bad.idx has an invalid magic number 12340801"):
        read_idx(path)


def test_idx_empty_file(tmp_path):
    path = tmp_path / "empty.idx"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.idx has an invalid magic number"):
        read_idx(path)


def test_missing_idx_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="digit directory not found: .*nowhere"):
        load_digits(str(tmp_path / "nowhere"))


def test_empty_idx_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no 'train-images\\*' IDX file in digit directory"):
        load_digits(str(tmp_path))


def test_unknown_digit_source():
    with pytest.raises(ValueError, match="unknown digit source 'mnist-online'.*sklearn"):
        load_digits("mnist-online")


def test_sklearn_digits_are_the_embedded_default():
    source = load_digits()
    assert source.image_shape == (8, 8)
    assert len(source.train_labels) + len(source.test_labels) == 1797
    assert 0.0 <= float(source.train_images.min()) and float(source.train_images.max()) <= 1.0


# --------------------------------------------------------------------------
# Digit parity


def tiny_source():
    images = torch.arange(10 * 2 * 3, dtype=torch.float32).reshape(10, 2, 3) / 60
    labels = torch.arange(10)
    return DigitSource("tiny", images, labels, images, labels)


def test_digit_tuples_side_by_side_and_labels():
    source = tiny_source()
    generator = torch_generator(0, "tuples")
    X, y = digit_parity_tuples(source.train_images, source.train_labels, 3, 40, generator)
    again = torch_generator(0, "tuples")
    index = torch.randint(0, 10, (40, 3), generator=again)
    for row in range(40):
        digits = index[row]
        picture = torch.cat([source.train_images[d] for d in digits], dim=1)  # (2, 9)
        assert torch.equal(X[row], picture.reshape(-1))
        assert y[row] == (1.0 if int(digits.sum()) % 2 == 0 else -1.0)


def test_digit_task_draws_fresh_training_tuples():
    task = DigitParityTask(tiny_source(), 2, 30, 20, seed=0)
    first, _ = task.training_set(1)
    second, _ = task.training_set(2)
    again, _ = task.training_set(1)
    assert not torch.equal(first, second)
    assert torch.equal(first, again)
    assert task.input_dim == 2 * 3 * 2


def test_digit_task_test_tuples_use_test_digits_only():
    train_images = torch.zeros(10, 2, 3)
    test_images = torch.ones(10, 2, 3)
    labels = torch.arange(10)
    source = DigitSource("split", train_images, labels, test_images, labels)
    task = DigitParityTask(source, 3, 20, 20, seed=0)
    assert torch.all(task.evaluation_sets["test"].X == 1)
    assert torch.all(task.training_set(1)[0] == 0)
