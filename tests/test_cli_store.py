"""`limbwatch analyze --store` and `limbwatch nights` in a real process, on a real store file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_store import SIDES, read_only, sim_chunks

from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.report import iso_ms
from limbwatch.sqlite_store import SqliteStore
from limbwatch.store import Chunk, Night

DAY_S = 86400.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "limbwatch.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def shifted(chunk: Chunk, seconds: float, session: int) -> Chunk:
    return Chunk(chunk.subject, chunk.side, chunk.device, session, chunk.seq, chunk.t0 + seconds,
                 chunk.dt, chunk.counts, chunk.counts_per_g)


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Night]]:
    """A store with two nights of subject "kid": both legs, then the left leg 2 days later."""
    path = tmp_path_factory.mktemp("cli") / "store.db"
    night = simulate_night(load_scenario("mild_plms"), 3, duration_h=0.5)
    with SqliteStore(path) as store:
        for side in SIDES:
            store.write_chunks(sim_chunks(night.legs[side], side))
        later = sim_chunks(night.legs["left"], "left")
        store.write_chunks([shifted(c, 2 * DAY_S, session=2) for c in later])
        nights = store.nights("kid")
    assert len(nights) == 2
    return path, nights


def one_line(out: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert out.returncode == status, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and out.stdout == ""
    assert all(word in lines[0] for word in words), lines[0]


def test_nights_lists_index_start_end_sides(two_nights: tuple[Path, list[Night]]) -> None:
    path, nights = two_nights
    out = run("nights", "--store", str(path), "--subject", "kid")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.strip().splitlines()[1:]]
    assert [row[0] for row in rows] == ["0", "1"]
    assert [row[1] for row in rows] == [iso_ms(n.start) for n in nights]
    assert [row[2] for row in rows] == [iso_ms(n.end) for n in nights]
    assert [row[-1] for row in rows] == ["left,right", "left"]


def test_analyze_the_latest_night_and_store_the_report(
    two_nights: tuple[Path, list[Night]],
) -> None:
    path, nights = two_nights
    out = run("analyze", "--store", str(path), "--subject", "kid", "--age-months", "96")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [s["side"] for s in report["sensors"]] == ["left"]
    assert report["recording"]["start"] == iso_ms(nights[1].start)
    with SqliteStore(path) as store:
        assert store.read_report("kid", nights[1].start) == out.stdout.strip()


def test_analyze_a_chosen_night_to_a_file(
    two_nights: tuple[Path, list[Night]], tmp_path: Path
) -> None:
    path, nights = two_nights
    by_index = tmp_path / "by_index.json"
    out = run("analyze", "--store", str(path), "--subject", "kid", "--night", "0",
              "-o", str(by_index))
    assert out.returncode == 0 and out.stdout == "", out.stderr
    report = json.loads(by_index.read_text())
    assert [s["side"] for s in report["sensors"]] == ["left", "right"]
    assert all(s["sample_rate_hz"] == 50.0 for s in report["sensors"])
    with SqliteStore(path) as store:
        assert store.read_report("kid", nights[0].start) == by_index.read_text().strip()
    by_start = tmp_path / "by_start.json"
    out = run("analyze", "--store", str(path), "--subject", "kid",
              "--night-start", iso_ms(nights[0].start), "-o", str(by_start))
    assert out.returncode == 0, out.stderr
    assert by_start.read_text() == by_index.read_text()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--subject", "nobody"], ["nobody", "has no data"]),
        (["--subject", "kid", "--night", "2"], ["no night 2", "0-1"]),
        (["--subject", "kid", "--night-start", "2020-01-01T00:00:00Z"], ["no night at"]),
        (["--subject", "kid", "--night-start", "2026-11-20T19:30"], ["no zone"]),
        (["--subject", "kid", "--night-start", "tonight"], ["not an ISO 8601 time"]),
        (["--subject", "kid", "--left", "left.csv"], ["not both"]),
        ([], ["--store needs --subject"]),
    ],
)
def test_bad_choices_give_one_line_and_status_2(
    two_nights: tuple[Path, list[Night]], args: list[str], words: list[str]
) -> None:
    path, _ = two_nights
    one_line(run("analyze", "--store", str(path), *args), 2, *words)


def test_bad_store_files_give_one_line_and_status_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    one_line(run("analyze", "--store", str(missing), "--subject", "kid"), 2, "missing.db",
             "not found")
    assert not missing.exists()
    one_line(run("nights", "--store", str(missing), "--subject", "kid"), 2, "not found")
    text = tmp_path / "left.csv"
    text.write_text("time,x,y,z\n" * 200)
    one_line(run("analyze", "--store", str(text), "--subject", "kid"), 2, "left.csv",
             "not a limbwatch store")
    one_line(run("analyze", "--subject", "kid", "--left", str(text)), 2, "go with --store")


def test_store_that_cannot_take_the_report_gives_one_line_and_status_3(
    two_nights: tuple[Path, list[Night]], tmp_path: Path
) -> None:
    path = tmp_path / "copy.db"
    path.write_bytes(two_nights[0].read_bytes())
    with read_only(path):
        out = run("analyze", "--store", str(path), "--subject", "kid")
    one_line(out, 3, "copy.db", "read-only")
