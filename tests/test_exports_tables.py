"""Events and epochs CSV parsed back with the csv module and compared with the night."""

from __future__ import annotations

import csv

import pytest
from test_exports_nights import NIGHTS, SUBJECT, VERSION, night

from analysis.sleep import EPOCH_S
from api.exports.tables import epochs_csv, events_csv
from limbwatch.report import iso_ms, parse_iso


def parse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """The `#` block (without the marks) and the rows of a CSV export."""
    lines = text.splitlines()
    block = [line[2:] for line in lines if line.startswith("# ")]
    assert lines[: len(block)] == [f"# {line}" for line in block]  # the block comes first
    return block, list(csv.DictReader(lines[len(block):]))


def documented(block: list[str]) -> list[str]:
    return [line.split(":")[0].strip() for line in block[block.index("Columns:") + 1:]]


@pytest.mark.parametrize("name", NIGHTS)
def test_events_csv_lists_every_event_and_note(name: str) -> None:
    n = night(name)
    block, rows = parse(events_csv(n.result, notes=n.notes, subject=SUBJECT,
                                   algorithm_version=VERSION))
    assert documented(block) == list(rows[0])
    assert SUBJECT.id in block[0] and VERSION in block[0]
    notes = [r for r in rows if r["type"] == "journal"]
    assert [(parse_iso(r["start"]), r["kind"], r["text"], r["note_id"]) for r in notes] == [
        (pytest.approx(x.time, abs=5e-4), x.kind, x.text, str(x.id)) for x in n.notes]
    events = [r for r in rows if r["type"] != "journal"]
    want = n.result.events()
    assert len(events) == len(want)
    for row, e in zip(events, want, strict=True):
        assert (row["type"], row["start"], row["end"], row["side"]) == (
            e.kind, iso_ms(e.start), iso_ms(e.end), e.side or "")
        assert float(row["duration_s"]) == pytest.approx(e.end - e.start, abs=5e-4)
        for key, value in e.detail.items():
            cell = row[key]
            if value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == str(int(value))
            else:
                assert float(cell) == value
    starts = [parse_iso(r["start"]) for r in rows]
    assert starts == sorted(starts)


@pytest.mark.parametrize("name", NIGHTS)
def test_epochs_csv_has_each_epoch_and_what_each_leg_did(name: str) -> None:
    r = night(name).result
    block, rows = parse(epochs_csv(r, subject=SUBJECT, algorithm_version=VERSION))
    assert documented(block) == list(rows[0])
    assert "".join(row["state"] for row in rows) == r.epochs
    assert [parse_iso(row["start"]) for row in rows] == [
        pytest.approx(r.start + k * EPOCH_S, abs=5e-4) for k in range(len(r.epochs))]

    def total(column: str) -> float:
        return sum(float(row[column]) for row in rows)

    for leg in r.legs:
        side = leg.side
        assert total(f"lm_{side}") == len(leg.lms)
        assert total(f"plm_{side}") == sum(m.periodic for m in leg.lms)
        assert total(f"jerk_{side}") == len(leg.jerks)
        assert total(f"lm_s_{side}") == pytest.approx(sum(m.end - m.start for m in leg.lms),
                                                      abs=0.005 * len(rows))
        tremor = sum(t.duration_s for t in r.tremor if t.side in (side, "bilateral"))
        assert total(f"tremor_s_{side}") == pytest.approx(tremor, abs=0.005 * len(rows))
        for column, spans in (("nonwear_s", leg.nonwear), ("gap_s", leg.gaps)):
            assert total(f"{column}_{side}") == pytest.approx(sum(b - a for a, b in spans),
                                                              abs=0.005 * len(rows))
        for m in leg.lms:  # each LM is counted in the epoch its onset falls in
            k = int((m.start - r.start) // EPOCH_S)
            assert int(rows[k][f"lm_{side}"]) >= 1
            assert (rows[k]["state"] == "S") == m.in_sleep
