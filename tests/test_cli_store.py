"""`limbwatch analyze --store`, `nights` and `subject` in a real process, on a real store file."""

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
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import NightRecord, Subject
from limbwatch.store.samples import Chunk
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

DAY_S = 86400.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def shifted(chunk: Chunk, seconds: float, session: int) -> Chunk:
    return Chunk(chunk.subject, chunk.side, chunk.device, session, chunk.seq, chunk.t0 + seconds,
                 chunk.dt, chunk.counts, chunk.counts_per_g)


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[NightRecord]]:
    """A store with two nights of subject "kid": both legs, then the left leg 2 days later;
    the nights oldest first."""
    path = tmp_path_factory.mktemp("cli") / "store.db"
    night = simulate_night(load_scenario("mild_plms"), 3, duration_h=0.5)
    with SqliteSampleStore(path) as store, SqliteRecordStore(path) as records:
        kid = Subject("kid", "Kid", None, "UTC")
        records.put_subject(kid)
        for side in SIDES:
            store.write_chunks(sim_chunks(night.legs[side], side))
        later = sim_chunks(night.legs["left"], "left")
        store.write_chunks([shifted(c, 2 * DAY_S, session=2) for c in later])
        nights = refresh_nights(store, records, kid, now=0.0)
    assert len(nights) == 2
    return path, nights


def one_line(out: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert out.returncode == status, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and out.stdout == ""
    assert all(word in lines[0] for word in words), lines[0]


def test_nights_lists_id_date_start_end(two_nights: tuple[Path, list[NightRecord]]) -> None:
    path, nights = two_nights
    out = run("nights", "--store", str(path), "--subject", "kid")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.strip().splitlines()[1:]]
    newest_first = nights[::-1]
    assert [row[0] for row in rows] == [str(n.id) for n in newest_first]
    assert [row[1] for row in rows] == [n.date.isoformat() for n in newest_first]
    assert [row[2] for row in rows] == [iso_ms(n.start) for n in newest_first]
    assert [row[3] for row in rows] == [iso_ms(n.end) for n in newest_first]


def stored_report(path: Path, night_id: int) -> tuple[str, str] | None:
    with SqliteRecordStore(path) as records:
        return records.report(night_id)


def test_analyze_the_latest_night_and_store_the_report(
    two_nights: tuple[Path, list[NightRecord]],
) -> None:
    path, nights = two_nights
    out = run("analyze", "--store", str(path), "--subject", "kid", "--age-months", "96")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [s["side"] for s in report["sensors"]] == ["left"]
    assert report["recording"]["start"] == iso_ms(nights[1].start)
    stored = stored_report(path, nights[1].id)
    assert stored is not None and stored[1] == out.stdout.strip()


def test_analyze_a_chosen_night_to_a_file(
    two_nights: tuple[Path, list[NightRecord]], tmp_path: Path
) -> None:
    path, nights = two_nights
    by_id = tmp_path / "by_id.json"
    out = run("analyze", "--store", str(path), "--subject", "kid", "--night", str(nights[0].id),
              "-o", str(by_id))
    assert out.returncode == 0 and out.stdout == "", out.stderr
    report = json.loads(by_id.read_text())
    assert [s["side"] for s in report["sensors"]] == ["left", "right"]
    assert all(s["sample_rate_hz"] == 50.0 for s in report["sensors"])
    stored = stored_report(path, nights[0].id)
    assert stored is not None and stored[1] == by_id.read_text().strip()
    by_date = tmp_path / "by_date.json"
    out = run("analyze", "--store", str(path), "--subject", "kid",
              "--date", nights[0].date.isoformat(), "-o", str(by_date))
    assert out.returncode == 0, out.stderr
    assert by_date.read_text() == by_id.read_text()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--subject", "nobody"], ["no subject 'nobody'"]),
        (["--subject", "kid", "--night", "999"], ["no night 999"]),
        (["--subject", "kid", "--date", "2020-01-01"], ["no night of 2020-01-01"]),
        (["--subject", "kid", "--left", "left.csv"], ["not both"]),
        ([], ["--store needs --subject"]),
    ],
)
def test_bad_choices_give_one_line_and_status_2(
    two_nights: tuple[Path, list[NightRecord]], args: list[str], words: list[str]
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
    two_nights: tuple[Path, list[NightRecord]], tmp_path: Path
) -> None:
    path = tmp_path / "copy.db"
    path.write_bytes(two_nights[0].read_bytes())
    with read_only(path):
        out = run("analyze", "--store", str(path), "--subject", "kid")
    one_line(out, 3, "copy.db", "read-only")


def test_subject_adds_then_updates_and_refuses_a_bad_time_zone(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'new.db'}"
    out = run("subject", "--store", url, "--id", "mia", "--name", "Mia",
              "--birth-date", "2026-05-01", "--time-zone", "Europe/Berlin")
    assert out.returncode == 0 and "added" in out.stdout, out.stderr
    out = run("subject", "--store", url, "--id", "mia", "--name", "Mia B.")
    assert out.returncode == 0 and "updated" in out.stdout, out.stderr
    with SqliteRecordStore(tmp_path / "new.db") as records:
        assert records.subject("mia") == Subject("mia", "Mia B.", None, "UTC")
    one_line(run("subject", "--store", url, "--id", "x", "--time-zone", "Mars/Olympus"), 2,
             "Mars/Olympus", "IANA")
    one_line(run("nights", "--store", "influx://h/b", "--subject", "x"), 2, "unknown scheme")


def test_import_stores_analyses_and_keeps_plausibility_warnings_in_the_report(
    tmp_path: Path,
) -> None:
    from firmware_sim.export import write_night

    paths = write_night(simulate_night(load_scenario("mild_plms"), 5, duration_h=0.5), tmp_path)
    url = f"sqlite:{tmp_path / 'imports.db'}"
    assert run("subject", "--store", url, "--id", "kid").returncode == 0
    out = run("import", "--store", url, "--subject", "kid", "--left", str(paths["left"]),
              "--right", str(paths["left"]))
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.strip().splitlines()
    assert line.endswith(": ready"), line
    assert "same file was given for both legs" in out.stderr
    night_id = int(line.split()[1])
    stored = stored_report(tmp_path / "imports.db", night_id)
    assert stored is not None
    report = json.loads(stored[1])
    assert any("same file" in w for w in report["warnings"])
    # m/s^2 instead of g, another evening: a new night with its own warning only (a quiet
    # hour: beyond 16 "g" the reader refuses the file, and says why)
    rows = paths["right"].read_text().splitlines()
    scaled = tmp_path / "ms2.csv"

    def in_ms2(clip: float) -> None:
        scaled.write_text("\n".join([rows[0]] + [
            ",".join([f"{float(t) + 86400:.3f}"] + [
                f"{max(-clip, min(clip, float(v) * 9.80665)):.4f}" for v in xyz])
            for t, *xyz in (r.split(",") for r in rows[1:])]) + "\n")

    in_ms2(30.0)
    one_line(run("import", "--store", url, "--subject", "kid", "--right", str(scaled)), 2,
             "beyond the sensor range", "look like m/s^2")
    in_ms2(15.9)
    out = run("import", "--store", url, "--subject", "kid", "--right", str(scaled))
    assert out.returncode == 0, out.stderr
    assert "m/s^2" in out.stderr and "same file" not in out.stderr
    other = int(out.stdout.split()[1])
    assert other != night_id
    stored = stored_report(tmp_path / "imports.db", other)
    assert stored is not None
    assert [w for w in json.loads(stored[1])["warnings"] if "m/s^2" in w]
    one_line(run("import", "--store", url, "--subject", "nobody", "--left", str(scaled)), 2,
             "no subject 'nobody'")


def test_token_create_prints_it_once_alone_and_revoke_ends_it(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'tokens.db'}"
    out = run("token", "create", "--store", url, "--role", "clinician", "--name", "dr-a")
    assert out.returncode == 0, out.stderr
    (secret,) = out.stdout.splitlines()
    assert len(secret) >= 40 and " " not in secret
    assert secret.encode() not in (tmp_path / "tokens.db").read_bytes()  # only its digest
    listed = run("token", "list", "--store", url).stdout
    assert "dr-a\tclinician\t-\tvalid" in listed and secret not in listed
    assert run("token", "revoke", "--store", url, "--name", "dr-a").returncode == 0
    assert "dr-a\tclinician\t-\trevoked" in run("token", "list", "--store", url).stdout
    one_line(run("token", "create", "--store", url, "--role", "caregiver", "--name", "x"), 2,
             "--subject")
