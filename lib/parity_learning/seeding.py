"""Named random streams derived from one integer seed.

Every random object of a run (data, initial weights, feedback matrices,
mini-batch order) draws from its own stream, so that changing how one of them
is drawn never shifts the numbers of another. A stream is identified by the
run seed and a name; the derivation is a SHA-256 hash, stable across Python
versions and processes (unlike ``hash()``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

__all__ = ["stream_seed", "torch_generator", "numpy_generator", "check_seed"]


def check_seed(seed: object, name: str = "seed") -> int:
    """Return ``seed`` as an int, or raise if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed}")
    return int(seed)


def stream_seed(seed: int, name: str) -> int:
    """Derive the 63-bit seed of the stream ``name`` from the run seed."""
    seed = check_seed(seed)
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def torch_generator(seed: int, name: str, device: str | torch.device = "cpu"):
    """Build a ``torch.Generator`` for the stream ``name`` of ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(stream_seed(seed, name))
    return generator


def numpy_generator(seed: int, name: str) -> np.random.Generator:
    """Build a ``numpy.random.Generator`` for the stream ``name`` of ``seed``."""
    return np.random.default_rng(stream_seed(seed, name))
