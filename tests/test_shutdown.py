"""Issue 11: the services stop cleanly when their container is stopped. `docker stop` sends
SIGTERM and kills after 10 s: `limbwatch serve` (with the analysis service inside) and
`limbwatch worker` must exit with status 0 well within that, on a real store, while serving."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_world import World, build_world

STOP_S = 10.0  # docker stop's default grace period


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("shutdown") / "limbwatch.db")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(url: str, timeout_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> tuple[int, float]:
    """SIGTERM; (exit status, seconds it took), or fail after STOP_S."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{proc.args} did not exit within {STOP_S} s of SIGTERM")
    return code, time.monotonic() - started


def test_serve_and_worker_exit_0_on_sigterm(world: World, tmp_path: Path) -> None:
    store = tmp_path / "limbwatch.db"
    shutil.copy(world.path, store)
    log = (tmp_path / "services.log").open("w")
    cli = [sys.executable, "-m", "app.cli"]
    metrics = free_port()
    serve = subprocess.Popen([*cli, "serve", "--store", f"sqlite:{store}", "--port", "0"],
                             stdout=subprocess.PIPE, stderr=log, text=True)
    worker = subprocess.Popen([*cli, "worker", "--store", f"sqlite:{store}", "--metrics-port",
                               str(metrics)], stdout=log, stderr=log, text=True)
    try:
        assert serve.stdout is not None
        url = serve.stdout.readline().split()[1]  # "Serving http://127.0.0.1:PORT/ (docs ...)"
        assert wait_for(f"{url}healthz").json()["status"] == "ok"
        assert "limbwatch_analysis_duration_seconds" in wait_for(
            f"http://127.0.0.1:{metrics}/metrics").text
        time.sleep(1.0)  # both in their loops: the analysis service polling, the API serving
        for proc in (serve, worker):
            code, took = stop(proc)
            assert code == 0, (proc.args, code, (tmp_path / "services.log").read_text())
            assert took < STOP_S
    finally:
        for proc in (serve, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.close()


def children(pid: int) -> set[int]:
    """The processes `pid` started that are still there (Linux's /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found |= {int(p) for p in task.read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_serve_with_two_workers_stops_both_and_leaves_none_behind(world: World,
                                                                  tmp_path: Path) -> None:
    store = tmp_path / "limbwatch.db"
    shutil.copy(world.path, store)
    cli = [sys.executable, "-m", "app.cli"]
    for ending in ("SIGTERM", "SIGKILL"):
        serve = subprocess.Popen([*cli, "serve", "--store", f"sqlite:{store}", "--port", "0",
                                  "--workers", "2", "--no-worker"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert serve.stdout is not None
            url = serve.stdout.readline().split()[1]
            assert wait_for(f"{url}healthz").json()["status"] == "ok"
            (other,) = children(serve.pid)
            for _ in range(20):  # the kernel spreads connections over both: all answer
                assert httpx.get(f"{url}healthz", timeout=5).status_code == 200
            if ending == "SIGTERM":
                code, took = stop(serve)
                assert code == 0 and took < STOP_S
            else:  # the parent killed outright: the other learns of it from the kernel
                serve.kill()
                serve.wait()
            deadline = time.monotonic() + STOP_S
            while alive(other) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not alive(other), f"the second server process outlived {ending}"
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()


def test_the_listening_socket_says_tcp() -> None:
    """asyncio sets TCP_NODELAY only on a socket whose protocol is IPPROTO_TCP; with 0 there,
    every answer's body waited for the client's delayed ACK (about 40 ms a request)."""
    from app.cli import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
