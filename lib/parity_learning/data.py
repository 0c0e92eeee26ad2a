"""Data sets of the parity experiments.

Sparse parity (Daniely & Malach, 2020): inputs x in {-1, +1}^n, a hidden
subset A of k coordinates, label f_A(x) = prod_{i in A} x_i. An example comes
from the structured part of their distribution D_A with probability
``structured_fraction`` (1/2 in the paper): there every coordinate of A takes
one common sign s, uniform in {-1, +1}, and the others are uniform. Otherwise
x is uniform on the cube, where no single coordinate, nor any set of fewer than
k coordinates, correlates with the label.

Digit parity ("MNIST parity"): each digit image carries +1 if the digit is
even and -1 if odd; an example is k digits drawn independently, their images
placed side by side, scaled to [0, 1] and flattened; its label is the product
of the k labels, which is +1 exactly when the sum of the digits is even.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .seeding import check_seed, torch_generator

__all__ = [
    "ParitySample",
    "DigitSource",
    "SparseParityTask",
    "DigitParityTask",
    "EvaluationSet",
    "draw_subset",
    "sample_sparse_parity",
    "digit_parity_tuples",
    "load_digits",
    "read_idx",
    "DIGIT_SOURCES",
]

#: Named digit sources; any other value is read as a directory of IDX files.
DIGIT_SOURCES = ("sklearn", "fashion-mnist")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def _check_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        return _DTYPES[dtype]
    if dtype not in _DTYPES.values():
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def _check_n_k(n: object, k: object) -> tuple[int, int]:
    n = _check_positive_int(n, "n")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer in [1, n={n}], got {k!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got k={k}")
    return n, int(k)


# --------------------------------------------------------------------------
# Sparse parity


@dataclass(frozen=True)
class ParitySample:
    """A labelled sample of sparse parity.

    ``X`` has shape (N, n) with entries in {-1, +1}; ``y`` has shape (N,) with
    entries in {-1, +1}; ``structured`` marks the examples drawn from the
    structured part of D_A.
    """

    X: torch.Tensor
    y: torch.Tensor
    structured: torch.Tensor
    subset: tuple[int, ...]


def draw_subset(n: int, k: int, generator: torch.Generator) -> tuple[int, ...]:
    """Draw the hidden subset A: k distinct coordinates of range(n), sorted."""
    n, k = _check_n_k(n, k)
    order = torch.randperm(n, generator=generator)
    return tuple(sorted(int(i) for i in order[:k]))


def _check_subset(subset: object, n: int, k: int) -> tuple[int, ...]:
    try:
        items = tuple(int(i) for i in subset)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"subset must be a sequence of k={k} indices, got {subset!r}")
    if len(items) != k or len(set(items)) != k:
        raise ValueError(f"subset must hold k={k} distinct indices, got {items}")
    if any(not 0 <= i < n for i in items):
        raise ValueError(f"subset indices must lie in [0, n={n}), got {items}")
    return tuple(sorted(items))


def sample_sparse_parity(
    n: int,
    k: int,
    num_samples: int,
    generator: torch.Generator,
    *,
    subset: tuple[int, ...] | None = None,
    structured_fraction: float = 0.5,
    dtype: torch.dtype | str = torch.float32,
) -> ParitySample:
    """Sample ``num_samples`` examples of D_A.

    With ``subset=None`` the subset A is drawn from ``generator`` first, so one
    generator fixes both A and the sample. Each example independently comes
    from the structured part with probability ``structured_fraction``.
    """
    n, k = _check_n_k(n, k)
    num_samples = _check_positive_int(num_samples, "num_samples")
    dtype = _check_dtype(dtype)
    fraction = float(structured_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(
            f"structured_fraction must be in [0, 1], got {structured_fraction}"
        )
    subset = draw_subset(n, k, generator) if subset is None else subset
    subset = _check_subset(subset, n, k)

    signs = torch.randint(0, 2, (num_samples, n), generator=generator) * 2 - 1
    structured = torch.rand(num_samples, generator=generator) < fraction
    common = torch.randint(0, 2, (num_samples, 1), generator=generator) * 2 - 1
    index = torch.tensor(subset)
    on_subset = torch.where(structured[:, None], common, signs[:, index])
    signs[:, index] = on_subset

    X = signs.to(dtype)  # (N, n)
    y = X[:, index].prod(dim=1)  # (N,)
    return ParitySample(X=X, y=y, structured=structured, subset=subset)


# --------------------------------------------------------------------------
# Digit sources


@dataclass(frozen=True)
class DigitSource:
    """Digit images in [0, 1] with integer labels, split into train and test."""

    name: str
    train_images: torch.Tensor  # (N_train, H, W)
    train_labels: torch.Tensor  # (N_train,) int64 in 0..9
    test_images: torch.Tensor  # (N_test, H, W)
    test_labels: torch.Tensor  # (N_test,)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (MNIST format), gzipped or plain, into an array.

    The header is two zero bytes, a type code, the number of dimensions, then
    one big-endian uint32 per dimension. Raises ``FileNotFoundError`` for a
    missing file and ``ValueError`` for a wrong magic number or a file whose
    size does not match its header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"IDX file {path} cannot be read: {error}") from error

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = raw[:4].hex() if raw else "(empty file)"
        raise ValueError(
            f"IDX file {path} has an invalid magic number {magic}: expected "
            "00 00, a type code in {08, 09, 0b, 0c, 0d, 0e}, and a dimension count"
        )
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"IDX file {path} is truncated or padded: header shape {shape} needs "
            f"{expected} bytes, the file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


_IDX_ROLES = {
    "train_images": "train-images",
    "train_labels": "train-labels",
    "test_images": "t10k-images",
    "test_labels": "t10k-labels",
}


def _find_idx_files(directory: Path) -> dict[str, Path]:
    found = {}
    for role, prefix in _IDX_ROLES.items():
        matches = sorted(p for p in directory.iterdir() if p.name.startswith(prefix))
        if not matches:
            names = ", ".join(f"{p}-idx?-ubyte[.gz]" for p in _IDX_ROLES.values())
            raise FileNotFoundError(
                f"no '{prefix}*' IDX file in digit directory {directory}; "
                f"expected the four MNIST-format files {names}"
            )
        found[role] = matches[0]
    return found


def _load_idx_directory(directory: Path, name: str) -> DigitSource:
    if not directory.is_dir():
        raise FileNotFoundError(f"digit directory not found: {directory}")
    arrays = {role: read_idx(path) for role, path in _find_idx_files(directory).items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"IDX {split} files in {directory} do not match: images of shape "
                f"{images.shape} need labels of shape ({images.shape[0]},), "
                f"got {labels.shape}"
            )
    scale = 255.0 if arrays["train_images"].dtype == np.uint8 else 1.0
    return DigitSource(
        name=name,
        train_images=torch.from_numpy(arrays["train_images"] / scale).float(),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"] / scale).float(),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )


def _load_sklearn_digits(test_fraction: float) -> DigitSource:
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = torch.from_numpy(bunch.images / 16.0).float()  # (1797, 8, 8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    # A fixed permutation: the bundled file is ordered by writer, so a plain
    # head/tail split would test on writers never seen in training.
    order = torch.randperm(len(labels), generator=torch_generator(0, "sklearn-split"))
    num_test = int(round(test_fraction * len(labels)))
    test, train = order[:num_test], order[num_test:]
    return DigitSource(
        name="scikit-learn digits (8x8)",
        train_images=images[train],
        train_labels=labels[train],
        test_images=images[test],
        test_labels=labels[test],
    )


def load_digits(source: str | os.PathLike = "sklearn", *, test_fraction: float = 0.25):
    """Load a digit source.

    ``source`` is ``"sklearn"`` (scikit-learn's bundled 8x8 digits, offline,
    split into train and test by a fixed permutation with ``test_fraction``
    held out), ``"fashion-mnist"`` (Debian's ``dataset-fashion-mnist``
    package), or a directory holding the four MNIST-format IDX files, gzipped
    or plain, which keep their own train/test split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if source == "sklearn":
        return _load_sklearn_digits(test_fraction)
    if source == "fashion-mnist":
        if not FASHION_MNIST_DIR.is_dir():
            raise FileNotFoundError(
                f"digit source 'fashion-mnist' needs {FASHION_MNIST_DIR}: install "
                "Debian's dataset-fashion-mnist package"
            )
        return _load_idx_directory(FASHION_MNIST_DIR, "Fashion-MNIST (28x28)")
    is_path = isinstance(source, os.PathLike) or (
        isinstance(source, str)
        and (os.sep in source or source.startswith((".", "~")) or Path(source).is_dir())
    )
    if not is_path:
        raise ValueError(
            f"unknown digit source {source!r}: use one of {DIGIT_SOURCES} or the "
            "path of a directory of MNIST-format IDX files"
        )
    directory = Path(source).expanduser()
    return _load_idx_directory(directory, f"IDX files in {directory}")


def digit_parity_tuples(
    images: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    num_samples: int,
    generator: torch.Generator,
    *,
    dtype: torch.dtype | str = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``num_samples`` tuples of k digits with their parity labels.

    Returns ``X`` of shape (N, H * k * W), each row the k images side by side
    flattened row by row, and ``y`` of shape (N,) in {-1, +1}.
    """
    k = _check_positive_int(k, "k")
    num_samples = _check_positive_int(num_samples, "num_samples")
    dtype = _check_dtype(dtype)
    if images.ndim != 3 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"images must have shape (N, H, W) with N = len(labels) > 0, got "
            f"{tuple(images.shape)} and {len(labels)} labels"
        )
    index = torch.randint(0, len(labels), (num_samples, k), generator=generator)
    tuples = images[index]  # (N, k, H, W)
    height, width = images.shape[1:]
    X = tuples.permute(0, 2, 1, 3).reshape(num_samples, height * k * width)
    digit_signs = 1 - 2 * (labels[index] % 2)  # even -> +1, odd -> -1; (N, k)
    y = digit_signs.prod(dim=1)
    return X.to(dtype), y.to(dtype)


# --------------------------------------------------------------------------
# Tasks: what the training loop consumes


@dataclass
class EvaluationSet:
    """A fixed labelled set, with boolean masks of named parts of it."""

    X: torch.Tensor
    y: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class SparseParityTask:
    """Sparse parity on D_A with a fixed training set and fixed test sets.

    The subset A, the training set and each evaluation set come from their own
    streams of ``seed``. Evaluation sets carry the masks ``uniform`` and
    ``structured`` so that accuracy on both parts of D_A can be reported.
    """

    def __init__(
        self,
        n: int,
        k: int,
        num_train: int,
        num_test: int,
        seed: int,
        *,
        num_validation: int = 0,
        structured_fraction: float = 0.5,
        subset: tuple[int, ...] | None = None,
        dtype: torch.dtype | str = torch.float32,
    ):
        self.n, self.k = _check_n_k(n, k)
        self.seed = check_seed(seed)
        self.dtype = _check_dtype(dtype)
        self.structured_fraction = structured_fraction
        if subset is None:
            subset = draw_subset(n, k, torch_generator(seed, "parity-subset"))
        self.subset = _check_subset(subset, self.n, self.k)
        self.name = f"sparse parity (n={self.n}, k={self.k})"
        self.input_dim = self.n
        self._train = self._sample(num_train, "parity-train", "num_train")
        self.evaluation_sets = {"test": self._evaluation(num_test, "parity-test", "num_test")}
        if num_validation:
            self.evaluation_sets["validation"] = self._evaluation(
                num_validation, "parity-validation", "num_validation"
            )

    def _sample(self, num: int, stream: str, name: str) -> ParitySample:
        _check_positive_int(num, name)
        return sample_sparse_parity(
            self.n,
            self.k,
            num,
            torch_generator(self.seed, stream),
            subset=self.subset,
            structured_fraction=self.structured_fraction,
            dtype=self.dtype,
        )

    def _evaluation(self, num: int, stream: str, name: str) -> EvaluationSet:
        sample = self._sample(num, stream, name)
        parts = {"uniform": ~sample.structured, "structured": sample.structured}
        return EvaluationSet(sample.X, sample.y, parts)

    def training_set(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the training inputs and labels; the same set every epoch."""
        return self._train.X, self._train.y


class DigitParityTask:
    """Digit parity: fresh training tuples every epoch, fixed test tuples.

    Training tuples of epoch e come from the stream ``digit-train-<e>`` of
    ``seed``, so epoch e is reproducible on its own. Test tuples use only the
    source's test digits. With ``num_validation > 0``, one training digit in
    six is held out and validation tuples are drawn from those digits only.
    """

    def __init__(
        self,
        source: DigitSource,
        k: int,
        num_train: int,
        num_test: int,
        seed: int,
        *,
        num_validation: int = 0,
        dtype: torch.dtype | str = torch.float32,
    ):
        self.k = _check_positive_int(k, "k")
        self.num_train = _check_positive_int(num_train, "num_train")
        self.seed = check_seed(seed)
        self.dtype = _check_dtype(dtype)
        self.source = source
        self.name = f"digit parity (k={self.k}, {source.name})"
        height, width = source.image_shape
        self.input_dim = height * width * self.k

        images, labels = source.train_images, source.train_labels
        if num_validation:
            held_out = torch.arange(len(labels)) % 6 == 5
            self._validation_digits = (images[held_out], labels[held_out])
            images, labels = images[~held_out], labels[~held_out]
        self._train_digits = (images, labels)

        test_images, test_labels = source.test_images, source.test_labels
        X, y = self._tuples(test_images, test_labels, num_test, "digit-test")
        self.evaluation_sets = {"test": EvaluationSet(X, y)}
        if num_validation:
            X, y = self._tuples(*self._validation_digits, num_validation, "digit-val")
            self.evaluation_sets["validation"] = EvaluationSet(X, y)

    def _tuples(self, images, labels, num, stream):
        generator = torch_generator(self.seed, stream)
        return digit_parity_tuples(
            images, labels, self.k, num, generator, dtype=self.dtype
        )

    def training_set(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw the training tuples of ``epoch``."""
        return self._tuples(*self._train_digits, self.num_train, f"digit-train-{epoch}")
