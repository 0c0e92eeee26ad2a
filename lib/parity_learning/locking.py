"""An advisory file lock shared by processes that write one folder."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

__all__ = ["file_lock"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while inside.

    The lock is released when the block exits or the process dies, so a
    killed writer never leaves it held. It only guards against processes that
    take the same lock (POSIX advisory locking).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for the lock %s, held by another process", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
