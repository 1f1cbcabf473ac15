"""One gateway per spool: an exclusive lock on a file beside the spool, holding the owner's pid.

Two gateways on one spool would each learn what is safe from it, ask the sensors for the same
packets and overwrite each other's clock state. `flock` is released by the kernel when its
holder exits, however it exits, so a killed gateway never leaves a stale lock; the pid in the
file only names the holder in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from limbwatch.errors import Refused


def lock_path(spool_path: Path) -> Path:
    return spool_path.with_name(spool_path.name + ".lock")


@contextmanager
def exclusive(spool_path: Path) -> Iterator[None]:
    """Hold the spool's lock while inside; Refused, naming the holder's pid, if another process
    (or another holder in this one) has it. OSError if the lock file cannot be made."""
    path = lock_path(spool_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise Refused(
                f"spool {spool_path} is in use by another gateway (pid {holder}, lock file "
                f"{path}): stop that gateway first, or give this one its own [spool] path"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
