"""The `limbwatch` command as a user runs it: a real process, its exit status and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

T0 = 1795203000.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def write_csv(path: Path, seconds: float, start: float = T0, fs: float = 25.0) -> Path:
    t = start + np.arange(round(seconds * fs)) / fs
    rows = "\n".join(f"{x:.3f},0.0,0.6,0.8" for x in t)
    path.write_text("time,x,y,z\n" + rows + "\n")
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("t,x,y,z\n1,0,0,1\n", "time"),
        ("time,x,y,z\n1795203000.00,0.1,abc,0.9\n", "line 2"),
        ("time,x,y,z\n1795203000.00,0.1,0.2,0.9\n1795203000.00,0.1,0.2,0.9\n", "line 3"),
    ],
)
def test_bad_csv_gives_one_line_and_status_2(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "left.csv"
    bad.write_text(content)
    out = run("analyze", "--left", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "left.csv" in lines[0] and expected in lines[0]
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_missing_file_and_no_leg(tmp_path: Path) -> None:
    out = run("analyze", "--left", str(tmp_path / "nope.csv"))
    assert out.returncode == 2 and "nope.csv" in out.stderr and "Traceback" not in out.stderr
    out = run("analyze")
    assert out.returncode == 2 and "--left" in out.stderr


def test_legs_that_do_not_overlap(tmp_path: Path) -> None:
    left = write_csv(tmp_path / "left.csv", 120)
    right = write_csv(tmp_path / "right.csv", 120, start=T0 + 3600)
    out = run("analyze", "--left", str(left), "--right", str(right))
    assert out.returncode == 2 and "overlap" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unknown_scenario_is_one_line(tmp_path: Path) -> None:
    out = run("simulate", "no_such_scenario", "-o", str(tmp_path))
    assert out.returncode == 2 and "no_such_scenario" in out.stderr
    assert "Traceback" not in out.stderr


def test_simulate_then_analyze_with_aasm_rules(tmp_path: Path) -> None:
    assert run("simulate", "mild_plms", "--hours", "1", "--seed", "4", "-o",
               str(tmp_path)).returncode == 0
    out = run("analyze", "--left", str(tmp_path / "left.csv"), "--right",
              str(tmp_path / "right.csv"), "--rules", "aasm", "--age-months", "96")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["schema_version"] == 1 and report["plm"]["rules"] == "aasm"
    assert report["age_months"] == 96
    assert report["settling"]["latency_from"] == "first_worn_epoch"
    bedtime = run("analyze", "--left", str(tmp_path / "left.csv"), "--lights-out",
                  "2026-11-20T20:31:00+01:00")  # T0 + 60 s
    assert bedtime.returncode == 0, bedtime.stderr
    settling = json.loads(bedtime.stdout)["settling"]
    assert settling["latency_from"] == "lights_out"
    assert settling["lights_out"] == "2026-11-20T19:31:00.000Z"
    no_zone = run("analyze", "--left", str(tmp_path / "left.csv"), "--lights-out", "19:45")
    assert no_zone.returncode == 2 and "with a zone" in no_zone.stderr
