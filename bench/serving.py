"""`limbwatch serve` in its own process on a free loopback port, for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def served(store: Path) -> Iterator[str]:
    """The base URL of `limbwatch serve --no-worker` on `store`, once it accepts connections
    (up to 10 s); the server is stopped on leaving."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--store", str(store), "--port", str(port),
         "--no-worker"], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)
